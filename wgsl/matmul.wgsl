// Linear layer and batched matmul, f32 math: y = act(x W^T + b) + r.
//   x (batch, M, K) f32, row-major; W (batch or 1, N, K) — PyTorch's [out, in] — stored f32 (`main_f32w`) or f16
//   packed two per u32 word (`main_f16w`, widened with unpack2x16float); b (N) in W's storage dtype;
//   r (batch, M, N) f32; y (batch, M, N) f32. A linear layer is batch = 1 with M = tokens of every image.
//   act (ACTIVATION): 0 none, 1 gelu 0.5 v (1 + erf(v / sqrt 2)) (torch's default, erf form), 2 silu v sigmoid(v),
//   3 quick_gelu v sigmoid(1.702 v). The activation comes before the residual: y = act(v) + r.
//   RESIDUAL: 0 none, 1 r from binding 3, 2 y's own prior contents (in-place accumulate: y += act(v)).
// Bindings: 0 x, 1 W, 2 b, 3 r, 4 y (read_write), 5 uniform Matmul. b and r are statically used: bind any
//   read-only tensor (e.g. x) when HAS_BIAS is false or RESIDUAL is not 1.
// Dispatch: (ceil(N / TILE_N), rows, layers) workgroups, rows * layers >= batch * ceil(M / TILE_M); a row of
//   tiles is wg.z * 65535 + wg.y (wrapped past the 65535 limit), surplus workgroups return at once.
// Tiling: a workgroup computes a TILE_M x TILE_N block of y with (TILE_M / THREAD_M) x (TILE_N / THREAD_N)
//   invocations, each THREAD_M x THREAD_N outputs (4 or 8 each way) held in registers as vec4 rows. Per step of
//   TILE_K, the x and W tiles are staged k-major in workgroup memory (f16 weights widened while staging) so each
//   thread reads its operands as vec4s; a thread's rows are 4-blocks strided by the workgroup's width (4 * WG_M)
//   so neighbouring threads read neighbouring vec4s. Ragged edges are zero-filled on load and masked on store.

struct Matmul { m: u32, n: u32, k: u32, batch: u32, w_batch_stride: u32 }

override TILE_M: u32 = 64u;
override TILE_N: u32 = 64u;
override TILE_K: u32 = 16u;
override THREAD_M: u32 = 4u;
override THREAD_N: u32 = 4u;
override ACTIVATION: u32 = 0u;
override HAS_BIAS: bool = false;
override RESIDUAL: u32 = 0u;

override WG_M: u32 = TILE_M / THREAD_M;
override WG_N: u32 = TILE_N / THREAD_N;
override WG: u32 = WG_M * WG_N;
override M_VEC: u32 = THREAD_M / 4u;
override N_VEC: u32 = THREAD_N / 4u;
// Staging: each row of a tile is loaded by WG / TILE rows invocations, each a run of consecutive k.
override X_THREADS_PER_ROW: u32 = WG / TILE_M;
override X_PER_THREAD: u32 = TILE_K / X_THREADS_PER_ROW;
override W_THREADS_PER_ROW: u32 = WG / TILE_N;
override W_PER_THREAD: u32 = TILE_K / W_THREADS_PER_ROW;

const MAX_VEC: u32 = 2u;  // THREAD_M / 4 and THREAD_N / 4 are at most 2
const ACC: u32 = 4u * MAX_VEC * MAX_VEC;
const MAX_GROUPS: u32 = 65535u;
const ACT_GELU: u32 = 1u;
const ACT_SILU: u32 = 2u;
const ACT_QUICK_GELU: u32 = 3u;
const QUICK_GELU_SCALE: f32 = 1.702;
const RESIDUAL_TENSOR: u32 = 1u;
const RESIDUAL_IN_PLACE: u32 = 2u;
// erf by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7): 1 - t (a1 + t (a2 + ...)) exp(-z^2), t = 1 / (1 + p z).
const ERF_P: f32 = 0.3275911;
const ERF_A: array<f32, 5> = array<f32, 5>(0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429);

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w_f32: array<f32>;
@group(0) @binding(1) var<storage, read> w_f16: array<u32>;
@group(0) @binding(2) var<storage, read> bias_f32: array<f32>;
@group(0) @binding(2) var<storage, read> bias_f16: array<u32>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> u: Matmul;

var<workgroup> x_tile: array<vec4f, TILE_K * TILE_M / 4u>;  // [k][m]
var<workgroup> w_tile: array<vec4f, TILE_K * TILE_N / 4u>;  // [k][n]

struct Tile { batch: u32, m0: u32, n0: u32 }

fn tile_of(wg: vec3u) -> Tile {
  let row = wg.z * MAX_GROUPS + wg.y;
  let m_tiles = (u.m + TILE_M - 1u) / TILE_M;
  return Tile(row / m_tiles, (row % m_tiles) * TILE_M, wg.x * TILE_N);
}

fn f16_at(words: u32, i: u32) -> f32 {
  return unpack2x16float(words)[i & 1u];
}

fn stage_x(t: Tile, lid: u32, k0: u32) {
  let row = lid / X_THREADS_PER_ROW;
  let k_first = (lid % X_THREADS_PER_ROW) * X_PER_THREAD;
  let m = t.m0 + row;
  let base = (t.batch * u.m + m) * u.k;
  for (var j = 0u; j < X_PER_THREAD; j++) {
    let k = k0 + k_first + j;
    var v = 0.0;
    if (m < u.m && k < u.k) { v = x[base + k]; }
    let at = (k_first + j) * TILE_M + row;
    x_tile[at / 4u][at % 4u] = v;
  }
}

fn stage_w_f32(t: Tile, lid: u32, k0: u32) {
  let row = lid / W_THREADS_PER_ROW;
  let k_first = (lid % W_THREADS_PER_ROW) * W_PER_THREAD;
  let n = t.n0 + row;
  let base = t.batch * u.w_batch_stride + n * u.k;
  for (var j = 0u; j < W_PER_THREAD; j++) {
    let k = k0 + k_first + j;
    var v = 0.0;
    if (n < u.n && k < u.k) { v = w_f32[base + k]; }
    let at = (k_first + j) * TILE_N + row;
    w_tile[at / 4u][at % 4u] = v;
  }
}

fn stage_w_f16(t: Tile, lid: u32, k0: u32) {
  let row = lid / W_THREADS_PER_ROW;
  let k_first = (lid % W_THREADS_PER_ROW) * W_PER_THREAD;
  let n = t.n0 + row;
  let base = t.batch * u.w_batch_stride + n * u.k;
  for (var j = 0u; j < W_PER_THREAD; j++) {
    let k = k0 + k_first + j;
    var v = 0.0;
    if (n < u.n && k < u.k) { v = f16_at(w_f16[(base + k) / 2u], base + k); }
    let at = (k_first + j) * TILE_N + row;
    w_tile[at / 4u][at % 4u] = v;
  }
}

fn multiply_tiles(acc: ptr<function, array<vec4f, ACC>>, tm: u32, tn: u32) {
  for (var kk = 0u; kk < TILE_K; kk++) {
    var a: array<vec4f, MAX_VEC>;
    var b: array<vec4f, MAX_VEC>;
    for (var g = 0u; g < M_VEC; g++) { a[g] = x_tile[kk * (TILE_M / 4u) + g * WG_M + tm]; }
    for (var h = 0u; h < N_VEC; h++) { b[h] = w_tile[kk * (TILE_N / 4u) + h * WG_N + tn]; }
    for (var g = 0u; g < M_VEC; g++) {
      for (var r = 0u; r < 4u; r++) {
        for (var h = 0u; h < N_VEC; h++) {
          let i = (g * 4u + r) * MAX_VEC + h;
          (*acc)[i] = fma(vec4f(a[g][r]), b[h], (*acc)[i]);
        }
      }
    }
  }
}

fn erf(v: f32) -> f32 {
  let z = abs(v);
  let t = 1.0 / (1.0 + ERF_P * z);
  let poly = t * (ERF_A[0] + t * (ERF_A[1] + t * (ERF_A[2] + t * (ERF_A[3] + t * ERF_A[4]))));
  return sign(v) * (1.0 - poly * exp(-z * z));
}

fn sigmoid(v: f32) -> f32 {
  return 1.0 / (1.0 + exp(-v));
}

fn activate(v: f32) -> f32 {
  switch ACTIVATION {
    case ACT_GELU: { return 0.5 * v * (1.0 + erf(v * inverseSqrt(2.0))); }
    case ACT_SILU: { return v * sigmoid(v); }
    case ACT_QUICK_GELU: { return v * sigmoid(QUICK_GELU_SCALE * v); }
    default: { return v; }
  }
}

// The bias of this thread's columns, 0 where there is none.
fn bias_cols_f32(t: Tile, tn: u32) -> array<vec4f, MAX_VEC> {
  var b: array<vec4f, MAX_VEC>;
  if (HAS_BIAS) {
    for (var h = 0u; h < N_VEC; h++) {
      for (var c = 0u; c < 4u; c++) {
        let n = t.n0 + (h * WG_N + tn) * 4u + c;
        if (n < u.n) { b[h][c] = bias_f32[n]; }
      }
    }
  }
  return b;
}

fn bias_cols_f16(t: Tile, tn: u32) -> array<vec4f, MAX_VEC> {
  var b: array<vec4f, MAX_VEC>;
  if (HAS_BIAS) {
    for (var h = 0u; h < N_VEC; h++) {
      for (var c = 0u; c < 4u; c++) {
        let n = t.n0 + (h * WG_N + tn) * 4u + c;
        if (n < u.n) { b[h][c] = f16_at(bias_f16[n / 2u], n); }
      }
    }
  }
  return b;
}

fn store(t: Tile, tm: u32, tn: u32, acc: ptr<function, array<vec4f, ACC>>, bias: array<vec4f, MAX_VEC>) {
  for (var g = 0u; g < M_VEC; g++) {
    for (var r = 0u; r < 4u; r++) {
      let m = t.m0 + (g * WG_M + tm) * 4u + r;
      if (m >= u.m) { continue; }
      for (var h = 0u; h < N_VEC; h++) {
        let v = (*acc)[(g * 4u + r) * MAX_VEC + h] + bias[h];
        for (var c = 0u; c < 4u; c++) {
          let n = t.n0 + (h * WG_N + tn) * 4u + c;
          if (n >= u.n) { continue; }
          let o = (t.batch * u.m + m) * u.n + n;
          var out = activate(v[c]);
          if (RESIDUAL == RESIDUAL_TENSOR) { out += residual[o]; }
          if (RESIDUAL == RESIDUAL_IN_PLACE) { out += y[o]; }
          y[o] = out;
        }
      }
    }
  }
}

@compute @workgroup_size(WG)
fn main_f32w(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = tile_of(wg);
  if (t.batch >= u.batch) { return; }
  let tm = lid / WG_N;
  let tn = lid % WG_N;
  var acc: array<vec4f, ACC>;
  for (var k0 = 0u; k0 < u.k; k0 += TILE_K) {
    stage_x(t, lid, k0);
    stage_w_f32(t, lid, k0);
    workgroupBarrier();
    multiply_tiles(&acc, tm, tn);
    workgroupBarrier();
  }
  store(t, tm, tn, &acc, bias_cols_f32(t, tn));
}

@compute @workgroup_size(WG)
fn main_f16w(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = tile_of(wg);
  if (t.batch >= u.batch) { return; }
  let tm = lid / WG_N;
  let tn = lid % WG_N;
  var acc: array<vec4f, ACC>;
  for (var k0 = 0u; k0 < u.k; k0 += TILE_K) {
    stage_x(t, lid, k0);
    stage_w_f16(t, lid, k0);
    workgroupBarrier();
    multiply_tiles(&acc, tm, tn);
    workgroupBarrier();
  }
  store(t, tm, tn, &acc, bias_cols_f16(t, tn));
}
