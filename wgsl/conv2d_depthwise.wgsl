// Depthwise 2-D convolution over NHWC, f32 math: y[b, oy, ox, c] = sum over ky, kx of
//   x[b, oy * S - P + ky, ox * S - P + kx, c] W[c, 0, ky, kx] (zero outside the image) + b[c] + r[b, oy, ox, c].
//   x (B, H, W, C) f32; W [C, 1, KH, KW] stored f32, or f16 packed two per u32 word (F16_WEIGHTS,
//   lib/packed_weights.wgsl); b (C) in W's storage dtype; r and y (B, OH, OW, C) f32.
//   RESIDUAL: 0 none, 1 r from binding 3, 2 y's own prior contents (in-place accumulate).
// Bindings: 0 x, 1 W, 2 b, 3 r, 4 y (read_write), 5 uniform DepthwiseConv2d. b and r are statically used: bind any
//   read-only tensor (e.g. x) when HAS_BIAS is false or RESIDUAL is not 1.
// Dispatch: one invocation per output element, channels fastest (coalesced), ceil(B*OH*OW*C / WG) workgroups along
//   x wrapped into y past 65535 (element = (wg.y * 65535 + wg.x) * WG + local index).

#include "lib/packed_weights.wgsl"
#include "lib/residual.wgsl"

struct DepthwiseConv2d {
  batch: u32, in_h: u32, in_w: u32, channels: u32, out_h: u32, out_w: u32, kh: u32, kw: u32, stride: u32, pad: u32
}

override WG: u32 = 256u;

const MAX_GROUPS_X: u32 = 65535u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> bias: array<u32>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> u: DepthwiseConv2d;

// Input value under tap (ky, kx) of output element i, 0 in the padding.
fn tap_input(i: u32, tap: u32) -> f32 {
  let c = i % u.channels;
  let pixel = i / u.channels;
  let ox = pixel % u.out_w;
  let oy = (pixel / u.out_w) % u.out_h;
  let b = pixel / (u.out_w * u.out_h);
  let iy = i32(oy * u.stride + tap / u.kw) - i32(u.pad);
  let ix = i32(ox * u.stride + tap % u.kw) - i32(u.pad);
  if (iy < 0 || ix < 0 || iy >= i32(u.in_h) || ix >= i32(u.in_w)) { return 0.0; }
  return x[((b * u.in_h + u32(iy)) * u.in_w + u32(ix)) * u.channels + c];
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.y * MAX_GROUPS_X + wg.x) * WG + lid;
  if (i >= u.batch * u.out_h * u.out_w * u.channels) { return; }
  let c = i % u.channels;
  let taps = u.kh * u.kw;
  var v = 0.0;
  if (HAS_BIAS) { v = value_in(bias[word_of(c)], c); }
  for (var tap = 0u; tap < taps; tap++) {
    let k = c * taps + tap;
    v = fma(tap_input(i, tap), value_in(w[word_of(k)], k), v);
  }
  if (RESIDUAL == RESIDUAL_TENSOR) { v += residual[i]; }
  if (RESIDUAL == RESIDUAL_IN_PLACE) { v += y[i]; }
  y[i] = v;
}
