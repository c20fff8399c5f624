"""LayerNorm over the last axis (`wgsl/layernorm.wgsl`): y = (x - mean) / sqrt(var + eps) * gamma + beta per row.
x is f32; y f32, or f16 (`wgsl/layernorm_f16_output.wgsl`, shader-f16) for inputs only tensor-core GEMMs read."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import ClassVar

from ..errors import GpuError
from ..gpu.uniforms import f32, pack, u32
from .checks import require_shader_f16
from .grid import linear_groups

WORKGROUP = 64  # threads per row: SD's rows are 320 to 1280 wide
MAX_ELEMS = 32  # the kernel's MAX_ELEMS: rows up to WORKGROUP * MAX_ELEMS wide are held in registers
OUT_KERNELS = {"f32": "layernorm", "f16": "layernorm_f16_output"}


@dataclass(frozen=True)
class LayerNorm:
    WGSL_NAME: ClassVar[str] = "LayerNorm"
    rows: int = u32()
    cols: int = u32()
    eps: float = f32()


async def layer_norm(gpu, x, gamma, beta, out, eps: float) -> None:
    """out = LayerNorm(x) over the last axis of x (..., C) f32, with gamma, beta (C) stored f32 or f16; out f32 or
    (shader-f16) f16."""
    cols = x.shape[-1]
    rows = prod(x.shape[:-1])
    if tuple(out.shape) != tuple(x.shape) or x.dtype != "f32" or out.dtype not in OUT_KERNELS:
        raise GpuError(f"layer norm: out {out.label} {out.shape} {out.dtype} must be f32 or f16 of {x.label}'s "
                       f"shape {x.shape}, and x f32")
    require_shader_f16(gpu, "layer norm", out)
    for t in (gamma, beta):
        if tuple(t.shape) != (cols,) or t.dtype not in ("f32", "f16") or t.dtype != gamma.dtype:
            raise GpuError(f"layer norm: {t.label} {t.shape} {t.dtype} must be ({cols},), gamma and beta both f32 "
                           "or both f16")
    overrides = {"WG": WORKGROUP, "F16_WEIGHTS": int(gamma.dtype == "f16")}
    elems = -(-cols // WORKGROUP)
    if elems <= MAX_ELEMS:
        kernel = await gpu.kernel(OUT_KERNELS[out.dtype], "in_registers", {**overrides, "ELEMS": elems})
    else:
        kernel = await gpu.kernel(OUT_KERNELS[out.dtype], "main", overrides)
    gpu.dispatch(kernel, [x, gamma, beta, out], linear_groups(rows, 1), pack(LayerNorm(rows, cols, eps)))
