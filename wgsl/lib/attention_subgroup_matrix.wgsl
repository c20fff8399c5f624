// Attention on tensor cores for heads of HEAD_DIM <= 160, a multiple of 4: scaled dot-product attention with an
// online softmax (flash-attention style: the Tq x Tk scores never exist in memory), both products summed by
// f16 x f16 -> f32 subgroup matrices (16 x 16 x 16). Per batch b and head h, with channels h*d .. h*d+d of each token
// (diffusers' head_to_batch_dim split):
//   out[b,i,h*d+j] = sum_k softmax_k(scale * q[b,i,h*d:] . k[b,k,h*d:]) v[b,k,h*d+j]
// causal (Tq = Tk): key k is seen by query i only when k <= i.
// Precision: Q (scaled by scale log2 e), K, V and P are rounded to f16 as they are staged; S, O, the running max m
//   and the row sums l are f32.
//
// A workgroup takes BQ = 16 QUERY_BLOCKS queries of one (b, h); subgroup s (SUBGROUP = 32 invocations, named by
// @builtin(subgroup_id)) owns the block of 16 queries from 16 s, all head columns. A block holds its Q as DB =
// ceil(d / 16) left matrices (staged once through p_tile, Q_BLOCKS of them at a time: fewer than DB let p_tile's rows
// be as short as KEY_TILE, so that two workgroups may share an SM) and its O as DB result matrices (head dims past d
// are zeros in every staged tile). Keys go in tiles of KEY_TILE = 16, staged as f16 rows [key][dim] into two
// buffers of K and of V, tile t in buffer t % 2, so one tile's staging overlaps the last one's use. Per key tile, two
// barriers:
//   1. S (16 x 16) = Q K^T: one result matrix into the subgroup's slot of s_tile; barrier (a).
//   2. The next tile into the other buffers (PREFETCH 1: loaded into registers, SLOTS quads of K and of V an
//      invocation, before 1, so the loads' latency hides behind it). The subgroup's invocations take its rows:
//      invocation t has row t / 2 and the keys 2c + t % 2, c = 0 .. 7 (S_STRIDE is 4 mod 32 words: the 32 read 16
//      banks), read once into two vec4s. Masked keys (past the last, or past the causal diagonal; only tiles that
//      reach them check) score MASKED. Row maxima merge over the pair with one shuffle. Lazy rescale: a row's
//      running max m moves only when the tile's max passes it by more than RESCALE_SLACK; otherwise P = exp2(S - m)
//      may reach 2^RESCALE_SLACK, exact in f16 and f32 (the final division by l cancels it). P (f16) into the
//      subgroup's slot of p_tile. A moving row raises this tile's flag, which workgroupUniformLoad reads back
//      (barrier (b), which also publishes P and the next tile); then, if any row moved (past the first tile, where O
//      is zero), O's rows scale by exp2(m_old - m_new) block by block through the slot of s_tile (store, barrier,
//      scale, barrier, load).
//   3. O += P V: one left matrix of P, DB right matrices of V.
// Buffers are reused safely: a tile's stores follow barrier (a) of that tile, which every subgroup reaches only after
// finishing the tile before (its last reads of those buffers, of P and of the flag raised two tiles before, which is
// reset there).
// At the end O / l leaves block by block through the slot (invocation t: row t / 2, columns 8 (t % 2) ..).
// On an H200 (bench/RESULTS.md, session 13): 44.1 TFLOP/s at d = 40 over 4096 tokens (8 query blocks, Q a block at a
// time: 23 KiB, two workgroups an SM), 47.0 at d = 80; 35.9 and 36.2 while the softmax read S twice in loops over
// the keys (with 32-key tiles, slower in every sweep since session 5). Timing the loop's parts one at a time off
// (session 13) put the softmax first (0.42 of 1.48 ms at d = 40), then O += P V, staging, the S store and barrier
// (b) (0.14-0.28 each). Reading K and V as f16 matrices straight from memory, in workgroups of one subgroup, ran
// 1.7x slower (session 13); so did fewer queries a workgroup, which stage K and V more often (session 5). Every K, V
// and P matrix load and S store at a constant offset (below: the workgroup arrays nested by buffer and by subgroup,
// which needs the knobs as consts, so the file is `#specialize`d) ran 0.740 against 0.909 ms at d = 40, 0.0814
// against 0.1120 at d = 80 (65.9 TFLOP/s): Chromium's robustness checks an access at a computed offset, and the
// driver then sees a variable stride (session 21; faster than with Dawn's robustness off at the old offsets). Two
// query blocks a subgroup in 4 subgroups, 1.07x faster at d = 40 before (session 16), then lost to 8 subgroups of one
// (0.736 against 0.702 ms, 61.2 TFLOP/s) and went.
//
// Layouts: q (B, Tq, heads*d), k and v (B, Tk, heads*d) f32, out (B, Tq, heads*d) f32 or f16 (the including kernel
// binds it and defines store_out(i, value): vec4 i of out), row-major, bound as vec4s.
// Bindings: 0 q, 1 k, 2 v, 3 out, 4 uniform Attention (as attention_rows.wgsl).
// Dispatch: (ceil(Tq / BQ), 1, B * heads), workgroups of 32 QUERY_BLOCKS invocations. Needs shader-f16, subgroups of
// exactly 32 and chromium-experimental-subgroup-matrix with the f16>f32 16x16x16 config. The including kernel begins
// with `enable f16;`, `enable subgroups;` and `enable chromium_experimental_subgroup_matrix;`.

#specialize
#include "lib/attention_uniform.wgsl"

alias Left = subgroup_matrix_left<f16, 16, 16>;
alias Right = subgroup_matrix_right<f16, 16, 16>;
alias Result = subgroup_matrix_result<f32, 16, 16>;

const MATRIX: u32 = 16u;  // rows = columns = depth of one multiply-accumulate
const SUBGROUP: u32 = 32u;
const LOG2E: f32 = 1.4426950408889634;
const MASKED: f32 = -1.0e30;  // score of a key a query must not see; exp2 of it (less any max) is 0
const RESCALE_SLACK: f32 = 8.0;  // log2 units a row's scores may pass its running max before it moves

override HEAD_DIM: u32 = 40u;  // d: a multiple of 4, at most 160 (10 blocks: q0m .. q9m, o0 .. o9 below)
override QUERY_BLOCKS: u32 = 8u;  // subgroups per workgroup, 16 queries each
const KEY_TILE: u32 = 16u;  // keys per tile: two vec4s of scores an invocation

override DQ: u32 = HEAD_DIM / 4u;  // vec4s per head row
override DB: u32 = (HEAD_DIM + MATRIX - 1u) / MATRIX;  // head-dim blocks
override DQP: u32 = DB * 4u;  // vec4s per staged row, zeros past DQ
override STRIDE: u32 = DB * MATRIX + 8u;  // halves per staged row: 16-byte rows, 8 of them in distinct banks
override BQ: u32 = MATRIX * QUERY_BLOCKS;  // queries per workgroup
override WG: u32 = SUBGROUP * QUERY_BLOCKS;
const S_STRIDE: u32 = KEY_TILE + 4u;  // f32 per score row: a multiple of 16 bytes, 4 mod 32 words (2-way reads)
override Q_BLOCKS: u32 = 1u;  // head-dim blocks of Q staged at a time, 1 .. DB
override P_STRIDE: u32 = max(KEY_TILE, Q_BLOCKS * MATRIX) + 8u;  // halves per P row (and Q's, staged there first)
// Halves of one K (or V) buffer: its KEY_TILE rows, or more where a block at each of the 10 constant offsets the
// kernel names (16 c: the branches past DB never run, but the compiler checks every constant access) needs room.
override BUFFER: u32 = max(KEY_TILE * STRIDE, 9u * MATRIX + (KEY_TILE - 1u) * STRIDE + MATRIX);
override PREFETCH: u32 = 1u;  // 1: the next tile's K and V load into registers before S (SLOTS <= 8: k0h .. k7h)
override SLOTS: u32 = (KEY_TILE * DQP + WG - 1u) / WG;  // K (and V) quads an invocation stages per tile

@group(0) @binding(0) var<storage, read> q: array<vec4f>;
@group(0) @binding(1) var<storage, read> k: array<vec4f>;
@group(0) @binding(2) var<storage, read> v: array<vec4f>;
@group(0) @binding(4) var<uniform> u: Attention;

// Nested arrays, one per buffer or subgroup: a matrix load or store at a constant offset into an array of constant
// size is in range as compiled, so Tint's robustness emits it bare (the outer index takes one clamp); at a computed
// offset it checks the access (offset and stride through selects), and the driver sees a variable stride. WGSL sizes
// the inner arrays only by const expressions: hence `#specialize` (doppler/gpu/kernels.py), the knobs as consts.
var<workgroup> k_tile: array<array<f16, BUFFER>, 2>;  // [buffer][key][dim]
var<workgroup> v_tile: array<array<f16, BUFFER>, 2>;  // [buffer][key][dim]
var<workgroup> s_tile: array<array<f32, MATRIX * S_STRIDE>, QUERY_BLOCKS>;  // [subgroup][query][key]; O passes here
var<workgroup> p_tile: array<array<f16, MATRIX * P_STRIDE>, QUERY_BLOCKS>;  // [subgroup][query][key]; Q at the start
// [t % 2]: a row's max outgrew its running max in tile t. 16 bytes, as every workgroup variable here: the driver
// packs them, and a subgroup matrix load from an array that starts off a 16-byte boundary reads shifted elements.
var<workgroup> rescale_flag: array<u32, 4>;

// Staging sources (constants at every call, so the branches below fold away).
const FROM_K: u32 = 1u;
const FROM_V: u32 = 2u;

// Quad e of `rows` token rows of this head from row r0 of k or v (`stride` vec4s a token, the head's first vec4 at
// `base`; row e / DQP, quad e % DQP) as f16; zeros past `count` rows and past d.
fn load_quad(src: u32, e: u32, r0: u32, count: u32, base: u32, stride: u32) -> vec4<f16> {
  let row = e / DQP;
  let quad = e % DQP;
  var value = vec4f(0.0);
  if (r0 + row < count && quad < DQ) {
    let at = base + (r0 + row) * stride + quad;
    if (src == FROM_K) { value = k[at]; } else { value = v[at]; }
  }
  return vec4<f16>(value);
}

// Quad e into buffer `buf` of k_tile (K) or v_tile (V), [row][dim].
fn store_quad(src: u32, e: u32, buf: u32, h: vec4<f16>) {
  let quad = 4u * (e % DQP);
  for (var i = 0u; i < 4u; i++) {
    if (src == FROM_K) {
      k_tile[buf][(e / DQP) * STRIDE + quad + i] = h[i];
    } else {
      v_tile[buf][(e / DQP) * STRIDE + quad + i] = h[i];
    }
  }
}

// `rows` rows from r0 of k or v into buffer `buf`, by all invocations.
fn stage(src: u32, rows: u32, r0: u32, count: u32, base: u32, stride: u32, buf: u32, lid: u32) {
  for (var e = lid; e < rows * DQP; e += WG) {
    store_quad(src, e, buf, load_quad(src, e, r0, count, base, stride));
  }
}

// Where Q's rows come from: the workgroup's first query q0, the (batch, head)'s first vec4 `base`, `stride` vec4s a
// token, and the scale (times log2 e) Q is staged with.
struct QRows { q0: u32, base: u32, stride: u32, scale: f32 }

// Head-dim block c (dims 16c ..) of Q rows q0 .. q0 + BQ: where c is the first of a round of Q_BLOCKS, the workgroup
// stages blocks c .. c + Q_BLOCKS - 1 through p_tile (zeros past the queries and past d) between two barriers, the
// first ending the last round's reads (main ends the last round with a barrier of its own); `q_block` then loads a
// subgroup's left matrices. c and the constants are the same in every invocation, so the barriers are in uniform
// control flow.
fn stage_q(c: u32, r: QRows, lid: u32) {
  let quads = 4u * Q_BLOCKS;  // of a staged row
  if (c % Q_BLOCKS == 0u) {
    if (c > 0u) { workgroupBarrier(); }
    for (var e = lid; e < BQ * quads; e += WG) {
      let row = e / quads;
      let quad = 4u * c + e % quads;  // of the head's vec4s
      var value = vec4f(0.0);
      if (r.q0 + row < u.queries && quad < DQ) { value = q[r.base + (r.q0 + row) * r.stride + quad] * r.scale; }
      let h = vec4<f16>(value);
      for (var i = 0u; i < 4u; i++) { p_tile[row / MATRIX][(row % MATRIX) * P_STRIDE + 4u * (e % quads) + i] = h[i]; }
    }
    workgroupBarrier();
  }
}

// Block c of subgroup sg's 16 Q rows in p_tile, staged by stage_q.
fn q_block(c: u32, sg: u32) -> Left {
  return subgroupMatrixLoad<Left, row_major>(&p_tile[sg], MATRIX * (c % Q_BLOCKS), P_STRIDE);
}

// The register state lives in plain variables, never in arrays indexed in loops: an H100 kept such arrays of
// subgroup matrices (and of prefetched quads) in local memory. Blocks past DB (and slots past SLOTS) are
// override-constant branches the compiler drops.

fn mma(a: Left, b: Right, acc: Result) -> Result {
  return subgroupMatrixMultiplyAccumulate(a, b, acc);
}

// o with this invocation's row (its 8 columns from `at`) times alpha, through subgroup sg's s_tile.
fn rescaled(o: Result, sg: u32, at: u32, alpha: f32) -> Result {
  subgroupMatrixStore<row_major>(&s_tile[sg], 0u, o, MATRIX);
  workgroupBarrier();
  for (var c = 0u; c < 8u; c++) { s_tile[sg][at + c] *= alpha; }
  workgroupBarrier();
  let scaled = subgroupMatrixLoad<Result, row_major>(&s_tile[sg], 0u, MATRIX);
  workgroupBarrier();
  return scaled;
}

// Head-dim block i of O / total through subgroup sg's s_tile: this invocation writes its query's 8 columns from
// 8 (lane % 2).
fn emit(o: Result, i: u32, sg: u32, lane: u32, query: u32, out_row: u32, total: f32) {
  subgroupMatrixStore<row_major>(&s_tile[sg], 0u, o, MATRIX);
  workgroupBarrier();
  for (var c = 0u; c < 2u; c++) {
    let quad = 4u * i + 2u * (lane % 2u) + c;  // of the head's vec4s
    let at = (lane / 2u) * MATRIX + 4u * (2u * (lane % 2u) + c);
    let x = vec4f(s_tile[sg][at], s_tile[sg][at + 1u], s_tile[sg][at + 2u], s_tile[sg][at + 3u]);
    if (query < u.queries && quad < DQ) { store_out(out_row + quad, x / total); }
  }
  workgroupBarrier();
}

// Slot i of the next tile's K or V (zeros past the tile).
fn fetch(src: u32, i: u32, lid: u32, next: u32, kv: vec2u) -> vec4<f16> {
  return load_quad(src, lid + WG * i, next, u.keys, kv.x, kv.y);  // kv: the head's first vec4, the token stride
}

// Slot i of K or V into buffer buf.
fn put(src: u32, i: u32, lid: u32, buf: u32, h: vec4<f16>) {
  let e = lid + WG * i;
  if (e < KEY_TILE * DQP) { store_quad(src, e, buf, h); }
}

// Scores to P for this invocation's row of the subgroup's block: its 8 scores (keys k0 + 2c + half, c = 0 ..
// 7) from `s_at` of s_tile, masked where `masked` (uniform: the tile hides keys past the last or past the causal
// diagonal), P = exp2(S - m) as f16 to `p_at` of p_tile (every other half), the running max *m (both invocations of
// the row hold it; it moves only past RESCALE_SLACK, and then raises flag `buf`) and this invocation's share of the
// row sum *l updated. Returns alpha, the factor the row's O takes: 1 where m did not move.
fn scores_to_p(sg: u32, s_at: u32, p_at: u32, query: u32, key0: u32, masked: bool, buf: u32, m: ptr<function, f32>,
               l: ptr<function, f32>) -> f32 {
  let s = &s_tile[sg];
  var lo = vec4f(s[s_at], s[s_at + 2u], s[s_at + 4u], s[s_at + 6u]);
  var hi = vec4f(s[s_at + 8u], s[s_at + 10u], s[s_at + 12u], s[s_at + 14u]);
  if (masked) {
    let key_lo = key0 + vec4u(0u, 2u, 4u, 6u);  // key0: k0 + half
    let key_hi = key_lo + 8u;
    let causal = u.causal != 0u;
    lo = select(lo, vec4f(MASKED), (key_lo >= vec4u(u.keys)) | (vec4(causal) & (key_lo > vec4u(query))));
    hi = select(hi, vec4f(MASKED), (key_hi >= vec4u(u.keys)) | (vec4(causal) & (key_hi > vec4u(query))));
  }
  let both = max(lo, hi);
  var tile_max = max(max(both.x, both.y), max(both.z, both.w));
  tile_max = max(tile_max, subgroupShuffleXor(tile_max, 1u));
  var alpha = 1.0;
  if (tile_max > *m + RESCALE_SLACK) {
    alpha = exp2(*m - tile_max);
    *m = tile_max;
    rescale_flag[buf] = 1u;
  }
  let p_lo = exp2(lo - *m);
  let p_hi = exp2(hi - *m);
  *l = *l * alpha + dot(p_lo + p_hi, vec4f(1.0));
  let h_lo = vec4<f16>(p_lo);
  let h_hi = vec4<f16>(p_hi);
  let p = &p_tile[sg];
  p[p_at] = h_lo.x; p[p_at + 2u] = h_lo.y; p[p_at + 4u] = h_lo.z; p[p_at + 6u] = h_lo.w;
  p[p_at + 8u] = h_hi.x; p[p_at + 10u] = h_hi.y; p[p_at + 12u] = h_hi.z; p[p_at + 14u] = h_hi.w;
  return alpha;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let stride = u.heads * DQ;  // vec4s per token
  let head = (wg.z % u.heads) * DQ;  // first vec4 of this head
  let q0 = wg.x * BQ;
  let q_base = (wg.z / u.heads) * u.queries * stride + head;
  let kv_base = (wg.z / u.heads) * u.keys * stride + head;
  let row = lane / 2u;  // this invocation's query row of the subgroup's block of 16
  let half = lane % 2u;  // its keys: 2c + half
  let query = q0 + MATRIX * sg + row;
  // Causal: key tiles past this block's last query hold nothing any of its queries sees.
  let key_end = select(u.keys, min(u.keys, q0 + BQ), u.causal != 0u);

  // The first key tile into buffer 0; Q (scaled by scale log2 e) through p_tile into left matrices, whose barriers
  // publish the tile and free p_tile for P.
  stage(FROM_K, KEY_TILE, 0u, u.keys, kv_base, stride, 0u, lid);
  stage(FROM_V, KEY_TILE, 0u, u.keys, kv_base, stride, 0u, lid);
  if (lid == 0u) { rescale_flag[0] = 0u; rescale_flag[1] = 0u; }
  var q0m = Left(); var q1m = Left(); var q2m = Left(); var q3m = Left(); var q4m = Left();
  var q5m = Left(); var q6m = Left(); var q7m = Left(); var q8m = Left(); var q9m = Left();
  let qr = QRows(q0, q_base, stride, u.scale * LOG2E);
  stage_q(0u, qr, lid); q0m = q_block(0u, sg);
  if (DB > 1u) { stage_q(1u, qr, lid); q1m = q_block(1u, sg); }
  if (DB > 2u) { stage_q(2u, qr, lid); q2m = q_block(2u, sg); }
  if (DB > 3u) { stage_q(3u, qr, lid); q3m = q_block(3u, sg); }
  if (DB > 4u) { stage_q(4u, qr, lid); q4m = q_block(4u, sg); }
  if (DB > 5u) { stage_q(5u, qr, lid); q5m = q_block(5u, sg); }
  if (DB > 6u) { stage_q(6u, qr, lid); q6m = q_block(6u, sg); }
  if (DB > 7u) { stage_q(7u, qr, lid); q7m = q_block(7u, sg); }
  if (DB > 8u) { stage_q(8u, qr, lid); q8m = q_block(8u, sg); }
  if (DB > 9u) { stage_q(9u, qr, lid); q9m = q_block(9u, sg); }
  workgroupBarrier();  // the last round's reads of p_tile, before P's writes
  var o0 = Result(); var o1 = Result(); var o2 = Result(); var o3 = Result(); var o4 = Result();
  var o5 = Result(); var o6 = Result(); var o7 = Result(); var o8 = Result(); var o9 = Result();
  // the next tile's K and V quads, slot i: this invocation's quad lid + WG i of each
  var k0h = vec4<f16>(); var k1h = vec4<f16>(); var k2h = vec4<f16>(); var k3h = vec4<f16>();
  var k4h = vec4<f16>(); var k5h = vec4<f16>(); var k6h = vec4<f16>(); var k7h = vec4<f16>();
  var v0h = vec4<f16>(); var v1h = vec4<f16>(); var v2h = vec4<f16>(); var v3h = vec4<f16>();
  var v4h = vec4<f16>(); var v5h = vec4<f16>(); var v6h = vec4<f16>(); var v7h = vec4<f16>();

  var m = MASKED;  // running max of this row, base 2 (both invocations of a row hold it)
  var l = 0.0;  // this invocation's share of the row's sum
  var buf = 0u;  // this tile's K and V buffers
  for (var k0 = 0u; k0 < key_end; k0 += KEY_TILE) {
    let next = k0 + KEY_TILE;
    if (PREFETCH == 1u && next < key_end) {
      let kv = vec2u(kv_base, stride);
      k0h = fetch(FROM_K, 0u, lid, next, kv); v0h = fetch(FROM_V, 0u, lid, next, kv);
      if (SLOTS > 1u) { k1h = fetch(FROM_K, 1u, lid, next, kv); v1h = fetch(FROM_V, 1u, lid, next, kv); }
      if (SLOTS > 2u) { k2h = fetch(FROM_K, 2u, lid, next, kv); v2h = fetch(FROM_V, 2u, lid, next, kv); }
      if (SLOTS > 3u) { k3h = fetch(FROM_K, 3u, lid, next, kv); v3h = fetch(FROM_V, 3u, lid, next, kv); }
      if (SLOTS > 4u) { k4h = fetch(FROM_K, 4u, lid, next, kv); v4h = fetch(FROM_V, 4u, lid, next, kv); }
      if (SLOTS > 5u) { k5h = fetch(FROM_K, 5u, lid, next, kv); v5h = fetch(FROM_V, 5u, lid, next, kv); }
      if (SLOTS > 6u) { k6h = fetch(FROM_K, 6u, lid, next, kv); v6h = fetch(FROM_V, 6u, lid, next, kv); }
      if (SLOTS > 7u) { k7h = fetch(FROM_K, 7u, lid, next, kv); v7h = fetch(FROM_V, 7u, lid, next, kv); }
    }
    // 1. S = Q K^T into the subgroup's slot.
    let kt = &k_tile[buf];  // this tile's K and V; the blocks' offsets are constants (see k_tile)
    let vt = &v_tile[buf];
    var acc = mma(q0m, subgroupMatrixLoad<Right, col_major>(kt, 0u, STRIDE), Result());
    if (DB > 1u) { acc = mma(q1m, subgroupMatrixLoad<Right, col_major>(kt, 16u, STRIDE), acc); }
    if (DB > 2u) { acc = mma(q2m, subgroupMatrixLoad<Right, col_major>(kt, 32u, STRIDE), acc); }
    if (DB > 3u) { acc = mma(q3m, subgroupMatrixLoad<Right, col_major>(kt, 48u, STRIDE), acc); }
    if (DB > 4u) { acc = mma(q4m, subgroupMatrixLoad<Right, col_major>(kt, 64u, STRIDE), acc); }
    if (DB > 5u) { acc = mma(q5m, subgroupMatrixLoad<Right, col_major>(kt, 80u, STRIDE), acc); }
    if (DB > 6u) { acc = mma(q6m, subgroupMatrixLoad<Right, col_major>(kt, 96u, STRIDE), acc); }
    if (DB > 7u) { acc = mma(q7m, subgroupMatrixLoad<Right, col_major>(kt, 112u, STRIDE), acc); }
    if (DB > 8u) { acc = mma(q8m, subgroupMatrixLoad<Right, col_major>(kt, 128u, STRIDE), acc); }
    if (DB > 9u) { acc = mma(q9m, subgroupMatrixLoad<Right, col_major>(kt, 144u, STRIDE), acc); }
    subgroupMatrixStore<row_major>(&s_tile[sg], 0u, acc, S_STRIDE);
    workgroupBarrier();  // (a)

    // 2. The next tile into the other buffers; mask, row max, P; the workgroup's rescale decision.
    if (lid == 0u) { rescale_flag[1u - buf] = 0u; }
    if (next < key_end) {
      let nb = 1u - buf;
      if (PREFETCH == 1u) {
        put(FROM_K, 0u, lid, nb, k0h); put(FROM_V, 0u, lid, nb, v0h);
        if (SLOTS > 1u) { put(FROM_K, 1u, lid, nb, k1h); put(FROM_V, 1u, lid, nb, v1h); }
        if (SLOTS > 2u) { put(FROM_K, 2u, lid, nb, k2h); put(FROM_V, 2u, lid, nb, v2h); }
        if (SLOTS > 3u) { put(FROM_K, 3u, lid, nb, k3h); put(FROM_V, 3u, lid, nb, v3h); }
        if (SLOTS > 4u) { put(FROM_K, 4u, lid, nb, k4h); put(FROM_V, 4u, lid, nb, v4h); }
        if (SLOTS > 5u) { put(FROM_K, 5u, lid, nb, k5h); put(FROM_V, 5u, lid, nb, v5h); }
        if (SLOTS > 6u) { put(FROM_K, 6u, lid, nb, k6h); put(FROM_V, 6u, lid, nb, v6h); }
        if (SLOTS > 7u) { put(FROM_K, 7u, lid, nb, k7h); put(FROM_V, 7u, lid, nb, v7h); }
      } else {
        stage(FROM_K, KEY_TILE, next, u.keys, kv_base, stride, nb, lid);
        stage(FROM_V, KEY_TILE, next, u.keys, kv_base, stride, nb, lid);
      }
    }
    let masked = next > u.keys || (u.causal != 0u && next > q0 + 1u);  // uniform: does this tile hide keys?
    let alpha = scores_to_p(sg, row * S_STRIDE + half, row * P_STRIDE + half, query, k0 + half, masked, buf, &m, &l);
    let rescale = workgroupUniformLoad(&rescale_flag[buf]) != 0u;  // (b)
    if (rescale && k0 > 0u) {
      // O's rows times alpha through the subgroup's slot (every invocation read its S before (b))
      let at = row * MATRIX + 8u * half;
      o0 = rescaled(o0, sg, at, alpha);
      if (DB > 1u) { o1 = rescaled(o1, sg, at, alpha); }
      if (DB > 2u) { o2 = rescaled(o2, sg, at, alpha); }
      if (DB > 3u) { o3 = rescaled(o3, sg, at, alpha); }
      if (DB > 4u) { o4 = rescaled(o4, sg, at, alpha); }
      if (DB > 5u) { o5 = rescaled(o5, sg, at, alpha); }
      if (DB > 6u) { o6 = rescaled(o6, sg, at, alpha); }
      if (DB > 7u) { o7 = rescaled(o7, sg, at, alpha); }
      if (DB > 8u) { o8 = rescaled(o8, sg, at, alpha); }
      if (DB > 9u) { o9 = rescaled(o9, sg, at, alpha); }
    }

    // 3. O += P V.
    let pm = subgroupMatrixLoad<Left, row_major>(&p_tile[sg], 0u, P_STRIDE);
    var vb = subgroupMatrixLoad<Right, row_major>(vt, 0u, STRIDE);
    o0 = mma(pm, vb, o0);
    if (DB > 1u) { vb = subgroupMatrixLoad<Right, row_major>(vt, 16u, STRIDE); o1 = mma(pm, vb, o1); }
    if (DB > 2u) { vb = subgroupMatrixLoad<Right, row_major>(vt, 32u, STRIDE); o2 = mma(pm, vb, o2); }
    if (DB > 3u) { vb = subgroupMatrixLoad<Right, row_major>(vt, 48u, STRIDE); o3 = mma(pm, vb, o3); }
    if (DB > 4u) { vb = subgroupMatrixLoad<Right, row_major>(vt, 64u, STRIDE); o4 = mma(pm, vb, o4); }
    if (DB > 5u) { vb = subgroupMatrixLoad<Right, row_major>(vt, 80u, STRIDE); o5 = mma(pm, vb, o5); }
    if (DB > 6u) { vb = subgroupMatrixLoad<Right, row_major>(vt, 96u, STRIDE); o6 = mma(pm, vb, o6); }
    if (DB > 7u) { vb = subgroupMatrixLoad<Right, row_major>(vt, 112u, STRIDE); o7 = mma(pm, vb, o7); }
    if (DB > 8u) { vb = subgroupMatrixLoad<Right, row_major>(vt, 128u, STRIDE); o8 = mma(pm, vb, o8); }
    if (DB > 9u) { vb = subgroupMatrixLoad<Right, row_major>(vt, 144u, STRIDE); o9 = mma(pm, vb, o9); }
    buf = 1u - buf;
  }

  // out = O / l, block by block through the slot (every invocation read its last S before the last (b)).
  let total = l + subgroupShuffleXor(l, 1u);
  let out_row = q_base + query * stride;
  emit(o0, 0u, sg, lane, query, out_row, total);
  if (DB > 1u) { emit(o1, 1u, sg, lane, query, out_row, total); }
  if (DB > 2u) { emit(o2, 2u, sg, lane, query, out_row, total); }
  if (DB > 3u) { emit(o3, 3u, sg, lane, query, out_row, total); }
  if (DB > 4u) { emit(o4, 4u, sg, lane, query, out_row, total); }
  if (DB > 5u) { emit(o5, 5u, sg, lane, query, out_row, total); }
  if (DB > 6u) { emit(o6, 6u, sg, lane, query, out_row, total); }
  if (DB > 7u) { emit(o7, 7u, sg, lane, query, out_row, total); }
  if (DB > 8u) { emit(o8, 8u, sg, lane, query, out_row, total); }
  if (DB > 9u) { emit(o9, 9u, sg, lane, query, out_row, total); }
}
