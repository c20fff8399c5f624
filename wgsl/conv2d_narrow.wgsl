// 2-D convolution to a few output channels (Cout <= 4: a VAE's conv_out to RGB), f32 math, computed directly:
//   y[b, oy, ox, o] = sum over ky, kx, c of up(x)[b, oy * S - P + ky, ox * S - P + kx, c] W[o, ky, kx, c]
//                     + b[o] + r[b, oy, ox, o]      (zero outside the image)
//   up(x) is x seen at (SH, SW) by nearest neighbour, as in conv2d.wgsl: source index floor(dst * H / SH).
//   x (B, H, W, Cin) f32, Cin % 4 == 0, bound as vec4s; W [Cout, KH, KW, Cin] channels last (as conv2d reads it),
//   stored f32 or f16 packed two per u32 word (F16_WEIGHTS); b (Cout) in W's storage dtype; r and y
//   (B, OH, OW, Cout) f32. RESIDUAL: 0 none, 1 r from binding 3, 2 y's own prior contents (in place).
// Why: as an implicit GEMM, N = Cout fills 3 of a tile's 128 columns; the VAE's conv_out (128 -> 3 at 512x512)
//   took 1.4-1.5 ms on an H100 that way, for ~0.1 ms of traffic (bench/RESULTS.md, session 9).
// Each workgroup stages all of W in workgroup memory as f32 quads (COUT * KH * KW * Cin / 4 <= MAX_QUADS), then each
//   invocation sums one output pixel's COUT channels over the taps inside the image, a quad of Cin at a time.
// Bindings: 0 x, 1 W, 2 b, 3 r, 4 y (read_write), 5 uniform Conv2d (conv2d.wgsl's; k_split unused). b and r are
//   statically used: bind any read-only tensor (e.g. x) when HAS_BIAS is false or RESIDUAL is not 1.
// Dispatch: one invocation per output pixel, ceil(B * OH * OW / WG) workgroups along x wrapped into y past 65535
//   (pixel = (wg.y * 65535 + wg.x) * WG + local index).

#include "lib/packed_weights.wgsl"
#include "lib/residual.wgsl"
#include "lib/conv2d_geometry.wgsl"

override WG: u32 = 256u;
override COUT: u32 = 3u;  // output channels, 1 to 4
const MAX_QUADS: u32 = 1024u;  // 16 KiB: WebGPU's guaranteed workgroup memory
const MAX_GROUPS_X: u32 = 65535u;

@group(0) @binding(0) var<storage, read> x: array<vec4f>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> bias: array<u32>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

var<workgroup> w_tile: array<vec4f, MAX_QUADS>;  // [o][ky][kx][c / 4]

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let weights = COUT * u.kh * u.kw * u.cin;
  for (var i = lid; i < weights; i += WG) {
    w_tile[i / 4u][i % 4u] = value_in(w[word_of(i)], i);
  }
  workgroupBarrier();
  let pixel = (wg.y * MAX_GROUPS_X + wg.x) * WG + lid;
  let p = out_pixel(pixel);
  if (!p.inside) { return; }
  let quads = u.cin / 4u;
  let taps = u.kh * u.kw;
  var acc = vec4f();
  for (var tap = 0u; tap < taps; tap++) {
    let first = input_pixel(p, tap);  // its first channel, or -1 in the padding
    if (first < 0) { continue; }
    let row = u32(first) / 4u;
    for (var q = 0u; q < quads; q++) {
      let v = x[row + q];
      for (var o = 0u; o < COUT; o++) {
        acc[o] += dot(v, w_tile[(o * taps + tap) * quads + q]);
      }
    }
  }
  for (var o = 0u; o < COUT; o++) {
    var v = acc[o];
    if (HAS_BIAS) { v += value_in(bias[word_of(o)], o); }
    let i = pixel * COUT + o;
    if (RESIDUAL == RESIDUAL_TENSOR) { v += residual[i]; }
    if (RESIDUAL == RESIDUAL_IN_PLACE) { v += y[i]; }
    y[i] = v;
  }
}
