"""Nearest upsampling of NHWC maps (`wgsl/upsample.wgsl`), torch's `nearest` index rule. Outputs over the binding
limit (the VAE decoder's last upsample is 256 MiB at 512x512) run in parts of whole output pixels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from ..errors import GpuError
from ..gpu.uniforms import f32, pack, to_f32, u32
from .checks import require_dtype
from .grid import linear_groups

WORKGROUP = 256


@dataclass(frozen=True)
class Upsample:
    WGSL_NAME: ClassVar[str] = "Upsample"
    n: int = u32()
    out_start: int = u32()
    in_start: int = u32()
    in_h: int = u32(1)
    in_w: int = u32(1)
    out_h: int = u32(1)
    out_w: int = u32(1)
    channels: int = u32(1)
    scale_h: float = f32(1.0)
    scale_w: float = f32(1.0)


def nearest_source(d: int, n: int, m: int) -> int:
    """torch's nearest source index of output index d (n inputs, m outputs), as the kernel computes it."""
    if m == n:
        return d
    if m == 2 * n:
        return d >> 1
    return min(math.floor(to_f32(d * to_f32(n / m))), n - 1)


async def upsample_nearest(gpu, x, out) -> None:
    """x (B, H, W, C) -> out (B, Ho, Wo, C), Ho >= H, Wo >= W: out[b, y, x] = x[b, src(y), src(x)]."""
    require_dtype("upsample_nearest", x, "f32")
    require_dtype("upsample_nearest", out, "f32")
    batch, in_h, in_w, channels = x.shape
    out_h, out_w = out.shape[1:3]
    if out.shape[0] != batch or out.shape[3] != channels or out_h < in_h or out_w < in_w:
        raise GpuError(f"upsample_nearest: {out.label} {out.shape} must be ({batch}, >= {in_h}, >= {in_w}, {channels})"
                       f" for {x.label} {x.shape}")
    kernel = await gpu.kernel("upsample", "main", {"WG": WORKGROUP})
    in_rows = x.reshaped((batch * in_h, in_w * channels))

    def source_row(pixel: int) -> int:
        row = pixel // out_w
        return row // out_h * in_h + nearest_source(row % out_h, in_h, out_h)

    for view, pixel0, pixels in out.reshaped((batch * out_h * out_w, channels)).row_parts(gpu.max_binding):
        first, last = source_row(pixel0), source_row(pixel0 + pixels - 1)
        in_view, skipped = in_rows.rows_window(first, last - first + 1)
        if in_view[2] > gpu.max_binding:
            raise GpuError(f"upsample_nearest: the input rows of one output part of {out.label} exceed the "
                           f"binding limit {gpu.max_binding}")
        uniform = Upsample(pixels * channels, pixel0 * channels, first * in_w * channels - skipped, in_h, in_w,
                           out_h, out_w, channels, to_f32(in_h / out_h), to_f32(in_w / out_w))
        gpu.dispatch(kernel, [in_view, view], linear_groups(uniform.n, WORKGROUP), pack(uniform))
