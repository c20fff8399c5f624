// Linear layer and batched matmul, f16 storage and math: y = act(x W^T + b) + r, every tensor f16.
//   Shapes, ACTIVATION, RESIDUAL, bindings and dispatch as in matmul.wgsl (one entry point, `main`).
// Precision: products and the partial sums of one TILE_K step are f16 (vec4<f16> FMAs, the fast part); each
//   step's partial sum is added into f32 accumulators, so rounding error grows with TILE_K, not with K (an f16 sum
//   over K = 2880 would lose about log2(2880 / TILE_K) more bits). Bias, activation and residual run in f32; y is
//   rounded to f16 once.
// Tiling as in matmul.wgsl, with f16 tiles in workgroup memory (half the bytes).

enable f16;

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
override X_THREADS_PER_ROW: u32 = WG / TILE_M;
override X_PER_THREAD: u32 = TILE_K / X_THREADS_PER_ROW;
override W_THREADS_PER_ROW: u32 = WG / TILE_N;
override W_PER_THREAD: u32 = TILE_K / W_THREADS_PER_ROW;

const MAX_VEC: u32 = 2u;
const ACC: u32 = 4u * MAX_VEC * MAX_VEC;
const MAX_GROUPS: u32 = 65535u;
const ACT_GELU: u32 = 1u;
const ACT_SILU: u32 = 2u;
const ACT_QUICK_GELU: u32 = 3u;
const QUICK_GELU_SCALE: f32 = 1.702;
const RESIDUAL_TENSOR: u32 = 1u;
const RESIDUAL_IN_PLACE: u32 = 2u;
const ERF_P: f32 = 0.3275911;
const ERF_A: array<f32, 5> = array<f32, 5>(0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429);

@group(0) @binding(0) var<storage, read> x: array<f16>;
@group(0) @binding(1) var<storage, read> w: array<f16>;
@group(0) @binding(2) var<storage, read> bias: array<f16>;
@group(0) @binding(3) var<storage, read> residual: array<f16>;
@group(0) @binding(4) var<storage, read_write> y: array<f16>;
@group(0) @binding(5) var<uniform> u: Matmul;

var<workgroup> x_tile: array<vec4<f16>, TILE_K * TILE_M / 4u>;  // [k][m]
var<workgroup> w_tile: array<vec4<f16>, TILE_K * TILE_N / 4u>;  // [k][n]

struct Tile { batch: u32, m0: u32, n0: u32 }

fn tile_of(wg: vec3u) -> Tile {
  let row = wg.z * MAX_GROUPS + wg.y;
  let m_tiles = (u.m + TILE_M - 1u) / TILE_M;
  return Tile(row / m_tiles, (row % m_tiles) * TILE_M, wg.x * TILE_N);
}

fn stage_x(t: Tile, lid: u32, k0: u32) {
  let row = lid / X_THREADS_PER_ROW;
  let k_first = (lid % X_THREADS_PER_ROW) * X_PER_THREAD;
  let m = t.m0 + row;
  let base = (t.batch * u.m + m) * u.k;
  for (var j = 0u; j < X_PER_THREAD; j++) {
    let k = k0 + k_first + j;
    var v = 0.0h;
    if (m < u.m && k < u.k) { v = x[base + k]; }
    let at = (k_first + j) * TILE_M + row;
    x_tile[at / 4u][at % 4u] = v;
  }
}

fn stage_w(t: Tile, lid: u32, k0: u32) {
  let row = lid / W_THREADS_PER_ROW;
  let k_first = (lid % W_THREADS_PER_ROW) * W_PER_THREAD;
  let n = t.n0 + row;
  let base = t.batch * u.w_batch_stride + n * u.k;
  for (var j = 0u; j < W_PER_THREAD; j++) {
    let k = k0 + k_first + j;
    var v = 0.0h;
    if (n < u.n && k < u.k) { v = w[base + k]; }
    let at = (k_first + j) * TILE_N + row;
    w_tile[at / 4u][at % 4u] = v;
  }
}

fn multiply_tiles(acc: ptr<function, array<vec4f, ACC>>, tm: u32, tn: u32) {
  var partial: array<vec4<f16>, ACC>;
  for (var kk = 0u; kk < TILE_K; kk++) {
    var a: array<vec4<f16>, MAX_VEC>;
    var b: array<vec4<f16>, MAX_VEC>;
    for (var g = 0u; g < M_VEC; g++) { a[g] = x_tile[kk * (TILE_M / 4u) + g * WG_M + tm]; }
    for (var h = 0u; h < N_VEC; h++) { b[h] = w_tile[kk * (TILE_N / 4u) + h * WG_N + tn]; }
    for (var g = 0u; g < M_VEC; g++) {
      for (var r = 0u; r < 4u; r++) {
        for (var h = 0u; h < N_VEC; h++) {
          let i = (g * 4u + r) * MAX_VEC + h;
          partial[i] = fma(vec4<f16>(a[g][r]), b[h], partial[i]);
        }
      }
    }
  }
  for (var i = 0u; i < ACC; i++) { (*acc)[i] += vec4f(partial[i]); }
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

fn store(t: Tile, tm: u32, tn: u32, acc: ptr<function, array<vec4f, ACC>>) {
  for (var g = 0u; g < M_VEC; g++) {
    for (var r = 0u; r < 4u; r++) {
      let m = t.m0 + (g * WG_M + tm) * 4u + r;
      if (m >= u.m) { continue; }
      for (var h = 0u; h < N_VEC; h++) {
        let v = (*acc)[(g * 4u + r) * MAX_VEC + h];
        for (var c = 0u; c < 4u; c++) {
          let n = t.n0 + (h * WG_N + tn) * 4u + c;
          if (n >= u.n) { continue; }
          let o = (t.batch * u.m + m) * u.n + n;
          var out = v[c];
          if (HAS_BIAS) { out += f32(bias[n]); }
          out = activate(out);
          if (RESIDUAL == RESIDUAL_TENSOR) { out += f32(residual[o]); }
          if (RESIDUAL == RESIDUAL_IN_PLACE) { out += f32(y[o]); }
          y[o] = f16(out);
        }
      }
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = tile_of(wg);
  if (t.batch >= u.batch) { return; }
  let tm = lid / WG_N;
  let tn = lid % WG_N;
  var acc: array<vec4f, ACC>;
  for (var k0 = 0u; k0 < u.k; k0 += TILE_K) {
    stage_x(t, lid, k0);
    stage_w(t, lid, k0);
    workgroupBarrier();
    multiply_tiles(&acc, tm, tn);
    workgroupBarrier();
  }
  store(t, tm, tn, &acc);
}
