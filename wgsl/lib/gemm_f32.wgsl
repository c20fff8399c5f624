// GEMM core, f32 math: y[row, col] = act(sum_k X[row, k] W[col, k] + b[col]) + r[row, col], a tile per workgroup
// (geometry, staging, epilogue and store in gemm_tile.wgsl; tiles and the K loop in gemm_vec4_tiles.wgsl). The
// including kernel supplies x_quad (its own addressing of X through x_vec and x_one) and gemm_task (its tiles).
// Bindings and their readers: gemm_bindings.wgsl and the kernel's gemm_x_f32.wgsl.

#include "lib/gemm_bindings.wgsl"
#include "lib/gemm_tile.wgsl"
#include "lib/gemm_vec4_tiles.wgsl"

alias Math = f32;
alias Out = f32;

fn x_vec(i: u32) -> vec4f {
  return load_x4(i);
}

fn x_one(i: u32) -> f32 {
  return load_x1(i);
}

fn w_vec(i: u32) -> vec4f {
  return load_w4(i);
}

fn w_one(i: u32) -> f32 {
  return load_w1(i);
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
