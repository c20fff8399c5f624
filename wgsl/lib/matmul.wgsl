// The matmul kernel over a GEMM core (gemm_f32.wgsl or gemm_f16.wgsl): see wgsl/matmul.wgsl.

struct Matmul { m: u32, n: u32, k: u32, batch: u32, w_batch_stride: u32, k_split: u32, x_batch_stride: u32 }

@group(0) @binding(5) var<uniform> u: Matmul;

const NO_ROW: u32 = 0xffffffffu;

// First element of the x row of each of this invocation's load slots, or NO_ROW past the last row.
var<private> x_rows: array<u32, MAX_LOADS>;

fn x_quad(slot: u32, kk: u32, k_end: u32) -> vec4<Math> {
  let row = x_rows[slot];
  if (VEC_K) {
    if (row == NO_ROW || kk >= k_end) { return vec4<Math>(); }
    return x_vec(row + kk);
  }
  var v = vec4<Math>();
  for (var c = 0u; c < 4u; c++) {
    if (row != NO_ROW && kk + c < k_end) { v[c] = x_one(row + kk + c); }
  }
  return v;
}

// The tile of workgroup wg (none past the last batch), and this invocation's x rows, for the core's entry point.
fn gemm_task(wg: vec3u, lid: u32) -> GemmTask {
  let m_tiles = (u.m + TILE_M - 1u) / TILE_M;
  let batch = tile_row(wg) / m_tiles;
  let m0 = (tile_row(wg) % m_tiles) * TILE_M;
  for (var j = 0u; j < X_LOADS; j++) {
    let m = m0 + quad_at(lid, j).x;
    x_rows[j] = select(NO_ROW, batch * u.x_batch_stride + m * u.k, m < u.m);
  }
  return GemmTask(batch < u.batch, k_range(wg, u.k, u.k_split), u.k, batch * u.w_batch_stride,
                  OutTile(batch * u.m + m0, u.m - m0, wg.x * TILE_N, u.n, wg.z, u.batch * u.m));
}
