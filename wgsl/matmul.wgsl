// Linear layer and batched matmul, f32 math: y = act(x W^T + b) + r.
//   x (batch, M, K) f32, row-major; W (batch or 1, N, K) — PyTorch's [out, in] — stored f32, or f16 packed two per
//   u32 word (F16_WEIGHTS: widened with unpack2x16float); b (N) in W's storage dtype; r and y (batch, M, N) f32.
//   A linear layer is batch = 1, M = tokens of every image, w_batch_stride = 0.
//   act (ACTIVATION): 0 none, 1 gelu (erf form), 2 silu, 3 quick_gelu (lib/activation.wgsl), before the residual.
//   RESIDUAL: 0 none, 1 r from binding 3, 2 y's own prior contents (in-place accumulate: y += act(...)).
// Bindings: 0 x, 1 W, 2 b, 3 r, 4 y (read_write), 5 uniform Matmul (lib/matmul.wgsl). b and r are statically used:
//   bind any read-only tensor (e.g. x) when HAS_BIAS is false or RESIDUAL is not 1.
// Dispatch: (ceil(N / TILE_N), rows, layers) workgroups, rows * layers >= batch * ceil(M / TILE_M); a row of tiles is
//   wg.z * 65535 + wg.y (wrapped past the 65535 limit), surplus workgroups return at once.
// Tiling (lib/gemm_tile.wgsl): TILE_M x TILE_N outputs per workgroup, THREAD_M x THREAD_N (4 or 8) per
//   invocation, x and W staged TILE_K at a time k-major in workgroup memory; ragged edges zero-filled on load,
//   masked on store. VEC_K (K % 4 == 0): x and W load as vec4s along K; else element by element.

#include "lib/gemm_x_f32.wgsl"
#include "lib/gemm_f32.wgsl"
#include "lib/matmul.wgsl"
