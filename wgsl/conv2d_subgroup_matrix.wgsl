// 2-D convolution as an implicit GEMM on tensor cores: y = conv(up(x), W) + b + r as conv2d.wgsl (layouts, upsample,
//   RESIDUAL, bindings, dispatch) with the products summed by f16 x f16 -> f32 subgroup matrices
//   (lib/gemm_subgroup_matrix.wgsl: x and W rounded to f16 as they are staged). Tiles of whole 32 x 8 THREAD_N
//   subgroup blocks, THREAD_M = 8, THREAD_N 4 or 8; needs shader-f16, subgroups (of 32) and
//   chromium-experimental-subgroup-matrix with f16 16x16x16 configs.

enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;

#include "lib/gemm_x_f32.wgsl"
#include "lib/gemm_subgroup_matrix.wgsl"
#include "lib/conv2d.wgsl"
