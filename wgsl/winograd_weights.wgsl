// Winograd F(m x m, 3x3) weight transform (m = TILE, 2 or 4): U[p, co, ci] = (G g[co, ci] G^T)[i, j],
//   p = SIDE i + j (SIDE = m + 2), for each 3x3 kernel g of a convolution weight stored channels last,
//   [Cout, 3, 3, Cin] (as conv2d reads it: g[co, ci][a, b] is element ((co * 3 + a) * 3 + b) * Cin + ci), G of
//   lib/winograd_matrices.wgsl. U (SIDE^2, Cout, Cin) is W of the SIDE^2 GEMMs M[p] = V[p] U[p]^T (rows K = Cin
//   contiguous). Computed in f32 from g stored f32 or f16 (F16_WEIGHTS: both packed two per u32 word, element 2w in
//   the low half of word w; U's SIDE^2 * Cout * Cin elements fill whole words) and stored in g's dtype: f16 rounds
//   the f32 result once (pack2x16float). Run before each Winograd convolution (nn.Conv2d), into scratch.
// Bindings: 0 g (u32 words), 1 U (u32 words, read_write, another buffer), 2 uniform WinogradWeights.
// Entry points, each a workgroup of WG invocations, ceil(n / WG) workgroups along x wrapped into y past 65535
//   (invocation index (wg.y * 65535 + wg.x) * WG + local index):
//   per_kernel, n = kernels (f32) or kernels / 2 (F16_WEIGHTS, kernels even: a word of U then pairs two kernels at
//     one position): reads its kernels' 9 taps once and stores their SIDE^2 positions (main reads them SIDE^2
//     times);
//   main, n = U's words: the general case (f16 with an odd count of kernels, whose words straddle positions), each
//     invocation reading the 9 taps of both its elements.

#include "lib/packed_weights.wgsl"
#include "lib/winograd_matrices.wgsl"

struct WinogradWeights { elements: u32, kernels: u32, cin: u32 }

override WG: u32 = 256u;

const MAX_GROUPS_X: u32 = 65535u;

@group(0) @binding(0) var<storage, read> g: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> u: WinogradWeights;

// Element e of U: position p = e / kernels of the transformed tile of kernel e % kernels (= co * Cin + ci).
fn transformed(e: u32) -> f32 {
  let p = e / u.kernels;
  let kernel = e % u.kernels;
  let first = (kernel / u.cin) * TAPS * TAPS * u.cin + kernel % u.cin;  // tap (a, b) at first + (a * 3 + b) Cin
  var coefficients = g_rows();  // a function variable: indexed at run time
  let rows = coefficients[p / SIDE];
  let cols = coefficients[p % SIDE];
  var sum = 0.0;
  for (var a = 0u; a < TAPS; a++) {
    for (var b = 0u; b < TAPS; b++) {
      let i = first + (a * TAPS + b) * u.cin;
      sum = fma(rows[a] * cols[b], value_in(g[word_of(i)], i), sum);
    }
  }
  return sum;
}

// U's SIDE x SIDE tile of kernel k (= co * Cin + ci): (G g G^T)[i][j] is element j of row i.
fn tile(k: u32) -> Matrix {
  let first = (k / u.cin) * TAPS * TAPS * u.cin + k % u.cin;  // tap (a, b) at first + (a * 3 + b) Cin
  var taps: array<vec3f, TAPS>;  // rows a of g
  for (var a = 0u; a < TAPS; a++) {
    for (var b = 0u; b < TAPS; b++) {
      let i = first + (a * TAPS + b) * u.cin;
      taps[a][b] = value_in(g[word_of(i)], i);
    }
  }
  var coefficients = g_rows();  // a function variable: indexed at run time
  var out: Matrix;
  for (var i = 0u; i < SIDE; i++) {
    let row = coefficients[i];
    let t = row.x * taps[0] + row.y * taps[1] + row.z * taps[2];  // row i of G g
    for (var j = 0u; j < SIDE; j++) { out[i][j] = dot(coefficients[j], t); }
  }
  return out;
}

@compute @workgroup_size(WG)
fn per_kernel(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let index = (wg.y * MAX_GROUPS_X + wg.x) * WG + lid;
  if (!F16_WEIGHTS) {
    if (index >= u.kernels) { return; }
    var t = tile(index);
    for (var p = 0u; p < SIDE * SIDE; p++) { dst[p * u.kernels + index] = bitcast<u32>(t[p / SIDE][p % SIDE]); }
    return;
  }
  let k = 2u * index;
  if (k >= u.kernels) { return; }
  var t0 = tile(k);
  var t1 = tile(k + 1u);
  for (var p = 0u; p < SIDE * SIDE; p++) {
    dst[(p * u.kernels + k) / 2u] = pack2x16float(vec2f(t0[p / SIDE][p % SIDE], t1[p / SIDE][p % SIDE]));
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let word = (wg.y * MAX_GROUPS_X + wg.x) * WG + lid;
  if (!F16_WEIGHTS) {
    if (word < u.elements) { dst[word] = bitcast<u32>(transformed(word)); }
    return;
  }
  let e = 2u * word;
  if (e < u.elements) { dst[word] = pack2x16float(vec2f(transformed(e), transformed(e + 1u))); }
}
