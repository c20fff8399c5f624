// Winograd F(m x m, 3x3) output transform (m = TILE, 2 or 4), f32: y[b, m ty + dy, m tx + dx, co] =
//   (A^T M[., t, co] A)[dy, dx] + b[co] + r[b, m ty + dy, m tx + dx, co] for each m x m output tile t, M[., t, co]
//   the SIDE x SIDE tile (SIDE = m + 2) of the SIDE^2 GEMM outputs M[p] = V[p] U[p]^T (p = SIDE i + j) and A^T of
//   lib/winograd_matrices.wgsl. Pixels past OH, OW (sizes not a multiple of m: the last tiles' rows or columns) are
//   not stored.
//   M (SIDE^2, tiles, Cout) f32, rows of the chunk of tiles in lib/winograd.wgsl; b (Cout) stored f32 or f16 packed
//   two per u32 word (F16_WEIGHTS, lib/packed_weights.wgsl); r and y (B, OH, OW, Cout) NHWC f32.
//   RESIDUAL: 0 none, 1 r from binding 2, 2 y's own prior contents (in-place accumulate).
// Bindings: 0 M, 1 b, 2 r, 3 y (read_write), 4 uniform Winograd (lib/winograd.wgsl). b and r are statically used:
//   bind any read-only tensor there when HAS_BIAS is false or RESIDUAL is not 1.
// Dispatch: one invocation per (tile of the chunk, quad of 4 output channels), channels fastest, so neighbouring
//   invocations load neighbouring vec4s of M and store neighbouring vec4s of y (VEC: Cout % 4 == 0; otherwise
//   element by element, channels past Cout left alone). ceil(tiles * ceil(Cout / 4) / WG) workgroups along x,
//   wrapped into y past 65535.

#include "lib/packed_weights.wgsl"
#include "lib/residual.wgsl"
#include "lib/winograd.wgsl"

const LANES: u32 = 4u;

@group(0) @binding(0) var<storage, read> m: array<vec4f>;
@group(0) @binding(1) var<storage, read> bias: array<u32>;
@group(0) @binding(2) var<storage, read> residual: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4f>;
@group(0) @binding(4) var<uniform> u: Winograd;

// The arrays quad_from reads.
const FROM_M: u32 = 0u;
const FROM_RESIDUAL: u32 = 1u;
const FROM_Y: u32 = 2u;

fn vec_at(source: u32, i: u32) -> vec4f {
  switch source {
    case FROM_M: { return m[i]; }
    case FROM_RESIDUAL: { return residual[i]; }
    default: { return y[i]; }
  }
}

fn element_at(source: u32, i: u32) -> f32 {
  switch source {
    case FROM_M: { return m[i / 4u][i % 4u]; }
    case FROM_RESIDUAL: { return residual[i / 4u][i % 4u]; }
    default: { return y[i / 4u][i % 4u]; }
  }
}

// Elements i .. i+3 of M, r or y (i: the element of channel c of the quad), zero for channels past Cout.
fn quad_from(source: u32, q: TileLanes, i: u32) -> vec4f {
  if (VEC) { return vec_at(source, i / 4u); }
  var quad = vec4f();
  for (var k = 0u; k < 4u; k++) {
    if (q.c + k < u.cout) { quad[k] = element_at(source, i + k); }
  }
  return quad;
}

fn bias_quad(q: TileLanes) -> vec4f {
  var quad = vec4f();
  for (var k = 0u; k < 4u; k++) {
    let n = q.c + k;
    if (n < u.cout) { quad[k] = value_in(bias[word_of(n)], n); }
  }
  return quad;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let q = tile_lanes(wg, lid, u.cout);
  if (!q.inside) { return; }
  var columns: array<Quads, MAX_SIDE>;  // [column][dy]: A^T M, column by column
  for (var j = 0u; j < SIDE; j++) {
    var column: Quads;
    for (var i = 0u; i < SIDE; i++) {
      column[i] = quad_from(FROM_M, q, ((i * SIDE + j) * u.tiles + q.row) * u.cout + q.c);
    }
    columns[j] = output_transform(column);
  }
  var b = vec4f();
  if (HAS_BIAS) { b = bias_quad(q); }
  for (var dy = 0u; dy < TILE; dy++) {
    let oy = q.ty * TILE + dy;
    var column_sums: Quads;
    for (var j = 0u; j < SIDE; j++) { column_sums[j] = columns[j][dy]; }
    let row = output_transform(column_sums);
    for (var dx = 0u; dx < TILE; dx++) {
      let ox = q.tx * TILE + dx;
      if (oy >= u.out_h || ox >= u.out_w) { continue; }
      let o = ((q.b * u.out_h + oy) * u.out_w + ox) * u.cout + q.c;
      var value = row[dx] + b;
      if (RESIDUAL == RESIDUAL_TENSOR) { value += quad_from(FROM_RESIDUAL, q, o); }
      if (RESIDUAL == RESIDUAL_IN_PLACE) { value += quad_from(FROM_Y, q, o); }
      if (VEC) {
        y[o / 4u] = value;
        continue;
      }
      for (var k = 0u; k < 4u; k++) {
        if (q.c + k < u.cout) { y[(o + k) / 4u][(o + k) % 4u] = value[k]; }
      }
    }
  }
}
