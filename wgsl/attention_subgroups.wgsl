// Attention for heads of d <= 80, a multiple of 4, on devices with subgroups: the core in lib/attention.wgsl (math,
// layout, bindings, dispatch), its per-query merges over the 4 lanes of a group by subgroup shuffles (a group is
// invocations 4g .. 4g+3 and subgroups are at least 4 wide, so a group never straddles two: xor 1, then xor 2).

enable subgroups;

#include "lib/attention.wgsl"

fn row_max(x: vec4f, lid: u32) -> vec4f {
  let y = max(x, subgroupShuffleXor(x, 1u));
  return max(y, subgroupShuffleXor(y, 2u));
}

fn row_sum(x: vec4f, lid: u32) -> vec4f {
  let y = x + subgroupShuffleXor(x, 1u);
  return y + subgroupShuffleXor(y, 2u);
}
