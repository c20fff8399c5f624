// GroupNorm over NHWC feature maps x (B, H, W, C), G groups of cg = C / G adjacent channels:
//   y[b,p,c] = (x[b,p,c] - mean[b,g]) * rstd[b,g] * gamma[c] + beta[c],   g = c / cg,  optionally SiLU(y)
//   mean, var over the H*W*cg values of (b, g);  rstd = 1 / sqrt(var + eps)
//
// Statistics are computed in three steps, each numerically stable in f32 for maps whose mean dwarfs their spread:
//   partial_moments: per (b, row, channel), over the row's pixels: shifted sums about the row's first value,
//                    s1 = sum(x - x0), s2 = sum((x - x0)^2), give mean = x0 + s1/n and M2 = s2 - s1^2/n;
//   group_stats:     per (b, g): the mean of the partial means first, then M2 = sum(M2_i + n (mean_i - mean)^2);
//                    writes stats (mean, rstd);
//   group_moments:   the same combination, kept as moments (count, mean, M2) and, when `accumulate` is set,
//                    merged into the moments already there (Chan et al.), so tiles of one map can share statistics;
//   finalize:        moments -> stats (mean, rstd).
// partial_moments counts only a window (rows row0..row0+rows, columns col0..col0+cols) of x: the core of a tile.
//
// Layouts: partials (B, rows, C, 2) = (mean, M2) over `cols` pixels each; moments (B, G, 3) = (count, mean, M2);
//          stats (B, G, 2) = (mean, rstd). gamma, beta (C) are f32 words or, with F16_WEIGHTS, packed f16 pairs.
// Bindings: 0 x, 1 gamma, 2 beta, 3 stats, 4 partials, 5 moments, 6 out, 7 uniform GroupNorm (unused ones unbound).
// Dispatch: partial_moments (rows, ceil(C / CT), B); apply (H, ceil(C / CT), B); group_stats, group_moments (G, B);
//           finalize ceil(B * G / WG). A workgroup of CT x LANES threads covers CT channels of one pixel row, its
//           LANES lanes taking every LANES-th pixel, so each warp reads contiguous channels.

struct GroupNorm {
  batch: u32, height: u32, width: u32, channels: u32, groups: u32,
  row0: u32, rows: u32, col0: u32, cols: u32,
  eps: f32, accumulate: u32
}

override CT: u32 = 64u;
override LANES: u32 = 4u;
override WG: u32 = 256u;  // group_stats, group_moments, finalize
override SILU: bool = false;
// gamma, beta as stored: word_of(c), value_in(word, c)
#include "lib/packed_weights.wgsl"

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<u32>;
@group(0) @binding(2) var<storage, read> beta: array<u32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
@group(0) @binding(5) var<storage, read_write> moments: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<uniform> u: GroupNorm;

var<workgroup> lane_s1: array<f32, CT * LANES>;
var<workgroup> lane_s2: array<f32, CT * LANES>;
#include "lib/workgroup_sum.wgsl"

fn rstd(m2: f32, count: f32) -> f32 {
  return inverseSqrt(m2 / count + u.eps);
}

@compute @workgroup_size(CT * LANES)
fn partial_moments(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let ct = lid % CT;
  let lane = lid / CT;
  let c = wg.y * CT + ct;
  let b = wg.z;
  let valid = c < u.channels;
  let row = ((b * u.height + u.row0 + wg.x) * u.width + u.col0) * u.channels + c;
  var shift = 0.0;
  var s1 = 0.0;
  var s2 = 0.0;
  if (valid) {
    shift = x[row];
    for (var i = lane; i < u.cols; i += LANES) {
      let d = x[row + i * u.channels] - shift;
      s1 += d;
      s2 += d * d;
    }
  }
  lane_s1[lid] = s1;
  lane_s2[lid] = s2;
  workgroupBarrier();
  if (valid && lane == 0u) {
    for (var l = 1u; l < LANES; l++) {
      s1 += lane_s1[l * CT + ct];
      s2 += lane_s2[l * CT + ct];
    }
    let n = f32(u.cols);
    let at = ((b * u.rows + wg.x) * u.channels + c) * 2u;
    partials[at] = shift + s1 / n;
    partials[at + 1u] = max(s2 - s1 * s1 / n, 0.0);
  }
}


// (count, mean, M2) of group wg.x of batch wg.y from its partials: the mean first, then the centered M2.
fn combine_partials(wg: vec3u, lid: u32) -> vec3f {
  let cg = u.channels / u.groups;
  let parts = u.rows * cg;
  let first = wg.x * cg;
  var s = 0.0;
  for (var i = lid; i < parts; i += WG) {
    s += partials[((wg.y * u.rows + i / cg) * u.channels + first + i % cg) * 2u];
  }
  let mean = workgroup_sum(s, lid) / f32(parts);
  let n = f32(u.cols);
  var m2 = 0.0;
  for (var i = lid; i < parts; i += WG) {
    let at = ((wg.y * u.rows + i / cg) * u.channels + first + i % cg) * 2u;
    let d = partials[at] - mean;
    m2 += partials[at + 1u] + n * d * d;
  }
  return vec3f(f32(parts) * n, mean, workgroup_sum(m2, lid));
}

@compute @workgroup_size(WG)
fn group_stats(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let m = combine_partials(wg, lid);
  if (lid == 0u) {
    let at = (wg.y * u.groups + wg.x) * 2u;
    stats[at] = m.y;
    stats[at + 1u] = rstd(m.z, m.x);
  }
}

@compute @workgroup_size(WG)
fn group_moments(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  var m = combine_partials(wg, lid);
  if (lid == 0u) {
    let at = (wg.y * u.groups + wg.x) * 3u;
    if (u.accumulate != 0u) {
      // Chan et al.: merging (na, ma, M2a) and (nb, mb, M2b) about their difference of means.
      let na = moments[at];
      let n = na + m.x;
      let delta = m.y - moments[at + 1u];
      m = vec3f(n, moments[at + 1u] + delta * m.x / n, moments[at + 2u] + m.z + delta * delta * na * m.x / n);
    }
    moments[at] = m.x;
    moments[at + 1u] = m.y;
    moments[at + 2u] = m.z;
  }
}

@compute @workgroup_size(WG)
fn finalize(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i < u.batch * u.groups) {
    stats[2u * i] = moments[3u * i + 1u];
    stats[2u * i + 1u] = rstd(moments[3u * i + 2u], moments[3u * i]);
  }
}

@compute @workgroup_size(CT * LANES)
fn apply(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wg.y * CT + lid % CT;
  if (c >= u.channels) { return; }
  let at = (wg.z * u.groups + c / (u.channels / u.groups)) * 2u;
  let mean = stats[at];
  let scale = stats[at + 1u] * value_in(gamma[word_of(c)], c);
  let shift = value_in(beta[word_of(c)], c);
  let row = (wg.z * u.height + wg.x) * u.width * u.channels + c;
  for (var i = lid / CT; i < u.width; i += LANES) {
    var y = (x[row + i * u.channels] - mean) * scale + shift;  // centred first: x may sit far from 0
    if (SILU) { y = y / (1.0 + exp(-y)); }
    out[row + i * u.channels] = y;
  }
}
