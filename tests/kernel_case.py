"""One op call on either backend (the `gpu_run` fixture) from numpy arrays: each array becomes a tensor of its
name (float32 -> f32, float16 -> f16 packed), the output is poisoned with NaN unless its contents are an input,
the call runs, and the output comes back as float64 (`run_op`); or the error message a bad call raises (`error_of`)."""

from __future__ import annotations

import numpy as np

from reference import POISON

DTYPES = {np.dtype(np.float32): "f32", np.dtype(np.float16): "f16"}

SOURCE = """
from doppler.ops import {module}
{tensors}
await {module}.{call}
result = await gpu.read({out})
gpu.free({names})
result
"""


def run_op(gpu_run, module: str, call: str, arrays: dict[str, np.ndarray], out: str = "out",
           poison: bool = True) -> np.ndarray:
    """`call` names tensors by their array names, e.g. `linear(gpu, x, w, out, bias=b)`."""
    inputs, lines = {}, []
    for name, array in arrays.items():
        if poison and name == out:
            array = np.full(array.shape, POISON, array.dtype)
        inputs[f"{name}_bytes"] = array.tobytes()
        lines.append(f"{name} = gpu.tensor({array.shape}, {DTYPES[array.dtype]!r}, {name!r}); "
                     f"gpu.upload({name}, {name}_bytes)")
    source = SOURCE.format(module=module, tensors="\n".join(lines), call=call, out=out, names=", ".join(arrays))
    got = gpu_run(source, **inputs)
    result = arrays[out]
    return np.frombuffer(got, result.dtype)[: result.size].reshape(result.shape).astype(np.float64)


ERROR_SOURCE = """
from doppler.errors import GpuError
from doppler.ops import {module}
{tensors}
try:
    await {module}.{call}
    message = None
except GpuError as e:
    message = str(e)
gpu.free({names})
message
"""


def error_of(runner, module: str, call: str, tensors: dict[str, tuple]) -> str | None:
    """The GpuError message of `call` over tensors {name: (shape, dtype)} (contents unset), or None if it ran."""
    lines = "\n".join(f"{name} = gpu.tensor({shape}, {dtype!r}, {name!r})" for name, (shape, dtype) in tensors.items())
    return runner(ERROR_SOURCE.format(module=module, tensors=lines, call=call, names=", ".join(tensors)))
