// The implicit-GEMM convolution kernel over a GEMM core (gemm_f32.wgsl or gemm_f16.wgsl): see wgsl/conv2d.wgsl.

struct Conv2d {
  batch: u32, in_h: u32, in_w: u32, cin: u32, src_h: u32, src_w: u32, out_h: u32, out_w: u32, cout: u32,
  kh: u32, kw: u32, stride: u32, pad: u32
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

// Channels outer, taps inner: a step's W values ((co * Cin + ci) * KH * KW + tap) and x pixels are neighbours of the
// previous tap's, so after a chunk's first tap both come from cache, though W is [Cout, Cin, KH, KW].
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let m0 = tile_row(wg) * TILE_M;
  if (m0 >= pixels()) { return; }
  let n0 = wg.x * TILE_N;
  let xs = x_stage(lid);
  let ws = w_stage(lid);
  let staged = out_pixel(m0 + xs.x);
  let n = n0 + ws.x;
  let taps = u.kh * u.kw;
  var acc: array<vec4f, ACC>;
  for (var c0 = 0u; c0 < u.cin; c0 += TILE_K) {
    for (var tap = 0u; tap < taps; tap++) {
      let pixel = input_pixel(staged, tap);
      for (var j = 0u; j < X_PER_THREAD; j++) {
        let c = c0 + xs.y + j;
        var v = Math(0);
        if (pixel >= 0 && c < u.cin) { v = x[u32(pixel) + c]; }
        put_x(xs.y + j, xs.x, v);
      }
      for (var j = 0u; j < W_PER_THREAD; j++) {
        let c = c0 + ws.y + j;
        var v = Math(0);
        if (n < u.cout && c < u.cin) { v = weight((n * u.cin + c) * taps + tap); }
        put_w(ws.y + j, ws.x, v);
      }
      workgroupBarrier();
      multiply_tiles(&acc, lid);
      workgroupBarrier();
    }
  }
  store(&acc, lid, m0, pixels() - m0, n0, u.cout);
}
