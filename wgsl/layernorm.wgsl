// LayerNorm over the last axis, f32 out: see lib/layernorm.wgsl (math, entry points, bindings, dispatch).

alias Out = f32;

#include "lib/layernorm.wgsl"
