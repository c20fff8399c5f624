// The matrices of Winograd F(m x m, 3x3) (Lavin & Gray 2015), m = TILE (2 or 4) output pixels per tile each way:
//   y = A^T [(G g G^T) (.) (B^T d B)] A for a SIDE x SIDE input patch d (SIDE = m + 2) and a 3x3 kernel g.
//   F(2x2): B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1]. F(4x4): Toom-Cook at the points 0, 1, -1, 2, -1/2 (and infinity), two thirds of the
//   f16 rounding error of the usual 0, +-1, +-2 (tests/kernels/test_winograd.py); B^T quartered and A^T quadrupled
//   (powers of 2: exact) so that V = B^T d B stays within 3.06 max |d| (F(2x2): 4, unscaled 49): f16 V overflows
//   no sooner than F(2x2)'s, on inputs that need not be normalized (the upsamplers' convs).
//   The including kernel sets TILE (override) and applies them through input_transform, output_transform and
//   g_rows (G zero-padded to MAX_SIDE rows).

override TILE: u32 = 2u;
override SIDE: u32 = TILE + 2u;

const MAX_SIDE: u32 = 6u;
const TAPS: u32 = 3u;  // g is TAPS x TAPS

alias Matrix = array<array<f32, MAX_SIDE>, MAX_SIDE>;
alias Pairs = array<vec2f, MAX_SIDE>;
alias Quads = array<vec4f, MAX_SIDE>;

const G_2 = array<vec3f, MAX_SIDE>(vec3f(1, 0, 0), vec3f(0.5, 0.5, 0.5), vec3f(0.5, -0.5, 0.5), vec3f(0, 0, 1),
                                   vec3f(), vec3f());
const G_4 = array<vec3f, MAX_SIDE>(vec3f(1, 0, 0), vec3f(1, 1, 1) / 3.0, vec3f(1, -1, 1) / 3.0,
                                   vec3f(1, 2, 4) / 15.0, vec3f(16, -8, 4) / 15.0, vec3f(0, 0, 1));

// B^T s along one axis of the tile: SIDE pairs of SIDE (written out: loops over a coefficient matrix ran the
// transforms up to 7x slower on an H200, session 14).
fn input_transform(s: Pairs) -> Pairs {
  if (TILE == 2u) { return Pairs(s[0] - s[2], s[1] + s[2], s[2] - s[1], s[1] - s[3], vec2f(), vec2f()); }
  return Pairs(0.25 * s[0] + 0.375 * s[1] - 0.5 * s[2] - 0.375 * s[3] + 0.25 * s[4],
               0.25 * s[1] + 0.625 * s[2] + 0.125 * s[3] - 0.25 * s[4],
               0.25 * s[1] + 0.125 * s[2] - 0.625 * s[3] + 0.25 * s[4],
               -0.125 * s[1] - 0.25 * s[2] + 0.125 * s[3] + 0.25 * s[4],
               -0.5 * s[1] + 0.25 * s[2] + 0.5 * s[3] - 0.25 * s[4],
               0.25 * s[1] + 0.375 * s[2] - 0.5 * s[3] - 0.375 * s[4] + 0.25 * s[5]);
}

// A^T s along one axis of the tile: TILE quads of SIDE.
fn output_transform(s: Quads) -> Quads {
  if (TILE == 2u) { return Quads(s[0] + s[1] + s[2], s[1] - s[2] - s[3], vec4f(), vec4f(), vec4f(), vec4f()); }
  let odd = s[1] - s[2];
  let even = s[1] + s[2];
  return Quads(4.0 * (s[0] + even + s[3] + s[4]), 4.0 * odd + 8.0 * s[3] - 2.0 * s[4], 4.0 * even + 16.0 * s[3] + s[4],
               4.0 * odd + 32.0 * s[3] - 0.5 * s[4] + 4.0 * s[5], vec4f(), vec4f());
}

// G's rows (SIDE of them), as a function variable: indexed at run time.
fn g_rows() -> array<vec3f, MAX_SIDE> {
  if (TILE == 2u) { return G_2; }
  return G_4;
}
