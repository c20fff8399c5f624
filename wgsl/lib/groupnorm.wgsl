// GroupNorm over NHWC feature maps x (B, H, W, C), G groups of cg = C / G adjacent channels:
//   y[b,p,c] = (x[b,p,c] - mean[b,g]) * rstd[b,g] * gamma[c] + beta[c],   g = c / cg,  optionally SiLU(y)
//   mean, var over the H*W*cg values of (b, g);  rstd = 1 / sqrt(var + eps)
//
// Statistics combine partial moments, each step numerically stable in f32 for maps whose mean dwarfs their spread:
//   partial_moments: per (b, row, group), over the row's pixels and the group's channels: per channel, shifted sums
//                    about the row's first value, s1 = sum(x - x0), s2 = sum((x - x0)^2), give mean_c = x0 + s1/n and
//                    M2_c = s2 - s1^2/n; the group's cg channels then combine as below (equal counts n);
//   normalize:       a whole map: each workgroup combines the partials of the groups it covers (in one pass,
//                    shifted by the first row's mean) and applies them, so the statistics need no pass of their
//                    own; workgroups of the first row write stats (mean, rstd);
//   group_moments:   the same combination, kept as moments (count, mean, M2) and, when `accumulate` is set,
//                    merged into the moments already there (Chan et al.), so tiles of one map can share statistics;
//   finalize:        moments -> stats (mean, rstd);
//   apply:           y from stats;
//   whole_group:     all of it for one (b, g) per workgroup, in one dispatch: shifted sums about the group's first
//                    value (s1, s2 as above over its H*W*cg values), a workgroup sum, then y from a second read of
//                    the group, which the cache mostly holds (bench/RESULTS.md, session 18).
// partial_moments counts only a window (rows row0..row0+rows, columns col0..col0+cols) of x: the core of a tile.
//
// x f32; y in the including kernel's Out (groupnorm.wgsl f32, groupnorm_f16_output.wgsl f16, rounded once as
// stored).
// Layouts: partials (B, rows, G, 2) = (mean, M2) over cols * cg values each; moments (B, G, 3) = (count, mean, M2);
//          stats (B, G, 2) = (mean, rstd). gamma, beta (C) are f32 words or, with F16_WEIGHTS, packed f16 pairs.
// Bindings: 0 x, 1 gamma, 2 beta, 3 stats, 4 partials, 5 moments, 6 out (array<Out>, declared here), 7 uniform
//           GroupNorm (unused ones unbound).
// Dispatch: partial_moments (rows, ceil(C / CT), B); normalize, apply (H, ceil(C / CT), B); group_moments,
//           whole_group (G, B) (WG threads, CG = cg);
//           finalize ceil(B * G / WG). A workgroup of CT x LANES threads covers CT channels of one pixel row, its
//           LANES lanes taking every LANES-th pixel, so each warp reads contiguous channels. CT is a multiple of
//           CG = cg (partial_moments and normalize: whole groups, GW of them); normalize sums a group's partials in
//           a segment of SEGMENT threads (a power of two, GW SEGMENT <= CT LANES).

struct GroupNorm {
  batch: u32, height: u32, width: u32, channels: u32, groups: u32,
  row0: u32, rows: u32, col0: u32, cols: u32,
  eps: f32, accumulate: u32
}

override CT: u32 = 64u;
override LANES: u32 = 4u;
override CG: u32 = 1u;  // channels per group (partial_moments, normalize)
override GW: u32 = CT / CG;  // groups per workgroup (partial_moments, normalize)
override SEGMENT: u32 = 1u;  // normalize: threads summing one group's partials
override WG: u32 = 256u;  // group_moments, finalize, whole_group (a power of two)
const UNROLL: u32 = 8u;  // whole_group: loads a thread issues before it uses them
override SILU: bool = false;
// gamma, beta as stored: word_of(c), value_in(word, c)
#include "lib/packed_weights.wgsl"

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<u32>;
@group(0) @binding(2) var<storage, read> beta: array<u32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
@group(0) @binding(5) var<storage, read_write> moments: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<Out>;
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
  let n = f32(u.cols);
  if (valid && lane == 0u) {
    for (var l = 1u; l < LANES; l++) {
      s1 += lane_s1[l * CT + ct];
      s2 += lane_s2[l * CT + ct];
    }
    lane_s1[ct] = shift + s1 / n;  // mean_c, past the lanes' sums this thread read
    lane_s2[ct] = max(s2 - s1 * s1 / n, 0.0);  // M2_c
  }
  workgroupBarrier();
  let g = wg.y * GW + lid;
  if (lid < GW && g < u.groups) {
    let first = lid * CG;
    var mean = 0.0;
    for (var i = 0u; i < CG; i++) { mean += lane_s1[first + i]; }
    mean /= f32(CG);
    var m2 = 0.0;
    for (var i = 0u; i < CG; i++) {
      let d = lane_s1[first + i] - mean;
      m2 += lane_s2[first + i] + n * d * d;
    }
    let at = ((b * u.rows + wg.x) * u.groups + g) * 2u;
    partials[at] = mean;
    partials[at + 1u] = m2;
  }
}


// (count, mean, M2) of group wg.x of batch wg.y from its partials (one a row): the mean first, then the centered M2.
fn combine_partials(wg: vec3u, lid: u32) -> vec3f {
  var s = 0.0;
  for (var i = lid; i < u.rows; i += WG) {
    s += partials[((wg.y * u.rows + i) * u.groups + wg.x) * 2u];
  }
  let mean = workgroup_sum(s, lid) / f32(u.rows);
  let n = f32(u.cols * (u.channels / u.groups));
  var m2 = 0.0;
  for (var i = lid; i < u.rows; i += WG) {
    let at = ((wg.y * u.rows + i) * u.groups + wg.x) * 2u;
    let d = partials[at] - mean;
    m2 += partials[at + 1u] + n * d * d;
  }
  return vec3f(f32(u.rows) * n, mean, workgroup_sum(m2, lid));
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

// y at channel c of pixel row wg.x (batch wg.z) for its lanes' pixels, with the channel's (mean, rstd).
fn apply_row(wg: vec3u, lid: u32, c: u32, mean: f32, rstd: f32) {
  let scale = rstd * value_in(gamma[word_of(c)], c);
  let shift = value_in(beta[word_of(c)], c);
  let row = (wg.z * u.height + wg.x) * u.width * u.channels + c;
  for (var i = lid / CT; i < u.width; i += LANES) {
    var y = (x[row + i * u.channels] - mean) * scale + shift;  // centred first: x may sit far from 0
    if (SILU) { y = y / (1.0 + exp(-y)); }
    out[row + i * u.channels] = Out(y);
  }
}

// The sums over each segment of SEGMENT threads of a and b (lane_s1 and lane_s2 as the trees); segment j's totals
// at [j * SEGMENT] afterwards.
fn segment_sums(a: f32, b: f32, lid: u32) {
  lane_s1[lid] = a;
  lane_s2[lid] = b;
  workgroupBarrier();
  for (var half = SEGMENT / 2u; half > 0u; half >>= 1u) {
    if (lid % SEGMENT < half) {
      lane_s1[lid] += lane_s1[lid + half];
      lane_s2[lid] += lane_s2[lid + half];
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(CT * LANES)
fn normalize(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  // Segment j combines the partials (one a row, u.rows of them, n values each) of group wg.y GW + j in one pass,
  // about the first row's mean: s = sum d_i, q = sum (M2_i + n d_i^2) with d_i = mean_i - shift give
  // mean = shift + s / rows and M2 = q - n s^2 / rows.
  let j = lid / SEGMENT;
  let g = wg.y * GW + j;
  let mine = j < GW && g < u.groups;
  let base = wg.z * u.rows * u.groups + g;
  let n = f32(u.cols * CG);
  var shift = 0.0;
  var s = 0.0;
  var q = 0.0;
  if (mine) {
    shift = partials[base * 2u];
    for (var r = lid % SEGMENT; r < u.rows; r += SEGMENT) {
      let at = (base + r * u.groups) * 2u;
      let d = partials[at] - shift;
      s += d;
      q += partials[at + 1u] + n * d * d;
    }
  }
  segment_sums(s, q, lid);
  let rows = f32(u.rows);
  let sum = lane_s1[j * SEGMENT];
  let mean = shift + sum / rows;
  let rstd_j = rstd(max(lane_s2[j * SEGMENT] - n * sum * sum / rows, 0.0), n * rows);
  workgroupBarrier();
  if (mine && lid % SEGMENT == 0u) {
    lane_s1[2u * j] = mean;
    lane_s1[2u * j + 1u] = rstd_j;
    if (wg.x == 0u) {
      stats[(wg.z * u.groups + g) * 2u] = mean;
      stats[(wg.z * u.groups + g) * 2u + 1u] = rstd_j;
    }
  }
  workgroupBarrier();
  let c = wg.y * CT + lid % CT;
  if (c < u.channels) {
    let k = (lid % CT) / CG;  // the channel's group in this workgroup
    apply_row(wg, lid, c, lane_s1[2u * k], lane_s1[2u * k + 1u]);
  }
}

@compute @workgroup_size(CT * LANES)
fn apply(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wg.y * CT + lid % CT;
  if (c >= u.channels) { return; }
  let at = (wg.z * u.groups + c / (u.channels / u.groups)) * 2u;
  apply_row(wg, lid, c, stats[at], stats[at + 1u]);
}

// Element `i` of group g in batch b (pixel i / CG, channel g CG + i % CG): its index in x and out.
fn group_element(b: u32, g: u32, i: u32) -> u32 {
  return (b * u.height * u.width + i / CG) * u.channels + g * CG + i % CG;
}

@compute @workgroup_size(WG)
fn whole_group(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = wg.x;
  let b = wg.y;
  let count = u.height * u.width * CG;
  let shift = x[group_element(b, g, 0u)];
  var s1 = 0.0;
  var s2 = 0.0;
  for (var i0 = lid; i0 < count; i0 += WG * UNROLL) {
    var d: array<f32, UNROLL>;  // loaded first, summed after: UNROLL loads in flight
    for (var j = 0u; j < UNROLL; j++) {
      let i = i0 + j * WG;
      d[j] = select(0.0, x[group_element(b, g, min(i, count - 1u))] - shift, i < count);
    }
    for (var j = 0u; j < UNROLL; j++) {
      s1 += d[j];
      s2 += d[j] * d[j];
    }
  }
  let n = f32(count);
  let sums = workgroup_sums(vec2f(s1, s2), lid);
  let mean = shift + sums.x / n;
  let rstd_g = rstd(max(sums.y - sums.x * sums.x / n, 0.0), n);
  if (lid == 0u) {
    stats[(b * u.groups + g) * 2u] = mean;
    stats[(b * u.groups + g) * 2u + 1u] = rstd_g;
  }
  for (var i0 = lid; i0 < count; i0 += WG * UNROLL) {
    var v: array<f32, UNROLL>;
    for (var j = 0u; j < UNROLL; j++) {
      v[j] = x[group_element(b, g, min(i0 + j * WG, count - 1u))];
    }
    for (var j = 0u; j < UNROLL; j++) {
      let i = i0 + j * WG;
      let c = g * CG + i % CG;
      var y = (v[j] - mean) * rstd_g * value_in(gamma[word_of(c)], c) + value_in(beta[word_of(c)], c);
      if (SILU) { y = y / (1.0 + exp(-y)); }
      if (i < count) { out[group_element(b, g, i)] = Out(y); }
    }
  }
}
