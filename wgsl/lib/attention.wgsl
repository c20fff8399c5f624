// Attention core for heads of HEAD_DIM <= 80, a multiple of 4 (every UNet and CLIP head): scaled dot-product
// attention with an online softmax (flash-attention style: the Tq x Tk scores never exist in memory). Per batch b
// and head h, with channels h*d .. h*d+d of each token (diffusers' head_to_batch_dim split):
//   out[b,i,h*d+j] = sum_k softmax_k(scale * q[b,i,h*d:] . k[b,k,h*d:]) v[b,k,h*d+j]
// causal (Tq = Tk): key k is seen by query i only when k <= i.
//
// A workgroup takes BQ = 4 ROW_GROUPS queries of one (b, h), all d output columns, and walks the keys in tiles of
// KEY_TILE. Its Q block is staged once, scaled by scale log2(e), and stays in workgroup memory for the whole walk.
// Threads: ROW_GROUPS groups of LANES = 4 consecutive invocations (one subgroup holds whole groups: subgroups are
// at least 4 wide). Group g owns queries 4g .. 4g+3; its lane t holds, for those 4 queries,
//   the scores of keys 4(t + 4i) + c of the tile (i < KEY_TILE / 16, c < 4): vec4s over the 4 queries;
//   the output column quads t + 4c (c < ceil(d / 16)): vec4s over columns, one per query.
// Per key tile: 1. stage K (transposed, [dim][key]) and V ([key][column]) with vec4 loads, barrier;
//   2. S = Q K^T; the tile's row maxima merge over the group's 4 lanes with row_max (the includer's: subgroup
//      shuffles or workgroup memory), the running max m moves, O and the lane's share of the row sums l scale by
//      exp2(m_old - m_new), P = exp2(S - m_new) goes to workgroup memory ([key][query]), barrier;
//   3. O += P V, barrier. At the end out = O / l, l summed over the group's lanes with row_sum.
// The includer declares row_max(x, lid) and row_sum(x, lid): per query of x (a vec4 over the group's 4 queries),
// the max / sum over the 4 lanes of the group, returned to each of them; called in uniform control flow.
//
// Layouts: q (B, Tq, heads*d), k and v (B, Tk, heads*d), out (B, Tq, heads*d), all f32, row-major, bound as vec4s.
// Bindings: 0 q, 1 k, 2 v, 3 out, 4 uniform Attention.
// Dispatch: (ceil(Tq / BQ), 1, B * heads), workgroups of LANES * ROW_GROUPS invocations.

#include "lib/attention_uniform.wgsl"

override HEAD_DIM: u32 = 40u;  // d: a multiple of 4, at most 4 LANES QUADS_MAX
override ROW_GROUPS: u32 = 16u;  // groups of 4 queries per workgroup
override KEY_TILE: u32 = 16u;  // keys per tile: a multiple of 4 LANES, at most LANES KEYS_MAX

override DQ: u32 = HEAD_DIM / 4u;  // vec4s per head row
override NV: u32 = (DQ + LANES - 1u) / LANES;  // output column quads per lane
override KT: u32 = KEY_TILE / LANES;  // keys per lane in S
override WG: u32 = LANES * ROW_GROUPS;
override P_ROW: u32 = ROW_GROUPS + 1u;  // p_tile row: one vec4 of padding spreads a group's 4 lanes' stores over banks

const LANES: u32 = 4u;  // invocations per group of 4 queries
const QUADS_MAX: u32 = 5u;  // NV <= 5: heads up to 80
const KEYS_MAX: u32 = 16u;  // KT <= 16: key tiles up to 64
const LOG2E: f32 = 1.4426950408889634;
const MASKED: f32 = -1.0e30;  // score of a key a query must not see; exp2 of it (less any max) is 0

@group(0) @binding(0) var<storage, read> q: array<vec4f>;
@group(0) @binding(1) var<storage, read> k: array<vec4f>;
@group(0) @binding(2) var<storage, read> v: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(4) var<uniform> u: Attention;

var<workgroup> q_tile: array<vec4f, HEAD_DIM * ROW_GROUPS>;  // [dim][query / 4], scaled
var<workgroup> k_tile: array<vec4f, HEAD_DIM * KEY_TILE / 4u>;  // [dim][key / 4]
var<workgroup> v_tile: array<vec4f, KEY_TILE * LANES * NV>;  // [key][column / 4], rows padded to LANES NV quads
var<workgroup> p_tile: array<vec4f, KEY_TILE * P_ROW>;  // [key][query / 4]

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let group = lid / LANES;
  let lane = lid % LANES;
  let bq = 4u * ROW_GROUPS;
  let stride = u.heads * DQ;  // vec4s per token
  let head = (wg.z % u.heads) * DQ;  // first vec4 of this head
  let q0 = wg.x * bq;
  let q_base = (wg.z / u.heads) * u.queries * stride + head;
  let kv_base = (wg.z / u.heads) * u.keys * stride + head;
  let query = vec4u(q0 + 4u * group) + vec4u(0u, 1u, 2u, 3u);  // this group's queries
  let kq = KEY_TILE / 4u;  // vec4s per k_tile row
  let vq = LANES * NV;  // vec4s per v_tile row

  let scale = u.scale * LOG2E;
  // Consecutive invocations take consecutive queries: their scalar stores into the transposed tile hit distinct banks.
  for (var e = lid; e < bq * DQ; e += WG) {
    let row = e % bq;
    let quad = e / bq;
    var x = vec4f(0.0);
    if (q0 + row < u.queries) { x = q[q_base + (q0 + row) * stride + quad] * scale; }
    for (var i = 0u; i < 4u; i++) { q_tile[(4u * quad + i) * ROW_GROUPS + row / 4u][row % 4u] = x[i]; }
  }

  var m = vec4f(MASKED);  // running max of each query, base 2
  var l = vec4f(0.0);  // this lane's share of each query's sum
  var acc: array<vec4f, 4u * QUADS_MAX>;  // acc[QUADS_MAX r + c]: column quad lane + 4c of query r of the group
  var s: array<vec4f, KEYS_MAX>;  // s[4i + c]: key 4(lane + 4i) + c of the group's 4 queries
  for (var r = 0u; r < 4u; r++) {
    for (var c = 0u; c < NV; c++) { acc[QUADS_MAX * r + c] = vec4f(0.0); }
  }
  // Causal: key tiles past this block's last query hold nothing any of its queries sees.
  let key_end = select(u.keys, min(u.keys, q0 + bq), u.causal != 0u);

  for (var k0 = 0u; k0 < key_end; k0 += KEY_TILE) {
    // 1. Stage the tile's keys and values (zeros past the last key). K: consecutive invocations take consecutive
    //    keys, so the transposed scalar stores hit distinct banks; V: consecutive quads of a key, as in memory.
    for (var e = lid; e < KEY_TILE * DQ; e += WG) {
      let key = e % KEY_TILE;
      let quad = e / KEY_TILE;
      var kx = vec4f(0.0);
      if (k0 + key < u.keys) { kx = k[kv_base + (k0 + key) * stride + quad]; }
      for (var i = 0u; i < 4u; i++) { k_tile[(4u * quad + i) * kq + key / 4u][key % 4u] = kx[i]; }
      let v_key = e / DQ;
      let v_quad = e % DQ;
      var vx = vec4f(0.0);
      if (k0 + v_key < u.keys) { vx = v[kv_base + (k0 + v_key) * stride + v_quad]; }
      v_tile[v_key * vq + v_quad] = vx;
    }
    workgroupBarrier();

    // 2. S = Q K^T (Q carries scale log2 e), masked; the online softmax's rescale; P to workgroup memory.
    for (var j = 0u; j < KT; j++) { s[j] = vec4f(0.0); }  // zeroed here: naga does not re-zero loop locals
    for (var dim = 0u; dim < HEAD_DIM; dim++) {
      let qv = q_tile[dim * ROW_GROUPS + group];
      for (var i = 0u; i < KT / 4u; i++) {
        let kv = k_tile[dim * kq + lane + LANES * i];
        for (var c = 0u; c < 4u; c++) { s[4u * i + c] = fma(qv, vec4f(kv[c]), s[4u * i + c]); }
      }
    }
    var tile_max = m;
    for (var j = 0u; j < KT; j++) {
      let key = k0 + 4u * (lane + LANES * (j / 4u)) + j % 4u;
      let hidden = vec4<bool>(key >= u.keys) | (vec4<bool>(u.causal != 0u) & (vec4u(key) > query));
      s[j] = select(s[j], vec4f(MASKED), hidden);
      tile_max = max(tile_max, s[j]);
    }
    let m_new = row_max(tile_max, lid);
    let alpha = exp2(m - m_new);
    m = m_new;
    l *= alpha;
    for (var r = 0u; r < 4u; r++) {
      for (var c = 0u; c < NV; c++) { acc[QUADS_MAX * r + c] *= alpha[r]; }
    }
    for (var j = 0u; j < KT; j++) {
      let p = exp2(s[j] - m_new);
      l += p;
      p_tile[(4u * (lane + LANES * (j / 4u)) + j % 4u) * P_ROW + group] = p;
    }
    workgroupBarrier();

    // 3. O += P V.
    for (var key = 0u; key < KEY_TILE; key++) {
      let p = p_tile[key * P_ROW + group];
      for (var c = 0u; c < NV; c++) {
        let vx = v_tile[key * vq + lane + LANES * c];
        for (var r = 0u; r < 4u; r++) { acc[QUADS_MAX * r + c] = fma(vec4f(p[r]), vx, acc[QUADS_MAX * r + c]); }
      }
    }
    workgroupBarrier();  // the tiles are free for the next keys
  }

  let total = row_sum(l, lid);
  for (var r = 0u; r < 4u; r++) {
    let row = query[r];
    if (row < u.queries) {
      for (var c = 0u; c < NV; c++) {
        let quad = lane + LANES * c;
        if (quad < DQ) { out[q_base + row * stride + quad] = acc[QUADS_MAX * r + c] / total[r]; }
      }
    }
  }
}
