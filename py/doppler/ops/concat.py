"""Channel concatenation of NHWC maps (`wgsl/concat.wgsl`), in matching row parts past the binding limit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..gpu.tensor import shared_row_parts
from ..gpu.uniforms import pack, u32
from .checks import require_dtype, require_shape
from .grid import linear_groups

WORKGROUP = 256


@dataclass(frozen=True)
class Concat:
    WGSL_NAME: ClassVar[str] = "Concat"
    n: int = u32()
    channels_a: int = u32(1)
    channels_b: int = u32(1)


async def concat_channels(gpu, a, b, out) -> None:
    """a (..., Ca), b (..., Cb) -> out (..., Ca + Cb) along the last axis (torch.cat(dim=1) in NCHW terms)."""
    for t in (a, b, out):
        require_dtype("concat_channels", t, "f32")
    ca, cb = a.shape[-1], b.shape[-1]
    require_shape("concat_channels", b, (*a.shape[:-1], cb))
    require_shape("concat_channels", out, (*a.shape[:-1], ca + cb))
    kernel = await gpu.kernel("concat", "main", {"WG": WORKGROUP})
    rows = a.numel // ca
    views = [t.reshaped((rows, t.shape[-1])) for t in (a, b, out)]
    for bindings, _, part_rows in shared_row_parts(views, gpu.max_binding):
        n = part_rows * (ca + cb)
        gpu.dispatch(kernel, bindings, linear_groups(n, WORKGROUP), pack(Concat(n, ca, cb)))
