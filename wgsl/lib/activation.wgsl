// Activations in f32, by code: activation(ACT_GELU, v). Included by kernels that fuse one and by the activation
// kernels (lib/activation_entries.wgsl); ops/activation.py's ACTIVATIONS holds the same codes.
//   gelu(x)       = x * Phi(x) = x/2 * erfc(-x/sqrt(2))   (erf form: torch's default, diffusers' GELU/GEGLU)
//   silu(x)       = x * sigmoid(x)
//   quick_gelu(x) = x * sigmoid(1.702 x)                  (CLIP's text encoder)
// erfc(z), z >= 0, by Abramowitz & Stegun 7.1.26: t = 1 / (1 + p z), erfc(z) = (a1 t + ... + a5 t^5) exp(-z^2),
// absolute error <= 1.5e-7; Phi takes it for the tail of either sign, so there is no cancellation in 1 + erf.
// sigmoid(x) is computed from exp(-|x|), which never overflows.

const ACT_NONE: u32 = 0u;
const ACT_GELU: u32 = 1u;
const ACT_SILU: u32 = 2u;
const ACT_QUICK_GELU: u32 = 3u;
const QUICK_GELU_SCALE: f32 = 1.702;
const FRAC_1_SQRT_2: f32 = 0.70710678118654752;
const ERFC_P: f32 = 0.3275911;
const ERFC_A: array<f32, 5> = array<f32, 5>(0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429);

fn gelu(v: f32) -> f32 {
  let z = abs(v) * FRAC_1_SQRT_2;
  let t = 1.0 / (1.0 + ERFC_P * z);
  let poly = t * (ERFC_A[0] + t * (ERFC_A[1] + t * (ERFC_A[2] + t * (ERFC_A[3] + t * ERFC_A[4]))));
  let half_erfc = 0.5 * poly * exp(-z * z);  // Phi(-|v|)
  return v * select(half_erfc, 1.0 - half_erfc, v >= 0.0);
}

fn sigmoid(v: f32) -> f32 {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

fn activation(kind: u32, v: f32) -> f32 {
  switch kind {
    case ACT_GELU: { return gelu(v); }
    case ACT_SILU: { return v * sigmoid(v); }
    case ACT_QUICK_GELU: { return v * sigmoid(QUICK_GELU_SCALE * v); }
    default: { return v; }
  }
}
