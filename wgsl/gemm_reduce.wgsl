// The end of a split-K GEMM (matmul.wgsl, conv2d.wgsl with SPLIT_K): y = act(sum_s p[s] + b) + r, f32.
//   p (splits, rows, cols): the splits' partial sums; b (cols) f32 words or f16 packed pairs (F16_WEIGHTS);
//   r and y (rows, cols). ACTIVATION (lib/activation.wgsl) before the residual; HAS_BIAS, RESIDUAL as the GEMMs'
//   (lib/residual.wgsl: 2 adds y's prior contents).
// Bindings: 0 p, 1 b, 2 r, 3 y (read_write), 4 uniform GemmReduce. b and r are statically used: bind any read-only
//   tensor (e.g. p) when HAS_BIAS is false or RESIDUAL is not 1.
// Dispatch: one invocation per element of y, ceil(rows * cols / WG) workgroups along x wrapped into y past 65535
//   (element = (wg.y * 65535 + wg.x) * WG + local index).

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

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.y * MAX_GROUPS_X + wg.x) * WG + lid;
  if (i >= u.elements) { return; }
  var v = 0.0;
  for (var s = 0u; s < u.splits; s++) { v += partials[s * u.elements + i]; }
  if (HAS_BIAS) {
    let n = i % u.cols;
    v += value_in(bias[word_of(n)], n);
  }
  v = activation(ACTIVATION, v);
  if (RESIDUAL == RESIDUAL_TENSOR) { v += residual[i]; }
  if (RESIDUAL == RESIDUAL_IN_PLACE) { v += y[i]; }
  y[i] = v;
}
