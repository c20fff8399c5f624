// Linear layer and batched matmul on tensor cores over f16 x: as matmul_subgroup_matrix.wgsl with x (batch, M, K)
//   f16 (bound as vec4<f16>s: lib/gemm_x_f16.wgsl), staged as it is; W, b, r and y as there (y f32). For activations
//   their producer already wrote in f16: half the bytes of f32 x to load, and no rounding while staging.

enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;

#include "lib/gemm_x_f16.wgsl"
#include "lib/gemm_subgroup_matrix.wgsl"
#include "lib/matmul.wgsl"
