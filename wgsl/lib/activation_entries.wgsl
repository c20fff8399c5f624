// Activations over f32 tensors, out in the including kernel's Out (activation.wgsl f32; activation_f16_output.wgsl
// f16, rounded once as stored, for a GEGLU whose output only a tensor-core GEMM reads).
//   gelu(x)       = x * Phi(x) = x/2 * erfc(-x/sqrt(2))   (erf form: torch's default, diffusers' GELU/GEGLU)
//   quick_gelu(x) = x * sigmoid(1.702 x)                  (CLIP's text encoder)
//   silu(x)       = x * sigmoid(x)
//   geglu:  x (rows, 2F) -> out (rows, F),  out[r, j] = x[r, j] * gelu(x[r, F + j])
//           (diffusers' GEGLU: `hidden_states, gate = proj(x).chunk(2, dim=-1); hidden_states * gelu(gate)`)
// erfc(z), z >= 0, by Abramowitz & Stegun 7.1.26: t = 1 / (1 + p z), erfc(z) = (a1 t + ... + a5 t^5) exp(-z^2),
// absolute error <= 1.5e-7; Phi takes it for the tail of either sign, so there is no cancellation in 1 + erf.
// sigmoid(x) is computed from exp(-|x|), which never overflows.
// Entry points: map (out = act(x)), map_inplace (out = act(out)), geglu. Override ACT picks map's activation:
// 0 gelu, 1 quick_gelu, 2 silu.
// Bindings: 0 x (read), 1 out (read_write, array<Out>), 2 uniform Activation (n = elements written in this dispatch,
// features = F for geglu). Dispatch: ceil(n / WG) workgroups along x, wrapped into y past 65535.

struct Activation { n: u32, features: u32 }

override WG: u32 = 256u;
override ACT: u32 = 0u;
const MAX_GROUPS_X: u32 = 65535u;
const GELU = 0u;
const QUICK_GELU = 1u;
const SILU = 2u;
const QUICK_GELU_SCALE: f32 = 1.702;
const FRAC_1_SQRT_2: f32 = 0.70710678118654752;
// Abramowitz & Stegun 7.1.26
const AS_P: f32 = 0.3275911;
const AS_A1: f32 = 0.254829592;
const AS_A2: f32 = -0.284496736;
const AS_A3: f32 = 1.421413741;
const AS_A4: f32 = -1.453152027;
const AS_A5: f32 = 1.061405429;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<Out>;
@group(0) @binding(2) var<uniform> u: Activation;

fn index(wg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * MAX_GROUPS_X + wg.x) * WG + lid.x;
}

fn gelu(v: f32) -> f32 {
  let z = abs(v) * FRAC_1_SQRT_2;
  let t = 1.0 / (1.0 + AS_P * z);
  let poly = t * (AS_A1 + t * (AS_A2 + t * (AS_A3 + t * (AS_A4 + t * AS_A5))));
  let half_erfc = 0.5 * poly * exp(-z * z);  // Phi(-|v|)
  return v * select(half_erfc, 1.0 - half_erfc, v >= 0.0);
}

fn sigmoid(v: f32) -> f32 {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

fn act(v: f32) -> f32 {
  switch ACT {
    case GELU: { return gelu(v); }
    case QUICK_GELU: { return v * sigmoid(QUICK_GELU_SCALE * v); }
    case SILU, default: { return v * sigmoid(v); }
  }
}

@compute @workgroup_size(WG)
fn map(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, lid);
  if (i < u.n) { out[i] = Out(act(x[i])); }
}

@compute @workgroup_size(WG)
fn map_inplace(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, lid);
  if (i < u.n) { out[i] = Out(act(f32(out[i]))); }
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
