"""Linear layers and batched matmul: y = act(x W^T + b) + r (`wgsl/matmul.wgsl`, `wgsl/matmul_f16.wgsl`,
`wgsl/matmul_subgroup_matrix.wgsl`).

x (..., K), W [N, K] (PyTorch's [out, in]), b (N), y and r (..., N); batched: x (B, M, K), W (B, N, K), y (B, M, N),
or one x (M, K) for all B (`batched_linear`: projections of one input).
The tensors' dtypes pick the path: f32 activations run f32 math with W (and b) stored f32 or f16 (packed, widened
on load); f16 activations run f16 math (device feature shader-f16) with every tensor f16. Under f32 activations the
tiles pick the cores: scalar FMAs, or tensor cores (`GemmTiles.tensor_cores`: f16 x f16 -> f32 subgroup matrices,
where the rule `tensor_cores` is true), which also take x in f16 (`wgsl/matmul_subgroup_matrix_f16_input.wgsl`:
they stage x as f16, so a producer that writes it so saves half its bytes and the rounding while staging).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from math import prod
from typing import ClassVar

from ..errors import GpuError
from ..gpu.tensor import DTYPE_BYTES
from ..gpu.uniforms import pack, u32
from .activation import ACTIVATIONS  # fused activations, by the code the kernels' ACTIVATION override takes
from .grid import linear_groups, require_output_apart, require_whole_bindings, tile_groups
from .variants import kernel_rule

# RESIDUAL override: none, a tensor of its own, or y's prior contents (residual is out: accumulate in place).
RESIDUAL_NONE, RESIDUAL_TENSOR, RESIDUAL_IN_PLACE = 0, 1, 2
THREAD_TILES = (4, 8)  # per-thread outputs each way: whole vec4s, at most two (the kernels' MAX_VEC)
QUAD = 4  # staging loads 4 consecutive k at a time (one vec4 where K is a multiple of 4)
MAX_LOADS = 4  # quads of x (and of W) per invocation per K step, at most (the kernels' MAX_LOADS)
# Split K while a GEMM's output tiles hold fewer invocations than this (512 workgroups of 256): SD 1.5's 8x8 and
# 16x16 levels make 40-160 tiles of 64x64, which leave most of a big GPU (132 SMs on an H100) idle through
# K = 11520. Counted in invocations, so tensor-core tiles (512 invocations each) split half as often as the scalar
# tiles (256): on an H100 their partial sums cost 28 of 85 ms of a UNet step split to 512 workgroups.
SPLIT_K_INVOCATIONS = 512 * 256
MIN_SPLIT_STEPS = 8  # TILE_K steps per split, at least: fewer and the partial sums cost more than they save


@dataclass(frozen=True)
class SplitCosts:
    """k_split's model of a GEMM's time, in K steps of one workgroup: waves of workgroups times (the steps each takes
    plus `fixed`), times 1 + `per_split` a split, plus for split GEMMs the reduce (`reduce`: a part per dispatch, a
    part per split) and for unsplit ones that read their output back to finish it `epilogue_per_million` steps per
    million outputs."""

    fixed: float = 0.0
    per_split: float = 0.0
    reduce: tuple[float, float] = (0.0, 0.0)
    epilogue_per_million: float = 0.0


# Where the rule `gemm_wave` (`gemm_wave_tensor_cores`) names how many scalar-tile (tensor-core) workgroups the device
# runs at once (an H100 in Chromium: 3 an SM, 396; 2 an SM, 264; bench/RESULTS.md, sessions 5 and 6), K splits as
# that model's time is least, split dispatches counting `gemm_split_wave_tensor_cores` at once where that rule names
# it (their tiles take more workgroup memory: an H100 runs one an SM), with the partial sums at most
# SPLIT_PARTIALS_BYTES. Without the wave rule, about SPLIT_K_INVOCATIONS invocations (a partly filled last wave).
# Scalar tiles: 1% a split (session 5: whole waves took 1.2% off a UNet step). Tensor cores, fit to GEMMs timed at
# every split count on an H100 (bench/RESULTS.md, session 7): a workgroup's start and store, the reduce, and the
# read-back of a bias, activation or residual (512 x 10240 took 410 us with a bias in the pipeline, 304 without one
# in the kernel bench; 8192 x 320 x 320 without one ran 48 us whole against 83 in 2 splits).
SCALAR_SPLIT_COSTS = SplitCosts(per_split=0.01)
TENSOR_CORE_SPLIT_COSTS = SplitCosts(fixed=4.0, reduce=(3.0, 2.5), epilogue_per_million=10.0)
SPLIT_PARTIALS_BYTES = 64 << 20
REDUCE_WORKGROUP = 256
# Tensor-core tiles (lib/gemm_subgroup_matrix.wgsl): a subgroup of 32 invocations owns a block of 32 rows and 8 x
# thread_n (64 or 32) columns (thread_m = 8 gives a block its 32 invocations); tiles are whole blocks.
SUBGROUP_MATRIX_ROWS = 32
SUBGROUP_MATRIX_THREAD_M = 8
SUBGROUP_MATRIX_THREAD_N = (4, 8)
SUBGROUP_MATRIX_PAD = 8  # halves after each staged row of k (the kernel's PAD): 13 KiB at 128 x 128 x 16
# Split-K dispatches stage rows of 80 bytes: their GEMMs ran 20-30% faster so on an H100 (the matrix loads from
# workgroup memory bound the K loop), though at 128 x 256 x 16 31 KiB left one workgroup an SM (bench/RESULTS.md,
# session 6; 128 x 128 x 16 take 21 KiB).
SPLIT_K_PAD = 24
# A 16 x 16 f32 result matrix: the tensor-core GEMMs store these straight into y, so WebGPU wants y bound at least
# this large; their one workgroup slot for edge tiles holds one.
SUBGROUP_MATRIX_BYTES = 16 * 16 * 4


@dataclass(frozen=True)
class Matmul:
    WGSL_NAME: ClassVar[str] = "Matmul"
    m: int = u32()
    n: int = u32()
    k: int = u32()
    batch: int = u32(1)
    w_batch_stride: int = u32()  # elements between batches of W; 0 shares one W
    k_split: int = u32()  # K elements per split (SPLIT_K)
    x_batch_stride: int = u32()  # elements between batches of x; 0 shares one x


@dataclass(frozen=True)
class GemmReduce:
    WGSL_NAME: ClassVar[str] = "GemmReduce"
    elements: int = u32()
    cols: int = u32()
    splits: int = u32()


@dataclass(frozen=True)
class GemmTiles:
    """A workgroup computes tile_m x tile_n outputs, staging tile_k of the reduction at a time in workgroup memory;
    each invocation computes thread_m x thread_n of them. Shared by matmul and conv2d (implicit GEMM)."""

    tile_m: int = 64
    tile_n: int = 64
    tile_k: int = 16
    thread_m: int = 4
    thread_n: int = 4
    tensor_cores: bool = False  # f16 x f16 -> f32 subgroup matrices (f32 activations only)
    pad: int = SUBGROUP_MATRIX_PAD  # tensor cores: halves after each staged row of k, a multiple of 8

    def __post_init__(self):
        if self.tensor_cores and (self.thread_m != SUBGROUP_MATRIX_THREAD_M
                                  or self.thread_n not in SUBGROUP_MATRIX_THREAD_N or self.tile_k % 16
                                  or self.tile_m % SUBGROUP_MATRIX_ROWS or self.tile_n % (8 * self.thread_n)):
            raise GpuError(f"{self}: tensor-core tiles take thread_m = {SUBGROUP_MATRIX_THREAD_M} and thread_n one of "
                           f"{SUBGROUP_MATRIX_THREAD_N}, and are whole blocks of {SUBGROUP_MATRIX_ROWS} x 8 thread_n "
                           f"outputs and of 16 k")
        if self.pad < 0 or self.pad % 8:
            raise GpuError(f"{self}: pad is a multiple of 8 halves (staged rows of whole 16 bytes)")
        if self.thread_m not in THREAD_TILES or self.thread_n not in THREAD_TILES:
            raise GpuError(f"{self}: thread_m and thread_n must be one of {THREAD_TILES}")
        if self.tile_m % self.thread_m or self.tile_n % self.thread_n:
            raise GpuError(f"{self}: tile_m and tile_n must be multiples of thread_m and thread_n")
        for tile in (self.tile_m, self.tile_n):
            quads = tile * self.tile_k // QUAD
            if self.tile_k % QUAD or quads % self.invocations or not 1 <= quads // self.invocations <= MAX_LOADS:
                raise GpuError(
                    f"{self}: staging loads a tile's {tile} rows of tile_k in quads of {QUAD}, 1 to {MAX_LOADS} "
                    f"per invocation, so tile_k must be a multiple of {QUAD} and {tile} * tile_k / {QUAD} a "
                    f"multiple of the {self.invocations} invocations, at most {MAX_LOADS} times them"
                )

    @property
    def invocations(self) -> int:
        return (self.tile_m // self.thread_m) * (self.tile_n // self.thread_n)

    def workgroup_bytes(self, element_bytes: int) -> int:
        """Staged tiles of this element size, and with tensor cores the f32 slot of one 16 x 16 result matrix."""
        if not self.tensor_cores:
            return self.tile_k * (self.tile_m + self.tile_n) * element_bytes
        return (self.tile_k + self.pad) * (self.tile_m + self.tile_n) * element_bytes + SUBGROUP_MATRIX_BYTES

    def overrides(self, gpu, label: str, element_bytes: int) -> dict:
        """The kernels' override constants, after checking the device can run this tile."""
        max_invocations = gpu.caps.limits["maxComputeInvocationsPerWorkgroup"]
        max_bytes = gpu.caps.limits["maxComputeWorkgroupStorageSize"]
        if self.invocations > max_invocations or self.workgroup_bytes(element_bytes) > max_bytes:
            raise GpuError(
                f"{label}: {self} needs {self.invocations} invocations and {self.workgroup_bytes(element_bytes)} "
                f"bytes of workgroup memory; this GPU allows {max_invocations} and {max_bytes}: pick smaller tiles"
            )
        knobs = {"TILE_M": self.tile_m, "TILE_N": self.tile_n, "TILE_K": self.tile_k,
                 "THREAD_M": self.thread_m, "THREAD_N": self.thread_n}
        return {**knobs, "PAD": self.pad} if self.tensor_cores else knobs


DEFAULT_TILES = GemmTiles()
# Outputs N % 128 == 0 wide take 64 x 128 tiles (4 x 8 per thread): on an H100 they ran 5-20% faster than 64 x 64
# at every such SD 1.5 shape (bench/RESULTS.md), and slower where N = 320 leaves a third of a 128 tile idle.
WIDE_TILES = GemmTiles(64, 128, 16, 4, 8)
# Subgroups of 32 x 32 outputs in 128 x 128 tiles, 16 of k a step (13 KiB of workgroup memory): implicit-GEMM convs
# on an H100 (bench/RESULTS.md, session 10) ran 25% faster on them than on 256 x 128 or 128 x 256 tiles of 32 x 64
# blocks at the 8x8 level (1280 channels, split K) and 12% at the VAE's 512x512 x 128; GEMMs at most 128 wide, which
# leave half of a 128 x 256 tile idle, as well (the VAE's 1x1 256 -> 128 at 512x512: 0.80 ms as a linear layer on
# 128 x 256 on an H200, 0.40 on these, session 12). Since session 14 every GEMM that takes no narrow tiles takes them
# (the 128 x 256 tiles of 32 x 64 blocks, 1.2-1.6x faster than 32 of k in sessions 3 and 6, are gone): on an H200 the
# UNet step took 0.5 ms less (the 32x32 level's ff.net.2, 2048 x 2560 -> 640: 0.127 ms against 0.170 in session 13).
TENSOR_CORE_TILES = GemmTiles(128, 128, 16, 8, 4, tensor_cores=True)
# Subgroups of 32 x 32 outputs in 128 x 64 tiles: on an H100 (bench/RESULTS.md, session 10) 4-32% faster than
# 128 x 256 tiles of 32 x 64 blocks at GEMMs at least NARROW_TILES_MIN_N wide whose tiles fill a wave (the
# transformer's linears, Winograd's GEMMs at 32x32 and 16x16). Session 11's sweep, its configs timed in turn, found
# them 20% faster at Winograd's 64x64 x 320 too, 3-9% at the VAE's 512 and 256 channels; on an H200 (session 12) the
# UNet step took 0.6 ms less with the linears 320 wide at 64x64 on them, whole, than on 128 x 256 tiles split in 2.
# Where they make less than a wave they stay off: whole there (the 32x32 and 16x16 levels' linears of K <= 1280), a
# sweep without bias or residual had them 1.1-1.5x faster, but the UNet step took 0.85 ms more (session 12).
TENSOR_CORE_NARROW_TILES = GemmTiles(128, 64, 16, 8, 4, tensor_cores=True)
NARROW_TILES_MIN_N = 256


# GEMMs of at most this many rows in all their matrices together (the text encoder's 2 x 77 tokens, the
# cross-attention's keys and values over them, batched as 2 x 154, the 8x8 level's 128) take the 64 x 64 scalar
# tiles on every device: there the tensor cores' tiles are mostly empty rows and split K the most. On an H100 at 154
# rows (bench/RESULTS.md, session 9), 768 -> 768 ran 0.034 ms against 0.078 on tensor cores and 0.137 with the wide
# tiles; the keys and values took 0.55 ms a step so against 1.13 on tensor cores (session 10). Winograd's 16 GEMMs
# of 128 rows at 16x16 fill the tensor cores' tiles.
SMALL_GEMM_ROWS = 320
# ... unless their weights have at least this many elements (n x k): then the tensor cores' 128 x 128 tiles, split
# along K, beat the scalar tiles on an H200 (bench/RESULTS.md, session 16) at the 8x8 level's 128 rows: 1280 -> 10240
# 0.084 against 0.166 ms, 5120 -> 1280 0.063 against 0.097, 2560 -> 1280 0.047 against 0.059; 1280 -> 1280 tied
# (0.042 against 0.040), so it and the text encoder's (768 wide, at most 3072 x 768) stay scalar.
SMALL_GEMM_TENSOR_CORE_WEIGHTS = 2560 * 1280


def default_tiles(gpu, n: int, math: str, conv: bool = False, rows: int | None = None, batch: int = 1,
                  k: int = 0) -> GemmTiles:
    """The tiles for an output n wide in this math dtype (conv: of an implicit-GEMM convolution; rows: of each of
    `batch` matrices, where known; k: the depth, where known): scalar ones for small GEMMs but those of large
    weights, else tensor cores under f32 activations where the rules give them (narrow ones for GEMMs at least
    NARROW_TILES_MIN_N wide whose tiles fill a wave, not convs), else by width."""
    if rows is not None and rows * batch <= SMALL_GEMM_ROWS:
        large = n * k >= SMALL_GEMM_TENSOR_CORE_WEIGHTS and math == "f32" and kernel_rule(gpu, "tensor_cores")
        return TENSOR_CORE_TILES if large else DEFAULT_TILES
    if math == "f32" and kernel_rule(gpu, "tensor_cores"):
        # narrow tiles where they make at least a wave of workgroups (so K stays whole)
        narrow = TENSOR_CORE_NARROW_TILES
        wave = kernel_rule(gpu, "gemm_wave_tensor_cores") or SPLIT_K_INVOCATIONS // narrow.invocations
        if not conv and rows is not None and n >= NARROW_TILES_MIN_N and \
                batch * -(-rows // narrow.tile_m) * -(-n // narrow.tile_n) >= wave:
            return narrow
        return TENSOR_CORE_TILES
    return WIDE_TILES if n % WIDE_TILES.tile_n == 0 else DEFAULT_TILES


def gemm_input_dtype(gpu, rows: int) -> str:
    """The dtype to write a tensor of `rows` rows in that only linear layers of f32 activations read: f16 where they
    run on tensor cores, which round x to f16 as they stage it (so rounding it first changes no result, and it has
    half the bytes to write and read), else f32."""
    return "f16" if default_tiles(gpu, 0, "f32", rows=rows).tensor_cores else "f32"


MATH_DTYPES = ("f32", "f16")


def epilogue(x, bias, residual, out) -> tuple[dict, list]:
    """The overrides for a fused bias and residual, and the bindings 2 (bias) and 3 (residual) of the GEMM kernels:
    those are statically used, so x stands in (read-only, never read) where there is none or the residual is out."""
    mode = RESIDUAL_NONE if residual is None else RESIDUAL_IN_PLACE if residual is out else RESIDUAL_TENSOR
    bindings = [bias if bias is not None else x, residual if mode == RESIDUAL_TENSOR else x]
    return {"HAS_BIAS": bias is not None, "RESIDUAL": mode}, bindings


def check_dtypes(label: str, activations: dict, weights: dict, tensor_cores: bool = False) -> str:
    """The math dtype, after checking the tensors agree: activations all f32 (weights f32 or f16) or all f16. With
    tensor-core tiles x may be f16 under f32 math: they stage x as f16 anyway, so its producer may round it. Under
    f32 math the bias may be f32 beside f16 weights (one made at run time: UNet.time_table)."""
    source = "out" if tensor_cores else "x"  # the tensor whose dtype is the math's
    math = activations[source].dtype
    if math not in MATH_DTYPES:
        raise GpuError(f"{label}: {source} is {math}; activations must be f32 or f16")
    for name, t in activations.items():
        if t is None or t.dtype == math or (name == "x" and tensor_cores and t.dtype == "f16"):
            continue
        other = "out" if name == "x" else "x"
        raise GpuError(f"{label}: {name} is {t.dtype} but {other} is {activations[other].dtype}; activations share "
                       f"one dtype (only tensor-core tiles take f16 x with f32 out)")
    stored = weights["weight"].dtype
    allowed = ("f32", "f16") if math == "f32" else ("f16",)
    for name, t in weights.items():
        made = name == "bias" and math == "f32" and t is not None and t.dtype == "f32"  # made at run time
        if t is not None and not made and (t.dtype != stored or t.dtype not in allowed):
            raise GpuError(f"{label}: {name} is {t.dtype}; with {math} activations weights and bias must be one of "
                           f"{', '.join(allowed)}, both the same (or the bias f32)")
    return math


async def gemm_kernel(gpu, name: str, math: str, weight_dtype: str, tiles: GemmTiles, fused: dict,
                      x_dtype: str = "f32"):
    """The kernel of a GEMM file (`name`.wgsl, `name`_f16.wgsl, `name`_subgroup_matrix.wgsl or, over f16 x,
    `name`_subgroup_matrix_f16_input.wgsl) for these dtypes, tiles and fused epilogue."""
    label = f"{name} ({math} math, {weight_dtype} weights{', tensor cores' if tiles.tensor_cores else ''})"
    if tiles.tensor_cores and math != "f32":
        raise GpuError(f"{label}: tensor-core tiles take f32 activations (they round x and W to f16 as they stage)")
    staged = DTYPE_BYTES["f16" if tiles.tensor_cores else math]  # tiles are staged in the math dtype, or f16
    overrides = {**tiles.overrides(gpu, label, staged), **fused}
    if math == "f16":
        return await gpu.kernel(f"{name}_f16", "main", overrides)
    file = f"{name}_subgroup_matrix" if tiles.tensor_cores else name
    if x_dtype == "f16":
        file += "_f16_input"
    return await gpu.kernel(file, "main", {**overrides, "F16_WEIGHTS": weight_dtype == "f16"})


def k_split(tiles: GemmTiles, tile_count: int, k: int, math: str, wave: int = 0, outputs: int = 0,
            split_wave: int = 0, epilogue_pass: bool = False) -> int:
    """K elements per split: k itself (no split) unless the output's tiles hold fewer than SPLIT_K_INVOCATIONS
    invocations, then splits of at least MIN_SPLIT_STEPS steps each: with `wave` (the workgroups the device runs at
    once, 0 if unknown; `split_wave` those of a split dispatch, 0 if the same) the least time in the tiles'
    SplitCosts, the partial sums of `outputs` elements within SPLIT_PARTIALS_BYTES; else enough to reach about
    SPLIT_K_INVOCATIONS invocations. `epilogue_pass`: unsplit, the GEMM reads its output back to finish it. f32 math
    only."""
    steps = -(-k // tiles.tile_k)
    most = steps // MIN_SPLIT_STEPS
    if math != "f32" or most < 2 or tile_count * tiles.invocations >= SPLIT_K_INVOCATIONS:
        return k
    if wave:
        most = max(1, min(most, SPLIT_PARTIALS_BYTES // max(1, DTYPE_BYTES["f32"] * outputs)))
        model = TENSOR_CORE_SPLIT_COSTS if tiles.tensor_cores else SCALAR_SPLIT_COSTS

        def cost(s: int) -> float:
            waves = -(-tile_count * s // (wave if s == 1 else split_wave or wave))
            if s > 1:
                after = model.reduce[0] + model.reduce[1] * s
            else:
                after = model.epilogue_per_million * outputs / 1e6 if epilogue_pass else 0.0
            return waves * (-(-steps // s) + model.fixed) * (1 + model.per_split * s) + after

        splits = min(range(1, most + 1), key=cost)
    else:
        splits = min(-(-SPLIT_K_INVOCATIONS // (tile_count * tiles.invocations)), most)
    return split_size(tiles, k, splits)


def split_size(tiles: GemmTiles, k: int, splits: int) -> int:
    """K elements per split for `splits` splits of whole TILE_K steps: k itself for fewer than 2."""
    return k if splits < 2 else -(-k // (tiles.tile_k * splits)) * tiles.tile_k


def split_k_tiles(gpu, tiles: GemmTiles) -> GemmTiles:
    """The tiles of a split-K dispatch: tensor-core tiles take SPLIT_K_PAD where the GPU's workgroup memory holds it."""
    if not tiles.tensor_cores:
        return tiles
    padded = dataclasses.replace(tiles, pad=SPLIT_K_PAD)
    fits = padded.workgroup_bytes(DTYPE_BYTES["f16"]) <= gpu.caps.limits["maxComputeWorkgroupStorageSize"]
    return padded if fits else tiles


async def run_gemm(gpu, name: str, label: str, x, weight, out, bias, residual, fused: dict, tiles: GemmTiles,
                   tile_grid: tuple[int, int], rows: int, k: int, uniform, splits: int | None = None) -> None:
    """Dispatch GEMM kernel `name` (matmul, conv2d) over tile_grid = (column tiles, row tiles) of out (rows x cols):
    whole, with the epilogue fused, or split along K (see k_split; `splits`, for benchmarks and tests, names how
    many) into partial sums that gemm_reduce.wgsl adds up and finishes. fused: the ACTIVATION and VEC_K overrides;
    uniform(k_split): the kernel's uniform bytes. The math dtype is out's (x may be f16 under tensor cores)."""
    math = out.dtype
    cols = out.numel // rows
    wave = kernel_rule(gpu, "gemm_wave_tensor_cores" if tiles.tensor_cores else "gemm_wave")
    split_wave = kernel_rule(gpu, "gemm_split_wave_tensor_cores") if tiles.tensor_cores else 0
    if splits is None:
        finishing = bias is not None or residual is not None or fused["ACTIVATION"] != ACTIVATIONS["none"]
        split = k_split(tiles, tile_grid[0] * tile_grid[1], k, math, wave, out.numel, split_wave,
                        tiles.tensor_cores and finishing)
    elif splits < 1 or (splits > 1 and math != "f32"):
        raise GpuError(f"{label}: {splits} splits of K asked; give 1 or more (more than 1 under f32 math only)")
    else:
        split = split_size(tiles, k, splits)
    # Tensor-core tiles store their raw sums into out before the epilogue: an in-place residual takes the partial
    # sums' path (one split) so that it is read before it is overwritten, and so does an out smaller than a result
    # matrix (its partial sums get at least that much).
    if split >= k and not (tiles.tensor_cores and (residual is out or out.nbytes < SUBGROUP_MATRIX_BYTES)):
        overrides, bias_residual = epilogue(x, bias, residual, out)
        if bias is not None and bias.dtype != weight.dtype:  # an f32 bias beside f16 weights (check_dtypes)
            overrides["F16_BIAS"] = False
        kernel = await gemm_kernel(gpu, name, math, weight.dtype, tiles, {**overrides, **fused}, x.dtype)
        gpu.dispatch(kernel, [x, weight, *bias_residual, out], tile_groups(*tile_grid, label), uniform(k))
        return
    splits = -(-k // split)
    tiles = split_k_tiles(gpu, tiles)
    least = SUBGROUP_MATRIX_BYTES // DTYPE_BYTES["f32"] if tiles.tensor_cores else 0
    partials = gpu.tensor((max(splits * rows * cols, least),), "f32", f"{out.label}.partials")
    require_whole_bindings(gpu, label, partials=partials)
    kernel = await gemm_kernel(gpu, name, math, weight.dtype, tiles, {**fused, "ACTIVATION": 0, "SPLIT_K": True},
                               x.dtype)
    gpu.dispatch(kernel, [x, weight, x, x, partials], (*tile_grid, splits), uniform(split))
    overrides, bias_residual = epilogue(partials, bias, residual, out)
    vec4 = cols % QUAD == 0  # then quads of elements share a row (and vec4 bindings cover whole tensors)
    reduce = await gpu.kernel("gemm_reduce", "main_vec4" if vec4 else "main",
                              {**overrides, "ACTIVATION": fused["ACTIVATION"], "WG": REDUCE_WORKGROUP,
                               "F16_WEIGHTS": (weight if bias is None else bias).dtype == "f16"})
    gpu.dispatch(reduce, [partials, *bias_residual, out],
                 linear_groups(rows * cols // (QUAD if vec4 else 1), REDUCE_WORKGROUP),
                 pack(GemmReduce(rows * cols, cols, splits)))
    gpu.free(partials)


async def _gemm(gpu, label, x, w, out, bias, residual, activation, batch, m, n, k, w_batch_stride, tiles,
                x_batch_stride=None, splits=None):
    tiles = tiles or default_tiles(gpu, n, out.dtype, rows=m, batch=batch, k=k)
    check_dtypes(label, {"x": x, "out": out, "residual": residual}, {"weight": w, "bias": bias}, tiles.tensor_cores)
    require_whole_bindings(gpu, label, x=x, weight=w, bias=bias, residual=residual, out=out)
    require_output_apart(label, out, x=x, weight=w, bias=bias, residual=residual if residual is not out else None)
    if activation not in ACTIVATIONS:
        raise GpuError(f"{label}: unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    fused = {"ACTIVATION": ACTIVATIONS[activation], "VEC_K": k % QUAD == 0}
    await run_gemm(gpu, "matmul", label, x, w, out, bias, residual, fused, tiles,
                   (-(-n // tiles.tile_n), batch * -(-m // tiles.tile_m)), batch * m, k,
                   lambda split: pack(Matmul(m, n, k, batch, w_batch_stride, split,
                                             m * k if x_batch_stride is None else x_batch_stride)), splits)


async def linear(gpu, x, weight, out, bias=None, residual=None, activation: str = "none",
                 tiles: GemmTiles | None = None, splits: int | None = None) -> None:
    """out = act(x weight^T + bias) + residual over x (..., K), weight [N, K], bias (N), out (..., N).
    residual: a tensor shaped as out, or `out` itself to accumulate in place; activation: one of ACTIVATIONS;
    splits: of K, for benchmarks and tests (default: run_gemm's choice)."""
    label = f"linear {weight.label}"
    if len(weight.shape) != 2:
        raise GpuError(f"{label}: weight {weight.shape} must be 2-D [N, K]")
    n, k = weight.shape
    if x.shape[-1] != k or out.shape[:-1] != x.shape[:-1] or out.shape[-1] != n:
        raise GpuError(f"{label}: x {x.shape} and out {out.shape} do not fit weight [N, K] = {weight.shape}: "
                       f"x must be (..., {k}) and out (..., {n}) with the same leading dims")
    if bias is not None and bias.shape != (n,):
        raise GpuError(f"{label}: bias {bias.shape} must be ({n},)")
    _check_residual(label, residual, out)
    await _gemm(gpu, label, x, weight, out, bias, residual, activation, 1, prod(x.shape[:-1]), n, k, 0, tiles,
                splits=splits)


async def batched_matmul(gpu, a, b, out, residual=None, activation: str = "none",
                         tiles: GemmTiles | None = None) -> None:
    """out[i] = act(a[i] b[i]^T) + residual[i] over a (B, M, K), b (B, N, K), out (B, M, N); all f32, or all f16
    (f16 math). residual: a tensor shaped as out, or `out` itself to accumulate in place."""
    label = f"batched_matmul {a.label} x {b.label}^T"
    _check_batched(label, a.shape, b.shape, out.shape, ("a", "b"))
    if a.dtype != b.dtype:
        raise GpuError(f"{label}: a is {a.dtype} but b is {b.dtype}; both operands are activations of one dtype")
    _check_residual(label, residual, out)
    batch, m, k = a.shape
    n = b.shape[1]
    await _gemm(gpu, label, a, b, out, None, residual, activation, batch, m, n, k, n * k, tiles)


async def batched_linear(gpu, x, weight, out, tiles: GemmTiles | None = None) -> None:
    """out[i] = x[i] weight[i]^T over x (B, M, K), weight (B, N, K), out (B, M, N): B linear layers without bias,
    weights stored as `linear` takes them (f32 or packed f16 under f32 math). Winograd's 16 GEMMs use it. x (M, K):
    one input for all B (the query, key and value projections of one x, their weights side by side in memory)."""
    label = f"batched_linear {x.label} x {weight.label}^T"
    shared = len(x.shape) == 2
    _check_batched(label, (weight.shape[0], *x.shape) if shared else x.shape, weight.shape, out.shape, ("x", "weight"))
    m, k = x.shape[-2:]
    batch, n = weight.shape[:2]
    await _gemm(gpu, label, x, weight, out, None, None, "none", batch, m, n, k, n * k, tiles, 0 if shared else m * k)


def _check_batched(label: str, a_shape, b_shape, out_shape, names: tuple[str, str]) -> None:
    a, b, out = tuple(a_shape), tuple(b_shape), tuple(out_shape)
    if len(a) != 3 or len(b) != 3 or a[0] != b[0] or a[2] != b[2] or out != (a[0], a[1], b[1]):
        raise GpuError(f"{label}: {names[0]} {a}, {names[1]} {b}, out {out} must be (B, M, K), (B, N, K), (B, M, N)")


def _check_residual(label: str, residual, out) -> None:
    if residual is not None and residual.shape != out.shape:
        raise GpuError(f"{label}: residual {residual.shape} must have out's shape {out.shape}")
