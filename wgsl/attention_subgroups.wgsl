// Attention for heads of d <= 80, a multiple of 4, on devices with subgroups: the core in lib/attention.wgsl (math,
// layout, bindings, dispatch), its per-query merges over the LANES lanes of a group by subgroup shuffles (a group is
// LANES (1, 2 or 4) consecutive invocations and subgroups are at least 4 wide, so a group never straddles two).

enable subgroups;

#include "lib/attention.wgsl"

fn row_max(x: vec4f, lid: u32) -> vec4f {
  var y = x;
  for (var mask = 1u; mask < LANES; mask *= 2u) { y = max(y, subgroupShuffleXor(y, mask)); }
  return y;
}

fn row_sum(x: vec4f, lid: u32) -> vec4f {
  var y = x;
  for (var mask = 1u; mask < LANES; mask *= 2u) { y += subgroupShuffleXor(y, mask); }
  return y;
}
