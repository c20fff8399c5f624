// x of the tensor-core GEMM core (lib/gemm_bindings.wgsl), f16: bound as vec4<f16>s (the including kernel enables
// f16); load_x4(i) is elements i .. i+3 (i a multiple of 4), load_x1(i) element i. The core stages x as f16, so it
// takes these as they are: half the bytes of f32 x and no conversion.

@group(0) @binding(0) var<storage, read> x: array<vec4<f16>>;

fn load_x4(i: u32) -> vec4<f16> {
  return x[i / 4u];
}

fn load_x1(i: u32) -> f16 {
  return x[i / 4u][i % 4u];
}
