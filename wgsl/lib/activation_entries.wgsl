// Activations over f32 tensors, out in the including kernel's Out (activation.wgsl f32; activation_f16_output.wgsl
// f16, rounded once as stored, for a GEGLU whose output only a tensor-core GEMM reads). The activations are
// lib/activation.wgsl's (their math there):
//   map:    out = act(x), override ACT one of its codes (ACT_GELU, ACT_SILU, ACT_QUICK_GELU)
//   map_inplace: out = act(out)
//   geglu:  x (rows, 2F) -> out (rows, F),  out[r, j] = x[r, j] * gelu(x[r, F + j])
//           (diffusers' GEGLU: `hidden_states, gate = proj(x).chunk(2, dim=-1); hidden_states * gelu(gate)`)
// Bindings: 0 x (read), 1 out (read_write, array<Out>), 2 uniform Activation (n = elements written in this dispatch,
// features = F for geglu). Dispatch: ceil(n / WG) workgroups along x, wrapped into y past 65535.

#include "lib/activation.wgsl"

struct Activation { n: u32, features: u32 }

override WG: u32 = 256u;
override ACT: u32 = ACT_GELU;
const MAX_GROUPS_X: u32 = 65535u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<Out>;
@group(0) @binding(2) var<uniform> u: Activation;

fn index(wg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * MAX_GROUPS_X + wg.x) * WG + lid.x;
}

@compute @workgroup_size(WG)
fn map(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, lid);
  if (i < u.n) { out[i] = Out(activation(ACT, x[i])); }
}

@compute @workgroup_size(WG)
fn map_inplace(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, lid);
  if (i < u.n) { out[i] = Out(activation(ACT, f32(out[i]))); }
}

@compute @workgroup_size(WG)
fn geglu(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, lid);
  if (i < u.n) {
    let row = i / u.features;
    let src = i + row * u.features;  // row * 2F + j
    out[i] = Out(x[src] * gelu(x[src + u.features]));
  }
}
