// The tile code shared by the GEMM cores (gemm_f32.wgsl, gemm_f16.wgsl, gemm_subgroup_matrix.wgsl): geometry,
// staging loads, the fused epilogue and the store. A core declares alias Math (the dtype X and W are read and staged
// in) and alias Out (y's element type), the bindings x, residual and y, bias_at(col) -> f32, x_vec(i) and w_vec(i)
// (elements i .. i+3, i a multiple of 4, as vec4<Math>), x_one(i) and w_one(i) (element i), and the entry point,
// which takes its work from the kernel's gemm_task, runs the K loop (staging the quads of load_step into its
// workgroup tiles) and stores the tile. The kernel declares x_quad(slot, k): X elements k .. k+3 of the tile row
// staged in load slot `slot` (zero past the edges).
// ACTIVATION: a code of activation.wgsl, applied before the residual; HAS_BIAS, RESIDUAL: residual.wgsl.
// A workgroup computes a TILE_M x TILE_N block of outputs with (TILE_M / THREAD_M) x (TILE_N / THREAD_N) invocations,
// each THREAD_M x THREAD_N outputs (4 or 8 each way) held in registers as vec4 rows when stored. A thread's rows
// and columns are 4-blocks strided by the workgroup's width (4 * WG_M, 4 * WG_N), so neighbouring threads read
// neighbouring vec4s of the k-major tiles.
// Staging: a tile row is TILE_K / 4 quads (4 consecutive k, contiguous in memory: one vec4 load where VEC_K);
// invocation lid loads quads lid, lid + WG, ... (its load slots), so consecutive invocations read consecutive quads
// of a row. The K loops prefetch: the next step's quads are loaded into registers while this step multiplies.
// Split K (SPLIT_K): workgroup z takes the K range [z * k_split, (z + 1) * k_split) and stores its raw partial sums
// in slice z of y (splits x rows x cols); gemm_reduce.wgsl then adds the slices and applies the epilogue.

#include "lib/activation.wgsl"
#include "lib/residual.wgsl"

override TILE_M: u32 = 64u;
override TILE_N: u32 = 64u;
override TILE_K: u32 = 16u;
override THREAD_M: u32 = 4u;
override THREAD_N: u32 = 4u;
override ACTIVATION: u32 = ACT_NONE;
override VEC_K: bool = true;  // K (for convolutions: Cin) is a multiple of 4, so a quad is one aligned vec4
override SPLIT_K: bool = false;

override WG_M: u32 = TILE_M / THREAD_M;
override WG_N: u32 = TILE_N / THREAD_N;
override WG: u32 = WG_M * WG_N;
override M_VEC: u32 = THREAD_M / 4u;
override N_VEC: u32 = THREAD_N / 4u;
override QUADS: u32 = TILE_K / 4u;  // quads per tile row
override X_LOADS: u32 = TILE_M * QUADS / WG;  // load slots of x per invocation
override W_LOADS: u32 = TILE_N * QUADS / WG;

const MAX_VEC: u32 = 2u;  // THREAD_M / 4 and THREAD_N / 4 are at most 2
const ACC: u32 = 4u * MAX_VEC * MAX_VEC;
const MAX_LOADS: u32 = 4u;  // X_LOADS and W_LOADS are at most 4
const MAX_GROUPS: u32 = 65535u;  // workgroups per dimension; rows of tiles wrap from y into z

// Where a workgroup's tile goes: output rows row0 .. row0 + rows (rows: those left from row0, possibly more than
// TILE_M), columns col0 .. of cols, of an output of total_rows x cols; with SPLIT_K into slice `split` of y.
struct OutTile { row0: u32, rows: u32, col0: u32, cols: u32, split: u32, total_rows: u32 }

// A workgroup's work, from the kernel's gemm_task(wg, lid): none where `live` is false (past the output); else the K
// range ks = [begin, end) of rows of length k (W's rows from w_rows on) into tile t.
struct GemmTask { live: bool, ks: vec2u, k: u32, w_rows: u32, t: OutTile }

// One K step's quads of this invocation, between their loads and their stores into the tiles.
struct Staged { x: array<vec4<Math>, MAX_LOADS>, w: array<vec4<Math>, MAX_LOADS> }

// (tile row, k within the tile) of the quad in load slot `slot` of invocation lid.
fn quad_at(lid: u32, slot: u32) -> vec2u {
  let q = lid + slot * WG;
  return vec2u(q / QUADS, (q % QUADS) * 4u);
}

// The row of tiles of this workgroup (x: column tiles; y, z: rows of tiles wrapped past 65535, or y alone when z
// is the K split).
fn tile_row(wg: vec3u) -> u32 {
  if (SPLIT_K) { return wg.y; }
  return wg.z * MAX_GROUPS + wg.y;
}

// The K range [x, y) of this workgroup: all of k, or its split's.
fn k_range(wg: vec3u, k: u32, k_split: u32) -> vec2u {
  if (SPLIT_K) { return vec2u(wg.z * k_split, min(k, (wg.z + 1u) * k_split)); }
  return vec2u(0u, k);
}

// W elements kk .. kk+3 of a row (PyTorch's [N, K]; w_row is the row's first element), zero from k_end on.
fn w_quad_in_row(w_row: u32, kk: u32, k_end: u32) -> vec4<Math> {
  if (VEC_K) {
    if (kk >= k_end) { return vec4<Math>(); }
    return w_vec(w_row + kk);
  }
  var v = vec4<Math>();
  for (var c = 0u; c < 4u; c++) {
    if (kk + c < k_end) { v[c] = w_one(w_row + kk + c); }
  }
  return v;
}

// Loads the quads of the K step at k0 (zero from k_end on): x through the kernel's x_quad, W rows n0 .. of length k.
fn load_step(lid: u32, k0: u32, k_end: u32, n0: u32, n: u32, k: u32, w_rows: u32) -> Staged {
  var s: Staged;
  for (var j = 0u; j < X_LOADS; j++) {
    s.x[j] = x_quad(j, k0 + quad_at(lid, j).y, k_end);
  }
  for (var j = 0u; j < W_LOADS; j++) {
    let at = quad_at(lid, j);
    if (n0 + at.x < n) { s.w[j] = w_quad_in_row(w_rows + (n0 + at.x) * k, k0 + at.y, k_end); }
    else { s.w[j] = vec4<Math>(); }
  }
  return s;
}

// Output row and column (within the tile) of accumulator (g, r, h, c) of invocation lid.
fn out_row(lid: u32, g: u32, r: u32) -> u32 {
  return (g * WG_M + lid / WG_N) * 4u + r;
}

fn out_col(lid: u32, h: u32, c: u32) -> u32 {
  return (h * WG_N + lid % WG_N) * 4u + c;
}

// y[o] = act(v + b[n]) + r[o], output o in column n; with SPLIT_K, v alone into y[slice + o].
fn write_output(o: u32, n: u32, sum: f32, slice: u32) {
  if (SPLIT_K) {
    y[slice + o] = Out(sum);
    return;
  }
  var v = sum;
  if (HAS_BIAS) { v += bias_at(n); }
  v = activation(ACTIVATION, v);
  if (RESIDUAL == RESIDUAL_TENSOR) { v += f32(residual[o]); }
  if (RESIDUAL == RESIDUAL_IN_PLACE) { v += f32(y[o]); }
  y[o] = Out(v);
}

// The first element of slice t.split of y (slices of total_rows x cols): 0 unless SPLIT_K.
fn slice_of(t: OutTile) -> u32 {
  return select(0u, t.split * t.total_rows * t.cols, SPLIT_K);
}

// Write the tile: y[(row0 + i) * cols + col0 + j] = act(acc + b) + r for tile rows i < rows, columns col0 + j < cols;
// with SPLIT_K, acc alone into slice t.split of y.
fn store(acc: ptr<function, array<vec4f, ACC>>, lid: u32, t: OutTile) {
  for (var g = 0u; g < M_VEC; g++) {
    for (var r = 0u; r < 4u; r++) {
      let i = out_row(lid, g, r);
      if (i >= t.rows) { continue; }
      for (var h = 0u; h < N_VEC; h++) {
        for (var c = 0u; c < 4u; c++) {
          let n = t.col0 + out_col(lid, h, c);
          if (n >= t.cols) { continue; }
          write_output((t.row0 + i) * t.cols + n, n, (*acc)[(g * 4u + r) * MAX_VEC + h][c], slice_of(t));
        }
      }
    }
  }
}
