// GEMM core, f32 math: y[row, col] = act(sum_k X[row, k] W[col, k] + b[col]) + r[row, col], a tile per workgroup
// (geometry, staging, the K loop, epilogue and store in gemm_tile.wgsl). The including kernel supplies x_quad (its
// own addressing of X through x_vec and x_one), calls accumulate and ends with store. x is bound as vec4s, W as
// pairs of u32 words: 4 f16 packed two per word (F16_WEIGHTS, widened with unpack2x16float), or 2 f32; b as u32
// words (packed_weights.wgsl). Bindings are whole vec4s (the GPU layer rounds them up to 16 bytes).
// Bindings: 0 x f32, 1 W, 2 b, 3 r f32, 4 y f32 (read_write); the kernel's uniform is binding 5. b and r are
//   statically used: bind any read-only tensor there when HAS_BIAS is false or RESIDUAL is not 1.

#include "lib/packed_weights.wgsl"
#include "lib/gemm_tile.wgsl"

alias Math = f32;

@group(0) @binding(0) var<storage, read> x: array<vec4f>;
@group(0) @binding(1) var<storage, read> w: array<vec2u>;
@group(0) @binding(2) var<storage, read> bias: array<u32>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn x_vec(i: u32) -> vec4f {
  return x[i / 4u];
}

fn x_one(i: u32) -> f32 {
  return x[i / 4u][i % 4u];
}

fn w_vec(i: u32) -> vec4f {
  if (F16_WEIGHTS) {
    let pair = w[i / 4u];
    return vec4f(unpack2x16float(pair.x), unpack2x16float(pair.y));
  }
  return bitcast<vec4f>(vec4u(w[i / 2u], w[i / 2u + 1u]));
}

fn w_one(i: u32) -> f32 {
  if (F16_WEIGHTS) { return unpack2x16float(w[i / 4u][(i / 2u) % 2u])[i % 2u]; }
  return bitcast<f32>(w[i / 2u][i % 2u]);
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
