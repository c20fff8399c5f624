// Concatenation along channels (the UNet's NHWC skip connections):
//   a (R, Ca), b (R, Cb) -> out (R, Ca + Cb),  out[r, c] = c < Ca ? a[r, c] : b[r, c - Ca],  R = B*H*W
// Tensors over the binding limit are bound in parts over the same rows.
// Bindings: 0 a (read), 1 b (read), 2 out (read_write), 3 uniform Concat (n = elements of this output part).
// Dispatch: ceil(n / WG) workgroups along x, wrapped into y past 65535.

struct Concat { n: u32, channels_a: u32, channels_b: u32 }

override WG: u32 = 256u;
const MAX_GROUPS_X: u32 = 65535u;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> u: Concat;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = (wg.y * MAX_GROUPS_X + wg.x) * WG + lid.x;
  if (i >= u.n) { return; }
  let width = u.channels_a + u.channels_b;
  let r = i / width;
  let c = i % width;
  if (c < u.channels_a) {
    out[i] = a[r * u.channels_a + c];
  } else {
    out[i] = b[r * u.channels_b + c - u.channels_a];
  }
}
