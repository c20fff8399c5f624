// Switches of a fused bias and residual add, shared by the kernels that offer them.
//   RESIDUAL: 0 none, 1 r from the kernel's residual binding, 2 y's own prior contents (in-place accumulate).

override HAS_BIAS: bool = false;
override RESIDUAL: u32 = 0u;

const RESIDUAL_TENSOR: u32 = 1u;
const RESIDUAL_IN_PLACE: u32 = 2u;
