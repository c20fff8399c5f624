// The implicit-GEMM convolution kernel over a GEMM core (gemm_f32.wgsl or gemm_f16.wgsl): see wgsl/conv2d.wgsl.

#include "lib/conv2d_geometry.wgsl"

// The output pixel of each of this invocation's load slots.
var<private> x_pixels: array<OutPixel, MAX_LOADS>;

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

// The tile of workgroup wg (none past the last pixel), and this invocation's output pixels, for the core's entry
// point.
fn gemm_task(wg: vec3u, lid: u32) -> GemmTask {
  let m0 = tile_row(wg) * TILE_M;
  for (var j = 0u; j < X_LOADS; j++) {
    x_pixels[j] = out_pixel(m0 + quad_at(lid, j).x);
  }
  let k = u.kh * u.kw * u.cin;
  return GemmTask(m0 < pixels(), k_range(wg, k, u.k_split), k, 0u,
                  OutTile(m0, pixels() - m0, wg.x * TILE_N, u.cout, wg.z, pixels()));
}
