// Activations, f16 out (shader-f16): see lib/activation_entries.wgsl. For a GEGLU whose output only a tensor-core
//   GEMM reads, which would round it to f16 as it stages it: rounded once here, as stored, at half the bytes.

enable f16;

alias Out = f16;

#include "lib/activation_entries.wgsl"
