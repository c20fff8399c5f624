"""Batched transpose of the last two axes (`wgsl/transpose.wgsl`): y (B, C, R) = x (B, R, C) swapped, f32."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import GpuError
from ..gpu.uniforms import pack, u32
from .grid import require_output_apart, require_whole_bindings

TILE = 32  # elements each way per workgroup: 32 consecutive words per row read and per row written
TILE_ROWS = 8  # invocation rows: 256 invocations, each moving TILE / TILE_ROWS elements


@dataclass(frozen=True)
class Transpose:
    WGSL_NAME: ClassVar[str] = "Transpose"
    rows: int = u32()
    cols: int = u32()


async def transpose(gpu, x, out) -> None:
    """out[b, c, r] = x[b, r, c] over x (B, R, C) and out (B, C, R), both f32."""
    label = f"transpose {x.label}"
    swapped = (x.shape[0], x.shape[2], x.shape[1]) if len(x.shape) == 3 else None
    if swapped is None or x.dtype != "f32" or out.dtype != "f32" or tuple(out.shape) != swapped:
        raise GpuError(f"{label}: x {x.shape} {x.dtype} and out {out.shape} {out.dtype} must be f32 (B, R, C) and "
                       f"(B, C, R)")
    require_output_apart(label, out, x=x)
    require_whole_bindings(gpu, label, x=x, out=out)
    b, r, c = x.shape
    kernel = await gpu.kernel("transpose", "main", {"TILE": TILE, "TILE_ROWS": TILE_ROWS})
    gpu.dispatch(kernel, [x, out], (-(-c // TILE), -(-r // TILE), b), pack(Transpose(r, c)))
