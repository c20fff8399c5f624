"""Scaled dot-product attention with an online softmax; the score matrix never exists.

Per batch b and head h (channels h*d .. h*d+d of each token, as diffusers' head_to_batch_dim splits them):
out[b, i, h*d:(h+1)*d] = softmax_k(scale * q_i . k_k) v_k, scale = 1/sqrt(d) unless given; causal: k <= i only.

Kernels, chosen by `tiling` (the one place their knobs are set):
- on tensor cores (the rule `tensor_cores`), heads of d <= 160, a multiple of 4: `attention_subgroup_matrix.wgsl`
  (`attention_subgroup_matrix_f16_output.wgsl` for an f16 out, which only tensor-core GEMMs read), 16 queries a
  subgroup, tiles of 16 keys, both products on f16 subgroup matrices. Knobs: QUERY_BLOCKS (subgroups per workgroup),
  Q_BLOCKS (Q's 16-dim blocks staged at a time), PREFETCH (0 or 1: the next K and V tile loaded into registers
  during the softmax and O += P V), and TENSOR_CORES (0 or 1: 0 takes the kernels below).
- heads of d <= 80, a multiple of 4 (every UNet and CLIP head but the 16x16 level's 160): `attention_rows.wgsl`,
  one query an invocation, only K and V staged in workgroup memory. Knobs: WG (queries per workgroup), KEY_TILE.
- other heads (the VAE's 512, odd dims): `attention_wide.wgsl`, column chunks. Knobs: TQ, MV, DC, VC.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import sqrt
from typing import ClassVar

from ..errors import GpuError
from ..gpu.uniforms import f32, pack, u32
from . import matmul, softmax, transpose
from .variants import kernel_rule

VEC4 = 16  # bytes of a vec4<f32>
F32 = 4

# attention_rows.wgsl
MAX_DIM = 80  # 4 QUADS_MAX: Q and O rows in registers; wider heads run attention_wide.wgsl
ROWS_MAX_KEYS = 64  # KEYS_MAX: a tile's scores in registers
# Defaults (widest head, WG, KEY_TILE), measured on an H100 in Chromium (bench/RESULTS.md, session 5): d = 40 at 4096
# tokens ran 27.7 TFLOP/s with (256, 16), 20.5 with (128, 32), 18.0 with (64, 8); d = 80 at 1024 tokens, whose
# registers hold twice the Q and O, 17.5 with (64, 8), 12.5 with (256, 16). Wider heads take smaller workgroups.
ROWS_SHAPES = ((40, 256, 16), (MAX_DIM, 64, 8))
TARGET_WORKGROUP_BYTES = 48 * 1024  # maxComputeWorkgroupStorageSize of an H100 in Chromium: the tensor-core shapes fit it

# attention_wide.wgsl
QUERY_THREADS = 8  # TQ: the workgroup is 8 x 16 threads, each holding 8 queries
QUERIES_PER_THREAD = 8
COLUMN_THREADS = 16  # TK: output columns per workgroup are 16 * MV
MAX_COLUMNS_PER_THREAD = 8  # MV_MAX: wider heads run in several column chunks
DIM_CHUNK = 16  # DC: head dims staged at a time; 8 where that divides the head and 16 does not
KEYS_PER_TILE = 64  # BK
STAGED_VALUES = 1024  # f32 words of V staged at a time, at most: VC keys of 16 * MV columns

# attention_subgroup_matrix.wgsl
TENSOR_CORE_MAX_DIM = 160  # 10 blocks of 16 (q0m .. q9m)
TENSOR_CORE_KEY_TILE = 16  # KEY_TILE, a constant there: an invocation's scores are two vec4s
MATRIX = 16  # queries per subgroup; rows = columns = depth of a subgroup matrix
SUBGROUP = 32
PREFETCH_SLOTS_MAX = 8  # K (and V) quads an invocation prefetches per tile (k0h .. k7h)
# Defaults (widest head, QUERY_BLOCKS, Q_BLOCKS (0: all of the head's blocks at once)), measured on an H100 in
# Chromium (bench/RESULTS.md, session 8): heads up to 80 take 8 query blocks of 16 keys with Q staged a block at a
# time, 23-28 KiB, so two workgroups share an SM: 1.17 against 1.50 ms at d = 40 over 4096 tokens (8 and 32, 43 KiB),
# 0.043 against 0.062 ms over 77 keys; as fast at d = 80. On an H200 with every matrix access at a constant offset
# (session 21) still the best of 2-16 query blocks: 0.702 ms at d = 40 over 4096 tokens (16: 0.703, 4: 0.948), 0.0815
# at d = 80 over 1024 (4: 0.0876, 16: 0.121). The 16x16 level's d = 160 (256 tokens) keeps 4 and 16 with Q at once:
# its 10 blocks staged one at a time cost more than its 16 key tiles save. Where the default does not fit the
# workgroup memory, the first of TENSOR_CORE_SMALLER that does; PREFETCH where its registers fit.
TENSOR_CORE_SHAPES = ((80, 8, 1), (TENSOR_CORE_MAX_DIM, 4, 0))
TENSOR_CORE_SMALLER = ((4, 1), (2, 1), (1, 1))

TENSOR_CORES = "TENSOR_CORES"  # a knob that picks the file, not a WGSL constant
F16_OUTPUT_KERNELS = {"attention_subgroup_matrix": "attention_subgroup_matrix_f16_output"}  # kernel -> f16-out twin


@dataclass(frozen=True)
class Attention:
    WGSL_NAME: ClassVar[str] = "Attention"
    queries: int = u32()
    keys: int = u32()
    heads: int = u32()
    head_dim: int = u32()
    scale: float = f32(1.0)
    causal: int = u32()


@dataclass(frozen=True)
class Tiling:
    kernel: str  # the WGSL file
    overrides: dict  # its override constants
    queries_per_workgroup: int
    column_chunks: int  # workgroups along the head's output columns (dispatch y)
    workgroup_bytes: int


def tiling(head_dim: int, overrides: dict | None = None,
           workgroup_limit: int = TARGET_WORKGROUP_BYTES, tensor_cores: bool = False) -> Tiling:
    """The kernel for heads of head_dim and its knobs: defaults (fitting `workgroup_limit` bytes of workgroup
    memory), replaced by `overrides` (names of the chosen kernel's knobs; others are a GpuError). `tensor_cores`:
    the device has them (overrides may still pass TENSOR_CORES 0)."""
    overrides = dict(overrides or {})
    wanted = overrides.pop(TENSOR_CORES, int(tensor_cores))
    if wanted and not tensor_cores:
        raise GpuError(f"attention over heads of {head_dim}: TENSOR_CORES 1 asked, but this device has no f16 "
                       f"subgroup matrices (the rule tensor_cores is false); drop the knob")
    if wanted and head_dim % 4 == 0 and head_dim <= TENSOR_CORE_MAX_DIM:
        default = next(shape for widest, *shape in TENSOR_CORE_SHAPES if head_dim <= widest)
        for blocks, q_blocks in (default, *TENSOR_CORE_SMALLER):
            knobs = _replaced({"QUERY_BLOCKS": blocks, "Q_BLOCKS": q_blocks or _blocks(head_dim), "PREFETCH": 1},
                              overrides, head_dim)
            if "PREFETCH" not in overrides:  # where its registers fit
                fits = _prefetch_fits(head_dim, knobs["QUERY_BLOCKS"])
                knobs["PREFETCH"] = int(fits)
            try:
                plan = _tensor_cores(head_dim, knobs)
            except GpuError:
                continue
            if plan.workgroup_bytes <= workgroup_limit:
                return plan
        if overrides:  # the knobs asked for: the caller names what they need
            return _tensor_cores(head_dim, knobs)
        # no shape fits this GPU's workgroup memory: the kernels below
    if head_dim % 4 == 0 and head_dim <= MAX_DIM:
        wg, keys = next((wg, keys) for widest, wg, keys in ROWS_SHAPES if head_dim <= widest)
        return _rows(head_dim, _replaced({"WG": wg, "KEY_TILE": keys}, overrides, head_dim))
    chunks, mv = column_split(head_dim)
    dc = DIM_CHUNK // 2 if head_dim % DIM_CHUNK and head_dim % (DIM_CHUNK // 2) == 0 else DIM_CHUNK
    vc = KEYS_PER_TILE
    while vc * COLUMN_THREADS * mv > STAGED_VALUES:
        vc //= 2
    knobs = _replaced({"TQ": QUERY_THREADS, "MV": mv, "DC": dc, "VC": vc}, overrides, head_dim)
    tq, mv, dc, vc = (knobs[n] for n in ("TQ", "MV", "DC", "VC"))
    if not (1 <= mv <= MAX_COLUMNS_PER_THREAD and tq >= 1 and dc >= 1 and vc >= 1 and KEYS_PER_TILE % vc == 0):
        raise GpuError(f"attention_wide.wgsl knobs {knobs}: need 1 <= MV <= {MAX_COLUMNS_PER_THREAD}, VC dividing "
                       f"{KEYS_PER_TILE}, TQ and DC >= 1")
    vec4s = max(dc, COLUMN_THREADS) * 2 * tq + KEYS_PER_TILE * (2 * tq + 1)
    nbytes = VEC4 * vec4s + F32 * max(dc * KEYS_PER_TILE, vc * COLUMN_THREADS * mv)
    return Tiling("attention_wide", knobs, tq * QUERIES_PER_THREAD, -(-head_dim // (COLUMN_THREADS * mv)), nbytes)


def _replaced(defaults: dict, overrides: dict | None, head_dim: int) -> dict:
    unknown = sorted(set(overrides or {}) - set(defaults))
    if unknown:
        raise GpuError(f"attention over heads of {head_dim}: unknown knobs {unknown}; this kernel's are "
                       f"{sorted(defaults)}")
    return {**defaults, **(overrides or {})}


def _rows(head_dim: int, knobs: dict) -> Tiling:
    wg, keys = knobs["WG"], knobs["KEY_TILE"]
    if not (wg >= 1 and 1 <= keys <= ROWS_MAX_KEYS):
        raise GpuError(f"attention_rows.wgsl over heads of {head_dim}, knobs {knobs}: need WG >= 1 and 1 <= KEY_TILE "
                       f"<= {ROWS_MAX_KEYS}")
    overrides = {"HEAD_DIM": head_dim, "WG": wg, "KEY_TILE": keys}
    return Tiling("attention_rows", overrides, wg, 1, 2 * keys * head_dim * F32)


def _blocks(head_dim: int) -> int:
    """DB: the head's dims in blocks of a subgroup matrix's 16."""
    return -(-head_dim // MATRIX)


def _quads(head_dim: int) -> int:
    """DQP: vec4s of a staged row, the head padded to whole subgroup matrices."""
    return 4 * _blocks(head_dim)


def _prefetch_fits(head_dim: int, blocks: int) -> bool:
    """Whether a key tile's K (and V) quads fit PREFETCH_SLOTS_MAX an invocation of `blocks` subgroups."""
    return TENSOR_CORE_KEY_TILE * _quads(head_dim) <= PREFETCH_SLOTS_MAX * SUBGROUP * blocks


def _tensor_cores(head_dim: int, knobs: dict) -> Tiling:
    blocks, prefetch, q_blocks = (knobs[n] for n in ("QUERY_BLOCKS", "PREFETCH", "Q_BLOCKS"))
    keys = TENSOR_CORE_KEY_TILE
    if not (blocks >= 1 and prefetch in (0, 1) and 1 <= q_blocks <= _blocks(head_dim)
            and (not prefetch or _prefetch_fits(head_dim, blocks))):
        raise GpuError(f"attention_subgroup_matrix.wgsl over heads of {head_dim}, knobs {knobs}: need QUERY_BLOCKS "
                       f">= 1, Q_BLOCKS 1 to {_blocks(head_dim)}, PREFETCH 0 or 1 (1: {keys} x {_quads(head_dim)} <= "
                       f"{PREFETCH_SLOTS_MAX * SUBGROUP} QUERY_BLOCKS)")
    stride = 4 * _quads(head_dim) + 8  # STRIDE: halves of a staged K or V row
    buffer = max(keys * stride, (TENSOR_CORE_MAX_DIM // MATRIX - 1) * MATRIX + (keys - 1) * stride + MATRIX)  # BUFFER
    queries = MATRIX * blocks
    halves = 2 * 2 * buffer + queries * (max(keys, MATRIX * q_blocks) + 8)  # two K and V buffers, P
    nbytes = 2 * halves + F32 * queries * (keys + 4) + 16  # S slots, the rescale flags
    overrides = {"HEAD_DIM": head_dim, "QUERY_BLOCKS": blocks, "Q_BLOCKS": q_blocks, "PREFETCH": prefetch}
    return Tiling("attention_subgroup_matrix", overrides, queries, 1, nbytes)



def column_split(head_dim: int) -> tuple[int, int]:
    """(chunks, MV): the head's output columns in `chunks` workgroups of 16 * MV columns, MV <= 8, as even as can be."""
    chunks = -(-head_dim // (COLUMN_THREADS * MAX_COLUMNS_PER_THREAD))
    per_chunk = -(-head_dim // chunks)
    return chunks, -(-per_chunk // COLUMN_THREADS)


def device_tiling(gpu, head_dim: int, overrides: dict | None = None) -> Tiling:
    """`tiling` for this GPU: its tensor cores and workgroup memory."""
    offered = gpu.caps.limits.get("maxComputeWorkgroupStorageSize", 16384)
    plan = tiling(head_dim, overrides, min(offered, TARGET_WORKGROUP_BYTES), bool(kernel_rule(gpu, "tensor_cores")))
    if plan.workgroup_bytes > offered:
        raise GpuError(f"{plan.kernel}.wgsl over heads of {head_dim} with {plan.overrides} needs "
                       f"{plan.workgroup_bytes} bytes of workgroup memory; this GPU offers {offered}: pass smaller "
                       f"knobs, or lower the defaults in doppler/ops/attention.py for this GPU")
    return plan


def writes_f16(gpu, head_dim: int) -> bool:
    """Whether this GPU's attention over heads of head_dim can write an f16 out."""
    return device_tiling(gpu, head_dim).kernel in F16_OUTPUT_KERNELS


async def attention(gpu, q, k, v, out, heads: int, scale: float | None = None, causal: bool = False,
                    overrides: dict | None = None) -> None:
    """out (B, Tq, heads*d) = attention of q (B, Tq, heads*d) over k, v (B, Tk, heads*d), all f32; out may be f16
    where `writes_f16`. `overrides` replaces knobs of the kernel `tiling` picks (for benchmarks and tests)."""
    if len(q.shape) != 3:
        raise GpuError(f"attention: {q.label} has shape {q.shape}; give tokens (B, T, heads * head_dim)")
    b, tq, channels = q.shape
    tk = k.shape[1] if len(k.shape) == 3 else 0
    for t, shape in ((q, q.shape), (k, (b, tk, channels)), (v, (b, tk, channels)), (out, q.shape)):
        if tuple(t.shape) != shape or t.dtype not in (("f32", "f16") if t is out else ("f32",)):
            raise GpuError(f"attention: {t.label} is {t.shape} {t.dtype}; expected {shape} f32 for {q.label} {q.shape}")
    if any(out.alloc is t.alloc for t in (q, k, v)):
        raise GpuError(f"attention: out {out.label} shares a buffer with q, k or v; give it its own")
    if heads < 1 or channels % heads or tk < 1:
        raise GpuError(f"attention: {channels} channels of {q.label} do not split into {heads} heads (or no keys)")
    if causal and tq != tk:
        raise GpuError(f"attention: causal attention needs as many queries as keys; got {tq} and {tk}")
    head_dim = channels // heads
    plan = device_tiling(gpu, head_dim, overrides)
    file = plan.kernel
    if out.dtype == "f16":
        if file not in F16_OUTPUT_KERNELS:
            raise GpuError(f"attention: out {out.label} is f16, but {file}.wgsl writes f32 (only "
                           f"{', '.join(F16_OUTPUT_KERNELS)} writes f16: see writes_f16); give an f32 out")
        file = F16_OUTPUT_KERNELS[file]
    kernel = await gpu.kernel(file, "main", plan.overrides)
    uniform = Attention(tq, tk, heads, head_dim, 1.0 / sqrt(head_dim) if scale is None else scale, int(causal))
    groups = (-(-tq // plan.queries_per_workgroup), plan.column_chunks, b * heads)
    gpu.dispatch(kernel, [q, k, v, out], groups, pack(uniform))


async def single_head_by_matmuls(gpu, q, k, v, out, scale: float | None = None) -> None:
    """out = softmax(scale q k^T) v for one head of width d over q (B, Tq, d), k and v (B, Tk, d), f32, through the
    (B, Tq, Tk) score matrix: two GEMMs, a row softmax and a transpose of v. For wide heads (the VAE's d = 512), where
    the GEMMs run several times faster than the flash kernel; the caller checks the scores fit its memory."""
    b, tq, d = q.shape
    tk = k.shape[1]
    if tuple(k.shape) != (b, tk, d) or tuple(v.shape) != (b, tk, d) or tuple(out.shape) != (b, tq, d):
        raise GpuError(f"attention of {q.label}: q {q.shape}, k {k.shape}, v {v.shape}, out {out.shape} must be "
                       f"(B, Tq, d), (B, Tk, d), (B, Tk, d), (B, Tq, d)")
    scores = gpu.tensor((b, tq, tk), "f32", f"{q.label}.scores")
    await matmul.batched_matmul(gpu, q, k, scores)
    probs = gpu.tensor((b, tq, tk), "f32", f"{q.label}.probs")
    await softmax.softmax(gpu, scores, probs, 1.0 / sqrt(d) if scale is None else scale)
    v_t = gpu.tensor((b, d, tk), "f32", f"{v.label}.transposed")
    await transpose.transpose(gpu, v, v_t)
    gpu.free(scores)
    await matmul.batched_matmul(gpu, probs, v_t, out)
    gpu.free(probs, v_t)
