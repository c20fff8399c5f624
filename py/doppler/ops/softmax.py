"""Row softmax (`wgsl/softmax.wgsl`): y = softmax(scale * x) over the last axis; causal keeps j <= i of each square
(T, T) block of rows, the rest 0."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import ClassVar

from ..errors import GpuError
from ..gpu.uniforms import f32, pack, u32
from .grid import linear_groups

WORKGROUP = 128


@dataclass(frozen=True)
class Softmax:
    WGSL_NAME: ClassVar[str] = "Softmax"
    rows: int = u32()
    cols: int = u32()
    scale: float = f32(1.0)
    causal: int = u32()


async def softmax(gpu, x, out, scale: float = 1.0, causal: bool = False) -> None:
    """out = softmax(scale * x) over the last axis of x (..., T) f32; `causal` needs x (..., T, T)."""
    cols = x.shape[-1]
    if tuple(out.shape) != tuple(x.shape) or x.dtype != "f32" or out.dtype != "f32":
        raise GpuError(f"softmax: out {out.label} {out.shape} {out.dtype} must be f32 of {x.label}'s shape {x.shape}")
    if causal and (len(x.shape) < 2 or x.shape[-2] != cols):
        raise GpuError(f"softmax: a causal mask needs square score blocks (..., T, T); {x.label} is {x.shape}")
    rows = prod(x.shape[:-1])
    kernel = await gpu.kernel("softmax", "main", {"WG": WORKGROUP})
    gpu.dispatch(kernel, [x, out], linear_groups(rows, 1), pack(Softmax(rows, cols, scale, int(causal))))
