// Tile geometry of Winograd F(2x2, 3x3), shared by winograd_input.wgsl and winograd_output.wgsl (see those for the
// math). The output y (B, OH, OW) is cut into 2x2 tiles, ceil(OH / 2) x ceil(OW / 2) per image; tile
// t = (b * tiles_h + ty) * tiles_w + tx covers output rows 2ty, 2ty+1 and columns 2tx, 2tx+1 (those past OH, OW are
// not stored). One dispatch pair covers the chunk of tiles [tile0, tile0 + tiles): tile t is row t - tile0 of V and M.
// Invocations run one per (tile of the chunk, quad of 4 channels), channels fastest, in ceil(n / WG) workgroups
// along x wrapped into y past 65535 (index = (wg.y * 65535 + wg.x) * WG + local index).

struct Winograd {
  in_h: u32, in_w: u32, cin: u32, out_h: u32, out_w: u32, cout: u32, tiles_h: u32, tiles_w: u32, tile0: u32, tiles: u32
}

override WG: u32 = 256u;
override VEC: bool = true;  // the channel count (Cin in, Cout out) is a multiple of 4: a quad is one aligned vec4

const MAX_GROUPS_X: u32 = 65535u;
const TILE: u32 = 2u;  // output pixels per tile each way
const SIDE: u32 = 4u;  // the transformed tile is SIDE x SIDE: SIDE * SIDE GEMMs

// (b, ty, tx) of chunk row `row`, and the first channel of the quad, for invocation index i over `channels`;
// inside is false past the chunk's last quad.
struct TileQuad { b: u32, ty: u32, tx: u32, row: u32, c: u32, inside: bool }

fn tile_quad(wg: vec3u, lid: u32, channels: u32) -> TileQuad {
  let i = (wg.y * MAX_GROUPS_X + wg.x) * WG + lid;
  let quads = (channels + 3u) / 4u;
  let row = i / quads;
  let t = u.tile0 + row;
  return TileQuad(t / (u.tiles_h * u.tiles_w), (t / u.tiles_w) % u.tiles_h, t % u.tiles_w, row, (i % quads) * 4u,
                  row < u.tiles);
}
