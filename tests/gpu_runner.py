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


def binding_limited(call: str) -> str:
    """Test source that runs `call` (source lines) with maxStorageBufferBindingSize lowered to the variable
    `max_binding` (0 keeps the device's), so tensors are split as on a device with that limit, and leaves the number
    of dispatches it made in `dispatched`."""
    body = "\n".join("    " + line for line in call.strip().splitlines())
    return f"""
saved = gpu.caps.limits["maxStorageBufferBindingSize"]
gpu.caps.limits["maxStorageBufferBindingSize"] = max_binding or saved
before = sum(gpu.stats.dispatches.values())
try:
{body}
    gpu.flush()
finally:
    gpu.caps.limits["maxStorageBufferBindingSize"] = saved
dispatched = sum(gpu.stats.dispatches.values()) - before
"""
