// 2-D convolution as an implicit GEMM on tensor cores over f16 x: as conv2d_subgroup_matrix.wgsl with x (B, H, W,
//   Cin) NHWC f16 (bound as vec4<f16>s: lib/gemm_x_f16.wgsl), staged as it is; W, b, r and y as there (y f32).

enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;

#include "lib/gemm_x_f16.wgsl"
#include "lib/gemm_subgroup_matrix.wgsl"
#include "lib/conv2d.wgsl"
