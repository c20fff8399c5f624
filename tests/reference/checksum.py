"""XXH32 (xxHash's 32-bit hash, seed 0), plainly after the spec, for app/checksum.mjs's tests."""

import struct

P1, P2, P3, P4, P5 = 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1
M = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & M


def _round(acc: int, word: int) -> int:
    return _rotl((acc + word * P2) & M, 13) * P1 & M


def xxh32(data: bytes) -> str:
    n, i = len(data), 0
    if n >= 16:
        lanes = [(P1 + P2) & M, P2, 0, (-P1) & M]
        for i in range(0, n - n % 16, 16):
            for lane, word in enumerate(struct.unpack_from("<4I", data, i)):
                lanes[lane] = _round(lanes[lane], word)
        i = n - n % 16
        h = (_rotl(lanes[0], 1) + _rotl(lanes[1], 7) + _rotl(lanes[2], 12) + _rotl(lanes[3], 18)) & M
    else:
        h = P5
    h = (h + n) & M
    while i + 4 <= n:
        h = _rotl((h + struct.unpack_from("<I", data, i)[0] * P3) & M, 17) * P4 & M
        i += 4
    for byte in data[i:]:
        h = _rotl((h + byte * P5) & M, 11) * P1 & M
    h = (h ^ (h >> 15)) * P2 & M
    h = (h ^ (h >> 13)) * P3 & M
    return f"{h ^ (h >> 16):08x}"
