"""Token + position embedding gather (`wgsl/embedding.wgsl`), tables f32 or packed f16. The token table is bound
in row parts when it exceeds the binding limit (CLIP's 49408 x 768 f32 table is 151 MB), one dispatch per part."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import GpuError
from ..gpu.uniforms import pack, u32
from .checks import require_dtype, require_one_binding, require_shape
from .grid import linear_groups

WORKGROUP = 256


@dataclass(frozen=True)
class Embedding:
    WGSL_NAME: ClassVar[str] = "Embedding"
    n: int = u32()
    channels: int = u32(1)
    seq_len: int = u32(1)
    row0: int = u32()
    rows: int = u32()


async def embed(gpu, ids, tokens, positions, out) -> None:
    """ids (B, T) u32, tokens (V, C) and positions (P >= T, C) f32 or f16, out (B, T, C) f32:
    out[b, t] = tokens[ids[b, t]] + positions[t]. Ids must be < V (rows of an id >= V are left unwritten)."""
    require_dtype("embed", ids, "u32")
    require_dtype("embed", out, "f32")
    for table in (tokens, positions):
        require_dtype("embed", table, "f32", "f16")
    batch, seq_len = ids.shape
    channels = tokens.shape[1]
    require_shape("embed", out, (batch, seq_len, channels))
    if positions.shape[1] != channels or positions.shape[0] < seq_len:
        raise GpuError(f"embed: {positions.label} {positions.shape} must be (P >= {seq_len}, {channels})")
    require_one_binding(gpu, "embed", ids, positions, out)
    kernel = await gpu.kernel("embedding", "main", {
        "WG": WORKGROUP, "TOKENS_F16": int(tokens.dtype == "f16"), "POSITIONS_F16": int(positions.dtype == "f16")})
    n = out.numel
    for view, row0, rows in tokens.row_parts(gpu.max_binding):
        uniform = pack(Embedding(n, channels, seq_len, row0, rows))
        gpu.dispatch(kernel, [ids, view, positions, out], linear_groups(n, WORKGROUP), uniform)
