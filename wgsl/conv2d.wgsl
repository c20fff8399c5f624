// 2-D convolution as an implicit GEMM, f32 math: y = conv(up(x), W) + b + r.
//   x (B, H, W, Cin) NHWC f32; W [Cout, KH, KW, Cin] (channels last: conv2d_weight_layout.wgsl) stored f32, or f16
//   packed two per u32 word (F16_WEIGHTS: widened with unpack2x16float); b (Cout) in W's storage dtype; r and y
//   (B, OH, OW, Cout) NHWC f32.
//   up(x) is x seen at size (SH, SW) by nearest neighbour, as torch's interpolate(mode="nearest"):
//   up(x)[sy, sx] = x[floor(sy * H / SH), floor(sx * W / SW)] (2x: x[sy / 2, sx / 2]); SH = H, SW = W is no upsample.
//   y[b, oy, ox, co] = sum over ci, ky, kx of up(x)[b, oy * S - P + ky, ox * S - P + kx, ci] W[co, ky, kx, ci]
//   (zero outside the SH x SW image), OH = (SH + 2P - KH) / S + 1.
//   RESIDUAL: 0 none, 1 r from binding 3, 2 y's own prior contents (in-place accumulate).
// GEMM view: M = B * OH * OW output pixels, N = Cout, K = KH * KW * Cin ordered as W's rows (tap-major, channel-minor),
//   so a quad of K is 4 consecutive channels of one input pixel (one vec4 load when VEC_K: Cin % 4 == 0) and of W.
// Bindings: 0 x, 1 W, 2 b, 3 r, 4 y (read_write), 5 uniform Conv2d (lib/conv2d.wgsl). b and r are statically used:
//   bind any read-only tensor (e.g. x) when HAS_BIAS is false or RESIDUAL is not 1.
// Dispatch: (ceil(Cout / TILE_N), rows, layers) workgroups, rows * layers >= ceil(M / TILE_M); a row of tiles is
//   wg.z * 65535 + wg.y (wrapped past the 65535 limit), surplus workgroups return at once.
// Tiling as in matmul.wgsl (lib/gemm_tile.wgsl).

#include "lib/gemm_x_f32.wgsl"
#include "lib/gemm_f32.wgsl"
#include "lib/conv2d.wgsl"
