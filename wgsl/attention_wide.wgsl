// Attention for the heads attention_rows.wgsl does not take (d > 80, as the VAE's one head of 512, or d not a multiple
// of 4): scaled dot-product attention with an online softmax (flash-attention style: the Tq x Tk scores never
// exist in memory), Q and K staged chunk by chunk per key tile. Per batch b and head h, with channels h*d .. h*d+d
// of each token (diffusers' head_to_batch_dim split):
//   out[b,i,h*d+j] = sum_k softmax_k(scale * q[b,i,h*d:] . k[b,k,h*d:]) v[b,k,h*d+j]
// causal (Tq = Tk): key k is seen by query i only when k <= i.
//
// A workgroup takes BQ queries of one (b, h) and DV of the head's output columns, and walks the keys in tiles of BK:
//   1. S (BQ x BK) = (scale log2 e) Q K^T, Q and K staged through workgroup memory DC head dims at a time;
//   2. the tile's row maxima (merged across the threads of a row through workgroup memory) update the running
//      max m; P = exp2(S - m_new), O and each thread's share of the row sums l scale by exp2(m_old - m_new);
//   3. O += P V, V staged VC keys at a time. At the end out = O / l, l summed over the threads of each row.
// Head dims beyond 16 * MV_MAX run as several column chunks (each recomputes S).
// Threads form a TQ x 16 grid (tq, tk): thread tq owns queries 8tq..8tq+7 (two vec4), and for S the keys tk + 16j,
// for O the columns tk + 16c, so neighbouring threads touch neighbouring words of workgroup memory.
//
// Layouts: q (B, Tq, heads*d), k and v (B, Tk, heads*d), out (B, Tq, heads*d), all f32, row-major.
// Bindings: 0 q, 1 k, 2 v, 3 out, 4 uniform Attention.
// Dispatch: (ceil(Tq / BQ), ceil(d / (16 MV)), B * heads).

#include "lib/attention_uniform.wgsl"

override TQ: u32 = 8u;  // threads along queries: BQ = 8 TQ queries per workgroup
override MV: u32 = 4u;  // output columns per thread: DV = 16 MV per workgroup, MV <= MV_MAX
override DC: u32 = 16u;  // head dims per staged chunk of Q and K
override VC: u32 = 16u;  // keys per staged chunk of V, dividing BK

const TK: u32 = 16u;  // threads along keys (and output columns)
const MK: u32 = 4u;  // keys per thread in S
const BK: u32 = TK * MK;  // keys per tile
const MV_MAX: u32 = 8u;
const LOG2E: f32 = 1.4426950408889634;
const MASKED: f32 = -1.0e30;  // score of a key a query must not see; exp2 of it (less any max) is 0

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> u: Attention;

// Q chunk [dim][query / 4], or one vec4 per (tk, query / 4) while rows are merged.
var<workgroup> q_tile: array<vec4f, max(DC, TK) * 2u * TQ>;
var<workgroup> kv_tile: array<f32, max(DC * BK, VC * TK * MV)>;  // K chunk [dim][key] or V chunk [key][column]
var<workgroup> p_tile: array<vec4f, BK * (2u * TQ + 1u)>;  // [key][query / 4], rows padded against bank conflicts

// Merges one value per (thread, query) across the TK threads of each query row: max or sum.
// Callers come here past a barrier that ended every earlier use of q_tile.
fn merge_rows(x: array<vec4f, 2>, tq: u32, tk: u32, take_max: bool) -> array<vec4f, 2> {
  q_tile[tk * 2u * TQ + 2u * tq] = x[0];
  q_tile[tk * 2u * TQ + 2u * tq + 1u] = x[1];
  workgroupBarrier();
  var r = x;
  for (var t = 0u; t < TK; t++) {
    for (var h = 0u; h < 2u; h++) {
      let y = q_tile[t * 2u * TQ + 2u * tq + h];
      if (t == 0u) { r[h] = y; } else if (take_max) { r[h] = max(r[h], y); } else { r[h] += y; }
    }
  }
  return r;
}

@compute @workgroup_size(TQ * TK)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tq = lid / TK;
  let tk = lid % TK;
  let bq = 8u * TQ;
  let d = u.head_dim;
  let stride = u.heads * d;  // floats per token
  let head = (wg.z % u.heads) * d;  // first channel of this head
  let q0 = wg.x * bq;
  let dv = TK * MV;
  let v0 = wg.y * dv;  // first output column of this workgroup, within the head
  let q_base = (wg.z / u.heads) * u.queries * stride + head;
  let kv_base = (wg.z / u.heads) * u.keys * stride + head;
  let scale = u.scale * LOG2E;
  let lanes = vec4u(0u, 1u, 2u, 3u);
  let query = array<vec4u, 2>(vec4u(q0 + 8u * tq) + lanes, vec4u(q0 + 8u * tq + 4u) + lanes);  // this thread's rows
  let p_row = 2u * TQ + 1u;

  var m = array<vec4f, 2>(vec4f(MASKED), vec4f(MASKED));  // running max of each query row, base 2
  var l: array<vec4f, 2>;  // this thread's share of each row's sum
  var acc: array<vec4f, 2u * MV_MAX>;  // acc[2c + h]: column tk + 16c of queries 8tq + 4h ..
  var s: array<vec4f, 2u * MK>;  // s[2j + h]: key tk + 16j of queries 8tq + 4h ..
  // Causal: key tiles past this block's last query hold nothing any of its queries sees.
  let key_end = select(u.keys, min(u.keys, q0 + bq), u.causal != 0u);

  for (var k0 = 0u; k0 < key_end; k0 += BK) {
    // 1. S = scale Q K^T over the head dims, DC at a time.
    for (var j = 0u; j < 2u * MK; j++) { s[j] = vec4f(0.0); }  // zeroed here: naga does not re-zero loop locals
    for (var c0 = 0u; c0 < d; c0 += DC) {
      for (var e = lid; e < bq * DC; e += TQ * TK) {
        let row = e / DC;
        let dim = c0 + e % DC;
        var value = 0.0;
        if (q0 + row < u.queries && dim < d) { value = q[q_base + (q0 + row) * stride + dim] * scale; }
        q_tile[(e % DC) * 2u * TQ + row / 4u][row % 4u] = value;
      }
      for (var e = lid; e < BK * DC; e += TQ * TK) {
        let key = e / DC;
        let dim = c0 + e % DC;
        var value = 0.0;
        if (k0 + key < u.keys && dim < d) { value = k[kv_base + (k0 + key) * stride + dim]; }
        kv_tile[(e % DC) * BK + key] = value;
      }
      workgroupBarrier();
      for (var dim = 0u; dim < DC; dim++) {
        let qa = q_tile[dim * 2u * TQ + 2u * tq];
        let qb = q_tile[dim * 2u * TQ + 2u * tq + 1u];
        for (var j = 0u; j < MK; j++) {
          let kj = kv_tile[dim * BK + tk + TK * j];
          s[2u * j] += qa * kj;
          s[2u * j + 1u] += qb * kj;
        }
      }
      workgroupBarrier();
    }

    // 2. Mask, merge the tile's row maxima, rescale, exponentiate.
    var tile_max = m;
    for (var j = 0u; j < MK; j++) {
      let key = k0 + tk + TK * j;
      for (var h = 0u; h < 2u; h++) {
        let hidden = vec4<bool>(key >= u.keys) | (vec4<bool>(u.causal != 0u) & (vec4u(key) > query[h]));
        s[2u * j + h] = select(s[2u * j + h], vec4f(MASKED), hidden);
        tile_max[h] = max(tile_max[h], s[2u * j + h]);
      }
    }
    let m_new = merge_rows(tile_max, tq, tk, true);
    for (var h = 0u; h < 2u; h++) {
      let alpha = exp2(m[h] - m_new[h]);
      l[h] *= alpha;
      for (var c = 0u; c < MV; c++) { acc[2u * c + h] *= alpha; }
      for (var j = 0u; j < MK; j++) {
        let p = exp2(s[2u * j + h] - m_new[h]);
        l[h] += p;
        p_tile[(tk + TK * j) * p_row + 2u * tq + h] = p;
      }
    }
    m = m_new;

    // 3. O += P V over this tile's keys, VC at a time.
    for (var j0 = 0u; j0 < BK; j0 += VC) {
      workgroupBarrier();  // P is written; the last chunk's readers are done
      for (var e = lid; e < VC * dv; e += TQ * TK) {
        let key = k0 + j0 + e / dv;
        let col = v0 + e % dv;
        var value = 0.0;
        if (key < u.keys && col < d) { value = v[kv_base + key * stride + col]; }
        kv_tile[e] = value;
      }
      workgroupBarrier();
      for (var j = 0u; j < VC; j++) {
        let pa = p_tile[(j0 + j) * p_row + 2u * tq];
        let pb = p_tile[(j0 + j) * p_row + 2u * tq + 1u];
        for (var c = 0u; c < MV; c++) {
          let vj = kv_tile[j * dv + tk + TK * c];
          acc[2u * c] += pa * vj;
          acc[2u * c + 1u] += pb * vj;
        }
      }
    }
    workgroupBarrier();  // kv_tile and p_tile are free for the next tile
  }

  let total = merge_rows(l, tq, tk, false);
  for (var c = 0u; c < MV; c++) {
    let col = v0 + tk + TK * c;
    if (col < d) {
      for (var h = 0u; h < 2u; h++) {
        let o = acc[2u * c + h] / total[h];
        for (var i = 0u; i < 4u; i++) {
          let row = q0 + 8u * tq + 4u * h + i;
          if (row < u.queries) { out[q_base + row * stride + col] = o[i]; }
        }
      }
    }
  }
}
