// Row softmax of x (rows, cols), scaled, optionally causal:
//   y[r,j] = exp(scale * x[r,j] - m_r) / sum_{j' kept} exp(scale * x[r,j'] - m_r),  m_r = max_{j kept} scale * x[r,j]
// Causal: rows are the query rows of square (cols x cols) score blocks; row r keeps columns j <= r mod cols and
// the others are 0. Each thread keeps a running (max, sum) over its columns, merged across the workgroup.
// Bindings: 0 x, 1 out, 2 uniform Softmax.
// Dispatch: one workgroup of WG threads per row, rows wrapped into y past 65535 (row = wg.y * 65535 + wg.x).

struct Softmax { rows: u32, cols: u32, scale: f32, causal: u32 }

override WG: u32 = 128u;
const MAX_GROUPS_X: u32 = 65535u;
const LOWEST: f32 = -0x1.fffffep+127f;  // the lowest f32: the running max before any value

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> u: Softmax;

var<workgroup> tree_max: array<f32, WG>;
var<workgroup> tree_sum: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = wg.y * MAX_GROUPS_X + wg.x;
  if (r >= u.rows) { return; }
  let row = r * u.cols;
  let kept = select(u.cols, r % u.cols + 1u, u.causal != 0u);
  var m = LOWEST;
  var s = 0.0;
  for (var j = lid; j < kept; j += WG) {
    let v = u.scale * x[row + j];
    let m_new = max(m, v);
    s = s * exp(m - m_new) + exp(v - m_new);
    m = m_new;
  }
  tree_max[lid] = m;
  tree_sum[lid] = s;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    if (lid < half) {
      let m2 = tree_max[lid + half];
      let m_new = max(m, m2);
      s = s * exp(m - m_new) + tree_sum[lid + half] * exp(m2 - m_new);
      m = m_new;
      tree_max[lid] = m;
      tree_sum[lid] = s;
    }
    workgroupBarrier();
  }
  m = tree_max[0];
  let inv = 1.0 / tree_sum[0];
  for (var j = lid; j < u.cols; j += WG) {
    out[row + j] = select(0.0, exp(u.scale * x[row + j] - m) * inv, j < kept);
  }
}
