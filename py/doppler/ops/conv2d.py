"""2-D convolutions over NHWC feature maps (`wgsl/conv2d.wgsl`, `wgsl/conv2d_f16.wgsl`, `wgsl/conv2d_depthwise.wgsl`).

conv2d: y = conv(up(x), W, stride S, padding P) + b + r, as an implicit GEMM (M = B*OH*OW pixels, N = Cout,
K = KH*KW*Cin) with x (B, H, W, Cin), W [Cout, KH, KW, Cin] (channels last, as x: `channels_last_weight` makes it
from PyTorch's [Cout, Cin, KH, KW] once, when a component loads), y and r (B, OH, OW, Cout),
OH = (SH + 2P - KH) // S + 1. up(x) is an optional nearest upsample of x to (SH, SW), fused into the reads: source
index floor(dst * H / SH) in integers. That is torch's interpolate(mode="nearest") for 2x and for the odd-latent
case SH = 2H - 1 (diffusers' output_size); torch scales by a float32 H / SH, which for other ratios can land one
lower where dst * H / SH is a whole number. Dtype paths as in `matmul`: f32 activations with W f32 or f16 (packed),
or everything f16 (f16 math, shader-f16); with tensor-core tiles x may be f16 under f32 math
(`wgsl/conv2d_subgroup_matrix_f16_input.wgsl`).
Convolutions to at most NARROW_MAX_COUT channels (a VAE's conv_out to RGB) of f32 activations run directly instead
(`wgsl/conv2d_narrow.wgsl`): as a GEMM, N = Cout would fill a few columns of each tile.
depthwise_conv2d: y[..., c] = conv(x[..., c], W[c, 0]) + b + r with W [C, 1, KH, KW] (PyTorch's layout); f32 math.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from ..errors import GpuError
from ..gpu.uniforms import pack, u32
from .grid import linear_groups, require_output_apart, require_whole_bindings
from .matmul import QUAD, GemmTiles, check_dtypes, default_tiles, epilogue, run_gemm

DEPTHWISE_WORKGROUP = 256
NARROW_WORKGROUP = 256
NARROW_MAX_COUT = 4  # the kernel sums a pixel's outputs as one vec4
NARROW_MAX_WEIGHTS = 4 * 1024  # its MAX_QUADS: all of W staged in 16 KiB of workgroup memory
LAYOUT_WORKGROUP = 256


@dataclass(frozen=True)
class Conv2d:
    WGSL_NAME: ClassVar[str] = "Conv2d"
    batch: int = u32()
    in_h: int = u32()
    in_w: int = u32()
    cin: int = u32()
    src_h: int = u32()  # the input as the convolution sees it: upsampled size, or (in_h, in_w)
    src_w: int = u32()
    out_h: int = u32()
    out_w: int = u32()
    cout: int = u32()
    kh: int = u32()
    kw: int = u32()
    stride: int = u32(1)
    pad: int = u32()
    k_split: int = u32()  # K elements per split (SPLIT_K)


@dataclass(frozen=True)
class DepthwiseConv2d:
    WGSL_NAME: ClassVar[str] = "DepthwiseConv2d"
    batch: int = u32()
    in_h: int = u32()
    in_w: int = u32()
    channels: int = u32()
    out_h: int = u32()
    out_w: int = u32()
    kh: int = u32()
    kw: int = u32()
    stride: int = u32(1)
    pad: int = u32()


@dataclass(frozen=True)
class WeightLayout:
    WGSL_NAME: ClassVar[str] = "WeightLayout"
    elements: int = u32()
    cin: int = u32()
    taps: int = u32()


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """PyTorch's output size of a convolution along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def _check_geometry(label, x, weight, out, bias, residual, stride, padding, src_hw, depthwise) -> tuple[int, ...]:
    """(B, H, W, C, KH, KW, OH, OW) after checking shapes; weights are [Cout, KH, KW, Cin], depthwise [C, 1, KH, KW]."""
    layout = "[C, 1, KH, KW]" if depthwise else "[Cout, KH, KW, Cin]"
    if len(x.shape) != 4 or len(weight.shape) != 4 or len(out.shape) != 4:
        raise GpuError(f"{label}: x {x.shape}, weight {weight.shape}, out {out.shape} must be 4-D: NHWC, "
                       f"{layout}, NHWC")
    if stride < 1 or padding < 0:
        raise GpuError(f"{label}: stride {stride} must be >= 1 and padding {padding} >= 0")
    b, h, w, c = x.shape
    if depthwise:
        cout, cin, kh, kw = weight.shape
    else:
        cout, kh, kw, cin = weight.shape
    if cin != (1 if depthwise else c) or (depthwise and cout != c):
        expected = f"[{c}, 1, KH, KW]" if depthwise else f"[Cout, KH, KW, {c}]"
        raise GpuError(f"{label}: weight {weight.shape} must be {expected} for x {x.shape}")
    oh, ow = (output_size(s, k, stride, padding) for s, k in zip(src_hw, (kh, kw)))
    if oh < 1 or ow < 1 or out.shape != (b, oh, ow, cout):
        raise GpuError(f"{label}: out {out.shape} must be {(b, oh, ow, cout)} for x {x.shape} seen at {src_hw}, "
                       f"weight {weight.shape}, stride {stride}, padding {padding}")
    check_epilogue(label, x, weight, out, bias, residual)
    return b, h, w, c, kh, kw, oh, ow


def check_epilogue(label, x, weight, out, bias, residual) -> None:
    """bias (Cout) and residual (out's shape) of a convolution whose out (..., Cout) is checked, and out apart from
    the inputs (residual may be out itself: accumulate in place)."""
    if bias is not None and bias.shape != out.shape[-1:]:
        raise GpuError(f"{label}: bias {bias.shape} must be {out.shape[-1:]}")
    if residual is not None and residual.shape != out.shape:
        raise GpuError(f"{label}: residual {residual.shape} must have out's shape {out.shape}")
    require_output_apart(label, out, x=x, weight=weight, bias=bias, residual=residual if residual is not out else None)


def source_size(label: str, x, upsample_to) -> tuple[int, int]:
    """The size a convolution sees NHWC x at: upsample_to (a fused nearest upsample), or x's own."""
    src_hw = tuple(upsample_to) if upsample_to is not None else tuple(x.shape[1:3])
    if len(src_hw) != 2 or min(src_hw) < 1:
        raise GpuError(f"{label}: upsample_to {upsample_to} must be (height, width), both >= 1")
    return src_hw


async def conv2d(gpu, x, weight, out, bias=None, residual=None, stride: int = 1, padding: int = 0,
                 upsample_to: tuple[int, int] | None = None, tiles: GemmTiles | None = None) -> None:
    """out = conv2d(up(x), weight, stride, padding) + bias + residual over NHWC x (B, H, W, Cin), weight
    [Cout, KH, KW, Cin] (`channels_last_weight`), bias (Cout), out (B, OH, OW, Cout). upsample_to=(SH, SW) fuses a
    nearest upsample of x to that size (Upsample2D: (2H, 2W), or the skip's size for odd latents); residual: a
    tensor shaped as out, or `out` itself to accumulate in place."""
    label = f"conv2d {weight.label}"
    src_hw = source_size(label, x, upsample_to)
    b, h, w, cin, kh, kw, oh, ow = _check_geometry(label, x, weight, out, bias, residual, stride, padding, src_hw,
                                                   depthwise=False)
    cout, pixels = weight.shape[0], b * oh * ow
    uniform = Conv2d(b, h, w, cin, *src_hw, oh, ow, cout, kh, kw, stride, padding)
    if tiles is None and _narrow(x, weight, out):
        check_dtypes(label, {"x": x, "out": out, "residual": residual}, {"weight": weight, "bias": bias})
        require_whole_bindings(gpu, label, x=x, weight=weight, bias=bias, residual=residual, out=out)
        overrides, bias_residual = epilogue(x, bias, residual, out)
        kernel = await gpu.kernel("conv2d_narrow", "main", {
            **overrides, "WG": NARROW_WORKGROUP, "COUT": cout, "F16_WEIGHTS": weight.dtype == "f16"})
        gpu.dispatch(kernel, [x, weight, *bias_residual, out], linear_groups(pixels, NARROW_WORKGROUP), pack(uniform))
        return
    tiles = tiles or default_tiles(gpu, cout, out.dtype, conv=True)
    check_dtypes(label, {"x": x, "out": out, "residual": residual}, {"weight": weight, "bias": bias},
                 tiles.tensor_cores)
    require_whole_bindings(gpu, label, x=x, weight=weight, bias=bias, residual=residual, out=out)
    await run_gemm(gpu, "conv2d", label, x, weight, out, bias, residual, {"ACTIVATION": 0, "VEC_K": cin % QUAD == 0},
                   tiles, (-(-cout // tiles.tile_n), -(-pixels // tiles.tile_m)), pixels, kh * kw * cin,
                   lambda split: pack(dataclasses.replace(uniform, k_split=split)))


def _narrow(x, weight, out) -> bool:
    """Whether conv2d_narrow.wgsl takes this convolution: few outputs, f32 activations, Cin in quads, W staged whole."""
    cout, cin = weight.shape[0], weight.shape[3]
    return (cout <= NARROW_MAX_COUT and cin % QUAD == 0 and weight.numel <= NARROW_MAX_WEIGHTS
            and x.dtype == out.dtype == "f32" and weight.dtype in ("f32", "f16"))


async def channels_last_weight(gpu, src, dst) -> None:
    """dst [Cout, KH, KW, Cin] = src [Cout, Cin, KH, KW] transposed, bit for bit (f32, or f16 packed); dst is another
    buffer's tensor. Weights go through this once, as a component loads (see loader.ComponentWeights)."""
    label = f"channels_last_weight {src.label}"
    if len(src.shape) != 4:
        raise GpuError(f"{label}: weight {src.shape} must be 4-D [Cout, Cin, KH, KW]")
    cout, cin, kh, kw = src.shape
    check_weight_dst(gpu, label, src, dst, (cout, kh, kw, cin))
    kernel = await gpu.kernel("conv2d_weight_layout", "main",
                              {"WG": LAYOUT_WORKGROUP, "F16_WEIGHTS": src.dtype == "f16"})
    words = dst.nbytes // 4
    gpu.dispatch(kernel, [src, dst], linear_groups(words, LAYOUT_WORKGROUP),
                 pack(WeightLayout(src.numel, cin, kh * kw)))


def check_weight_dst(gpu, label: str, src, dst, shape: tuple[int, ...]) -> None:
    """dst of a kernel that remakes weight src (as a component loads): `shape`, src's dtype (f32 or f16), its own
    buffer, both bindable whole."""
    if dst.shape != shape or dst.dtype != src.dtype or src.dtype not in ("f32", "f16"):
        raise GpuError(f"{label}: dst {dst.shape} {dst.dtype} must be {shape} {src.dtype} (f32 or f16) for weight "
                       f"{src.shape} {src.dtype}")
    require_output_apart(label, dst, src=src)
    require_whole_bindings(gpu, label, src=src, dst=dst)


async def depthwise_conv2d(gpu, x, weight, out, bias=None, residual=None, stride: int = 1, padding: int = 0) -> None:
    """out[..., c] = conv2d(x[..., c], weight[c, 0], stride, padding) + bias + residual over NHWC x (B, H, W, C),
    weight [C, 1, KH, KW] f32 or f16, out (B, OH, OW, C) f32; residual may be `out` itself (accumulate in place)."""
    label = f"depthwise_conv2d {weight.label}"
    b, h, w, c, kh, kw, oh, ow = _check_geometry(label, x, weight, out, bias, residual, stride, padding,
                                                 tuple(x.shape[1:3]), depthwise=True)
    if check_dtypes(label, {"x": x, "out": out, "residual": residual}, {"weight": weight, "bias": bias}) != "f32":
        raise GpuError(f"{label}: depthwise convolution runs f32 math: x, out and residual must be f32")
    require_whole_bindings(gpu, label, x=x, weight=weight, bias=bias, residual=residual, out=out)
    overrides, bias_residual = epilogue(x, bias, residual, out)
    overrides.update(WG=DEPTHWISE_WORKGROUP, F16_WEIGHTS=weight.dtype == "f16")
    kernel = await gpu.kernel("conv2d_depthwise", "main", overrides)
    uniform = DepthwiseConv2d(b, h, w, c, oh, ow, kh, kw, stride, padding)
    gpu.dispatch(kernel, [x, weight, *bias_residual, out], linear_groups(b * oh * ow * c, DEPTHWISE_WORKGROUP),
                 pack(uniform))
