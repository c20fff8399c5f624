// The uniform of both attention kernels (lib/attention.wgsl for heads up to 80 wide, attention_wide.wgsl): token
// counts, heads, the head width d, the score scale (1 / sqrt(d) by default) and causal masking (0 or 1).

struct Attention { queries: u32, keys: u32, heads: u32, head_dim: u32, scale: f32, causal: u32 }
