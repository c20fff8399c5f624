// GEMM core on tensor cores: y[row, col] = act(sum_k X[row, k] W[col, k] + b[col]) + r[row, col] with the products
// summed by subgroup matrices (chromium_experimental_subgroup_matrix, f16 x f16 -> f32, 16 x 16 x 16). Same
// bindings, staging loads, epilogue and store as gemm_f32.wgsl (gemm_bindings.wgsl, gemm_tile.wgsl), so a
// kernel swaps cores and nothing else. The including kernel begins with `enable f16;`, `enable subgroups;` and
// `enable chromium_experimental_subgroup_matrix;`.
// Precision: X (f32 activations: the kernel includes gemm_x_f32.wgsl) and W are rounded to f16 as they are loaded
//   (f16 X, gemm_x_f16.wgsl, and f16 weights are taken as they are), products and sums are f32 (the result
//   matrices); bias, activation and residual f32 as in gemm_tile.wgsl.
// Geometry: a subgroup (SUBGROUP = 32 invocations; its index is @builtin(subgroup_id), which the uniformity analysis
//   accepts in a store offset where lid / 32 is refused) owns a 32 x SUB_N block of the tile as 2 x NB result
//   matrices, SUB_N = 8 THREAD_N (64 or 32) and NB = SUB_N / 16; subgroup s takes rows (s / SG_N) * 32 and columns
//   (s % SG_N) * SUB_N, SG_N = TILE_N / SUB_N. THREAD_M = 8 in gemm_tile.wgsl's terms (WG = TILE_M * TILE_N /
//   (8 THREAD_N): 32 per subgroup). A 32 x 32 block holds half the result registers of a 32 x 64 one.
// K loop: gemm_tile.wgsl's loads, staged TILE_K at a time row by row as f16 (element (row, k) at row * STRIDE + k,
//   a quad's 4 halves side by side; left matrices load row-major, right ones (W's rows are its columns)
//   column-major); 2 NB multiply-accumulates per subgroup for each 16 of k. STRIDE is TILE_K plus PAD halves, a
//   multiple of 8 whose 16-byte rows fall in distinct memory banks. On an H100 the K loop is most likely bound by
//   the matrix loads from workgroup memory (twice the multiply-accumulates a step took 12% more time, no staging 40%
//   less, and the row stride alone moves it 1.6x), which run faster at 80-byte rows than at 48 (PAD 24 against 8 at
//   TILE_K = 16): 20-30% on split-K GEMMs, which take it, though 31 KiB then leave one workgroup an SM; the others
//   keep 19 KiB and two (bench/RESULTS.md, session 6).
// Store: where every result matrix of the tile lies wholly inside y or wholly outside it (y's rows and columns left
//   from the tile are multiples of 16 or fill it), each subgroup stores its matrices straight into y (with SPLIT_K,
//   into its slice); with a fused epilogue the workgroup then reads the tile back after a storage barrier and
//   finishes it in place (write_output: bias, activation, residual tensor). So no workgroup memory holds results and
//   the staging tiles alone set how many workgroups share an SM: on an H100 that made the GEMMs 1.2-1.6x faster
//   (bench/RESULTS.md, session 6). The raw sums would overwrite an in-place residual (RESIDUAL = 2): ops/matmul.py
//   sends those GEMMs through split K's partial sums instead. Where an edge cuts a matrix, the matrices pass one
//   at a time through a 16 x 16 slot, subgroup by subgroup (slow, and only in such edge tiles).

#include "lib/gemm_bindings.wgsl"
#include "lib/gemm_tile.wgsl"

alias Math = f16;
alias Out = f32;
alias Left = subgroup_matrix_left<f16, 16, 16>;
alias Right = subgroup_matrix_right<f16, 16, 16>;
alias Result = subgroup_matrix_result<f32, 16, 16>;

const SUBGROUP: u32 = 32u;
const MATRIX: u32 = 16u;  // rows = columns = depth of one multiply-accumulate
override PAD: u32 = 8u;  // halves after each staged row of k
override SUB_N: u32 = 8u * THREAD_N;  // columns of a subgroup's block
override NB: u32 = SUB_N / MATRIX;  // result matrices along a block row: 4 or 2
override SG_N: u32 = TILE_N / SUB_N;
override STRIDE: u32 = TILE_K + PAD;

var<workgroup> x_tile: array<f16, TILE_M * STRIDE>;  // [row][k]
var<workgroup> w_tile: array<f16, TILE_N * STRIDE>;  // [col][k]
var<workgroup> out_slot: array<f32, MATRIX * MATRIX>;  // one 16 x 16 row-major matrix, for edge tiles

fn x_vec(i: u32) -> vec4<f16> {
  return vec4<f16>(load_x4(i));
}

fn x_one(i: u32) -> f16 {
  return f16(load_x1(i));
}

fn w_vec(i: u32) -> vec4<f16> {
  if (F16_WEIGHTS) { return bitcast<vec4<f16>>(w[i / 4u]); }
  return vec4<f16>(load_w4(i));
}

fn w_one(i: u32) -> f16 {
  return f16(load_w1(i));
}

// The tile of gemm_task: the K loop by subgroup sg, then store_tile. The staged quads are stored here, in the entry
// point, at indices built from local_invocation_index, constants and loops from 0 to constants (quad q = lid + j WG
// of a step, row q / QUADS and k 4 (q % QUADS), is at row * STRIDE + k = (q / QUADS) PAD + 4 q): Tint's robustness
// proves such indices in range and leaves the stores bare, where through a helper's parameters it clamps each one
// (the clamps cost the GEMMs 10-15% on an H200: bench/RESULTS.md, session 20).
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_id) sg: u32) {
  let task = gemm_task(wg, lid);
  if (!task.live) { return; }
  let ks = task.ks;
  let n0 = task.t.col0;
  let n = task.t.cols;
  let m_sub = (sg / SG_N) * 32u;
  let n_sub = (sg % SG_N) * SUB_N;
  // The 2 x NB result matrices as plain variables, loads and multiplies written out: an array indexed in loops
  // may be spilled to local memory where the compiler does not unroll them.
  var c00 = Result(); var c01 = Result(); var c02 = Result(); var c03 = Result();
  var c10 = Result(); var c11 = Result(); var c12 = Result(); var c13 = Result();
  var next = load_step(lid, ks.x, ks.y, n0, n, task.k, task.w_rows);
  for (var k0 = ks.x; k0 < ks.y; k0 += TILE_K) {
    for (var j = 0u; j < X_LOADS; j++) {
      let q = lid + j * WG;
      for (var c = 0u; c < 4u; c++) { x_tile[(q / QUADS) * PAD + q * 4u + c] = next.x[j][c]; }
    }
    for (var j = 0u; j < W_LOADS; j++) {
      let q = lid + j * WG;
      for (var c = 0u; c < 4u; c++) { w_tile[(q / QUADS) * PAD + q * 4u + c] = next.w[j][c]; }
    }
    workgroupBarrier();
    if (k0 + TILE_K < ks.y) { next = load_step(lid, k0 + TILE_K, ks.y, n0, n, task.k, task.w_rows); }
    for (var kk = 0u; kk < TILE_K; kk += MATRIX) {
      let x0 = m_sub * STRIDE + kk;
      let w0 = n_sub * STRIDE + kk;
      let a0 = subgroupMatrixLoad<Left, row_major>(&x_tile, x0, STRIDE);
      let a1 = subgroupMatrixLoad<Left, row_major>(&x_tile, x0 + MATRIX * STRIDE, STRIDE);
      let b0 = subgroupMatrixLoad<Right, col_major>(&w_tile, w0, STRIDE);
      let b1 = subgroupMatrixLoad<Right, col_major>(&w_tile, w0 + MATRIX * STRIDE, STRIDE);
      c00 = subgroupMatrixMultiplyAccumulate(a0, b0, c00);
      c01 = subgroupMatrixMultiplyAccumulate(a0, b1, c01);
      c10 = subgroupMatrixMultiplyAccumulate(a1, b0, c10);
      c11 = subgroupMatrixMultiplyAccumulate(a1, b1, c11);
      if (NB == 4u) {  // an override-constant branch: 32-wide blocks drop it
        let b2 = subgroupMatrixLoad<Right, col_major>(&w_tile, w0 + 2u * MATRIX * STRIDE, STRIDE);
        let b3 = subgroupMatrixLoad<Right, col_major>(&w_tile, w0 + 3u * MATRIX * STRIDE, STRIDE);
        c02 = subgroupMatrixMultiplyAccumulate(a0, b2, c02);
        c03 = subgroupMatrixMultiplyAccumulate(a0, b3, c03);
        c12 = subgroupMatrixMultiplyAccumulate(a1, b2, c12);
        c13 = subgroupMatrixMultiplyAccumulate(a1, b3, c13);
      }
    }
    workgroupBarrier();
  }
  store_tile(lid, sg, task.t, m_sub, n_sub, c00, c01, c02, c03, c10, c11, c12, c13);
}

// Stores the sums of subgroup sg (its 2 x NB result matrices cij) into tile t of y.
fn store_tile(lid: u32, sg: u32, t: OutTile, m_sub: u32, n_sub: u32, c00: Result, c01: Result, c02: Result,
              c03: Result, c10: Result, c11: Result, c12: Result, c13: Result) {
  let cols_left = t.cols - t.col0;
  let slice = slice_of(t);
  if ((t.rows < TILE_M && t.rows % MATRIX != 0u) || (cols_left < TILE_N && cols_left % MATRIX != 0u)) {
    var sums = array<Result, 8>(c00, c01, c02, c03, c10, c11, c12, c13);  // (i, j) at i * 4 + j, j < NB
    for (var s = 0u; s < WG / SUBGROUP; s++) {
      for (var q = 0u; q < 8u; q++) {
        if (q % 4u >= NB) { continue; }  // uniform: past a 32-wide block
        if (sg == s) { subgroupMatrixStore<row_major>(&out_slot, 0u, sums[q], MATRIX); }
        workgroupBarrier();
        for (var e = lid; e < MATRIX * MATRIX; e += WG) {  // a 64 x 128 tile has only 128 invocations
          let i = (s / SG_N) * 32u + (q / 4u) * MATRIX + e / MATRIX;
          let j = (s % SG_N) * SUB_N + (q % 4u) * MATRIX + e % MATRIX;
          if (i < t.rows && j < cols_left) {
            write_output((t.row0 + i) * t.cols + t.col0 + j, t.col0 + j, out_slot[e], slice);
          }
        }
        workgroupBarrier();
      }
    }
    return;
  }
  // Matrix (i, j) of this subgroup is inside y where its first row and column are.
  let at = slice + (t.row0 + m_sub) * t.cols + t.col0 + n_sub;
  let below = at + MATRIX * t.cols;
  if (m_sub < t.rows) {
    if (n_sub < cols_left) { subgroupMatrixStore<row_major>(&y, at, c00, t.cols); }
    if (n_sub + MATRIX < cols_left) { subgroupMatrixStore<row_major>(&y, at + MATRIX, c01, t.cols); }
    if (NB == 4u) {
      if (n_sub + 2u * MATRIX < cols_left) { subgroupMatrixStore<row_major>(&y, at + 2u * MATRIX, c02, t.cols); }
      if (n_sub + 3u * MATRIX < cols_left) { subgroupMatrixStore<row_major>(&y, at + 3u * MATRIX, c03, t.cols); }
    }
  }
  if (m_sub + MATRIX < t.rows) {
    if (n_sub < cols_left) { subgroupMatrixStore<row_major>(&y, below, c10, t.cols); }
    if (n_sub + MATRIX < cols_left) { subgroupMatrixStore<row_major>(&y, below + MATRIX, c11, t.cols); }
    if (NB == 4u) {
      if (n_sub + 2u * MATRIX < cols_left) { subgroupMatrixStore<row_major>(&y, below + 2u * MATRIX, c12, t.cols); }
      if (n_sub + 3u * MATRIX < cols_left) { subgroupMatrixStore<row_major>(&y, below + 3u * MATRIX, c13, t.cols); }
    }
  }
  if (SPLIT_K || (!HAS_BIAS && ACTIVATION == ACT_NONE && RESIDUAL == 0u)) { return; }
  storageBarrier();
  for (var e = lid; e < TILE_M * TILE_N; e += WG) {
    let i = e / TILE_N;
    let j = e % TILE_N;
    if (i < t.rows && j < cols_left) {
      let o = (t.row0 + i) * t.cols + t.col0 + j;
      write_output(o, t.col0 + j, y[o], 0u);
    }
  }
}
