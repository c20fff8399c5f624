// GroupNorm over NHWC feature maps, f16 out (shader-f16): see lib/groupnorm.wgsl. For maps only tensor-core GEMMs
//   read (a transformer's proj_in), which would round them to f16 as they stage them: rounded once here, as stored,
//   at half the bytes.

enable f16;

alias Out = f16;

#include "lib/groupnorm.wgsl"
