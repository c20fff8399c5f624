// Token + position embedding (CLIP's text embeddings):
//   out[r, c] = tokens[ids[r], c] + positions[r % T, c]      r < B*T rows of the (B, T) ids, c < C channels
// Tables are bound as u32 words: f32 entries are bitcast, f16 entries are packed two per word and widened with
// unpack2x16float (f16 storage, f32 math); overrides TOKENS_F16 / POSITIONS_F16 say which.
// The token table may exceed the binding limit, so it is bound in parts holding its rows [row0, row0 + rows):
// each dispatch writes only the outputs whose id falls in its part, so every output row is written by exactly
// one dispatch (an id >= V is never written: the host checks ids before upload).
// Bindings: 0 ids (read, u32), 1 tokens (read, words of one part), 2 positions (read, words), 3 out (read_write),
// 4 uniform Embedding (n = B*T*C). Dispatch: ceil(n / WG) workgroups along x, wrapped into y past 65535.

struct Embedding { n: u32, channels: u32, seq_len: u32, row0: u32, rows: u32 }

override WG: u32 = 256u;
override TOKENS_F16: bool = false;
override POSITIONS_F16: bool = false;
const MAX_GROUPS_X: u32 = 65535u;

@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> u: Embedding;

fn token(e: u32) -> f32 {
  if (TOKENS_F16) { return unpack2x16float(tokens[e >> 1u])[e & 1u]; }
  return bitcast<f32>(tokens[e]);
}

fn position(e: u32) -> f32 {
  if (POSITIONS_F16) { return unpack2x16float(positions[e >> 1u])[e & 1u]; }
  return bitcast<f32>(positions[e]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = (wg.y * MAX_GROUPS_X + wg.x) * WG + lid.x;
  if (i >= u.n) { return; }
  let r = i / u.channels;
  let c = i % u.channels;
  let local = ids[r] - u.row0;  // wraps past `rows` for ids below the part
  if (local < u.rows) {
    out[i] = token(local * u.channels + c) + position((r % u.seq_len) * u.channels + c);
  }
}
