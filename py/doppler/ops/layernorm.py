"""LayerNorm over the last axis (`wgsl/layernorm.wgsl`): y = (x - mean) / sqrt(var + eps) * gamma + beta per row."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import ClassVar

from ..errors import GpuError
from ..gpu.uniforms import f32, pack, u32
from .grid import linear_groups

WORKGROUP = 64  # threads per row: SD's rows are 320 to 1280 wide


@dataclass(frozen=True)
class LayerNorm:
    WGSL_NAME: ClassVar[str] = "LayerNorm"
    rows: int = u32()
    cols: int = u32()
    eps: float = f32()


async def layer_norm(gpu, x, gamma, beta, out, eps: float) -> None:
    """out = LayerNorm(x) over the last axis of x (..., C) f32, with gamma, beta (C) stored f32 or f16."""
    cols = x.shape[-1]
    rows = prod(x.shape[:-1])
    if tuple(out.shape) != tuple(x.shape) or x.dtype != "f32" or out.dtype != "f32":
        raise GpuError(f"layer norm: out {out.label} {out.shape} {out.dtype} must be f32 of {x.label}'s shape "
                       f"{x.shape}")
    for t in (gamma, beta):
        if tuple(t.shape) != (cols,) or t.dtype not in ("f32", "f16") or t.dtype != gamma.dtype:
            raise GpuError(f"layer norm: {t.label} {t.shape} {t.dtype} must be ({cols},), gamma and beta both f32 "
                           "or both f16")
    kernel = await gpu.kernel("layernorm", "main", {"WG": WORKGROUP, "F16_WEIGHTS": int(gamma.dtype == "f16")})
    gpu.dispatch(kernel, [x, gamma, beta, out], linear_groups(rows, 1), pack(LayerNorm(rows, cols, eps)))
