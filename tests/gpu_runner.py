"""Run the same async test source on either backend: natively on wgpu (lavapipe) or in the page's worker
(Pyodide + WebGPU on SwiftShader). The source sees `gpu` and the given byte inputs as variables; top-level await
is allowed; the value of its last expression comes back (bytes included)."""

from __future__ import annotations

import ast
import base64


def _split_last_expression(source: str):
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    return tree, (ast.Expression(last.value) if last else None)


async def run_native(gpu, source: str, **inputs):
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    namespace = {"gpu": gpu, **inputs}
    body, last = _split_last_expression(source)
    result = eval(compile(body, "<test>", "exec", flags=flags), namespace)
    if result is not None:
        await result
    if last is None:
        return None
    value = eval(compile(last, "<test>", "eval", flags=flags), namespace)
    return await value if hasattr(value, "__await__") else value


def browser_source(source: str, **inputs) -> str:
    preamble = "import base64 as _b64\n" + "".join(
        f"{name} = _b64.b64decode({base64.b64encode(bytes(data)).decode()!r})\n" for name, data in inputs.items()
    )
    return preamble + source
