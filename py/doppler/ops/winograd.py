"""Winograd F(m x m, 3x3) convolutions (Lavin & Gray 2015), m = 2 or 4, for 3x3 kernels, stride 1, padding 1, f32
math (`wgsl/winograd_input.wgsl` or, where tensor cores run the GEMMs, `wgsl/winograd_input_f16.wgsl`,
`wgsl/winograd_output.wgsl`, `wgsl/winograd_weights.wgsl`, the GEMMs of `matmul`; matrices in
`wgsl/lib/winograd_matrices.wgsl`).

y = conv(up(x), g, padding 1) + b + r over NHWC x (B, H, W, Cin), y and r (B, OH, OW, Cout), (OH, OW) = up's size,
cut into m x m output tiles (T = B * ceil(OH / m) * ceil(OW / m)): per tile and input channel V = B^T d B with d the
tile's (m + 2)^2 input patch; per position p of the transformed tile one GEMM M[p] (T x Cout) = V[p] (T x Cin)
U[p]^T, U[p] [Cout, Cin] from U = G g G^T (`winograd_weight`, in the weights' storage dtype); y = A^T M A + b + r
per tile. Per m x m outputs and input channel (m + 2)^2 multiplies instead of the direct convolution's 9 m^2: 2.25x
fewer for F(2x2), 4x for F(4x4), whose f16 rounding error is 4x F(2x2)'s. up(x) is conv2d's fused nearest
upsample (same indexing). The transformed weights are 16/9 (F(2x2)) or 4x (F(4x4)) the size of the originals; the
tile m is U's: weight_shape(Cout, Cin, m).
V and M live in scratch of at most SCRATCH_BYTES each: big maps (the VAE's) run in chunks of tiles, three
dispatches each (input transform, the GEMMs as one batched GEMM, output transform).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import GpuError
from ..gpu.tensor import Tensor
from ..gpu.uniforms import pack, u32
from .conv2d import check_epilogue, check_weight_dst, source_size
from .grid import linear_groups, require_whole_bindings
from .matmul import QUAD, GemmTiles, batched_linear, check_dtypes, default_tiles, epilogue

TILES = (2, 4)  # output pixels per tile each way: F(2x2, 3x3), F(4x4, 3x3)
KERNEL = 3  # the kernel size it computes
TRANSFORM_WORKGROUP = 256
PAIR = 2  # input channels an input-transform invocation takes (the output transform: a QUAD)
WEIGHTS_WORKGROUP = 256
F32_BYTES = 4
# V (positions, tiles, Cin) and M (positions, tiles, Cout) are 4x (F(2x2)) or 2.25x the size of x and y: cap each, and
# the tiles per chunk with it, so big maps need no scratch 4x their size. Scratch stays inside a recorded step for good
# (the plan owns it), and the 4 GiB budget has little room beside SD 1.5's weights and working set. 32 MiB runs the
# UNet's 1920-channel convs at 32x32 (batch 2: 512 tiles) in two chunks of 256 tiles; at 16 MiB they took four of 128,
# each GEMM split along K into partial sums (8.5 of a UNet step's 85 ms on an H100).
SCRATCH_BYTES = 32 << 20
V_KERNELS = {"f32": "winograd_input", "f16": "winograd_input_f16"}  # V's dtype -> its input transform


@dataclass(frozen=True)
class Winograd:
    WGSL_NAME: ClassVar[str] = "Winograd"
    in_h: int = u32()
    in_w: int = u32()
    cin: int = u32()
    out_h: int = u32()  # also the size x is seen at (upsample_to)
    out_w: int = u32()
    cout: int = u32()
    tiles_h: int = u32()  # 2x2 tiles per image each way
    tiles_w: int = u32()
    tile0: int = u32()  # the chunk's first tile
    tiles: int = u32()  # the chunk's tiles: rows of V and M


@dataclass(frozen=True)
class WinogradWeights:
    WGSL_NAME: ClassVar[str] = "WinogradWeights"
    elements: int = u32()
    kernels: int = u32()  # Cout * Cin
    cin: int = u32()


def positions(tile: int) -> int:
    """The positions of F(tile x tile, 3x3)'s transformed tile: as many GEMMs."""
    return (tile + KERNEL - 1) ** 2


def weight_shape(cout: int, cin: int, tile: int = TILES[0]) -> tuple[int, int, int]:
    """The shape of the transformed weights U for F(tile x tile, 3x3) of a weight of Cout x Cin 3x3 kernels."""
    return (positions(tile), cout, cin)


def tile_of(label: str, u) -> int:
    """The tile m of transformed weights U (positions, Cout, Cin)."""
    for tile in TILES:
        if u.shape[0] == positions(tile):
            return tile
    raise GpuError(f"{label}: weight {u.shape} must have {' or '.join(str(positions(t)) for t in TILES)} positions "
                   f"(F(2x2) or F(4x4)): the output of winograd_weight")


async def winograd_weight(gpu, src, dst) -> None:
    """dst (positions, Cout, Cin) = G g G^T per 3x3 kernel g of src [Cout, 3, 3, Cin] (channels last, as conv2d reads
    it), f32 or f16 (packed; computed in f32, rounded to f16 once), for the tile m that dst's positions give
    (weight_shape); dst is another buffer's tensor in src's dtype."""
    label = f"winograd_weight {src.label}"
    if len(src.shape) != 4 or src.shape[1:3] != (KERNEL, KERNEL):
        raise GpuError(f"{label}: weight {src.shape} must be [Cout, {KERNEL}, {KERNEL}, Cin]")
    cout, cin = src.shape[0], src.shape[3]
    tile = tile_of(label, dst)
    check_weight_dst(gpu, label, src, dst, weight_shape(cout, cin, tile))
    kernels, f16 = cout * cin, src.dtype == "f16"
    if f16 and kernels % 2:  # U's words straddle positions: one word an invocation
        entry, invocations = "main", dst.nbytes // F32_BYTES
    else:  # a kernel (an f16 pair) an invocation, its taps read once
        entry, invocations = "per_kernel", kernels // 2 if f16 else kernels
    kernel = await gpu.kernel("winograd_weights", entry, {"WG": WEIGHTS_WORKGROUP, "F16_WEIGHTS": f16, "TILE": tile})
    gpu.dispatch(kernel, [src, dst], linear_groups(invocations, WEIGHTS_WORKGROUP),
                 pack(WinogradWeights(dst.numel, kernels, cin)))


def _check_geometry(label, x, u, out, bias, residual, src_hw) -> int:
    """The tile m, after checking the shapes."""
    if len(x.shape) != 4 or len(u.shape) != 3 or len(out.shape) != 4:
        raise GpuError(f"{label}: x {x.shape}, weight {u.shape}, out {out.shape} must be NHWC, (positions, Cout, Cin) "
                       f"from winograd_weight, NHWC")
    tile = tile_of(label, u)
    b, _, _, cin = x.shape
    cout = u.shape[1]
    if u.shape != weight_shape(cout, cin, tile):
        raise GpuError(f"{label}: weight {u.shape} must be {weight_shape(cout, cin, tile)[:1] + ('Cout', cin)} for x "
                       f"{x.shape}: the output of winograd_weight")
    if out.shape != (b, *src_hw, cout):
        raise GpuError(f"{label}: out {out.shape} must be {(b, *src_hw, cout)} for x {x.shape} seen at {src_hw} "
                       f"(3x3, stride 1, padding 1), weight {u.shape}")
    check_epilogue(label, x, u, out, bias, residual)
    return tile


def chunk_tiles(gpu, tiles: int, channels: int, gemm_tiles: GemmTiles, scratch_bytes: int, tile: int) -> int:
    """Tiles (of tile x tile outputs) per chunk: as many as fit V or M (the wider, `channels`) in scratch_bytes and a
    binding, in whole GEMM row tiles where more than one fits."""
    fit = max(1, min(scratch_bytes, gpu.max_binding) // (positions(tile) * channels * F32_BYTES))
    if fit >= tiles:
        return tiles
    return fit - fit % gemm_tiles.tile_m if fit >= gemm_tiles.tile_m else fit


async def conv3x3_winograd(gpu, x, u, out, bias=None, residual=None, upsample_to: tuple[int, int] | None = None,
                           tiles: GemmTiles | None = None, scratch_bytes: int = SCRATCH_BYTES) -> None:
    """out = conv2d(up(x), g, stride 1, padding 1) + bias + residual over NHWC x (B, H, W, Cin) f32, u (positions,
    Cout, Cin) = winograd_weight(g) stored f32 or f16 (its positions set the tile m), bias (Cout) in u's dtype, out
    (B, OH, OW, Cout) f32 with (OH, OW) = upsample_to (a fused nearest upsample of x, as conv2d's) or (H, W).
    residual: a tensor shaped as out, or `out` itself to accumulate in place. tiles: those of the GEMMs (default:
    matmul's for N = Cout); scratch_bytes: the most V and M take each (chunks of tiles beyond)."""
    label = f"conv3x3_winograd {u.label}"
    src_hw = source_size(label, x, upsample_to)
    tile = _check_geometry(label, x, u, out, bias, residual, src_hw)
    if check_dtypes(label, {"x": x, "out": out, "residual": residual}, {"weight": u, "bias": bias}) != "f32":
        raise GpuError(f"{label}: Winograd convolution runs f32 math: x, out and residual must be f32 (use conv2d "
                       f"for f16 activations)")
    require_whole_bindings(gpu, label, x=x, weight=u, bias=bias, residual=residual, out=out)
    b, h, w, cin = x.shape
    cout = u.shape[1]
    tiles_h, tiles_w = (-(-s // tile) for s in src_hw)
    total, gemms = b * tiles_h * tiles_w, positions(tile)
    tiles = tiles or default_tiles(gpu, cout, x.dtype, rows=total, batch=gemms)
    chunk = chunk_tiles(gpu, total, max(cin, cout), tiles, scratch_bytes, tile)
    # Scratch of one size for every layer, whatever its need: a recorded step reuses (and owns) a single pair.
    words = min(scratch_bytes, gpu.max_binding) // F32_BYTES
    v_scratch, m_scratch = (gpu.tensor((words,), "f32", f"winograd.{name}") for name in "vm")
    # Tensor-core GEMMs stage V as f16: the input transform writes it so, half the bytes both ways.
    v_dtype = "f16" if tiles.tensor_cores else "f32"
    v = Tensor((gemms, chunk, cin), v_dtype, v_scratch.alloc, v_scratch.offset)
    m = Tensor((gemms, chunk, cout), "f32", m_scratch.alloc, m_scratch.offset)
    require_whole_bindings(gpu, label, v=v, m=m)
    forward = await gpu.kernel(V_KERNELS[v_dtype], "main", {"WG": TRANSFORM_WORKGROUP, "VEC": cin % PAIR == 0,
                                                          "TILE": tile})
    overrides, bias_residual = epilogue(x, bias, residual, out)
    inverse = await gpu.kernel("winograd_output", "main", {
        **overrides, "WG": TRANSFORM_WORKGROUP, "VEC": cout % QUAD == 0, "TILE": tile,
        "F16_WEIGHTS": bias is not None and bias.dtype == "f16"})
    for tile0 in range(0, total, chunk):
        n = min(chunk, total - tile0)
        uniform = pack(Winograd(h, w, cin, *src_hw, cout, tiles_h, tiles_w, tile0, n))
        v_chunk = Tensor((gemms, n, cin), v_dtype, v.alloc, v.offset)
        m_chunk = Tensor((gemms, n, cout), "f32", m.alloc, m.offset)
        gpu.dispatch(forward, [x, v_chunk], linear_groups(n * -(-cin // PAIR), TRANSFORM_WORKGROUP), uniform)
        await batched_linear(gpu, v_chunk, u, m_chunk, tiles)
        gpu.dispatch(inverse, [m_chunk, *bias_residual, out], linear_groups(n * -(-cout // QUAD), TRANSFORM_WORKGROUP),
                     uniform)
    gpu.free(v_scratch, m_scratch)
