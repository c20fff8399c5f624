// Attention on tensor cores, f32 out: see lib/attention_subgroup_matrix.wgsl (the math, layouts, bindings and
//   dispatch).

enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;

@group(0) @binding(3) var<storage, read_write> out: array<vec4f>;

fn store_out(i: u32, value: vec4f) {
  out[i] = value;
}

#include "lib/attention_subgroup_matrix.wgsl"
