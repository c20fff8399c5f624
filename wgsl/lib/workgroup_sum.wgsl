// Tree reduction over one workgroup of WG invocations (the includer declares `override WG` first, a power of two).

var<workgroup> tree: array<vec2f, WG>;

// Sums of two values per thread over the workgroup, in one tree; every thread gets the totals.
fn workgroup_sums(values: vec2f, lid: u32) -> vec2f {
  tree[lid] = values;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    if (lid < half) { tree[lid] += tree[lid + half]; }
    workgroupBarrier();
  }
  let total = tree[0];
  workgroupBarrier();
  return total;
}

// Sum of one value per thread over the workgroup; every thread gets the total.
fn workgroup_sum(value: f32, lid: u32) -> f32 {
  return workgroup_sums(vec2f(value, 0.0), lid).x;
}
