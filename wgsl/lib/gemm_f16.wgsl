// GEMM core, f16 storage and math (needs `enable f16;` in the including kernel): as gemm_f32.wgsl with every
// tensor f16 (x and W bound as vec4<f16>, b, r and y as f16) and f16 tiles in workgroup memory (half the bytes).
// Precision: products and the partial sums of one TILE_K step are f16 (vec4<f16> FMAs, the fast part); each
//   step's partial sum is added into f32 accumulators, so rounding error grows with TILE_K, not with K (an f16 sum
//   over K = 2880 would lose about log2(2880 / TILE_K) more bits). Bias, activation and residual run in f32; y is
//   rounded to f16 once.
// Bindings: 0 x, 1 W, 2 b, 3 r, 4 y (read_write), all f16; the kernel's uniform is binding 5.

#include "lib/gemm_tile.wgsl"
#include "lib/gemm_vec4_tiles.wgsl"

alias Math = f16;
alias Out = f16;

@group(0) @binding(0) var<storage, read> x: array<vec4<f16>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f16>>;
@group(0) @binding(2) var<storage, read> bias: array<f16>;
@group(0) @binding(3) var<storage, read> residual: array<f16>;
@group(0) @binding(4) var<storage, read_write> y: array<f16>;

fn x_vec(i: u32) -> vec4<f16> {
  return x[i / 4u];
}

fn x_one(i: u32) -> f16 {
  return x[i / 4u][i % 4u];
}

fn w_vec(i: u32) -> vec4<f16> {
  return w[i / 4u];
}

fn w_one(i: u32) -> f16 {
  return w[i / 4u][i % 4u];
}

fn bias_at(n: u32) -> f32 {
  return f32(bias[n]);
}

fn multiply_tiles(acc: ptr<function, array<vec4f, ACC>>, lid: u32) {
  let tm = lid / WG_N;
  let tn = lid % WG_N;
  var partial: array<vec4<f16>, ACC>;
  for (var kk = 0u; kk < TILE_K; kk++) {
    var a: array<vec4<f16>, MAX_VEC>;
    var b: array<vec4<f16>, MAX_VEC>;
    for (var g = 0u; g < M_VEC; g++) { a[g] = x_tile[kk * (TILE_M / 4u) + g * WG_M + tm]; }
    for (var h = 0u; h < N_VEC; h++) { b[h] = w_tile[kk * (TILE_N / 4u) + h * WG_N + tn]; }
    for (var g = 0u; g < M_VEC; g++) {
      for (var r = 0u; r < 4u; r++) {
        for (var h = 0u; h < N_VEC; h++) {
          let i = (g * 4u + r) * MAX_VEC + h;
          partial[i] = fma(vec4<f16>(a[g][r]), b[h], partial[i]);
        }
      }
    }
  }
  for (var i = 0u; i < ACC; i++) { (*acc)[i] += vec4f(partial[i]); }
}
