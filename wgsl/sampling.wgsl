// The sampler's per-step arithmetic on latents, driven by scalars a recorded plan reads from a storage buffer
// (`params`, struct SamplerStep, written once per step), and the sinusoidal embeddings of t and of the guidance w.
//
// noise (seeded Gaussian, a counter-based generator; py/doppler/convert/noise.py is its numpy twin):
//   Philox4x32-10 (Salmon et al. 2011, Random123's constants) with key (seed & 0xffffffff, seed >> 32) and counter
//   (block, stream, 0, 0) gives 4 u32 words w0..w3 per block. Two Box-Muller pairs turn them into 4 normals:
//     u = (f32(w0 >> 8) + 1) * 2^-24 in (0, 1]   (never 0: no log(0)),  v = f32(w1 >> 8) * 2^-24 in [0, 1)
//     r = sqrt(-2 log(u)),  theta = pi * (2v - 1) in [-pi, pi),  lane 0 = r cos(theta), lane 1 = r sin(theta)
//     lanes 2, 3 the same from (w2, w3).
//   Element j of a tensor's flat (row-major) order is lane j % 4 of block j / 4. Stream 0 makes the initial latents,
//   stream k + 1 the fresh noise of denoising step k. `noise` writes scale * z.
// model_input: dst[c * n + i] = model_input_scale * src[i], c < copies (the UNet's input, batch 2 for CFG).
// guidance:    dst[i] = u + g * (t - u),  u = src[i], t = src[n + i]: classifier-free guidance on the stacked
//              batch-2 UNet output [uncond, text] (diffusers' order: negative prompt first), g = guidance_scale.
// step:        the scheduler update (doppler.inference.diffusion.schedulers StepCoefficients), per element:
//                x0     = x0_from_x x + x0_from_model m
//                x_next = next_from_x x + next_from_model m + next_from_x0 x0 + next_from_x0_prev x0_prev
//                         + next_from_noise noise
//              x (dst) is overwritten with x_next and x0 (the history buffer) with x0, so x0_prev is what the
//              previous step left there. m is src, or guidance applied to the stacked src when GUIDED. noise is
//              made in the kernel from (seed, noise_stream) as `noise` makes it (no buffer), only when its
//              coefficient is not 0.
// time_embedding: dst[row, k] for dim = 2 half (+ 1 zero pad when odd), a = (values[index + row per_row] * scale)
//              * freqs[j]: [sin(a_j), cos(a_j)] per j < half, or [cos, sin] when flip; every row the same unless
//              per_row (a schedule's timesteps, a row each). freqs come from the
//              host (doppler.ops.sampling), rounded as diffusers' get_timestep_embedding or the LCM pipeline's
//              get_guidance_scale_embedding round them in f32.
// sin/cos/log: the builtins are not accurate enough everywhere (SwiftShader's sin is off by 2e-4, lavapipe's log
// by 5e-7 absolute near 1, which moves small Box-Muller radii by 1e-5), so: Cody-Waite reduction by pi/2 in three
// parts (exact for |a| < 2^15) and Cephes' sinf/cosf polynomials on [-pi/4, pi/4]; Cephes' logf (frexp, then a
// polynomial on [sqrt(1/2) - 1, sqrt(2) - 1]). The numpy twin runs the same operations.
// Bindings: 0 params (storage, read), 1 src (read), 2 dst (read_write), 3 x0 (read_write; freqs for
// time_embedding), 4 uniform (Latents; Noise for noise; TimeEmbedding for time_embedding).
// Dispatch: ceil(threads / WG) workgroups along x, wrapped into y past 65535; noise and step run a thread per
// block of 4 elements, model_input one per element of src, the others one per element written.

struct SamplerStep {
  model_input_scale: f32, guidance_scale: f32,
  x0_from_x: f32, x0_from_model: f32,
  next_from_x: f32, next_from_model: f32, next_from_x0: f32, next_from_x0_prev: f32, next_from_noise: f32,
  seed_lo: u32, seed_hi: u32, noise_stream: u32
}
struct Latents { n: u32, copies: u32 }
struct Noise { n: u32, first_block: u32, seed_lo: u32, seed_hi: u32, stream: u32, scale: f32 }
struct TimeEmbedding { n: u32, dim: u32, half: u32, index: u32, scale: f32, flip: u32, per_row: u32 }

override WG: u32 = 256u;
override GUIDED: bool = false;
const MAX_GROUPS_X: u32 = 65535u;

// Philox4x32 (Random123)
const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;
const PHILOX_ROUNDS: u32 = 10u;
const UNIT_24: f32 = 5.9604644775390625e-8;  // 2^-24: 24 random bits to [0, 1)
const PI: f32 = 3.14159265358979;
// pi/2 = PIO2_1 + PIO2_2 + PIO2_3; the first two have 9 significant bits, so k * PIO2_{1,2} is exact for |k| < 2^15
const FRAC_2_PI: f32 = 0.636619772367581;
const PIO2_1: f32 = 1.5703125;
const PIO2_2: f32 = 4.8351287841796875e-4;
const PIO2_3: f32 = 3.1391647e-7;
// Cephes sinf / cosf on [-pi/4, pi/4]
const SIN_0: f32 = -1.6666654611e-1;
const SIN_1: f32 = 8.3321608736e-3;
const SIN_2: f32 = -1.9515295891e-4;
const COS_0: f32 = 4.166664568298827e-2;
const COS_1: f32 = -1.388731625493765e-3;
const COS_2: f32 = 2.443315711809948e-5;
// Cephes logf: ln 2 = LN2_HI + LN2_LO, and the polynomial of (ln(1 + x) - x + x^2 / 2) / x^3
const SQRT_HALF: f32 = 0.707106781186547524;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
const LOG_0: f32 = 3.3333331174e-1;
const LOG_1: f32 = -2.4999993993e-1;
const LOG_2: f32 = 2.0000714765e-1;
const LOG_3: f32 = -1.6668057665e-1;
const LOG_4: f32 = 1.4249322787e-1;
const LOG_5: f32 = -1.2420140846e-1;
const LOG_6: f32 = 1.1676998740e-1;
const LOG_7: f32 = -1.1514610310e-1;
const LOG_8: f32 = 7.0376836292e-2;

@group(0) @binding(0) var<storage, read> params: SamplerStep;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read_write> x0: array<f32>;
@group(0) @binding(3) var<storage, read> freqs: array<f32>;
@group(0) @binding(4) var<uniform> u: Latents;
@group(0) @binding(4) var<uniform> un: Noise;
@group(0) @binding(4) var<uniform> ut: TimeEmbedding;

fn thread(wg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * MAX_GROUPS_X + wg.x) * WG + lid.x;
}

// (hi, lo) words of the 64-bit product a * b, from 16-bit halves
fn mulhilo(a: u32, b: u32) -> vec2u {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let mid = ((a0 * b0) >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return vec2u(a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u), a * b);
}

fn philox(counter: vec4u, key: vec2u) -> vec4u {
  var c = counter;
  var k = key;
  for (var round = 0u; round < PHILOX_ROUNDS; round++) {
    let p0 = mulhilo(PHILOX_M0, c.x);
    let p1 = mulhilo(PHILOX_M1, c.z);
    c = vec4u(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    k += vec2u(PHILOX_W0, PHILOX_W1);
  }
  return c;
}

// (sin x, cos x)
fn sincos(x: f32) -> vec2f {
  let k = round(x * FRAC_2_PI);
  let r = ((x - k * PIO2_1) - k * PIO2_2) - k * PIO2_3;
  let z = r * r;
  let s = r + r * z * ((SIN_2 * z + SIN_1) * z + SIN_0);
  let c = 1.0 - 0.5 * z + z * z * ((COS_2 * z + COS_1) * z + COS_0);
  switch i32(k) & 3 {
    case 0: { return vec2f(s, c); }
    case 1: { return vec2f(c, -s); }
    case 2: { return vec2f(-s, -c); }
    default: { return vec2f(-c, s); }
  }
}

// ln(v), v > 0 and finite
fn ln(v: f32) -> f32 {
  let parts = frexp(v);  // v = fract 2^exp, fract in [0.5, 1)
  var e = f32(parts.exp);
  var x = parts.fract - 1.0;
  if (parts.fract < SQRT_HALF) {
    e -= 1.0;
    x = parts.fract + parts.fract - 1.0;
  }
  let z = x * x;
  let p = ((((((((LOG_8 * x + LOG_7) * x + LOG_6) * x + LOG_5) * x + LOG_4) * x + LOG_3) * x + LOG_2) * x + LOG_1) * x
    + LOG_0) * x * z;
  return (x + (p + LN2_LO * e - 0.5 * z)) + LN2_HI * e;
}

fn box_muller(w_u: u32, w_v: u32) -> vec2f {
  let r = sqrt(-2.0 * ln((f32(w_u >> 8u) + 1.0) * UNIT_24));
  let sc = sincos(PI * (2.0 * (f32(w_v >> 8u) * UNIT_24) - 1.0));
  return vec2f(r * sc.y, r * sc.x);
}

fn gaussian4(seed_lo: u32, seed_hi: u32, stream: u32, block: u32) -> vec4f {
  let w = philox(vec4u(block, stream, 0u, 0u), vec2u(seed_lo, seed_hi));
  return vec4f(box_muller(w.x, w.y), box_muller(w.z, w.w));
}

fn guided(i: u32) -> f32 {
  let uncond = src[i];
  return uncond + params.guidance_scale * (src[u.n + i] - uncond);
}

fn model_output(i: u32) -> f32 {
  if (GUIDED) { return guided(i); }
  return src[i];
}

@compute @workgroup_size(WG)
fn noise(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let t = thread(wg, lid);
  if (4u * t >= un.n) { return; }
  let z = un.scale * gaussian4(un.seed_lo, un.seed_hi, un.stream, un.first_block + t);
  for (var lane = 0u; lane < 4u; lane++) {
    if (4u * t + lane < un.n) { dst[4u * t + lane] = z[lane]; }
  }
}

@compute @workgroup_size(WG)
fn model_input(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = thread(wg, lid);
  if (i >= u.n) { return; }
  let v = params.model_input_scale * src[i];
  for (var c = 0u; c < u.copies; c++) { dst[c * u.n + i] = v; }
}

@compute @workgroup_size(WG)
fn guidance(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = thread(wg, lid);
  if (i < u.n) { dst[i] = guided(i); }
}

@compute @workgroup_size(WG)
fn step(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let t = thread(wg, lid);
  if (4u * t >= u.n) { return; }
  var fresh = vec4f(0.0);
  if (params.next_from_noise != 0.0) {
    fresh = gaussian4(params.seed_lo, params.seed_hi, params.noise_stream, t);
  }
  for (var lane = 0u; lane < 4u; lane++) {
    let i = 4u * t + lane;
    if (i < u.n) {
      let x = dst[i];
      let m = model_output(i);
      let x0_now = params.x0_from_x * x + params.x0_from_model * m;
      dst[i] = params.next_from_x * x + params.next_from_model * m + params.next_from_x0 * x0_now
        + params.next_from_x0_prev * x0[i] + params.next_from_noise * fresh[lane];
      x0[i] = x0_now;
    }
  }
}

@compute @workgroup_size(WG)
fn time_embedding(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = thread(wg, lid);
  if (i >= ut.n) { return; }
  let k = i % ut.dim;
  if (k >= 2u * ut.half) {
    dst[i] = 0.0;
    return;
  }
  let sc = sincos((src[ut.index + (i / ut.dim) * ut.per_row] * ut.scale) * freqs[k % ut.half]);
  dst[i] = select(sc.y, sc.x, (k < ut.half) != (ut.flip != 0u));
}
