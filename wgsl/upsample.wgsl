// Nearest upsampling of NHWC maps with torch's `nearest` rule (F.interpolate(mode="nearest"), as diffusers'
// Upsample2D, to 2x or to a skip connection's size):
//   out[b, y, x, c] = x[b, src(y, H, Ho, scale_h), src(x, W, Wo, scale_w), c]
//   src(d, n, m, s) = d if m == n;  d >> 1 if m == 2n;  else min(floor(f32(d) * s), n - 1),  s = f32(n / m)
// torch computes s and the product in f32 too; the host rounds s, so indices match torch's bit for bit.
// The output is bound in parts of whole pixels, starting `out_start` elements into it; each part's input binding
// starts at the aligned offset at or before its first source row, `in_start` elements into the input.
// Bindings: 0 x (read), 1 out (read_write), 2 uniform Upsample (n = elements of this output part).
// Dispatch: ceil(n / WG) workgroups along x, wrapped into y past 65535.

struct Upsample {
  n: u32, out_start: u32, in_start: u32, in_h: u32, in_w: u32, out_h: u32, out_w: u32, channels: u32,
  scale_h: f32, scale_w: f32
}

override WG: u32 = 256u;
const MAX_GROUPS_X: u32 = 65535u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> u: Upsample;

fn src(d: u32, n: u32, m: u32, s: f32) -> u32 {
  if (m == n) { return d; }
  if (m == 2u * n) { return d >> 1u; }
  return min(u32(floor(f32(d) * s)), n - 1u);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = (wg.y * MAX_GROUPS_X + wg.x) * WG + lid.x;
  if (i >= u.n) { return; }
  let pixel = (u.out_start + i) / u.channels;
  let row = pixel / u.out_w;  // b * Ho + y
  let b = row / u.out_h;
  let sy = src(row % u.out_h, u.in_h, u.out_h, u.scale_h);
  let sx = src(pixel % u.out_w, u.in_w, u.out_w, u.scale_w);
  out[i] = x[((b * u.in_h + sy) * u.in_w + sx) * u.channels + (u.out_start + i) % u.channels - u.in_start];
}
