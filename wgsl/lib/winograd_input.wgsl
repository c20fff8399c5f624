// Winograd F(m x m, 3x3) input transform (m = TILE, 2 or 4): V[p, t, c] = (B^T d B)[p] for each m x m output tile t
//   and channel c, with d the SIDE x SIDE patch of up(x) (SIDE = m + 2) at rows m ty - 1 .. m ty + m, columns
//   m tx - 1 .. m tx + m (zero outside the OH x OW image: the padding 1 of a 3x3 stride-1 convolution) and
//   p = SIDE i + j the position in the transformed tile. B^T: lib/winograd_matrices.wgsl, summed in f32.
//   x (B, H, W, Cin) NHWC f32; up(x) is x seen at (OH, OW) by nearest neighbour as in conv2d.wgsl:
//   up(x)[sy, sx] = x[floor(sy * H / OH), floor(sx * W / OW)] (no upsample when OH = H, OW = W).
//   V (SIDE^2, tiles, Cin) in the kernel's VElem (f32: winograd_input.wgsl; f16: winograd_input_f16.wgsl, rounded
//   once as it is stored): row t - tile0 of each of the SIDE^2 matrices, for the chunk of tiles in lib/winograd.wgsl.
// Bindings: 0 x, 1 V (read_write: the kernel declares it, array<vec2<VElem>>), 2 uniform Winograd
//   (lib/winograd.wgsl).
// Dispatch: one invocation per (tile of the chunk, pair of input channels), channels fastest, so neighbouring
//   invocations load neighbouring vec2s of a pixel and store neighbouring vec2s of V (VEC: Cin % 2 == 0; otherwise
//   element by element, channels past Cin left alone). ceil(tiles * ceil(Cin / 2) / WG) workgroups along x, wrapped
//   into y past 65535. Pairs, not quads: F(4x4)'s 36 transformed quads would take 144 registers a lane; pairs ran
//   7-10% faster on an H200 (session 14).

#include "lib/winograd.wgsl"

const LANES: u32 = 2u;

@group(0) @binding(0) var<storage, read> x: array<vec2f>;
@group(0) @binding(2) var<uniform> u: Winograd;

const OUTSIDE: u32 = 0xffffffffu;

// The source row (or column) of up(x) at `at`, of `size` rows seen at `seen`: OUTSIDE past the image (padding).
fn source_of(at: i32, size: u32, seen: u32) -> u32 {
  if (at < 0 || at >= i32(seen)) { return OUTSIDE; }
  if (size == seen) { return u32(at); }
  return u32(at) * size / seen;
}

// Channels q.c, q.c+1 of x at pixel (row, col) of image q.b's rows, zero where either is OUTSIDE and past Cin.
fn input_pair(q: TileLanes, row: u32, col: u32) -> vec2f {
  if (row == OUTSIDE || col == OUTSIDE) { return vec2f(); }
  let i = ((q.b * u.in_h + row) * u.in_w + col) * u.cin + q.c;
  if (VEC) { return x[i / LANES]; }
  var pair = vec2f();
  for (var k = 0u; k < LANES; k++) {
    if (q.c + k < u.cin) { pair[k] = x[(i + k) / LANES][(i + k) % LANES]; }
  }
  return pair;
}

fn store_pair(q: TileLanes, p: u32, value: vec2f) {
  let i = (p * u.tiles + q.row) * u.cin + q.c;
  if (VEC) {
    v[i / LANES] = vec2<VElem>(value);
    return;
  }
  for (var k = 0u; k < LANES; k++) {
    if (q.c + k < u.cin) { v[(i + k) / LANES][(i + k) % LANES] = VElem(value[k]); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let q = tile_lanes(wg, lid, u.cin);
  if (!q.inside) { return; }
  // the patch's source rows and columns, found once, not per pixel (on an H200 the UNet step took 0.35 ms less)
  var rows: array<u32, MAX_SIDE>;
  var cols: array<u32, MAX_SIDE>;
  for (var r = 0u; r < SIDE; r++) {
    rows[r] = source_of(i32(q.ty * TILE + r) - 1, u.in_h, u.out_h);
    cols[r] = source_of(i32(q.tx * TILE + r) - 1, u.in_w, u.out_w);
  }
  var columns: array<Pairs, MAX_SIDE>;  // [column][row]: B^T d, column by column
  for (var s = 0u; s < SIDE; s++) {
    var column: Pairs;
    for (var r = 0u; r < SIDE; r++) { column[r] = input_pair(q, rows[r], cols[s]); }
    columns[s] = input_transform(column);
  }
  for (var i = 0u; i < SIDE; i++) {
    var row: Pairs;
    for (var s = 0u; s < SIDE; s++) { row[s] = columns[s][i]; }
    let v_row = input_transform(row);
    for (var j = 0u; j < SIDE; j++) { store_pair(q, i * SIDE + j, v_row[j]); }
  }
}
