// The uniform of the attention kernels (attention_rows.wgsl for heads up to 80 wide, attention_wide.wgsl,
// attention_subgroup_matrix.wgsl on tensor cores): token counts, heads, the head width d, the score scale
// (1 / sqrt(d) by default) and causal masking (0 or 1).

struct Attention { queries: u32, keys: u32, heads: u32, head_dim: u32, scale: f32, causal: u32 }
