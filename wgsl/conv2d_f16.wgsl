// 2-D convolution as an implicit GEMM, f16 storage and math: y = conv(up(x), W) + b + r with every tensor f16.
//   Shapes, upsampling, RESIDUAL, bindings, dispatch and tiling as in conv2d.wgsl; precision in lib/gemm_f16.wgsl
//   (f16 products and per-TILE_K partial sums, f32 accumulation across steps and in the epilogue).

enable f16;

#include "lib/gemm_f16.wgsl"
#include "lib/conv2d.wgsl"
