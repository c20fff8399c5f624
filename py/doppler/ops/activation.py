"""Activations (`wgsl/activation.wgsl`): gelu (erf form), quick_gelu, silu, in place or out of place, and GEGLU
(f32 out, or f16 for an output only tensor-core GEMMs read: `wgsl/activation_f16_output.wgsl`). Tensors over the
binding limit run in parts along their rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import GpuError
from ..gpu.tensor import shared_row_parts
from ..gpu.uniforms import pack, u32
from .checks import require_dtype, require_shader_f16, require_shape, same_storage
from .grid import linear_groups

WORKGROUP = 256
OUT_KERNELS = {"f32": "activation", "f16": "activation_f16_output"}
ACTIVATIONS = {"none": 0, "gelu": 1, "silu": 2, "quick_gelu": 3}  # lib/activation.wgsl's codes (ACT)


@dataclass(frozen=True)
class Activation:
    WGSL_NAME: ClassVar[str] = "Activation"
    n: int = u32()
    features: int = u32()


async def _map(gpu, name: str, x, out) -> None:
    require_dtype(name, x, "f32")
    require_dtype(name, out, "f32")
    require_shape(name, out, x.shape)
    inplace = same_storage(x, out)
    kernel = await gpu.kernel("activation", "map_inplace" if inplace else "map",
                              {"WG": WORKGROUP, "ACT": ACTIVATIONS[name]})
    flat = [t.reshaped((t.numel,)) for t in ((out,) if inplace else (x, out))]
    for views, _, n in shared_row_parts(flat, gpu.max_binding):
        bindings = [None, views[0]] if inplace else views
        gpu.dispatch(kernel, bindings, linear_groups(n, WORKGROUP), pack(Activation(n)))


async def gelu(gpu, x, out) -> None:
    """out = x * Phi(x) (erf form); `out` may be `x`."""
    await _map(gpu, "gelu", x, out)


async def quick_gelu(gpu, x, out) -> None:
    """out = x * sigmoid(1.702 x); `out` may be `x`."""
    await _map(gpu, "quick_gelu", x, out)


async def silu(gpu, x, out) -> None:
    """out = x * sigmoid(x); `out` may be `x`."""
    await _map(gpu, "silu", x, out)


async def geglu(gpu, x, out) -> None:
    """x (..., 2F) -> out (..., F): out = x[..., :F] * gelu(x[..., F:]); out f32 or (shader-f16) f16."""
    require_dtype("geglu", x, "f32")
    require_dtype("geglu", out, *OUT_KERNELS)
    require_shader_f16(gpu, "geglu", out)
    if x.shape[-1] % 2:
        raise GpuError(f"geglu: {x.label} has an odd last axis {x.shape[-1]}; it must hold two halves")
    features = x.shape[-1] // 2
    require_shape("geglu", out, (*x.shape[:-1], features))
    kernel = await gpu.kernel(OUT_KERNELS[out.dtype], "geglu", {"WG": WORKGROUP})
    rows = x.numel // x.shape[-1]
    parts = shared_row_parts([x.reshaped((rows, 2 * features)), out.reshaped((rows, features))], gpu.max_binding)
    for views, _, part_rows in parts:
        n = part_rows * features
        gpu.dispatch(kernel, views, linear_groups(n, WORKGROUP), pack(Activation(n, features)))
