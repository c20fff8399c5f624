// Winograd F(m x m, 3x3) input transform, f16 V (shader-f16): see lib/winograd_input.wgsl. For the tensor-core GEMMs,
//   which would round V to f16 as they stage it: here it is rounded once, as it is stored, at half the bytes.

enable f16;

alias VElem = f16;

@group(0) @binding(1) var<storage, read_write> v: array<vec2<f16>>;

#include "lib/winograd_input.wgsl"
