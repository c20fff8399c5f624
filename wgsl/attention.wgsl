// Scaled dot-product attention with an online softmax (flash-attention style: the Tq x Tk scores never exist in
// memory). Per batch b and head h, with channels h*d .. h*d+d of each token (diffusers' head_to_batch_dim split):
//   out[b,i,h*d+j] = sum_k softmax_k(scale * q[b,i,h*d:] . k[b,k,h*d:]) v[b,k,h*d+j]
// causal (Tq = Tk): key k is seen by query i only when k <= i.
//
// A workgroup takes BQ queries of one (b, h) and DV of the head's output columns, and walks the keys in tiles of BK:
//   1. scores S (BQ x BK) = (scale * log2 e) Q K^T, Q and K staged through workgroup memory DC head dims at a time;
//   2. one thread per query row: running max m and sum l in base 2; P = exp2(S - m_new), alpha = exp2(m_old - m_new);
//   3. O = alpha O + P V, V staged VC keys at a time.
// At the end out = O / l. Head dims beyond 16 * MV_MAX run as several column chunks (each recomputes S).
// Threads form a 16 x 16 grid (tq, tk|tv): thread tq owns queries 4tq..4tq+3 (vec4 lanes); for S it owns keys
// tk + 16 jk, for O the columns tv + 16 c, so neighbouring threads touch neighbouring words of workgroup memory.
//
// Layouts: q (B, Tq, heads*d), k and v (B, Tk, heads*d), out (B, Tq, heads*d), all f32, row-major.
// Bindings: 0 q, 1 k, 2 v, 3 out, 4 uniform Attention.
// Dispatch: (ceil(Tq / BQ), ceil(d / (16 MV)), B * heads).

struct Attention { queries: u32, keys: u32, heads: u32, head_dim: u32, scale: f32, causal: u32 }

override MV: u32 = 4u;  // output columns per thread: DV = 16 * MV per workgroup, MV <= MV_MAX

const GRID: u32 = 16u;  // threads per side of the thread grid
const BQ: u32 = 64u;  // queries per workgroup: GRID threads x 4 vec4 lanes
const BK: u32 = 32u;  // keys per tile
const MK: u32 = 2u;  // keys per thread in S: BK / GRID
const DC: u32 = 16u;  // head dims per staged chunk of Q and K
const VC: u32 = 8u;  // keys per staged chunk of V
const MV_MAX: u32 = 8u;
const LOG2E: f32 = 1.4426950408889634;
const MASKED: f32 = -1.0e30;  // score of a key a query must not see; exp2 of it (less any max) is 0

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> u: Attention;

var<workgroup> q_tile: array<vec4f, DC * BQ / 4u>;  // [dim][query / 4]
var<workgroup> kv_tile: array<f32, VC * GRID * MV_MAX>;  // K chunk [dim][key] or V chunk [key][column]
var<workgroup> p_tile: array<vec4f, BK * BQ / 4u>;  // [key][query / 4]: scores, then probabilities
var<workgroup> row_max: array<f32, BQ>;
var<workgroup> row_sum: array<f32, BQ>;
var<workgroup> row_scale: array<f32, BQ>;

@compute @workgroup_size(GRID * GRID)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tq = lid / GRID;
  let tk = lid % GRID;
  let d = u.head_dim;
  let stride = u.heads * d;  // floats per token
  let b = wg.z / u.heads;
  let head = (wg.z % u.heads) * d;  // first channel of this head
  let q0 = wg.x * BQ;
  let dv = GRID * MV;
  let v0 = wg.y * dv;  // first output column of this workgroup, within the head
  let q_base = b * u.queries * stride + head;
  let kv_base = b * u.keys * stride + head;
  let scale = u.scale * LOG2E;

  if (lid < BQ) {
    row_max[lid] = MASKED;
    row_sum[lid] = 0.0;
  }
  var acc: array<vec4f, MV_MAX>;  // acc[c]: column tv + 16 c of queries 4tq..4tq+3
  var s: array<vec4f, MK>;  // s[j]: key tk + 16 j of queries 4tq..4tq+3
  // Causal: key tiles past this block's last query hold nothing any of its queries sees.
  let key_end = select(u.keys, min(u.keys, q0 + BQ), u.causal != 0u);

  for (var k0 = 0u; k0 < key_end; k0 += BK) {
    // 1. S = scale Q K^T over the head dims, DC at a time.
    for (var j = 0u; j < MK; j++) { s[j] = vec4f(0.0); }
    for (var c0 = 0u; c0 < d; c0 += DC) {
      for (var e = lid; e < BQ * DC; e += GRID * GRID) {
        let row = e / DC;
        let dim = c0 + e % DC;
        var value = 0.0;
        if (q0 + row < u.queries && dim < d) { value = q[q_base + (q0 + row) * stride + dim] * scale; }
        q_tile[(e % DC) * (BQ / 4u) + row / 4u][row % 4u] = value;
      }
      for (var e = lid; e < BK * DC; e += GRID * GRID) {
        let key = e / DC;
        let dim = c0 + e % DC;
        var value = 0.0;
        if (k0 + key < u.keys && dim < d) { value = k[kv_base + (k0 + key) * stride + dim]; }
        kv_tile[(e % DC) * BK + key] = value;
      }
      workgroupBarrier();
      for (var dim = 0u; dim < DC; dim++) {
        let a = q_tile[dim * (BQ / 4u) + tq];
        for (var j = 0u; j < MK; j++) { s[j] += a * kv_tile[dim * BK + tk + GRID * j]; }
      }
      workgroupBarrier();
    }
    let query = vec4u(q0 + 4u * tq) + vec4u(0u, 1u, 2u, 3u);
    for (var j = 0u; j < MK; j++) {
      let key = k0 + tk + GRID * j;
      let hidden = vec4<bool>(key >= u.keys) | (vec4<bool>(u.causal != 0u) & (vec4u(key) > query));
      p_tile[(tk + GRID * j) * (BQ / 4u) + tq] = select(s[j], vec4f(MASKED), hidden);
    }
    workgroupBarrier();

    // 2. Online softmax, one thread per query row.
    if (lid < BQ) {
      let m_old = row_max[lid];
      var m = m_old;
      for (var j = 0u; j < BK; j++) { m = max(m, p_tile[j * (BQ / 4u) + lid / 4u][lid % 4u]); }
      var l = 0.0;
      for (var j = 0u; j < BK; j++) {
        let p = exp2(p_tile[j * (BQ / 4u) + lid / 4u][lid % 4u] - m);
        p_tile[j * (BQ / 4u) + lid / 4u][lid % 4u] = p;
        l += p;
      }
      let alpha = exp2(m_old - m);
      row_scale[lid] = alpha;
      row_sum[lid] = row_sum[lid] * alpha + l;
      row_max[lid] = m;
    }
    workgroupBarrier();

    // 3. O = alpha O + P V over this tile's keys, VC at a time.
    let alpha = vec4f(row_scale[4u * tq], row_scale[4u * tq + 1u], row_scale[4u * tq + 2u], row_scale[4u * tq + 3u]);
    for (var c = 0u; c < MV; c++) { acc[c] *= alpha; }
    for (var j0 = 0u; j0 < BK; j0 += VC) {
      for (var e = lid; e < VC * dv; e += GRID * GRID) {
        let key = k0 + j0 + e / dv;
        let col = v0 + e % dv;
        var value = 0.0;
        if (key < u.keys && col < d) { value = v[kv_base + key * stride + col]; }
        kv_tile[e] = value;
      }
      workgroupBarrier();
      for (var j = 0u; j < VC; j++) {
        let p = p_tile[(j0 + j) * (BQ / 4u) + tq];
        for (var c = 0u; c < MV; c++) { acc[c] += p * kv_tile[j * dv + tk + GRID * c]; }
      }
      workgroupBarrier();
    }
  }

  let l = vec4f(row_sum[4u * tq], row_sum[4u * tq + 1u], row_sum[4u * tq + 2u], row_sum[4u * tq + 3u]);
  for (var c = 0u; c < MV; c++) {
    let col = v0 + tk + GRID * c;
    if (col < d) {
      let o = acc[c] / l;
      for (var i = 0u; i < 4u; i++) {
        if (q0 + 4u * tq + i < u.queries) { out[q_base + (q0 + 4u * tq + i) * stride + col] = o[i]; }
      }
    }
  }
}
