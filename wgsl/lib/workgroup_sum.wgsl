// Tree reduction over one workgroup of WG invocations (the includer declares `override WG` first).

var<workgroup> tree: array<f32, WG>;

// Sum of one value per thread over the workgroup; every thread gets the total.
fn workgroup_sum(value: f32, lid: u32) -> f32 {
  tree[lid] = value;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    if (lid < half) { tree[lid] += tree[lid + half]; }
    workgroupBarrier();
  }
  let total = tree[0];
  workgroupBarrier();
  return total;
}
