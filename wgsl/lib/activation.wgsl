// Activations in f32, by code: activation(ACT_GELU, v). Included by kernels that fuse one.
//   gelu 0.5 v (1 + erf(v / sqrt 2)) (torch's default, erf form); silu v sigmoid(v); quick_gelu v sigmoid(1.702 v).

const ACT_NONE: u32 = 0u;
const ACT_GELU: u32 = 1u;
const ACT_SILU: u32 = 2u;
const ACT_QUICK_GELU: u32 = 3u;
const QUICK_GELU_SCALE: f32 = 1.702;
// erf by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7): 1 - t (a1 + t (a2 + ...)) exp(-z^2), t = 1 / (1 + p z).
const ERF_P: f32 = 0.3275911;
const ERF_A: array<f32, 5> = array<f32, 5>(0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429);

fn erf(v: f32) -> f32 {
  let z = abs(v);
  let t = 1.0 / (1.0 + ERF_P * z);
  let poly = t * (ERF_A[0] + t * (ERF_A[1] + t * (ERF_A[2] + t * (ERF_A[3] + t * ERF_A[4]))));
  return sign(v) * (1.0 - poly * exp(-z * z));
}

fn sigmoid(v: f32) -> f32 {
  return 1.0 / (1.0 + exp(-v));
}

fn activation(kind: u32, v: f32) -> f32 {
  switch kind {
    case ACT_GELU: { return 0.5 * v * (1.0 + erf(v * inverseSqrt(2.0))); }
    case ACT_SILU: { return v * sigmoid(v); }
    case ACT_QUICK_GELU: { return v * sigmoid(QUICK_GELU_SCALE * v); }
    default: { return v; }
  }
}
