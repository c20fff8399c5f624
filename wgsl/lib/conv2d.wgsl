// The implicit-GEMM convolution kernel over a GEMM core (gemm_f32.wgsl or gemm_f16.wgsl): see wgsl/conv2d.wgsl.

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

// The output pixel of each of this invocation's load slots.
var<private> x_pixels: array<OutPixel, MAX_LOADS>;

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

// X element kk of a row is channel kk % Cin of the input pixel under tap kk / Cin (K ordered as W's [KH, KW, Cin]).
fn x_one_at(slot: u32, kk: u32, k_end: u32) -> Math {
  let pixel = input_pixel(x_pixels[slot], kk / u.cin);
  if (pixel < 0 || kk >= k_end) { return Math(0); }
  return x_one(u32(pixel) + kk % u.cin);
}

fn x_quad(slot: u32, kk: u32, k_end: u32) -> vec4<Math> {
  if (VEC_K) {  // Cin % 4 == 0: a quad is 4 channels of one pixel
    let pixel = input_pixel(x_pixels[slot], kk / u.cin);
    if (pixel < 0 || kk >= k_end) { return vec4<Math>(); }
    return x_vec(u32(pixel) + kk % u.cin);
  }
  return vec4<Math>(x_one_at(slot, kk, k_end), x_one_at(slot, kk + 1u, k_end), x_one_at(slot, kk + 2u, k_end),
                    x_one_at(slot, kk + 3u, k_end));
}

// The tile of workgroup wg, from the core's entry point (sg: the invocation's subgroup, where the core uses it).
fn gemm_main(wg: vec3u, lid: u32, sg: u32) {
  let m0 = tile_row(wg) * TILE_M;
  if (m0 >= pixels()) { return; }
  for (var j = 0u; j < X_LOADS; j++) {
    x_pixels[j] = out_pixel(m0 + quad_at(lid, j).x);
  }
  let k = u.kh * u.kw * u.cin;
  compute_tile(lid, sg, k_range(wg, k, u.k_split), k, 0u,
               OutTile(m0, pixels() - m0, wg.x * TILE_N, u.cout, wg.z, pixels()));
}
