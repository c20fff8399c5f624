"""The worker's entry points (page side): start the GPU, then answer calls by name with JSON.

`app/worker.mjs` calls `start` once, then `handle(name, args_json)` per request; `run_python` serves tests and
diagnostics (the value of the source's last expression comes back as JSON; bytes as {"__bytes__": base64}).
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

from .errors import DopplerError
from .gpu.context import Gpu

_state: dict = {}


def _jsonable(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


async def start(assets_dir: str, emit) -> str:
    """Open the browser's GPU; returns the device summary (adapter, features, limits) as JSON."""
    _state.update(assets=Path(assets_dir), emit=emit)
    info = (await _gpu()).summary()
    info["python"] = sys.version.split()[0]
    return json.dumps(info)


async def _gpu() -> Gpu:
    """The worker's device; a fresh one after the last was lost."""
    gpu = _state.get("gpu")
    if gpu is None or gpu.backend.lost() is not None:
        gpu = _state["gpu"] = await Gpu.open("browser", _state["assets"] / "wgsl")
    return gpu


async def device_info() -> dict:
    return (await _gpu()).summary()


CALLS = {"device_info": device_info}


async def handle(name: str, args_json: str) -> str:
    fn = CALLS.get(name)
    if fn is None:
        raise DopplerError(f"unknown call {name!r}; known: {', '.join(sorted(CALLS))}")
    return json.dumps(_jsonable(await fn(**json.loads(args_json))))


async def run_python(source: str) -> str:
    from pyodide.code import eval_code_async  # type: ignore[import-not-found]

    namespace = {"gpu": await _gpu(), "assets": _state["assets"]}
    return json.dumps(_jsonable(await eval_code_async(source, namespace)))
