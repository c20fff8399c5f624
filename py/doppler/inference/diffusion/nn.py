"""Layers over the kernels, built by walking the checkpoint's key paths (`Linear(w, "down_blocks.0.attentions.0
.proj_in")`), so a component's attribute tree mirrors diffusers' and loading is a walk, not a table.

Each call allocates its output from the pool (labelled with the layer's path) and leaves freeing inputs to the
caller. Activations are f32; weights f32 or packed f16 as the manifest stored them.
"""

from __future__ import annotations

import math

from ...errors import GpuError
from ...gpu.tensor import DTYPE_BYTES, OFFSET_ALIGNMENT, Tensor
from ...ops import activation, attention, conv2d, groupnorm, layernorm, matmul, winograd

# 3x3 stride-1 convolutions run Winograd F(2x2, 3x3) (2.25x fewer multiplies) where Cout * Cin is at most this and
# the output has WINOGRAD_MIN_PIXELS to WINOGRAD_MAX_PIXELS pixels (batch included). The transformed weights (16/9 the
# originals) are made per call into scratch, which a recorded step owns for good, sized for the largest U: SD 1.5's
# 2560 -> 1280 convs, 100 MiB in f16 (it broke the 4 GiB budget at 512x512 until the UNet step and the VAE decode
# shared their working sets: gpu/context.py's Plan). On an H100 in Chromium (bench/RESULTS.md) Winograd ran 1.9-2x
# the implicit GEMM at the UNet's 64x64 and 32x32 levels, 1.8-2.2x at 16x16 on tensor cores (session 8) and 1.4x at the
# VAE's 256x256, but bigger maps run in chunks of scratch (winograd.py), a few dispatches each: the eager VAE decode's
# 128x128 and 256x256 levels took 180 ms of host time that way, twice what Winograd saved them on the GPU. So eager
# Winograd stops at the UNet's 64x64 latents with CFG (2 x 64 x 64); recorded plans replay the chunks for free and take
# bigger maps too where both sides have WINOGRAD_RECORDED_MIN_CHANNELS (the VAE's 128x128 and 256x256 levels and its
# 256-channel upsampler: 1.25-1.9x; its 512x512 x 128 convs ran 1.4x slower in session 8, and 1.6x faster than the
# implicit GEMM as F(4x4) on an H200 in session 14). Below 2 x 16 x 16 its GEMMs have fewer rows (pixels / 4) than one
# tensor-core tile: at 8x8 it ran 1.2-1.3x slower than the implicit GEMM.
WINOGRAD_MAX_WEIGHTS = 2560 * 1280
WINOGRAD_MIN_PIXELS = 2 * 16 * 16
WINOGRAD_MAX_PIXELS = 2 * 64 * 64
WINOGRAD_RECORDED_MIN_CHANNELS = 128
# F(4x4, 3x3) (4x fewer multiplies, V and M 2.25x the size of x and y instead of 4x, U 4x g) takes convs whose GEMMs
# get at least WINOGRAD_F4_MIN_TILES rows (4x4 output tiles) and whose U (36 Cout Cin) stays within the F(2x2) U of
# WINOGRAD_MAX_WEIGHTS, so the scratch does not grow. On an H200 on tensor cores (bench/RESULTS.md, session 14) it ran
# 1.15-1.2x F(2x2) at the UNet's 64x64 and 32x32 levels, 1.45-1.55x at the VAE's 128x128 and 512x512 (weights
# transformed per call, as here); at 16x16 (32 tiles of 4x4) its GEMMs' rows filled a quarter of a tensor-core tile
# and it ran 1.65x slower.
F2, F4 = winograd.TILES  # output tiles of 2x2 and 4x4
WINOGRAD_F4_MIN_TILES = 128
WINOGRAD_F4_MAX_WEIGHTS = WINOGRAD_MAX_WEIGHTS * winograd.positions(F2) // winograd.positions(F4)
# Winograd's V and M scratch in a recorded plan (eager calls keep winograd.SCRATCH_BYTES): fewer, larger chunks. At
# 128 MiB each the VAE decode at 512x512 takes 267 dispatches instead of 564 and a CFG UNet step 778 instead of 846
# (the 64x64 level in one chunk), for +0.06 GiB of peak: the scratch shares its size bucket with the decode's
# 128 MiB maps, and plans share their buffers (a dry run with the H100's capabilities, session 9). On an H200
# (session 15) 64 MiB peaked at 3.53 GiB instead of 3.66 but the decode took 2-3 ms more (its transforms in smaller
# chunks): SD 1.5 fits its 4 GiB budget at 128.
WINOGRAD_RECORDED_SCRATCH_BYTES = 128 << 20


def gemm_input_like(gpu, x, shape, label: str):
    """A tensor of `shape` with x's rows that only linear layers read: in matmul.gemm_input_dtype for that many rows."""
    return gpu.tensor(shape, matmul.gemm_input_dtype(gpu, x.numel // x.shape[-1]), label)


def out_like(gpu, shape, label: str):
    return gpu.tensor(shape, "f32", label)


def side_by_side(*weights: Tensor) -> Tensor | None:
    """Weights [N, K] of one shape seen as one (len, N, K) tensor where they lie one after another in one buffer
    (the converter writes a layer's to_q, to_k and to_v in that order; a shard boundary may part them), else None."""
    first = weights[0]
    for before, w in zip(weights, weights[1:]):
        if w.alloc is not first.alloc or w.shape != first.shape or w.dtype != first.dtype \
                or w.offset != before.offset + before.nbytes:
            return None
    return Tensor((len(weights), *first.shape), first.dtype, first.alloc, first.offset)


def _projection_bytes(x, stacked: Tensor) -> int:
    """Bytes of one output of `projections`: x's rows times N, f32."""
    _, n, k = stacked.shape
    return x.numel // k * n * DTYPE_BYTES["f32"]


async def projections(gpu, x, stacked: Tensor, label: str) -> tuple[Tensor, list[Tensor]]:
    """x (..., K) times each of the side-by-side weights `stacked` (P, N, K), in one GEMM: (the tensor holding the P
    outputs, to free; the outputs (..., N), views of it). Outputs must start on binding offsets: the caller checks
    `projections_fit`."""
    p, n, k = stacked.shape
    rows = x.numel // k
    out = out_like(gpu, (p, rows, n), label)
    await matmul.batched_linear(gpu, x.reshaped((rows, k)), stacked, out)
    step = _projection_bytes(x, stacked)
    return out, [Tensor((*x.shape[:-1], n), "f32", out.alloc, out.offset + i * step) for i in range(p)]


def projections_fit(x, stacked: Tensor | None) -> bool:
    """Whether `projections` can run over x with these weights: they lie side by side, and each output starts on a
    binding offset (OFFSET_ALIGNMENT, the largest a GPU may ask)."""
    return stacked is not None and _projection_bytes(x, stacked) % OFFSET_ALIGNMENT == 0


class Linear:
    def __init__(self, weights, path: str, bias: bool = True):
        self.path = path
        self.weight = weights[f"{path}.weight"]
        self.bias = weights[f"{path}.bias"] if bias else None
        self.out_features = self.weight.shape[0]

    async def __call__(self, gpu, x, activation_fn: str = "none", residual=None):
        out = out_like(gpu, x.shape[:-1] + (self.out_features,), self.path)
        await matmul.linear(gpu, x, self.weight, out, bias=self.bias, residual=residual, activation=activation_fn)
        return out


class Conv2d:
    """NHWC conv; `upsample_to` fuses a nearest upsample of the input to that (H, W) (diffusers' Upsample2D). 1x1
    stride-1 kernels to more than conv2d.NARROW_MAX_COUT channels run as linear layers over the pixels; 3x3 stride-1
    kernels with at most WINOGRAD_MAX_WEIGHTS weights run Winograd (F(2x2) or F(4x4): _winograd_tile) on outputs of
    WINOGRAD_MIN_PIXELS to WINOGRAD_MAX_PIXELS pixels, or more in a recorded plan (see WINOGRAD_RECORDED_MIN_CHANNELS),
    the others the implicit GEMM (conv2d)."""

    def __init__(self, weights, path: str, stride: int = 1):
        self.path = path
        self.weights = weights
        self.key = f"{path}.weight"
        self.out_channels, cin, kh, kw = weights[self.key].shape
        self.bias = weights.get(f"{path}.bias")
        self.stride = stride
        self.kernel = (kh, kw)
        self.padding = kh // 2
        self.takes_winograd = (kh, kw) == (winograd.KERNEL, winograd.KERNEL) and stride == 1 \
            and self.out_channels * cin <= WINOGRAD_MAX_WEIGHTS
        self.weight = weights.conv_weight(self.key)  # [Cout, KH, KW, Cin] once weights.apply_layouts ran
        if self.takes_winograd:
            tile = F4 if self.out_channels * cin <= WINOGRAD_F4_MAX_WEIGHTS else F2  # the most it may take
            weights.winograd_u = max(weights.winograd_u, math.prod(winograd.weight_shape(self.out_channels, cin, tile)))

    async def __call__(self, gpu, x, residual=None, upsample_to=None, bias=None):
        """`bias`: (Cout,) f32 in place of the layer's own (one made at run time that includes it)."""
        bias = self.bias if bias is None else bias
        if self.weights.pending:
            raise GpuError(f"{self.path}: weights of {self.weights.name} are not laid out for their convolutions "
                           f"yet; await weights.apply_layouts(gpu) after building the model")
        b, h, w, _ = x.shape
        if upsample_to is not None:
            h, w = upsample_to
        oh, ow = ((s + 2 * self.padding - k) // self.stride + 1 for s, k in zip((h, w), self.kernel))
        out = out_like(gpu, (b, oh, ow, self.out_channels), self.path)
        if self.kernel == (1, 1) and self.stride == 1 and upsample_to is None \
                and self.out_channels > conv2d.NARROW_MAX_COUT:  # (narrower ones: conv2d's direct kernel)
            # a linear layer over the pixels (weights [Cout, 1, 1, Cin] are [Cout, Cin]): the linears' tiles, which
            # run whole where the implicit GEMM's split K (proj_in, proj_out, conv_shortcut)
            pixels, cin = b * oh * ow, x.shape[3]
            await matmul.linear(gpu, x.reshaped((pixels, cin)), self.weight.reshaped((self.out_channels, cin)),
                                out.reshaped((pixels, self.out_channels)), bias=bias,
                                residual=None if residual is None else residual.reshaped((pixels, self.out_channels)))
        elif self._winograd(gpu, b * oh * ow, x.shape[3]):
            # U made per call (resident, the U of SD 1.5's Winograd convs would add 1.7 GiB to the budget; the
            # transform costs a few percent of the conv), in scratch of one size (the component's largest U), so a
            # recorded step reuses and owns a single one.
            scratch = gpu.tensor((self.weights.winograd_u,), self.weight.dtype, "winograd.u")
            u = Tensor(winograd.weight_shape(self.out_channels, self.weight.shape[3], self._winograd_tile(b, oh, ow)),
                       self.weight.dtype, scratch.alloc, scratch.offset)
            await winograd.winograd_weight(gpu, self.weight, u)
            scratch_bytes = WINOGRAD_RECORDED_SCRATCH_BYTES if gpu.recording else winograd.SCRATCH_BYTES
            await winograd.conv3x3_winograd(gpu, x, u, out, bias=bias, residual=residual,
                                            upsample_to=upsample_to, scratch_bytes=scratch_bytes)
            gpu.free(scratch)
        else:
            await conv2d.conv2d(gpu, x, self.weight, out, bias=bias, residual=residual, stride=self.stride,
                                padding=self.padding, upsample_to=upsample_to)
        return out

    def _winograd_tile(self, b: int, oh: int, ow: int) -> int:
        """F(4x4) where its GEMMs get WINOGRAD_F4_MIN_TILES rows and its U fits the scratch, else F(2x2)."""
        rows = b * -(-oh // F4) * -(-ow // F4)
        fits = self.out_channels * self.weight.shape[3] <= WINOGRAD_F4_MAX_WEIGHTS
        return F4 if fits and rows >= WINOGRAD_F4_MIN_TILES else F2

    def _winograd(self, gpu, pixels: int, cin: int) -> bool:
        if not self.takes_winograd or pixels < WINOGRAD_MIN_PIXELS:
            return False
        return pixels <= WINOGRAD_MAX_PIXELS or (
            gpu.recording and min(cin, self.out_channels) >= WINOGRAD_RECORDED_MIN_CHANNELS)


class GroupNorm:
    """`feeds_gemms`: only GEMMs read the output (a transformer's proj_in), so it is written in
    matmul.gemm_input_dtype."""

    def __init__(self, weights, path: str, groups: int, eps: float, feeds_gemms: bool = False):
        self.path = path
        self.gamma = weights[f"{path}.weight"]
        self.beta = weights[f"{path}.bias"]
        self.groups = groups
        self.eps = eps
        self.feeds_gemms = feeds_gemms

    async def __call__(self, gpu, x, silu: bool = False, stats=None):
        """GroupNorm(x) with x's own statistics, or with `stats` (B, G, 2) given (a whole map's, for one tile)."""
        out = gemm_input_like(gpu, x, x.shape, self.path) if self.feeds_gemms else out_like(gpu, x.shape, self.path)
        if stats is not None:
            await groupnorm.apply(gpu, x, stats, self.gamma, self.beta, out, self.groups, silu=silu)
            return out
        own = gpu.tensor((x.shape[0], self.groups, 2), "f32", f"{self.path}.stats")
        await groupnorm.group_norm(gpu, x, self.gamma, self.beta, out, own, self.groups, self.eps, silu=silu)
        gpu.free(own)
        return out

    async def accumulate(self, gpu, x, moments, window: groupnorm.Window, merge: bool) -> None:
        """moments (B, G, 3) of x's `window`, merged into those already there when `merge`."""
        partials = gpu.tensor(groupnorm.partials_shape(x.shape, self.groups, window), "f32", f"{self.path}.partials")
        await groupnorm.accumulate_moments(gpu, x, moments, partials, self.groups, window, accumulate=merge)
        gpu.free(partials)


async def own_statistics(gpu, layer: GroupNorm, x, silu: bool):
    """The default `norm` of blocks that take one: each GroupNorm normalizes with its input's own statistics."""
    return await layer(gpu, x, silu=silu)


class LayerNorm:
    """`feeds_gemms`: only GEMMs read the output (a transformer block's norms), so it is written in
    matmul.gemm_input_dtype."""

    def __init__(self, weights, path: str, eps: float, feeds_gemms: bool = False):
        self.path = path
        self.gamma = weights[f"{path}.weight"]
        self.beta = weights[f"{path}.bias"]
        self.eps = eps
        self.feeds_gemms = feeds_gemms

    async def __call__(self, gpu, x):
        out = gemm_input_like(gpu, x, x.shape, self.path) if self.feeds_gemms else out_like(gpu, x.shape, self.path)
        await layernorm.layer_norm(gpu, x, self.gamma, self.beta, out, self.eps)
        return out


async def scaled_dot_product_attention(gpu, q, k, v, heads: int, label: str, causal: bool = False,
                                       feeds_gemms: bool = False):
    """`feeds_gemms`: only linear layers read the output, so it is written in matmul.gemm_input_dtype where the
    attention kernel can (attention.writes_f16)."""
    if feeds_gemms and attention.writes_f16(gpu, q.shape[-1] // heads):
        out = gemm_input_like(gpu, q, q.shape, label)
    else:
        out = out_like(gpu, q.shape, label)
    await attention.attention(gpu, q, k, v, out, heads=heads, causal=causal)
    return out


async def geglu(gpu, x, label: str):
    """The feed-forward's GEGLU, whose output only its second linear layer reads (matmul.gemm_input_dtype)."""
    out = gemm_input_like(gpu, x, x.shape[:-1] + (x.shape[-1] // 2,), label)
    await activation.geglu(gpu, x, out)
    return out
