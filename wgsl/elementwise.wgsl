// Elementwise maps over f32 tensors of n elements.
//   axpby:  out[i] = a * x[i] + b * y[i]
//   scale:  out[i] = a * x[i] + b            (y unused)
// Bindings: 0 x (read), 1 y (read), 2 out (read_write), 3 uniform Elementwise.
// Dispatch: ceil(n / WG) workgroups along x, wrapped into y when over 65535 (row = wg.y * 65535).

struct Elementwise { n: u32, a: f32, b: f32 }

override WG: u32 = 256u;
const MAX_GROUPS_X: u32 = 65535u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> u: Elementwise;

fn index(wg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * MAX_GROUPS_X + wg.x) * WG + lid.x;
}

@compute @workgroup_size(WG)
fn axpby(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, lid);
  if (i < u.n) { out[i] = u.a * x[i] + u.b * y[i]; }
}

@compute @workgroup_size(WG)
fn scale(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, lid);
  if (i < u.n) { out[i] = u.a * x[i] + u.b; }
}
