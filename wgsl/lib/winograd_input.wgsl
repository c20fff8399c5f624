// Winograd F(2x2, 3x3) input transform: V[p, t, c] = (B^T d B)[p] for each 2x2 output tile t and channel c, with
//   d the 4x4 patch of up(x) at rows 2ty-1 .. 2ty+2, columns 2tx-1 .. 2tx+2 (zero outside the OH x OW image: the
//   padding 1 of a 3x3 stride-1 convolution) and p = 4i + j the position in the transformed 4x4 tile.
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1] (Lavin & Gray 2015), summed in f32.
//   x (B, H, W, Cin) NHWC f32; up(x) is x seen at (OH, OW) by nearest neighbour as in conv2d.wgsl:
//   up(x)[sy, sx] = x[floor(sy * H / OH), floor(sx * W / OW)] (no upsample when OH = H, OW = W).
//   V (16, tiles, Cin) in the kernel's VElem (f32: winograd_input.wgsl; f16: winograd_input_f16.wgsl, rounded once
//   as it is stored): row t - tile0 of each of the 16 matrices, for the chunk of tiles in lib/winograd.wgsl.
// Bindings: 0 x, 1 V (read_write: the kernel declares it, array<vec4<VElem>>), 2 uniform Winograd
//   (lib/winograd.wgsl).
// Dispatch: one invocation per (tile of the chunk, quad of 4 input channels), channels fastest, so neighbouring
//   invocations load neighbouring vec4s of a pixel and store neighbouring vec4s of V (VEC: Cin % 4 == 0; otherwise
//   element by element, channels past Cin left alone). ceil(tiles * ceil(Cin / 4) / WG) workgroups along x, wrapped
//   into y past 65535.

#include "lib/winograd.wgsl"

@group(0) @binding(0) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<uniform> u: Winograd;

// Channels q.c .. q.c+3 of up(x) at (row, col) of image q.b; zero outside the image and past Cin.
fn input_quad(q: TileQuad, row: i32, col: i32) -> vec4f {
  if (row < 0 || col < 0 || row >= i32(u.out_h) || col >= i32(u.out_w)) { return vec4f(); }
  var iy = u32(row);
  var ix = u32(col);
  if (u.in_h != u.out_h || u.in_w != u.out_w) {
    iy = iy * u.in_h / u.out_h;
    ix = ix * u.in_w / u.out_w;
  }
  let i = ((q.b * u.in_h + iy) * u.in_w + ix) * u.cin + q.c;
  if (VEC) { return x[i / 4u]; }
  var quad = vec4f();
  for (var k = 0u; k < 4u; k++) {
    if (q.c + k < u.cin) { quad[k] = x[(i + k) / 4u][(i + k) % 4u]; }
  }
  return quad;
}

fn store_quad(q: TileQuad, p: u32, value: vec4f) {
  let i = (p * u.tiles + q.row) * u.cin + q.c;
  if (VEC) {
    v[i / 4u] = vec4<VElem>(value);
    return;
  }
  for (var k = 0u; k < 4u; k++) {
    if (q.c + k < u.cin) { v[(i + k) / 4u][(i + k) % 4u] = VElem(value[k]); }
  }
}

// B^T s along one axis of the tile.
fn transform(s: array<vec4f, SIDE>) -> array<vec4f, SIDE> {
  return array<vec4f, SIDE>(s[0] - s[2], s[1] + s[2], s[2] - s[1], s[1] - s[3]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let q = tile_quad(wg, lid, u.cin);
  if (!q.inside) { return; }
  let row0 = i32(q.ty * TILE) - 1;
  let col0 = i32(q.tx * TILE) - 1;
  var columns: array<array<vec4f, SIDE>, SIDE>;  // [column][row]: B^T d, column by column
  for (var s = 0u; s < SIDE; s++) {
    var column: array<vec4f, SIDE>;
    for (var r = 0u; r < SIDE; r++) { column[r] = input_quad(q, row0 + i32(r), col0 + i32(s)); }
    columns[s] = transform(column);
  }
  for (var i = 0u; i < SIDE; i++) {
    let row = transform(array<vec4f, SIDE>(columns[0][i], columns[1][i], columns[2][i], columns[3][i]));
    for (var j = 0u; j < SIDE; j++) { store_quad(q, i * SIDE + j, row[j]); }
  }
}
