// LayerNorm over the last axis of x (rows, C):
//   y[r,c] = (x[r,c] - mean_r) * rstd_r * gamma[c] + beta[c],  mean_r = sum_c x[r,c] / C,
//   rstd_r = 1 / sqrt(sum_c (x[r,c] - mean_r)^2 / C + eps)
// x f32; y in the including kernel's Out (layernorm.wgsl f32, layernorm_f16_output.wgsl f16, rounded once as
// stored); gamma, beta (C) are f32 words or, with F16_WEIGHTS, packed f16 pairs.
// Entry points:
//   in_registers (C <= WG * ELEMS, ELEMS <= MAX_ELEMS): each thread reads its columns lid + i WG once into
//     registers, centres them on their own mean, and one tree merges the threads' (count, mean, M2) by the pairwise
//     update of Chan, Golub & LeVeque (1979): one read of x and one reduction a row. (`main` took three reads and
//     two reductions; with a workgroup a row, its barriers, not bandwidth, set its time.)
//   main (any C): the mean first, then the centred variance, each a workgroup sum over strided reads.
// Bindings: 0 x, 1 gamma, 2 beta, 3 out (array<Out>, declared here), 4 uniform LayerNorm.
// Dispatch: one workgroup of WG threads per row, rows wrapped into y past 65535 (row = wg.y * 65535 + wg.x).

struct LayerNorm { rows: u32, cols: u32, eps: f32 }

override WG: u32 = 64u;
override ELEMS: u32 = 1u;  // in_registers: columns a thread holds, ceil(C / WG)
const MAX_ELEMS: u32 = 32u;
// gamma, beta as stored: word_of(c), value_in(word, c)
#include "lib/packed_weights.wgsl"
const MAX_GROUPS_X: u32 = 65535u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<u32>;
@group(0) @binding(2) var<storage, read> beta: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<Out>;
@group(0) @binding(4) var<uniform> u: LayerNorm;

#include "lib/workgroup_sum.wgsl"

var<workgroup> moments: array<vec3f, WG>;  // (count, mean, M2) per thread, merged in place

fn affine(v: f32, c: u32) -> Out {
  return Out(v * value_in(gamma[word_of(c)], c) + value_in(beta[word_of(c)], c));
}

// (count, mean, M2) of two disjoint sets merged; either may be empty.
fn merge(a: vec3f, b: vec3f) -> vec3f {
  if (b.x == 0.0) { return a; }
  let n = a.x + b.x;
  let delta = b.y - a.y;
  let w = b.x / n;
  return vec3f(n, a.y + delta * w, a.z + b.z + delta * delta * a.x * w);
}

@compute @workgroup_size(WG)
fn in_registers(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = wg.y * MAX_GROUPS_X + wg.x;
  if (r >= u.rows) { return; }
  let row = r * u.cols;
  var v: array<f32, MAX_ELEMS>;
  var count = 0.0;
  var s = 0.0;
  for (var i = 0u; i < ELEMS; i++) {
    let c = lid + i * WG;
    if (c < u.cols) {
      v[i] = x[row + c];
      s += v[i];
      count += 1.0;
    }
  }
  let local_mean = select(0.0, s / count, count > 0.0);
  var m2 = 0.0;
  for (var i = 0u; i < ELEMS; i++) {
    if (lid + i * WG < u.cols) {
      let d = v[i] - local_mean;
      m2 += d * d;
    }
  }
  moments[lid] = vec3f(count, local_mean, m2);
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    if (lid < half) { moments[lid] = merge(moments[lid], moments[lid + half]); }
    workgroupBarrier();
  }
  let total = moments[0];
  let mean = total.y;
  let rstd = inverseSqrt(total.z / f32(u.cols) + u.eps);
  for (var i = 0u; i < ELEMS; i++) {
    let c = lid + i * WG;
    if (c < u.cols) { out[row + c] = affine((v[i] - mean) * rstd, c); }
  }
}

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
    out[row + c] = affine((x[row + c] - mean) * rstd, c);
  }
}
