// A convolution's geometry over NHWC maps (conv2d.wgsl's uniform Conv2d at binding 5): output pixels and the input
// pixel under each tap, with the zero padding and the fused nearest upsample. Included by lib/conv2d.wgsl (the
// implicit GEMM) and conv2d_narrow.wgsl.

struct Conv2d {
  batch: u32, in_h: u32, in_w: u32, cin: u32, src_h: u32, src_w: u32, out_h: u32, out_w: u32, cout: u32,
  kh: u32, kw: u32, stride: u32, pad: u32, k_split: u32
}

@group(0) @binding(5) var<uniform> u: Conv2d;

fn pixels() -> u32 {
  return u.batch * u.out_h * u.out_w;
}

// Output pixel m as (b, oy, ox); inside is false past the last pixel.
struct OutPixel { b: u32, oy: u32, ox: u32, inside: bool }

fn out_pixel(m: u32) -> OutPixel {
  return OutPixel(m / (u.out_h * u.out_w), (m / u.out_w) % u.out_h, m % u.out_w, m < pixels());
}

// Index of the first channel of the input pixel under tap (ky, kx) of output pixel p, or -1 in the zero padding:
// up(x) at (oy * S - P + ky, ox * S - P + kx), which is x at floor(s * H / SH) when upsampling.
fn input_pixel(p: OutPixel, tap: u32) -> i32 {
  let sy = i32(p.oy * u.stride + tap / u.kw) - i32(u.pad);
  let sx = i32(p.ox * u.stride + tap % u.kw) - i32(u.pad);
  if (!p.inside || sy < 0 || sx < 0 || sy >= i32(u.src_h) || sx >= i32(u.src_w)) { return -1; }
  var iy = u32(sy);
  var ix = u32(sx);
  if (u.src_h != u.in_h || u.src_w != u.in_w) {
    iy = iy * u.in_h / u.src_h;
    ix = ix * u.in_w / u.src_w;
  }
  return i32(((p.b * u.in_h + iy) * u.in_w + ix) * u.cin);
}
