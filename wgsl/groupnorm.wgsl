// GroupNorm over NHWC feature maps, f32 out: see lib/groupnorm.wgsl (the math, layouts, bindings, dispatch).

alias Out = f32;

#include "lib/groupnorm.wgsl"
