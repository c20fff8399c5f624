// The matmul kernel over a GEMM core (gemm_f32.wgsl or gemm_f16.wgsl): see wgsl/matmul.wgsl.

struct Matmul { m: u32, n: u32, k: u32, batch: u32, w_batch_stride: u32 }

@group(0) @binding(5) var<uniform> u: Matmul;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let m_tiles = (u.m + TILE_M - 1u) / TILE_M;
  let batch = tile_row(wg) / m_tiles;
  if (batch >= u.batch) { return; }
  let m0 = (tile_row(wg) % m_tiles) * TILE_M;
  let n0 = wg.x * TILE_N;
  let xs = x_stage(lid);
  let ws = w_stage(lid);
  let m = m0 + xs.x;
  let n = n0 + ws.x;
  let x_row = (batch * u.m + m) * u.k;
  let w_row = batch * u.w_batch_stride + n * u.k;
  var acc: array<vec4f, ACC>;
  for (var k0 = 0u; k0 < u.k; k0 += TILE_K) {
    for (var j = 0u; j < X_PER_THREAD; j++) {
      let k = k0 + xs.y + j;
      var v = Math(0);
      if (m < u.m && k < u.k) { v = x[x_row + k]; }
      put_x(xs.y + j, xs.x, v);
    }
    for (var j = 0u; j < W_PER_THREAD; j++) {
      let k = k0 + ws.y + j;
      var v = Math(0);
      if (n < u.n && k < u.k) { v = weight(w_row + k); }
      put_w(ws.y + j, ws.x, v);
    }
    workgroupBarrier();
    multiply_tiles(&acc, lid);
    workgroupBarrier();
  }
  store(&acc, lid, batch * u.m + m0, u.m - m0, n0, u.n);
}
