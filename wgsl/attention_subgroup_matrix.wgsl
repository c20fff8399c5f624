// Attention on tensor cores for heads of HEAD_DIM <= 160, a multiple of 4: scaled dot-product attention with an
// online softmax (flash-attention style: the Tq x Tk scores never exist in memory), both products summed by
// f16 x f16 -> f32 subgroup matrices (16 x 16 x 16). Per batch b and head h (channels h*d .. h*d+d of each token, as
// diffusers' head_to_batch_dim splits them):
//   out[b,i,h*d+j] = sum_k softmax_k(scale * q[b,i,h*d:] . k[b,k,h*d:]) v[b,k,h*d+j]
// causal (Tq = Tk): key k is seen by query i only when k <= i.
// Precision: Q (scaled by scale log2 e) is rounded to f16 as it is staged, K and V arrive as f16 (ops/attention.py
//   rounds them once per call), P is rounded to f16; S, O, the running max m and the row sums l are f32.
//
// A workgroup takes BQ = 16 QUERY_BLOCKS queries of one (b, h); subgroup s (SUBGROUP = 32 invocations, named by
// @builtin(subgroup_id)) owns queries 16s .. 16s+15, all head columns, and holds its Q as DB = ceil(d / 16) left
// matrices (staged once through p_tile, zeros past d) and its O as DB result matrices. K and V are never staged:
// each subgroup loads its matrices straight from k and v (K^T blocks column-major, V blocks row-major, a token's
// channels apart), so no workgroup memory holds them and the subgroups of a workgroup share only the cache lines of
// K and V they read at about the same time. A block past d reads the next head's dims (or the next token's): finite,
// and Q's zeros cancel them in S, and O's columns past d are never written. Keys past Tk read the next batch's or
// the pad rows that ops/attention.py appends to k and v (KEY_TILE rows of zeros: a matrix load that runs past its
// binding loads zeros whole, valid keys included), and are masked. Per key tile of KEY_TILE keys, two barriers:
//   1. S (16 x KEY_TILE) = Q K^T: KEY_TILE / 16 result matrices into the subgroup's slot of s_tile; barrier (a).
//   2. The subgroup's invocations take its rows: invocation t has row t / 2 and the keys 2c + t % 2 (S_STRIDE is 4
//      mod 32 words: the 32 read 16 banks). Masked keys (past the last, or past the causal diagonal; only tiles that
//      reach them check) score MASKED. Row maxima merge over the pair with one shuffle. Lazy rescale: a row's running
//      max m moves only when the tile's max passes it by more than RESCALE_SLACK; otherwise P = exp2(S - m) may
//      reach 2^RESCALE_SLACK, exact in f16 and f32 (the final division by l cancels it). P (f16) into the
//      subgroup's slot of p_tile. A moving row raises this tile's flag, which workgroupUniformLoad reads back
//      (barrier (b), which also publishes P); then, if any row moved (past the first tile, where O is zero), O's rows
//      scale by exp2(m_old - m_new) block by block through the slot of s_tile (store, barrier, scale, barrier, load).
//   3. O += P V: KEY_TILE / 16 left matrices of P, DB right matrices of V each.
// Slots are reused safely: a tile's S stores follow barrier (b) of the tile before, past every read of its S; P is
// rewritten after barrier (a), past the subgroup's own loads of it; the flag raised two tiles before is reset after
// (a), which every subgroup reaches only after reading it.
// At the end O / l leaves block by block through the slot (invocation t: row t / 2, columns 8 (t % 2) ..).
//
// Layouts: q (B, Tq, heads*d) f32 bound as vec4s; k and v (B, Tk, heads*d) f16 followed by KEY_TILE pad rows of
// zeros; out (B, Tq, heads*d) f32 as vec4s; all row-major.
// Bindings: 0 q, 1 k, 2 v, 3 out, 4 uniform Attention (as attention_rows.wgsl).
// Dispatch: (ceil(Tq / BQ), 1, B * heads), workgroups of 32 QUERY_BLOCKS invocations. Needs shader-f16, subgroups of
// exactly 32 and chromium-experimental-subgroup-matrix with the f16>f32 16x16x16 config.

enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;

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
override QUERY_BLOCKS: u32 = 4u;  // subgroups per workgroup, 16 queries each
override KEY_TILE: u32 = 32u;  // keys per tile: 16, 32, 48 or 64

override DQ: u32 = HEAD_DIM / 4u;  // vec4s per head row of q and out
override DB: u32 = (HEAD_DIM + MATRIX - 1u) / MATRIX;  // head-dim blocks
override DQP: u32 = DB * 4u;  // vec4s per staged row of Q, zeros past DQ
override BQ: u32 = MATRIX * QUERY_BLOCKS;  // queries per workgroup
override WG: u32 = SUBGROUP * QUERY_BLOCKS;
override KEY_BLOCKS: u32 = KEY_TILE / MATRIX;
override S_STRIDE: u32 = KEY_TILE + 4u;  // f32 per score row: a multiple of 16 bytes, 4 mod 32 words (2-way reads)
override P_STRIDE: u32 = max(KEY_TILE, DB * MATRIX) + 8u;  // halves per P row (and Q's, staged there first)
override PAIRS: u32 = KEY_TILE / 2u;  // keys an invocation scores per tile

@group(0) @binding(0) var<storage, read> q: array<vec4f>;
@group(0) @binding(1) var<storage, read> k: array<f16>;
@group(0) @binding(2) var<storage, read> v: array<f16>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(4) var<uniform> u: Attention;

var<workgroup> s_tile: array<f32, QUERY_BLOCKS * MATRIX * S_STRIDE>;  // per subgroup [query][key]; O blocks pass here
var<workgroup> p_tile: array<f16, BQ * P_STRIDE>;  // per subgroup [query][key]; Q's [query][dim] at the start
// [t % 2]: a row's max outgrew its running max in tile t. 16 bytes, as every workgroup variable here: the driver
// packs them, and a subgroup matrix load from an array that starts off a 16-byte boundary reads shifted elements.
var<workgroup> rescale_flag: array<u32, 4>;

// The workgroup's BQ query rows from q0 (the head's first vec4 at `base`, `stride` vec4s a token) into p_tile as f16
// [row][dim], times `scale`; zeros past Tq and past d.
fn stage_q(lid: u32, q0: u32, base: u32, stride: u32, scale: f32) {
  for (var e = lid; e < BQ * DQP; e += WG) {
    let row = e / DQP;
    let quad = e % DQP;
    var value = vec4f(0.0);
    if (q0 + row < u.queries && quad < DQ) { value = q[base + (q0 + row) * stride + quad] * scale; }
    let h = vec4<f16>(value);
    let at = row * P_STRIDE + 4u * quad;
    p_tile[at] = h.x; p_tile[at + 1u] = h.y; p_tile[at + 2u] = h.z; p_tile[at + 3u] = h.w;
  }
}

// The register state lives in plain variables, never in arrays indexed in loops: an H100 kept such arrays of
// subgroup matrices in local memory. Blocks past DB are override-constant branches the compiler drops.

// acc + Q block qb times the K block of 16 keys from element `at` of k (`channels` apart), transposed.
fn qk(qb: Left, at: u32, channels: u32, acc: Result) -> Result {
  return subgroupMatrixMultiplyAccumulate(qb, subgroupMatrixLoad<Right, col_major>(&k, at, channels), acc);
}

// o + P block pb times the V block of 16 keys from element `at` of v.
fn pv(pb: Left, at: u32, channels: u32, o: Result) -> Result {
  return subgroupMatrixMultiplyAccumulate(pb, subgroupMatrixLoad<Right, row_major>(&v, at, channels), o);
}

// o with this invocation's row (its 8 columns from `at`) times alpha, through the subgroup's slot of s_tile.
fn rescaled(o: Result, slot: u32, at: u32, alpha: f32) -> Result {
  subgroupMatrixStore<row_major>(&s_tile, slot, o, MATRIX);
  workgroupBarrier();
  for (var c = 0u; c < 8u; c++) { s_tile[at + c] *= alpha; }
  workgroupBarrier();
  let scaled = subgroupMatrixLoad<Result, row_major>(&s_tile, slot, MATRIX);
  workgroupBarrier();
  return scaled;
}

// Head-dim block i of O / total through the slot: this invocation writes its query's 8 columns from 8 (lane % 2).
fn emit(o: Result, i: u32, slot: u32, lane: u32, query: u32, out_row: u32, total: f32) {
  subgroupMatrixStore<row_major>(&s_tile, slot, o, MATRIX);
  workgroupBarrier();
  for (var c = 0u; c < 2u; c++) {
    let quad = 4u * i + 2u * (lane % 2u) + c;  // of the head's vec4s
    let at = slot + (lane / 2u) * MATRIX + 4u * (2u * (lane % 2u) + c);
    let x = vec4f(s_tile[at], s_tile[at + 1u], s_tile[at + 2u], s_tile[at + 3u]);
    if (query < u.queries && quad < DQ) { out[out_row + quad] = x / total; }
  }
  workgroupBarrier();
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let channels = u.heads * HEAD_DIM;  // halves per token of k and v
  let stride = channels / 4u;  // vec4s per token of q and out
  let head = wg.z % u.heads;
  let batch = wg.z / u.heads;
  let q0 = wg.x * BQ;
  let q_base = batch * u.queries * stride + head * DQ;
  let kv_base = batch * u.keys * channels + head * HEAD_DIM;
  let row = lane / 2u;  // this invocation's query row of the subgroup's 16
  let half = lane % 2u;  // its keys: 2c + half
  let query = q0 + MATRIX * sg + row;
  let slot_s = sg * MATRIX * S_STRIDE;
  let slot_p = sg * MATRIX * P_STRIDE;
  // Causal: key tiles past this block's last query hold nothing any of its queries sees.
  let key_end = select(u.keys, min(u.keys, q0 + BQ), u.causal != 0u);

  // Q (scaled by scale log2 e) through p_tile into left matrices. P overwrites Q only after barrier (a) of the first
  // tile, past the subgroup's loads of it.
  stage_q(lid, q0, q_base, stride, u.scale * LOG2E);
  if (lid == 0u) { rescale_flag[0] = 0u; rescale_flag[1] = 0u; }
  workgroupBarrier();
  var q0m = Left(); var q1m = Left(); var q2m = Left(); var q3m = Left(); var q4m = Left();
  var q5m = Left(); var q6m = Left(); var q7m = Left(); var q8m = Left(); var q9m = Left();
  q0m = subgroupMatrixLoad<Left, row_major>(&p_tile, slot_p, P_STRIDE);
  if (DB > 1u) { q1m = subgroupMatrixLoad<Left, row_major>(&p_tile, slot_p + 16u, P_STRIDE); }
  if (DB > 2u) { q2m = subgroupMatrixLoad<Left, row_major>(&p_tile, slot_p + 32u, P_STRIDE); }
  if (DB > 3u) { q3m = subgroupMatrixLoad<Left, row_major>(&p_tile, slot_p + 48u, P_STRIDE); }
  if (DB > 4u) { q4m = subgroupMatrixLoad<Left, row_major>(&p_tile, slot_p + 64u, P_STRIDE); }
  if (DB > 5u) { q5m = subgroupMatrixLoad<Left, row_major>(&p_tile, slot_p + 80u, P_STRIDE); }
  if (DB > 6u) { q6m = subgroupMatrixLoad<Left, row_major>(&p_tile, slot_p + 96u, P_STRIDE); }
  if (DB > 7u) { q7m = subgroupMatrixLoad<Left, row_major>(&p_tile, slot_p + 112u, P_STRIDE); }
  if (DB > 8u) { q8m = subgroupMatrixLoad<Left, row_major>(&p_tile, slot_p + 128u, P_STRIDE); }
  if (DB > 9u) { q9m = subgroupMatrixLoad<Left, row_major>(&p_tile, slot_p + 144u, P_STRIDE); }
  var o0 = Result(); var o1 = Result(); var o2 = Result(); var o3 = Result(); var o4 = Result();
  var o5 = Result(); var o6 = Result(); var o7 = Result(); var o8 = Result(); var o9 = Result();

  var m = MASKED;  // running max of this row, base 2 (both invocations of a row hold it)
  var l = 0.0;  // this invocation's share of the row's sum
  var flag = 0u;  // this tile's rescale flag: tile parity
  for (var k0 = 0u; k0 < key_end; k0 += KEY_TILE) {
    let next = k0 + KEY_TILE;
    // 1. S = Q K^T into the subgroup's slot.
    for (var j = 0u; j < KEY_BLOCKS; j++) {
      let at = kv_base + (k0 + MATRIX * j) * channels;
      var acc = qk(q0m, at, channels, Result());
      if (DB > 1u) { acc = qk(q1m, at + 16u, channels, acc); }
      if (DB > 2u) { acc = qk(q2m, at + 32u, channels, acc); }
      if (DB > 3u) { acc = qk(q3m, at + 48u, channels, acc); }
      if (DB > 4u) { acc = qk(q4m, at + 64u, channels, acc); }
      if (DB > 5u) { acc = qk(q5m, at + 80u, channels, acc); }
      if (DB > 6u) { acc = qk(q6m, at + 96u, channels, acc); }
      if (DB > 7u) { acc = qk(q7m, at + 112u, channels, acc); }
      if (DB > 8u) { acc = qk(q8m, at + 128u, channels, acc); }
      if (DB > 9u) { acc = qk(q9m, at + 144u, channels, acc); }
      subgroupMatrixStore<row_major>(&s_tile, slot_s + MATRIX * j, acc, S_STRIDE);
    }
    workgroupBarrier();  // (a)

    // 2. Mask, row max, P; the workgroup's rescale decision.
    if (lid == 0u) { rescale_flag[1u - flag] = 0u; }
    let masked = next > u.keys || (u.causal != 0u && next > q0 + 1u);  // uniform: does this tile hide keys?
    let s_row = slot_s + row * S_STRIDE + half;
    var tile_max = MASKED;
    for (var c = 0u; c < PAIRS; c++) {
      let key = k0 + 2u * c + half;
      let hidden = masked && (key >= u.keys || (u.causal != 0u && key > query));
      tile_max = max(tile_max, select(s_tile[s_row + 2u * c], MASKED, hidden));
    }
    tile_max = max(tile_max, subgroupShuffleXor(tile_max, 1u));
    let grows = tile_max > m + RESCALE_SLACK;
    var alpha = 1.0;
    if (grows) {
      alpha = exp2(m - tile_max);
      m = tile_max;
      rescale_flag[flag] = 1u;
    }
    l *= alpha;
    for (var c = 0u; c < PAIRS; c++) {  // S read again from the slot: cheaper than holding it in registers
      let key = k0 + 2u * c + half;
      let hidden = masked && (key >= u.keys || (u.causal != 0u && key > query));
      let p = exp2(select(s_tile[s_row + 2u * c], MASKED, hidden) - m);
      l += p;
      p_tile[slot_p + row * P_STRIDE + 2u * c + half] = f16(p);
    }
    let rescale = workgroupUniformLoad(&rescale_flag[flag]) != 0u;  // (b)
    if (rescale && k0 > 0u) {
      // O's rows times alpha through the slot (every invocation read its S before (b))
      let at = slot_s + row * MATRIX + 8u * half;
      o0 = rescaled(o0, slot_s, at, alpha);
      if (DB > 1u) { o1 = rescaled(o1, slot_s, at, alpha); }
      if (DB > 2u) { o2 = rescaled(o2, slot_s, at, alpha); }
      if (DB > 3u) { o3 = rescaled(o3, slot_s, at, alpha); }
      if (DB > 4u) { o4 = rescaled(o4, slot_s, at, alpha); }
      if (DB > 5u) { o5 = rescaled(o5, slot_s, at, alpha); }
      if (DB > 6u) { o6 = rescaled(o6, slot_s, at, alpha); }
      if (DB > 7u) { o7 = rescaled(o7, slot_s, at, alpha); }
      if (DB > 8u) { o8 = rescaled(o8, slot_s, at, alpha); }
      if (DB > 9u) { o9 = rescaled(o9, slot_s, at, alpha); }
    }

    // 3. O += P V.
    for (var j = 0u; j < KEY_BLOCKS; j++) {
      let pm = subgroupMatrixLoad<Left, row_major>(&p_tile, slot_p + MATRIX * j, P_STRIDE);
      let at = kv_base + (k0 + MATRIX * j) * channels;
      o0 = pv(pm, at, channels, o0);
      if (DB > 1u) { o1 = pv(pm, at + 16u, channels, o1); }
      if (DB > 2u) { o2 = pv(pm, at + 32u, channels, o2); }
      if (DB > 3u) { o3 = pv(pm, at + 48u, channels, o3); }
      if (DB > 4u) { o4 = pv(pm, at + 64u, channels, o4); }
      if (DB > 5u) { o5 = pv(pm, at + 80u, channels, o5); }
      if (DB > 6u) { o6 = pv(pm, at + 96u, channels, o6); }
      if (DB > 7u) { o7 = pv(pm, at + 112u, channels, o7); }
      if (DB > 8u) { o8 = pv(pm, at + 128u, channels, o8); }
      if (DB > 9u) { o9 = pv(pm, at + 144u, channels, o9); }
    }
    flag = 1u - flag;
  }

  // out = O / l, block by block through the slot (every invocation read its last S before the last (b)).
  let total = l + subgroupShuffleXor(l, 1u);
  let out_row = q_base + query * stride;
  emit(o0, 0u, slot_s, lane, query, out_row, total);
  if (DB > 1u) { emit(o1, 1u, slot_s, lane, query, out_row, total); }
  if (DB > 2u) { emit(o2, 2u, slot_s, lane, query, out_row, total); }
  if (DB > 3u) { emit(o3, 3u, slot_s, lane, query, out_row, total); }
  if (DB > 4u) { emit(o4, 4u, slot_s, lane, query, out_row, total); }
  if (DB > 5u) { emit(o5, 5u, slot_s, lane, query, out_row, total); }
  if (DB > 6u) { emit(o6, 6u, slot_s, lane, query, out_row, total); }
  if (DB > 7u) { emit(o7, 7u, slot_s, lane, query, out_row, total); }
  if (DB > 8u) { emit(o8, 8u, slot_s, lane, query, out_row, total); }
  if (DB > 9u) { emit(o9, 9u, slot_s, lane, query, out_row, total); }
}
