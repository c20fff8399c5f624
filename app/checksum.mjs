// XXH32 (Yann Collet's xxHash, 32-bit; spec: github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md), seed 0.
// The load-time check of a cached shard: the download verified its sha256 against the manifest and recorded this
// checksum of the same bytes; a load recomputes it at ~5 GB/s in V8, where WebCrypto's sha256 runs ~0.7 GB/s and was
// half of the first image's weight upload. It guards against accidental change of the cached file (a random change
// passes with probability 2^-32), not against an attacker, who could rewrite the recorded value as easily.
// Four lanes of 32-bit words over 16-byte stripes, then the tail in words and bytes, then an avalanche.

const P1 = 0x9E3779B1;
const P2 = 0x85EBCA77;
const P3 = 0xC2B2AE3D;
const P4 = 0x27D4EB2F;
const P5 = 0x165667B1;

const rotl = (x, r) => (x << r) | (x >>> (32 - r));
const round = (acc, word) => Math.imul(rotl((acc + Math.imul(word, P2)) | 0, 13), P1);

// bytes: a Uint8Array at a 4-byte-aligned offset (readAll's are). Returns the hash as 8 hex digits.
export function xxh32(bytes) {
  if (bytes.byteOffset % 4 !== 0) throw new Error('xxh32 reads whole words: pass bytes at a 4-byte-aligned offset');
  const n = bytes.byteLength;
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, n >>> 2);  // little-endian, as the spec reads
  let h = P5;
  let w = 0;
  if (n >= 16) {
    let a = (P1 + P2) | 0;
    let b = P2;
    let c = 0;
    let d = -P1 | 0;
    for (const end = (n >>> 4) * 4; w < end; w += 4) {
      a = round(a, words[w]);
      b = round(b, words[w + 1]);
      c = round(c, words[w + 2]);
      d = round(d, words[w + 3]);
    }
    h = (rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18)) | 0;
  }
  h = (h + n) | 0;
  for (; w < n >>> 2; w++) h = Math.imul(rotl((h + Math.imul(words[w], P3)) | 0, 17), P4);
  for (let i = w * 4; i < n; i++) h = Math.imul(rotl((h + Math.imul(bytes[i], P5)) | 0, 11), P1);
  h = Math.imul(h ^ (h >>> 15), P2);
  h = Math.imul(h ^ (h >>> 13), P3);
  return ((h ^ (h >>> 16)) >>> 0).toString(16).padStart(8, '0');
}
