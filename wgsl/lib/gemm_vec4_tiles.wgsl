// Workgroup tiles of vec4<Math>, the K loop and the entry point of the scalar GEMM cores (gemm_f32.wgsl,
// gemm_f16.wgsl): the core declares multiply_tiles(acc, lid), which adds one staged TILE_K step into the
// invocation's accumulators; the kernel declares gemm_task.
// naga (wgpu-native 29) panics on an override declared after a workgroup array sized by overrides: include files
// that declare overrides (gemm_tile.wgsl) before this one.

var<workgroup> x_tile: array<vec4<Math>, TILE_K * TILE_M / 4u>;  // [k][row]
var<workgroup> w_tile: array<vec4<Math>, TILE_K * TILE_N / 4u>;  // [k][col]

fn stage_x(row: u32, k: u32, v: Math) {
  let i = k * TILE_M + row;
  x_tile[i / 4u][i % 4u] = v;
}

fn stage_w(col: u32, k: u32, v: Math) {
  let i = k * TILE_N + col;
  w_tile[i / 4u][i % 4u] = v;
}

// Stores staged quads into the core's tiles, element by element: (tile row or column, k within the step).
fn store_step(lid: u32, s: Staged) {
  for (var j = 0u; j < X_LOADS; j++) {
    let at = quad_at(lid, j);
    for (var c = 0u; c < 4u; c++) { stage_x(at.x, at.y + c, s.x[j][c]); }
  }
  for (var j = 0u; j < W_LOADS; j++) {
    let at = quad_at(lid, j);
    for (var c = 0u; c < 4u; c++) { stage_w(at.x, at.y + c, s.w[j][c]); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let task = gemm_task(wg, lid);
  if (task.live) { compute_tile(lid, task); }
}

// The task's tile: its K loop, tiles of TILE_K staged through workgroup memory, the next step's loads in flight
// during each multiply; then the store.
fn compute_tile(lid: u32, task: GemmTask) {
  var acc: array<vec4f, ACC>;
  let ks = task.ks;
  let t = task.t;
  var next = load_step(lid, ks.x, ks.y, t.col0, t.cols, task.k, task.w_rows);
  for (var k0 = ks.x; k0 < ks.y; k0 += TILE_K) {
    store_step(lid, next);
    workgroupBarrier();
    if (k0 + TILE_K < ks.y) { next = load_step(lid, k0 + TILE_K, ks.y, t.col0, t.cols, task.k, task.w_rows); }
    multiply_tiles(&acc, lid);
    workgroupBarrier();
  }
  store(&acc, lid, t);
}
