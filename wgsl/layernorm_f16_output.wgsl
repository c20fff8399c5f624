// LayerNorm over the last axis, f16 out (shader-f16): see lib/layernorm.wgsl. For inputs only tensor-core GEMMs
//   read, which would round them to f16 as they stage them: rounded once here, as stored, at half the bytes.

enable f16;

alias Out = f16;

#include "lib/layernorm.wgsl"
