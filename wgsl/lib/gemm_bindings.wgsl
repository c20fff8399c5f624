// The bindings of the GEMM cores with f32 outputs (gemm_f32.wgsl, gemm_subgroup_matrix.wgsl) but x, bias_at and f32
// readers of W (load_w4, load_w1), which the cores' w_vec and w_one wrap: W bound as pairs of u32 words, 4 f16
// packed two per word (F16_WEIGHTS, widened with unpack2x16float) or 2 f32; b as u32 words (packed_weights.wgsl).
// x and its readers (load_x4, load_x1) come from the kernel: gemm_x_f32.wgsl, or gemm_x_f16.wgsl where tensor cores
// take f16 activations. Bindings are whole vec4s (the GPU layer rounds them up to 16 bytes).
// Bindings: 0 x, 1 W, 2 b, 3 r f32, 4 y f32 (read_write); the kernel's uniform is binding 5. b and r are statically
//   used: bind any read-only tensor there when HAS_BIAS is false or RESIDUAL is not 1.

#include "lib/packed_weights.wgsl"

@group(0) @binding(1) var<storage, read> w: array<vec2u>;
@group(0) @binding(2) var<storage, read> bias: array<u32>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn load_w4(i: u32) -> vec4f {
  if (F16_WEIGHTS) {
    let pair = w[i / 4u];
    return vec4f(unpack2x16float(pair.x), unpack2x16float(pair.y));
  }
  return bitcast<vec4f>(vec4u(w[i / 2u], w[i / 2u + 1u]));
}

fn load_w1(i: u32) -> f32 {
  if (F16_WEIGHTS) { return unpack2x16float(w[i / 4u][(i / 2u) % 2u])[i % 2u]; }
  return bitcast<f32>(w[i / 2u][i % 2u]);
}

fn bias_at(n: u32) -> f32 {
  return bias_value_in(bias[bias_word_of(n)], n);
}
