// Attention core for heads of HEAD_DIM <= 80, a multiple of 4 (every UNet and CLIP head but the 160 wide): scaled
// dot-product attention with an online softmax (flash-attention style: the Tq x Tk scores never exist in memory).
// Per batch b and head h, with channels h*d .. h*d+d of each token (diffusers' head_to_batch_dim split):
//   out[b,i,h*d+j] = sum_k softmax_k(scale * q[b,i,h*d:] . k[b,k,h*d:]) v[b,k,h*d+j]
// causal (Tq = Tk): key k is seen by query i only when k <= i.
//
// A workgroup takes BQ = 4 ROW_GROUPS queries of one (b, h), all d output columns, and walks the keys in tiles of
// KEY_TILE. Its Q block is staged once, scaled by scale log2(e), and stays in workgroup memory.
// Threads: ROW_GROUPS groups of LANES = 4 consecutive invocations (a subgroup holds whole groups: subgroups are at
// least 4 wide). Group g owns QUERIES_PER_LANE = 4 queries, 4g .. 4g+3 of the block, one vec4 (neighbouring groups
// read neighbouring vec4s of Q and P). Its lane t holds, for all 4 of them,
//   the scores of keys 4(t + 4i) + c of the tile (i < KT / 4, c < 4, KT = KEY_TILE / 4): vec4s over the 4 queries;
//   the output column quads t + 4c (c < NV = ceil(d / 16)): vec4s over columns.
// So per head dim, S reads one vec4 of Q and KT / 4 of K for KT FMAs (vec4); per key, O += P V reads one vec4 of P
// and NV of V for 4 NV FMAs. Registers: 4 (KT + 4 NV) floats of scores and outputs.
// LANES and QUERIES_PER_LANE are fixed: on an H100 in Chromium at d = 40 and 4096 tokens this ran 2.81 ms, 2 lanes
// (no padded columns) 4.47 ms and 8 queries a lane (two vec4s) 26 ms; 1 lane was never competitive.
// Register arrays are indexed only in loops of override-constant trips with no barrier inside, so the driver unrolls
// them into registers; past about 128 floats a thread (8 queries a lane, KT 16) an H100 ran 5-10x slower.
// The first key tile is staged before the walk; per key tile:
//   1. S = Q K^T, masked only in tiles that reach past the last key or the causal diagonal; the tile's row maxima
//      merge over the group's lanes with row_max (the includer's: subgroup shuffles or workgroup memory), the
//      running max m moves, O and the lane's share of the row sums l scale by exp2(m_old - m_new),
//      P = exp2(S - m_new) goes to workgroup memory ([key][query / 4]), barrier;
//   2. O += P V, and the next tile's K (transposed, [dim][key]) and V ([key][column]) staged with vec4 loads:
//      STAGES 1, one buffer: after O += P V and a barrier; STAGES 2, two buffers: loaded into registers (SLOTS
//      vec4s of each an invocation) before O += P V and stored into the other buffer after it; barrier.
// So a tile costs 3 barriers with STAGES 1 and 2 with STAGES 2. At the end out = O / l, l summed over the group's
// lanes with row_sum.
// The includer declares row_max(x, lid) and row_sum(x, lid): per query of x (the group's vec4 of queries), the
// max / sum over the 4 lanes of the group, returned to each of them; called in uniform control flow.
//
// Layouts: q (B, Tq, heads*d), k and v (B, Tk, heads*d), out (B, Tq, heads*d), all f32, row-major, bound as vec4s.
// Bindings: 0 q, 1 k, 2 v, 3 out, 4 uniform Attention.
// Dispatch: (ceil(Tq / BQ), 1, B * heads), workgroups of 4 ROW_GROUPS invocations.

#include "lib/attention_uniform.wgsl"

const LANES: u32 = 4u;  // invocations per group: WebGPU's smallest subgroup (fixed: the header says why)
const QUERIES_PER_LANE: u32 = 4u;  // queries per group, one vec4, each lane holding all of them (fixed)

override HEAD_DIM: u32 = 40u;  // d: a multiple of 4, at most 4 LANES QUADS_MAX = 80
override ROW_GROUPS: u32 = 32u;  // groups per workgroup
override KEY_TILE: u32 = 32u;  // keys per tile: a multiple of 4 LANES = 16, at most LANES KEYS_MAX = 64
override STAGES: u32 = 1u;  // K and V buffers: 1, or 2 (the next tile loads during O += P V; SLOTS <= SLOTS_MAX)

override DQ: u32 = HEAD_DIM / 4u;  // vec4s per head row
override NV: u32 = (DQ + LANES - 1u) / LANES;  // output column quads per lane
override KT: u32 = KEY_TILE / LANES;  // keys per lane in S
override BQ: u32 = QUERIES_PER_LANE * ROW_GROUPS;  // queries per workgroup
override WG: u32 = LANES * ROW_GROUPS;
override P_ROW: u32 = ROW_GROUPS + 1u;  // p_tile row: one vec4 of padding spreads a group's lanes' stores over banks
override KQ: u32 = KEY_TILE / 4u;  // vec4s per k_tile row
override VQ: u32 = LANES * NV;  // vec4s per v_tile row
override K_SIZE: u32 = HEAD_DIM * KQ;  // vec4s of a K buffer
override V_SIZE: u32 = KEY_TILE * VQ;  // vec4s of a V buffer
override SLOTS: u32 = (KEY_TILE * DQ + WG - 1u) / WG;  // K (and V) vec4s an invocation stages per tile

const QUADS_MAX: u32 = 5u;  // NV <= 5
const KEYS_MAX: u32 = 16u;  // KT <= 16
const SLOTS_MAX: u32 = 10u;
const LOG2E: f32 = 1.4426950408889634;
const MASKED: f32 = -1.0e30;  // score of a key a query must not see; exp2 of it (less any max) is 0

@group(0) @binding(0) var<storage, read> q: array<vec4f>;
@group(0) @binding(1) var<storage, read> k: array<vec4f>;
@group(0) @binding(2) var<storage, read> v: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(4) var<uniform> u: Attention;

struct Staged { k: array<vec4f, SLOTS_MAX>, v: array<vec4f, SLOTS_MAX> }  // the next tile's, per invocation

var<workgroup> q_tile: array<vec4f, HEAD_DIM * ROW_GROUPS>;  // [dim][query / 4], scaled
var<workgroup> k_tile: array<vec4f, STAGES * K_SIZE>;  // [buffer][dim][key / 4]
var<workgroup> v_tile: array<vec4f, STAGES * V_SIZE>;  // [buffer][key][column / 4], rows padded to LANES NV quads
var<workgroup> p_tile: array<vec4f, KEY_TILE * P_ROW>;  // [key][query / 4]

// K and V vec4 e of the key tile from k0 (zeros past the last key). K: e is key e % KEY_TILE, quad e / KEY_TILE, so
// consecutive invocations take consecutive keys and their transposed scalar stores hit distinct banks; V: key e / DQ,
// quad e % DQ, as in memory.
fn load_k(e: u32, k0: u32, kv_base: u32, stride: u32) -> vec4f {
  let key = k0 + e % KEY_TILE;
  if (key >= u.keys) { return vec4f(0.0); }
  return k[kv_base + key * stride + e / KEY_TILE];
}

fn load_v(e: u32, k0: u32, kv_base: u32, stride: u32) -> vec4f {
  let key = k0 + e / DQ;
  if (key >= u.keys) { return vec4f(0.0); }
  return v[kv_base + key * stride + e % DQ];
}

fn store_k(x: vec4f, e: u32, buf: u32) {
  let key = e % KEY_TILE;
  for (var i = 0u; i < 4u; i++) { k_tile[buf * K_SIZE + (4u * (e / KEY_TILE) + i) * KQ + key / 4u][key % 4u] = x[i]; }
}

fn store_v(x: vec4f, e: u32, buf: u32) {
  v_tile[buf * V_SIZE + (e / DQ) * VQ + e % DQ] = x;
}

// The key tile from k0 into buffer buf, by all invocations.
fn stage(k0: u32, buf: u32, lid: u32, kv_base: u32, stride: u32) {
  for (var e = lid; e < KEY_TILE * DQ; e += WG) {
    store_k(load_k(e, k0, kv_base, stride), e, buf);
    store_v(load_v(e, k0, kv_base, stride), e, buf);
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let group = lid / LANES;
  let lane = lid % LANES;
  let stride = u.heads * DQ;  // vec4s per token
  let head = (wg.z % u.heads) * DQ;  // first vec4 of this head
  let q0 = wg.x * BQ;
  let q_base = (wg.z / u.heads) * u.queries * stride + head;
  let kv_base = (wg.z / u.heads) * u.keys * stride + head;
  let query = vec4u(q0 + 4u * group) + vec4u(0u, 1u, 2u, 3u);  // this group's queries

  let scale = u.scale * LOG2E;
  // Consecutive invocations take consecutive queries: their scalar stores into the transposed tile hit distinct banks.
  for (var e = lid; e < BQ * DQ; e += WG) {
    let row = e % BQ;
    let quad = e / BQ;
    var x = vec4f(0.0);
    if (q0 + row < u.queries) { x = q[q_base + (q0 + row) * stride + quad] * scale; }
    for (var i = 0u; i < 4u; i++) { q_tile[(4u * quad + i) * ROW_GROUPS + row / 4u][row % 4u] = x[i]; }
  }

  var m = vec4f(MASKED);  // running max of each query, base 2
  var l = vec4f(0.0);  // this lane's share of each query's sum
  var acc: array<vec4f, 4u * QUADS_MAX>;  // acc[QUADS_MAX r + c]: quad lane + LANES c, query 4 group + r
  var s: array<vec4f, KEYS_MAX>;  // s[4i + c]: key 4(lane + LANES i) + c, over the group's queries
  for (var r = 0u; r < 4u; r++) {
    for (var c = 0u; c < NV; c++) { acc[QUADS_MAX * r + c] = vec4f(0.0); }
  }
  // Causal: key tiles past this block's last query hold nothing any of its queries sees.
  let key_end = select(u.keys, min(u.keys, q0 + BQ), u.causal != 0u);

  stage(0u, 0u, lid, kv_base, stride);
  workgroupBarrier();
  var buf = 0u;  // the buffer of this tile's K and V
  var staged: Staged;
  for (var k0 = 0u; k0 < key_end; k0 += KEY_TILE) {
    let next = k0 + KEY_TILE;
    let kb = buf * K_SIZE;
    let vb = buf * V_SIZE;
    // 1. S = Q K^T (Q carries scale log2 e), masked; the online softmax's rescale; P to workgroup memory.
    for (var j = 0u; j < KT; j++) { s[j] = vec4f(0.0); }  // zeroed here: naga does not re-zero loop locals
    for (var dim = 0u; dim < HEAD_DIM; dim++) {
      let qv = q_tile[dim * ROW_GROUPS + group];
      for (var i = 0u; i < KT / 4u; i++) {
        let kv = k_tile[kb + dim * KQ + lane + LANES * i];
        for (var c = 0u; c < 4u; c++) { s[4u * i + c] = fma(qv, vec4f(kv[c]), s[4u * i + c]); }
      }
    }
    // Only tiles past the last key or crossing the causal diagonal (uniform across the workgroup) hide keys.
    if (k0 + KEY_TILE > u.keys || (u.causal != 0u && k0 + KEY_TILE > q0 + 1u)) {
      for (var j = 0u; j < KT; j++) {
        let key = k0 + 4u * (lane + LANES * (j / 4u)) + j % 4u;
        let hidden = vec4<bool>(key >= u.keys) | (vec4<bool>(u.causal != 0u) & (vec4u(key) > query));
        s[j] = select(s[j], vec4f(MASKED), hidden);
      }
    }
    var tile_max = m;
    for (var j = 0u; j < KT; j++) { tile_max = max(tile_max, s[j]); }
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

    // 2. O += P V, the next tile's K and V loaded meanwhile (STAGES 2) or after (1), and staged.
    if (STAGES == 2u && next < key_end) {
      for (var i = 0u; i < SLOTS; i++) {
        let e = lid + WG * i;
        if (e < KEY_TILE * DQ) {
          staged.k[i] = load_k(e, next, kv_base, stride);
          staged.v[i] = load_v(e, next, kv_base, stride);
        }
      }
    }
    for (var key = 0u; key < KEY_TILE; key++) {
      let p = p_tile[key * P_ROW + group];
      for (var c = 0u; c < NV; c++) {
        let vx = v_tile[vb + key * VQ + lane + LANES * c];
        for (var r = 0u; r < 4u; r++) { acc[QUADS_MAX * r + c] = fma(vec4f(p[r]), vx, acc[QUADS_MAX * r + c]); }
      }
    }
    if (STAGES == 1u) { workgroupBarrier(); }  // the tiles are free for the next keys
    if (next < key_end) {
      if (STAGES == 2u) {
        for (var i = 0u; i < SLOTS; i++) {
          let e = lid + WG * i;
          if (e < KEY_TILE * DQ) {
            store_k(staged.k[i], e, 1u - buf);
            store_v(staged.v[i], e, 1u - buf);
          }
        }
      } else {
        stage(next, 0u, lid, kv_base, stride);
      }
    }
    buf = (buf + 1u) % STAGES;
    workgroupBarrier();
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
