// Linear layer and batched matmul, f16 storage and math: y = act(x W^T + b) + r with x, W, b, r and y all f16.
//   Shapes, ACTIVATION, RESIDUAL, bindings, dispatch and tiling as in matmul.wgsl; precision in lib/gemm_f16.wgsl
//   (f16 products and per-TILE_K partial sums, f32 accumulation across steps and in the epilogue).

enable f16;

#include "lib/gemm_f16.wgsl"
#include "lib/matmul.wgsl"
