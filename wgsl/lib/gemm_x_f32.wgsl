// x of the GEMM cores with f32 outputs (lib/gemm_bindings.wgsl), f32: bound as vec4s; load_x4(i) is elements
// i .. i+3 (i a multiple of 4), load_x1(i) element i.

@group(0) @binding(0) var<storage, read> x: array<vec4f>;

fn load_x4(i: u32) -> vec4f {
  return x[i / 4u];
}

fn load_x1(i: u32) -> f32 {
  return x[i / 4u][i % 4u];
}
