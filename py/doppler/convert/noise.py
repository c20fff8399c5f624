"""numpy twin of the GPU's seeded Gaussian noise (`noise` and `step` in wgsl/sampling.wgsl): the same numbers,
for tests and fixtures, following the kernel's f32 operations one by one (so the two differ only by the GPU's
rounding of sqrt and any fused multiply-adds, well under 1e-5).

Spec (binding for everyone):
  Philox4x32-10 with key (seed & 0xffffffff, seed >> 32) and counter (block, stream, 0, 0) -> words w0..w3.
  u = (f32(w0 >> 8) + 1) * 2^-24 in (0, 1], v = f32(w1 >> 8) * 2^-24 in [0, 1)
  r = sqrt(-2 ln u), theta = pi * (2v - 1); lane 0 = r cos theta, lane 1 = r sin theta; lanes 2, 3 from (w2, w3).
  Element j of the output = lane j % 4 of block j / 4. Stream 0: initial latents; stream k + 1: step k's noise.
  Latents are NHWC, so element j is ((b * H + y) * W + x) * C + c.
sin/cos/log are the kernel's (Cody-Waite reduction, Cephes polynomials), not numpy's, so both sides round alike.
"""

from __future__ import annotations

import numpy as np

PHILOX_M = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
PHILOX_W = (np.uint32(0x9E3779B9), np.uint32(0xBB67AE85))
PHILOX_ROUNDS = 10
LANES = 4
UNIT_24 = np.float32(2.0**-24)
PI = np.float32(np.pi)
FRAC_2_PI = np.float32(2.0 / np.pi)
PIO2 = (np.float32(1.5703125), np.float32(4.8351287841796875e-4), np.float32(3.1391647e-7))
SIN = (np.float32(-1.6666654611e-1), np.float32(8.3321608736e-3), np.float32(-1.9515295891e-4))
COS = (np.float32(4.166664568298827e-2), np.float32(-1.388731625493765e-3), np.float32(2.443315711809948e-5))
SQRT_HALF = np.float32(np.sqrt(0.5))
LN2 = (np.float32(0.693359375), np.float32(-2.12194440e-4))
LOG = tuple(np.float32(c) for c in (3.3333331174e-1, -2.4999993993e-1, 2.0000714765e-1, -1.6668057665e-1,
                                    1.4249322787e-1, -1.2420140846e-1, 1.1676998740e-1, -1.1514610310e-1,
                                    7.0376836292e-2))


def philox4x32(counters: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Philox4x32-10 of counters (N, 4) uint32 under a two-word key -> (N, 4) uint32."""
    c = [counters[:, i].astype(np.uint32) for i in range(4)]
    k0, k1 = np.uint32(key[0]), np.uint32(key[1])
    with np.errstate(over="ignore"):
        for _ in range(PHILOX_ROUNDS):
            p0 = c[0].astype(np.uint64) * PHILOX_M[0]
            p1 = c[2].astype(np.uint64) * PHILOX_M[1]
            hi0, lo0 = (p0 >> np.uint64(32)).astype(np.uint32), p0.astype(np.uint32)
            hi1, lo1 = (p1 >> np.uint64(32)).astype(np.uint32), p1.astype(np.uint32)
            c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
            k0, k1 = k0 + PHILOX_W[0], k1 + PHILOX_W[1]
    return np.stack(c, axis=1)


def sincos(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sin x, cos x) in f32 as the kernel computes them (accurate for |x| < 2^15)."""
    x = x.astype(np.float32)
    k = np.rint(x * FRAC_2_PI)
    r = ((x - k * PIO2[0]) - k * PIO2[1]) - k * PIO2[2]
    z = r * r
    s = r + r * z * ((SIN[2] * z + SIN[1]) * z + SIN[0])
    c = np.float32(1.0) - np.float32(0.5) * z + z * z * ((COS[2] * z + COS[1]) * z + COS[0])
    quadrant = k.astype(np.int32) & 3
    sin = np.select([quadrant == 0, quadrant == 1, quadrant == 2], [s, c, -s], -c)
    cos = np.select([quadrant == 0, quadrant == 1, quadrant == 2], [c, -s, -c], s)
    return sin.astype(np.float32), cos.astype(np.float32)


def ln(v: np.ndarray) -> np.ndarray:
    """ln(v) in f32 as the kernel computes it (Cephes logf), v > 0."""
    fract, exp = np.frexp(v.astype(np.float32))
    low = fract < SQRT_HALF
    e = exp.astype(np.float32) - low.astype(np.float32)
    x = np.where(low, fract + fract - np.float32(1.0), fract - np.float32(1.0)).astype(np.float32)
    z = x * x
    p = LOG[8]
    for c in LOG[7::-1]:
        p = p * x + c
    p = p * x * z
    return (x + (p + LN2[1] * e - np.float32(0.5) * z)) + LN2[0] * e


def _box_muller(w_u: np.ndarray, w_v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u = ((w_u >> np.uint32(8)).astype(np.float32) + np.float32(1.0)) * UNIT_24
    r = np.sqrt(np.float32(-2.0) * ln(u))
    v = (w_v >> np.uint32(8)).astype(np.float32) * UNIT_24
    sin, cos = sincos(PI * (np.float32(2.0) * v - np.float32(1.0)))
    return r * cos, r * sin


def gaussian(seed: int, stream: int, count: int) -> np.ndarray:
    """`count` standard normals (float32) of (seed, stream), exactly as the GPU orders them."""
    if not 0 <= seed < 2**64 or not 0 <= stream < 2**32:
        raise ValueError(f"seed must be in [0, 2^64) and stream in [0, 2^32); got seed={seed}, stream={stream}")
    blocks = -(-count // LANES)
    counters = np.zeros((blocks, 4), np.uint32)
    counters[:, 0] = np.arange(blocks, dtype=np.uint32)
    counters[:, 1] = stream
    w = philox4x32(counters, (seed & 0xFFFFFFFF, seed >> 32))
    z0, z1 = _box_muller(w[:, 0], w[:, 1])
    z2, z3 = _box_muller(w[:, 2], w[:, 3])
    return np.stack([z0, z1, z2, z3], axis=1).reshape(-1)[:count]
