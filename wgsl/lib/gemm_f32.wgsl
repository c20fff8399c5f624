// GEMM core, f32 math: y[row, col] = act(sum_k X[row, k] W[col, k] + b[col]) + r[row, col], a tile per workgroup
// (geometry, staging, epilogue and store in gemm_tile.wgsl). The including kernel stages each TILE_K step of its
// X and W tiles with put_x and put_w (its own addressing; W read with weight(i)), calls multiply_tiles, and ends
// with store. W and b are bound as u32 words: f32 bits, or f16 packed two per word (F16_WEIGHTS,
// packed_weights.wgsl).
// Bindings: 0 x f32, 1 W, 2 b, 3 r f32, 4 y f32 (read_write); the kernel's uniform is binding 5. b and r are
//   statically used: bind any read-only tensor there when HAS_BIAS is false or RESIDUAL is not 1.

#include "lib/packed_weights.wgsl"
#include "lib/gemm_tile.wgsl"

alias Math = f32;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> bias: array<u32>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn weight(i: u32) -> f32 {
  return value_in(w[word_of(i)], i);
}

fn bias_at(n: u32) -> f32 {
  return value_in(bias[word_of(n)], n);
}

fn multiply_tiles(acc: ptr<function, array<vec4f, ACC>>, lid: u32) {
  let tm = lid / WG_N;
  let tn = lid % WG_N;
  for (var kk = 0u; kk < TILE_K; kk++) {
    var a: array<vec4f, MAX_VEC>;
    var b: array<vec4f, MAX_VEC>;
    for (var g = 0u; g < M_VEC; g++) { a[g] = x_tile[kk * (TILE_M / 4u) + g * WG_M + tm]; }
    for (var h = 0u; h < N_VEC; h++) { b[h] = w_tile[kk * (TILE_N / 4u) + h * WG_N + tn]; }
    for (var g = 0u; g < M_VEC; g++) {
      for (var r = 0u; r < 4u; r++) {
        for (var h = 0u; h < N_VEC; h++) {
          let i = (g * 4u + r) * MAX_VEC + h;
          (*acc)[i] = fma(vec4f(a[g][r]), b[h], (*acc)[i]);
        }
      }
    }
  }
}
