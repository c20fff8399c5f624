// Batched 2-D transpose, f32: y[b, c, r] = x[b, r, c] for x (B, R, C), y (B, C, R).
// A workgroup moves one TILE x TILE block through workgroup memory, so both the reads (along c) and the writes
// (along r) are coalesced; the tile's rows are padded by one word against bank conflicts on the transposed read.
// Bindings: 0 x, 1 y (read_write), 2 uniform Transpose.
// Dispatch: (ceil(C / TILE), ceil(R / TILE), B) workgroups of TILE x TILE_ROWS invocations; each invocation moves
//   TILE / TILE_ROWS elements.

struct Transpose { rows: u32, cols: u32 }

override TILE: u32 = 32u;
override TILE_ROWS: u32 = 8u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> u: Transpose;

var<workgroup> tile: array<f32, TILE * (TILE + 1u)>;

@compute @workgroup_size(TILE, TILE_ROWS)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let base = wg.z * u.rows * u.cols;
  let c = wg.x * TILE + lid.x;
  for (var i = lid.y; i < TILE; i += TILE_ROWS) {
    let r = wg.y * TILE + i;
    if (r < u.rows && c < u.cols) { tile[i * (TILE + 1u) + lid.x] = x[base + r * u.cols + c]; }
  }
  workgroupBarrier();
  let r = wg.y * TILE + lid.x;
  for (var i = lid.y; i < TILE; i += TILE_ROWS) {
    let col = wg.x * TILE + i;
    if (r < u.rows && col < u.cols) { y[base + col * u.rows + r] = tile[lid.x * (TILE + 1u) + i]; }
  }
}
