// Attention on tensor cores, f16 out: see lib/attention_subgroup_matrix.wgsl. For outputs only tensor-core GEMMs
//   read (the projection after it), which would round them to f16 as they stage them: rounded once here, as
//   stored, at half the bytes.

enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;

@group(0) @binding(3) var<storage, read_write> out: array<vec4<f16>>;

fn store_out(i: u32, value: vec4f) {
  out[i] = vec4<f16>(value);
}

#include "lib/attention_subgroup_matrix.wgsl"
