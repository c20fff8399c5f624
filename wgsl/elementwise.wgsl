// Elementwise maps over f32 tensors of n elements.
//   axpby:          out[i] = a * x[i] + b * y[i]
//   axpby_inplace:  out[i] = a * out[i] + b * y[i]
//   scale:          out[i] = a * x[i] + b            (y unused)
//   scale_inplace:  out[i] = a * out[i] + b
//   add_rows:         out[i] = x[i] + y[row(i) * C + k % C]     k = first + i, row(i) = k / inner
//   add_rows_inplace: out[i] = out[i] + y[...]
//     x seen as (B, S, C) with inner = S * C, y as (B, C): a vector per batch row added over S (a bias per
//     channel on NHWC maps, the time embedding per (batch, channel)); `first` is the part's first element. y is
//     bound as u32 words: f32, or (add_rows*, F16_WEIGHTS) a stored bias of f16 pairs (lib/packed_weights.wgsl).
// Bindings: 0 x (read), 1 y (read), 2 out (read_write), 3 uniform Elementwise (axpby*, scale) or Broadcast
// (add_rows*). Dispatch: ceil(n / WG) workgroups along x, wrapped into y when over 65535 (row = wg.y * 65535).

struct Elementwise { n: u32, a: f32, b: f32 }
struct Broadcast { n: u32, first: u32, inner: u32, channels: u32 }

override WG: u32 = 256u;
const MAX_GROUPS_X: u32 = 65535u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> u: Elementwise;
@group(0) @binding(3) var<uniform> ub: Broadcast;

fn index(wg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * MAX_GROUPS_X + wg.x) * WG + lid.x;
}

#include "lib/packed_weights.wgsl"

fn row_vector(i: u32) -> f32 {
  let k = ub.first + i;
  let j = k / ub.inner * ub.channels + k % ub.channels;
  return value_in(y[word_of(j)], j);
}

@compute @workgroup_size(WG)
fn axpby(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, lid);
  if (i < u.n) { out[i] = u.a * x[i] + u.b * bitcast<f32>(y[i]); }
}

@compute @workgroup_size(WG)
fn axpby_inplace(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, lid);
  if (i < u.n) { out[i] = u.a * out[i] + u.b * bitcast<f32>(y[i]); }
}

@compute @workgroup_size(WG)
fn scale(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, lid);
  if (i < u.n) { out[i] = u.a * x[i] + u.b; }
}

@compute @workgroup_size(WG)
fn scale_inplace(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, lid);
  if (i < u.n) { out[i] = u.a * out[i] + u.b; }
}

@compute @workgroup_size(WG)
fn add_rows(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, lid);
  if (i < ub.n) { out[i] = x[i] + row_vector(i); }
}

@compute @workgroup_size(WG)
fn add_rows_inplace(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, lid);
  if (i < ub.n) { out[i] = out[i] + row_vector(i); }
}
