// Convolution weights from PyTorch's [Cout, Cin, KH, KW] to channels last, [Cout, KH, KW, Cin]: the layout
// conv2d.wgsl reads, where a row's K = KH*KW*Cin runs tap-major and channel-minor like the NHWC pixels it multiplies,
// so both operands load as vec4s along K. Run once per weight when a component loads.
//   Element e = (co * T + t) * Cin + ci of dst (T = KH*KW taps, t = ky*KW + kx) is element (co * Cin + ci) * T + t
//   of src. Words move bit for bit: f32 one element per u32 word; f16 (F16_WEIGHTS) two per word, element 2w in
//   the low half of word w (a last half past the elements is 0).
// Bindings: 0 src (u32 words), 1 dst (u32 words, read_write, another buffer), 2 uniform WeightLayout.
// Dispatch: one invocation per dst word, ceil(words / WG) workgroups along x wrapped into y past 65535
//   (word = (wg.y * 65535 + wg.x) * WG + local index).

struct WeightLayout { elements: u32, cin: u32, taps: u32 }

override WG: u32 = 256u;
override F16_WEIGHTS: bool = false;

const MAX_GROUPS_X: u32 = 65535u;
const HALF_BITS: u32 = 16u;
const HALF_MASK: u32 = 0xffffu;

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> u: WeightLayout;

// src element index of dst element e.
fn source_of(e: u32) -> u32 {
  let ci = e % u.cin;
  let t = (e / u.cin) % u.taps;
  let co = e / (u.cin * u.taps);
  return (co * u.cin + ci) * u.taps + t;
}

// The 16 bits of f16 element i of src.
fn half_bits(i: u32) -> u32 {
  return (src[i / 2u] >> (HALF_BITS * (i % 2u))) & HALF_MASK;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let word = (wg.y * MAX_GROUPS_X + wg.x) * WG + lid;
  if (!F16_WEIGHTS) {
    if (word < u.elements) { dst[word] = src[source_of(word)]; }
    return;
  }
  let e = 2u * word;
  if (e >= u.elements) { return; }
  var bits = half_bits(source_of(e));
  if (e + 1u < u.elements) { bits |= half_bits(source_of(e + 1u)) << HALF_BITS; }
  dst[word] = bits;
}
