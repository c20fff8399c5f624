// LayerNorm over the last axis of x (rows, C):
//   y[r,c] = (x[r,c] - mean_r) * rstd_r * gamma[c] + beta[c],  mean_r = sum_c x[r,c] / C,
//   rstd_r = 1 / sqrt(sum_c (x[r,c] - mean_r)^2 / C + eps)   (the mean first, then the centred variance)
// gamma, beta (C) are f32 words or, with F16_WEIGHTS, packed f16 pairs.
// Bindings: 0 x, 1 gamma, 2 beta, 3 out, 4 uniform LayerNorm.
// Dispatch: one workgroup of WG threads per row, rows wrapped into y past 65535 (row = wg.y * 65535 + wg.x).

struct LayerNorm { rows: u32, cols: u32, eps: f32 }

override WG: u32 = 64u;
// gamma, beta as stored: word_of(c), value_in(word, c)
#include "lib/packed_weights.wgsl"
const MAX_GROUPS_X: u32 = 65535u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<u32>;
@group(0) @binding(2) var<storage, read> beta: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> u: LayerNorm;

#include "lib/workgroup_sum.wgsl"


@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = wg.y * MAX_GROUPS_X + wg.x;
  if (r >= u.rows) { return; }
  let row = r * u.cols;
  var s = 0.0;
  for (var c = lid; c < u.cols; c += WG) { s += x[row + c]; }
  let mean = workgroup_sum(s, lid) / f32(u.cols);
  var m2 = 0.0;
  for (var c = lid; c < u.cols; c += WG) {
    let d = x[row + c] - mean;
    m2 += d * d;
  }
  let rstd = inverseSqrt(workgroup_sum(m2, lid) / f32(u.cols) + u.eps);
  for (var c = lid; c < u.cols; c += WG) {
    out[row + c] = (x[row + c] - mean) * rstd * value_in(gamma[word_of(c)], c) + value_in(beta[word_of(c)], c);
  }
}
