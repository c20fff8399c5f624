"""Scaled dot-product attention with an online softmax (`wgsl/attention.wgsl`); the score matrix never exists.

Per batch b and head h (channels h*d .. h*d+d of each token, as diffusers' head_to_batch_dim splits them):
out[b, i, h*d:(h+1)*d] = softmax_k(scale * q_i . k_k) v_k, scale = 1/sqrt(d) unless given; causal: k <= i only.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import sqrt
from typing import ClassVar

from ..errors import GpuError
from ..gpu.uniforms import f32, pack, u32

QUERY_THREADS = 8  # TQ: the workgroup is 8 x 16 threads, each holding 8 queries
QUERIES_PER_THREAD = 8
COLUMN_THREADS = 16  # TK: output columns per workgroup are 16 * MV
MAX_COLUMNS_PER_THREAD = 8  # MV_MAX: wider heads run in several column chunks
DIM_CHUNK = 16  # DC: head dims staged at a time; 8 where that divides the head and 16 does not
KEYS_PER_TILE = 64  # BK
STAGED_VALUES = 1024  # f32 words of V staged at a time, at most: VC keys of 16 * MV columns


@dataclass(frozen=True)
class Attention:
    WGSL_NAME: ClassVar[str] = "Attention"
    queries: int = u32()
    keys: int = u32()
    heads: int = u32()
    head_dim: int = u32()
    scale: float = f32(1.0)
    causal: int = u32()


def workgroup_bytes(overrides: dict) -> int:
    """Workgroup memory of the kernel with these overrides (its q_tile, kv_tile and p_tile)."""
    tq, mv, dc, vc = (overrides[n] for n in ("TQ", "MV", "DC", "VC"))
    vec4s = max(dc, COLUMN_THREADS) * 2 * tq + KEYS_PER_TILE * (2 * tq + 1)
    return 16 * vec4s + 4 * max(dc * KEYS_PER_TILE, vc * COLUMN_THREADS * mv)


def tiling(head_dim: int) -> tuple[int, dict]:
    """(column chunks, kernel overrides) for heads of head_dim."""
    chunks, mv = column_split(head_dim)
    dc = DIM_CHUNK // 2 if head_dim % DIM_CHUNK and head_dim % (DIM_CHUNK // 2) == 0 else DIM_CHUNK
    vc = KEYS_PER_TILE
    while vc * COLUMN_THREADS * mv > STAGED_VALUES:
        vc //= 2
    return chunks, {"TQ": QUERY_THREADS, "MV": mv, "DC": dc, "VC": vc}


def column_split(head_dim: int) -> tuple[int, int]:
    """(chunks, MV): the head's output columns in `chunks` workgroups of 16 * MV columns, MV <= 8, as even as can be."""
    chunks = -(-head_dim // (COLUMN_THREADS * MAX_COLUMNS_PER_THREAD))
    per_chunk = -(-head_dim // chunks)
    return chunks, -(-per_chunk // COLUMN_THREADS)


async def attention(gpu, q, k, v, out, heads: int, scale: float | None = None, causal: bool = False) -> None:
    """out (B, Tq, heads*d) = attention of q (B, Tq, heads*d) over k, v (B, Tk, heads*d), all f32."""
    if len(q.shape) != 3:
        raise GpuError(f"attention: {q.label} has shape {q.shape}; give tokens (B, T, heads * head_dim)")
    b, tq, channels = q.shape
    tk = k.shape[1] if len(k.shape) == 3 else 0
    for t, shape in ((q, q.shape), (k, (b, tk, channels)), (v, (b, tk, channels)), (out, q.shape)):
        if tuple(t.shape) != shape or t.dtype != "f32":
            raise GpuError(f"attention: {t.label} is {t.shape} {t.dtype}; expected {shape} f32 for {q.label} {q.shape}")
    if any(out.alloc is t.alloc for t in (q, k, v)):
        raise GpuError(f"attention: out {out.label} shares a buffer with q, k or v; give it its own")
    if heads < 1 or channels % heads or tk < 1:
        raise GpuError(f"attention: {channels} channels of {q.label} do not split into {heads} heads (or no keys)")
    if causal and tq != tk:
        raise GpuError(f"attention: causal attention needs as many queries as keys; got {tq} and {tk}")
    head_dim = channels // heads
    chunks, overrides = tiling(head_dim)
    need, offered = workgroup_bytes(overrides), gpu.caps.limits.get("maxComputeWorkgroupStorageSize", 16384)
    if need > offered:
        raise GpuError(f"attention over heads of {head_dim} needs {need} bytes of workgroup memory; this GPU offers "
                       f"{offered}: lower QUERY_THREADS in doppler/ops/attention.py for this GPU")
    kernel = await gpu.kernel("attention", "main", overrides)
    uniform = Attention(tq, tk, heads, head_dim, 1.0 / sqrt(head_dim) if scale is None else scale, int(causal))
    queries_per_workgroup = QUERY_THREADS * QUERIES_PER_THREAD
    gpu.dispatch(kernel, [q, k, v, out], (-(-tq // queries_per_workgroup), chunks, b * heads), pack(uniform))
