// Winograd F(2x2, 3x3) input transform, f32 V: see lib/winograd_input.wgsl (math, layouts, bindings, dispatch).

alias VElem = f32;

@group(0) @binding(1) var<storage, read_write> v: array<vec4f>;

#include "lib/winograd_input.wgsl"
