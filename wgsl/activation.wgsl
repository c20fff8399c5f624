// Activations, f32 out: see lib/activation_entries.wgsl (math, entry points, bindings, dispatch).

alias Out = f32;

#include "lib/activation_entries.wgsl"
