// Winograd F(m x m, 3x3) input transform, f32 V: see lib/winograd_input.wgsl (math, layouts, bindings, dispatch).

alias VElem = f32;

@group(0) @binding(1) var<storage, read_write> v: array<vec2f>;

#include "lib/winograd_input.wgsl"
