// Tile geometry of Winograd F(m x m, 3x3), m = TILE (2 or 4: lib/winograd_matrices.wgsl), shared by
// winograd_input.wgsl and winograd_output.wgsl (see those for the math). The output y (B, OH, OW) is cut into m x m
// tiles, ceil(OH / m) x ceil(OW / m) per image; tile t = (b * tiles_h + ty) * tiles_w + tx covers output rows
// m ty .. m ty + m - 1 and columns m tx .. m tx + m - 1 (those past OH, OW are not stored). One dispatch pair covers
// the chunk of tiles [tile0, tile0 + tiles): tile t is row t - tile0 of V and M. Invocations run one per (tile of the
// chunk, LANES consecutive channels: a pair in, a quad out), channels fastest, in ceil(n / WG) workgroups along x
// wrapped into y past 65535 (index = (wg.y * 65535 + wg.x) * WG + local index).

#include "lib/winograd_matrices.wgsl"

struct Winograd {
  in_h: u32, in_w: u32, cin: u32, out_h: u32, out_w: u32, cout: u32, tiles_h: u32, tiles_w: u32, tile0: u32, tiles: u32
}

override WG: u32 = 256u;
override VEC: bool = true;  // the channel count (Cin in, Cout out) is a multiple of LANES: one aligned vector

const MAX_GROUPS_X: u32 = 65535u;

// (b, ty, tx) of chunk row `row`, and the first channel c of the invocation's LANES (the including kernel's const),
// for invocation index i over `channels`; inside is false past the chunk's last lanes.
struct TileLanes { b: u32, ty: u32, tx: u32, row: u32, c: u32, inside: bool }

fn tile_lanes(wg: vec3u, lid: u32, channels: u32) -> TileLanes {
  let i = (wg.y * MAX_GROUPS_X + wg.x) * WG + lid;
  let vectors = (channels + LANES - 1u) / LANES;
  let row = i / vectors;
  let t = u.tile0 + row;
  return TileLanes(t / (u.tiles_h * u.tiles_w), (t / u.tiles_w) % u.tiles_h, t % u.tiles_w, row,
                   (i % vectors) * LANES, row < u.tiles);
}
