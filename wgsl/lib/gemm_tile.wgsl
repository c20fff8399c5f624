// The tile code shared by the GEMM cores (gemm_f32.wgsl, gemm_f16.wgsl): geometry, staging, the fused epilogue
// and the store. A core declares alias Math (its math dtype), the bindings x, residual and y, bias_at(col) -> f32,
// and multiply_tiles. ACTIVATION: a code of activation.wgsl, applied before the residual; HAS_BIAS, RESIDUAL:
// residual.wgsl.
// A workgroup computes a TILE_M x TILE_N block of outputs with (TILE_M / THREAD_M) x (TILE_N / THREAD_N) invocations,
// each THREAD_M x THREAD_N outputs (4 or 8 each way) held in registers as vec4 rows. A thread's rows and columns
// are 4-blocks strided by the workgroup's width (4 * WG_M, 4 * WG_N), so neighbouring threads read neighbouring
// vec4s of the k-major tiles. Staging: each tile row is loaded by WG / TILE invocations, a run of consecutive k
// each, so loads along K (contiguous in memory) are coalesced.

#include "lib/activation.wgsl"
#include "lib/residual.wgsl"

override TILE_M: u32 = 64u;
override TILE_N: u32 = 64u;
override TILE_K: u32 = 16u;
override THREAD_M: u32 = 4u;
override THREAD_N: u32 = 4u;
override ACTIVATION: u32 = ACT_NONE;

override WG_M: u32 = TILE_M / THREAD_M;
override WG_N: u32 = TILE_N / THREAD_N;
override WG: u32 = WG_M * WG_N;
override M_VEC: u32 = THREAD_M / 4u;
override N_VEC: u32 = THREAD_N / 4u;
override X_THREADS_PER_ROW: u32 = WG / TILE_M;
override X_PER_THREAD: u32 = TILE_K / X_THREADS_PER_ROW;
override W_THREADS_PER_ROW: u32 = WG / TILE_N;
override W_PER_THREAD: u32 = TILE_K / W_THREADS_PER_ROW;

const MAX_VEC: u32 = 2u;  // THREAD_M / 4 and THREAD_N / 4 are at most 2
const ACC: u32 = 4u * MAX_VEC * MAX_VEC;
const MAX_GROUPS: u32 = 65535u;  // workgroups per dimension; rows of tiles wrap from y into z

// naga (wgpu-native 29) panics on an override declared after a workgroup array sized by overrides: include files
// that declare overrides before this one.
var<workgroup> x_tile: array<vec4<Math>, TILE_K * TILE_M / 4u>;  // [k][row]
var<workgroup> w_tile: array<vec4<Math>, TILE_K * TILE_N / 4u>;  // [k][col]

// The x tile row this invocation stages and its first k (within the tile).
fn x_stage(lid: u32) -> vec2u {
  return vec2u(lid / X_THREADS_PER_ROW, (lid % X_THREADS_PER_ROW) * X_PER_THREAD);
}

// The W tile row (output column) this invocation stages and its first k (within the tile).
fn w_stage(lid: u32) -> vec2u {
  return vec2u(lid / W_THREADS_PER_ROW, (lid % W_THREADS_PER_ROW) * W_PER_THREAD);
}

// The row of tiles of this workgroup (x: column tiles; y, z: rows of tiles wrapped past 65535).
fn tile_row(wg: vec3u) -> u32 {
  return wg.z * MAX_GROUPS + wg.y;
}

// Output row and column (within the tile) of accumulator (g, r, h, c) of invocation lid.
fn out_row(lid: u32, g: u32, r: u32) -> u32 {
  return (g * WG_M + lid / WG_N) * 4u + r;
}

fn out_col(lid: u32, h: u32, c: u32) -> u32 {
  return (h * WG_N + lid % WG_N) * 4u + c;
}

fn put_x(k: u32, row: u32, v: Math) {
  let at = k * TILE_M + row;
  x_tile[at / 4u][at % 4u] = v;
}

fn put_w(k: u32, col: u32, v: Math) {
  let at = k * TILE_N + col;
  w_tile[at / 4u][at % 4u] = v;
}

// Write the tile: y[(row0 + i) * cols + col0 + j] = act(acc + b) + r for tile rows i < rows, columns col0 + j < cols.
fn store(acc: ptr<function, array<vec4f, ACC>>, lid: u32, row0: u32, rows: u32, col0: u32, cols: u32) {
  for (var g = 0u; g < M_VEC; g++) {
    for (var r = 0u; r < 4u; r++) {
      let i = out_row(lid, g, r);
      if (i >= rows) { continue; }
      for (var h = 0u; h < N_VEC; h++) {
        for (var c = 0u; c < 4u; c++) {
          let n = col0 + out_col(lid, h, c);
          if (n >= cols) { continue; }
          let o = (row0 + i) * cols + n;
          var v = (*acc)[(g * 4u + r) * MAX_VEC + h][c];
          if (HAS_BIAS) { v += bias_at(n); }
          v = activation(ACTIVATION, v);
          if (RESIDUAL == RESIDUAL_TENSOR) { v += f32(residual[o]); }
          if (RESIDUAL == RESIDUAL_IN_PLACE) { v += f32(y[o]); }
          y[o] = Math(v);
        }
      }
    }
  }
}
