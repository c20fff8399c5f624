// Attention with one query per invocation, for heads of HEAD_DIM <= 80, a multiple of 4: scaled dot-product
// attention with an online softmax (flash-attention style: the Tq x Tk scores never exist in memory).
// Per batch b and head h, with channels h*d .. h*d+d of each token (diffusers' head_to_batch_dim split):
//   out[b,i,h*d+j] = sum_k softmax_k(scale * q[b,i,h*d:] . k[b,k,h*d:]) v[b,k,h*d+j]
// causal (Tq = Tk): key k is seen by query i only when k <= i.
//
// Why one query an invocation: an H100 in Chromium ran one workgroup an SM at a time once a workgroup declared
// 30 KiB of workgroup memory (two at 20 KiB), so the kernel this replaces, which staged Q and P there for 128 queries
// (48 KiB), ran 4 subgroups an SM at 15 TFLOP/s (d = 40, 4096 tokens). Here Q, O and the scores stay in registers
// and only a tile of K and V is staged (5 KiB at d = 40 and 16 keys), so several workgroups share an SM: 27.7
// TFLOP/s. Every invocation of a subgroup reads the same K and V element, a broadcast.
// Invocation i of workgroup w owns query w WG + i: its Q row (scaled by scale log2 e), O row and running max m and
// sum l, in registers. Per key tile (KEY_TILE keys from k0):
//   1. barrier; the tile's K and V rows ([key][dim / 4], zeros past the last key) staged by all invocations with
//      vec4 loads; barrier;
//   2. S = q . k per key, masked only in tiles reaching past the last key or the causal diagonal; m' = max(m, S),
//      O and l scale by exp2(m - m'); per key p = exp2(s - m'), l += p, O += p v.
// At the end out = O / l. Invocations past the last query compute the last query's row and store nothing.
// Registers: DQ = d / 4 vec4s of Q and of O and KEY_TILE scores (96 floats at d = 40, 16 keys).
//
// Layouts: q (B, Tq, heads*d), k and v (B, Tk, heads*d), out (B, Tq, heads*d), all f32, row-major, bound as vec4s.
// Bindings: 0 q, 1 k, 2 v, 3 out, 4 uniform Attention.
// Dispatch: (ceil(Tq / WG), 1, B * heads), workgroups of WG invocations.

#include "lib/attention_uniform.wgsl"

override HEAD_DIM: u32 = 40u;  // d: a multiple of 4, at most 4 QUADS_MAX = 80
override WG: u32 = 256u;  // queries (invocations) per workgroup
override KEY_TILE: u32 = 16u;  // keys per staged tile, at most KEYS_MAX

override DQ: u32 = HEAD_DIM / 4u;  // vec4s per head row
override TILE_QUADS: u32 = KEY_TILE * DQ;  // vec4s of a staged K (or V) tile

const QUADS_MAX: u32 = 20u;
const KEYS_MAX: u32 = 64u;
const LOG2E: f32 = 1.4426950408889634;
const MASKED: f32 = -1.0e30;  // score of a key a query must not see; exp2 of it (less any max) is 0

@group(0) @binding(0) var<storage, read> q: array<vec4f>;
@group(0) @binding(1) var<storage, read> k: array<vec4f>;
@group(0) @binding(2) var<storage, read> v: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(4) var<uniform> u: Attention;

var<workgroup> k_tile: array<vec4f, TILE_QUADS>;  // [key][dim / 4]
var<workgroup> v_tile: array<vec4f, TILE_QUADS>;  // [key][dim / 4]

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let stride = u.heads * DQ;  // vec4s per token
  let head = (wg.z % u.heads) * DQ;  // first vec4 of this head
  let q0 = wg.x * WG;
  let query = q0 + lid;
  let q_base = (wg.z / u.heads) * u.queries * stride + head;
  let kv_base = (wg.z / u.heads) * u.keys * stride + head;

  let scale = u.scale * LOG2E;
  let row = q_base + min(query, u.queries - 1u) * stride;
  var qv: array<vec4f, QUADS_MAX>;
  var o: array<vec4f, QUADS_MAX>;
  var s: array<f32, KEYS_MAX>;
  for (var c = 0u; c < DQ; c++) {
    qv[c] = q[row + c] * scale;
    o[c] = vec4f(0.0);
  }
  var m = MASKED;  // running max, base 2
  var l = 0.0;  // running sum
  // Causal: key tiles past this workgroup's last query hold nothing any of its queries sees.
  let key_end = select(u.keys, min(u.keys, q0 + WG), u.causal != 0u);

  for (var k0 = 0u; k0 < key_end; k0 += KEY_TILE) {
    workgroupBarrier();  // the last tile is read
    for (var e = lid; e < TILE_QUADS; e += WG) {
      let key = k0 + e / DQ;
      var kx = vec4f(0.0);
      var vx = vec4f(0.0);
      if (key < u.keys) {
        let at = kv_base + key * stride + e % DQ;
        kx = k[at];
        vx = v[at];
      }
      k_tile[e] = kx;
      v_tile[e] = vx;
    }
    workgroupBarrier();

    for (var j = 0u; j < KEY_TILE; j++) {
      var acc = vec4f(0.0);
      for (var c = 0u; c < DQ; c++) { acc = fma(qv[c], k_tile[j * DQ + c], acc); }
      s[j] = acc.x + acc.y + acc.z + acc.w;
    }
    // Only tiles past the last key or crossing the causal diagonal (uniform across the workgroup) hide keys.
    if (k0 + KEY_TILE > u.keys || (u.causal != 0u && k0 + KEY_TILE > q0 + 1u)) {
      for (var j = 0u; j < KEY_TILE; j++) {
        let key = k0 + j;
        if (key >= u.keys || (u.causal != 0u && key > query)) { s[j] = MASKED; }
      }
    }
    var m_new = m;
    for (var j = 0u; j < KEY_TILE; j++) { m_new = max(m_new, s[j]); }
    let alpha = exp2(m - m_new);
    m = m_new;
    l *= alpha;
    for (var c = 0u; c < DQ; c++) { o[c] *= alpha; }
    for (var j = 0u; j < KEY_TILE; j++) {
      let p = exp2(s[j] - m);
      l += p;
      for (var c = 0u; c < DQ; c++) { o[c] = fma(vec4f(p), v_tile[j * DQ + c], o[c]); }
    }
  }

  if (query < u.queries) {
    for (var c = 0u; c < DQ; c++) { out[q_base + query * stride + c] = o[c] / l; }
  }
}
