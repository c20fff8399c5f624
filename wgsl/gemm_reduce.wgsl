// The end of a split-K GEMM (matmul.wgsl, conv2d.wgsl with SPLIT_K): y = act(sum_s p[s] + b) + r, f32.
//   p (splits, rows, cols): the splits' partial sums; b (cols) f32 words or f16 packed pairs (F16_WEIGHTS);
//   r and y (rows, cols). ACTIVATION (lib/activation.wgsl) before the residual; HAS_BIAS, RESIDUAL as the GEMMs'
//   (lib/residual.wgsl: 2 adds y's prior contents).
// Bindings: 0 p, 1 b, 2 r, 3 y (read_write), 4 uniform GemmReduce. b and r are statically used: bind any read-only
//   tensor (e.g. p) when HAS_BIAS is false or RESIDUAL is not 1.
// Entry points: main, an invocation per element of y; main_vec4, per 4 consecutive elements (cols a multiple of 4,
//   so they share a row), the splits read four at a time: a reduce is a chain of dependent loads per invocation,
//   and this keeps 4 vec4 loads in flight instead of one f32.
// Dispatch: ceil(rows * cols / (WG * 1 or 4)) workgroups along x wrapped into y past 65535 (invocation =
//   (wg.y * 65535 + wg.x) * WG + local index).

#include "lib/activation.wgsl"
#include "lib/packed_weights.wgsl"
#include "lib/residual.wgsl"

struct GemmReduce { elements: u32, cols: u32, splits: u32 }

override WG: u32 = 256u;
override ACTIVATION: u32 = ACT_NONE;

const MAX_GROUPS_X: u32 = 65535u;

@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read> bias: array<u32>;
@group(0) @binding(2) var<storage, read> residual: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> u: GemmReduce;
@group(0) @binding(0) var<storage, read> partials4: array<vec4f>;
@group(0) @binding(2) var<storage, read> residual4: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> y4: array<vec4f>;

fn bias_at(n: u32) -> f32 {
  return value_in(bias[word_of(n)], n);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.y * MAX_GROUPS_X + wg.x) * WG + lid;
  if (i >= u.elements) { return; }
  var v = 0.0;
  for (var s = 0u; s < u.splits; s++) { v += partials[s * u.elements + i]; }
  if (HAS_BIAS) { v += bias_at(i % u.cols); }
  v = activation(ACTIVATION, v);
  if (RESIDUAL == RESIDUAL_TENSOR) { v += residual[i]; }
  if (RESIDUAL == RESIDUAL_IN_PLACE) { v += y[i]; }
  y[i] = v;
}

@compute @workgroup_size(WG)
fn main_vec4(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.y * MAX_GROUPS_X + wg.x) * WG + lid;  // elements 4i .. 4i+3
  let quads = u.elements / 4u;
  if (i >= quads) { return; }
  var sums = array<vec4f, 4>();
  var s = 0u;
  for (; s + 4u <= u.splits; s += 4u) {
    sums[0] += partials4[s * quads + i];
    sums[1] += partials4[(s + 1u) * quads + i];
    sums[2] += partials4[(s + 2u) * quads + i];
    sums[3] += partials4[(s + 3u) * quads + i];
  }
  for (; s < u.splits; s++) { sums[0] += partials4[s * quads + i]; }
  var v = (sums[0] + sums[1]) + (sums[2] + sums[3]);
  if (HAS_BIAS) {
    let n = (4u * i) % u.cols;
    v += vec4f(bias_at(n), bias_at(n + 1u), bias_at(n + 2u), bias_at(n + 3u));
  }
  for (var c = 0u; c < 4u; c++) { v[c] = activation(ACTIVATION, v[c]); }
  if (RESIDUAL == RESIDUAL_TENSOR) { v += residual4[i]; }
  if (RESIDUAL == RESIDUAL_IN_PLACE) { v += y4[i]; }
  y4[i] = v;
}
