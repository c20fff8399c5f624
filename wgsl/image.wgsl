// Pixels for the canvas: RGBA8 packed one pixel per u32 (R in the low byte, then G, B, A = 255; little-endian
// memory order R, G, B, A as ImageData wants).
// to_rgba8: image (B, H, W, 3) f32 in [-1, 1] -> (B, H, W) u32, as diffusers' VaeImageProcessor.postprocess
//   (output_type="pil"): v = clamp(x * 0.5 + 0.5, 0, 1), byte = round(v * 255) (round half to even, like
//   numpy's round; WGSL's round is the same).
// preview: latents (B, h, w, 4) -> (B, h s, w s) u32, output pixel (y, x) from latent pixel (y / s, x / s):
//   rgb = bias + sum_c latent[c] * factor[c] (a linear approximation of the VAE decoder, mapping to about
//   [-1, 1]), then the byte rule of to_rgba8.
// Bindings: 0 src (read, f32), 1 dst (read_write, u32), 2 uniform Pixels (to_rgba8) or Preview (preview).
// Dispatch: ceil(n / WG) workgroups along x (n = output pixels), wrapped into y past 65535.

struct Pixels { n: u32 }
struct Preview {
  n: u32, out_h: u32, out_w: u32, upscale: u32,
  c0_r: f32, c0_g: f32, c0_b: f32, c1_r: f32, c1_g: f32, c1_b: f32,
  c2_r: f32, c2_g: f32, c2_b: f32, c3_r: f32, c3_g: f32, c3_b: f32,
  bias_r: f32, bias_g: f32, bias_b: f32
}

override WG: u32 = 256u;
const MAX_GROUPS_X: u32 = 65535u;
const OPAQUE: u32 = 0xff000000u;

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> u: Pixels;
@group(0) @binding(2) var<uniform> up: Preview;

fn pixel_index(wg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * MAX_GROUPS_X + wg.x) * WG + lid.x;
}

// [-1, 1] -> RGBA8 with alpha 255
fn rgba8(rgb: vec3f) -> u32 {
  let bytes = vec3u(round(clamp(rgb * 0.5 + 0.5, vec3f(0.0), vec3f(1.0)) * 255.0));
  return bytes.x | (bytes.y << 8u) | (bytes.z << 16u) | OPAQUE;
}

@compute @workgroup_size(WG)
fn to_rgba8(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let p = pixel_index(wg, lid);
  if (p < u.n) { dst[p] = rgba8(vec3f(src[3u * p], src[3u * p + 1u], src[3u * p + 2u])); }
}

@compute @workgroup_size(WG)
fn preview(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let p = pixel_index(wg, lid);
  if (p >= up.n) { return; }
  let row = p / up.out_w;  // b * out_h + y
  let b = row / up.out_h;
  let y = row % up.out_h / up.upscale;
  let x = p % up.out_w / up.upscale;
  let w = up.out_w / up.upscale;
  let at = 4u * ((b * (up.out_h / up.upscale) + y) * w + x);
  let rgb = vec3f(up.bias_r, up.bias_g, up.bias_b)
    + src[at] * vec3f(up.c0_r, up.c0_g, up.c0_b) + src[at + 1u] * vec3f(up.c1_r, up.c1_g, up.c1_b)
    + src[at + 2u] * vec3f(up.c2_r, up.c2_g, up.c2_b) + src[at + 3u] * vec3f(up.c3_r, up.c3_g, up.c3_b);
  dst[p] = rgba8(rgb);
}
