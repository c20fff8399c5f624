// Attention for heads of d <= 80, a multiple of 4, on any device: the core in lib/attention.wgsl (math, layout,
// bindings, dispatch), its per-query merges over the 4 (LANES) lanes of a group through workgroup memory (two barriers
// each).
// attention_subgroups.wgsl is the same kernel merging with subgroup shuffles.

#include "lib/attention.wgsl"

var<workgroup> lanes_tile: array<vec4f, WG>;  // one vec4 per invocation, read by the other lanes of its group

// Merges x over the group's lanes: max, or sum. The closing barrier frees lanes_tile for the next call.
fn merge_lanes(x: vec4f, lid: u32, take_max: bool) -> vec4f {
  lanes_tile[lid] = x;
  workgroupBarrier();
  let first = lid - lid % LANES;
  var r = lanes_tile[first];
  for (var t = 1u; t < LANES; t++) {
    let y = lanes_tile[first + t];
    if (take_max) { r = max(r, y); } else { r += y; }
  }
  workgroupBarrier();
  return r;
}

fn row_max(x: vec4f, lid: u32) -> vec4f {
  return merge_lanes(x, lid, true);
}

fn row_sum(x: vec4f, lid: u32) -> vec4f {
  return merge_lanes(x, lid, false);
}
