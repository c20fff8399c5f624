"""Where the tiles of a tiled VAE decode lie, and copying windows of NHWC maps between a whole map and a tile.

Along an axis of L latent pixels, with tiles of at most T = tileSize / s and overlap O = overlap / s latent pixels
(s: the VAE's upscale factor): one tile when T >= L, else the fewest tiles that share at least O pixels with each
neighbour, n = ceil((L - O) / (T - O)), each shrunk to the least size that still covers the axis with that
overlap, T' = ceil((L + (n - 1) O) / n) <= T (equal sizes, so every tile reuses the same pooled buffers; smaller,
so no tile computes more overlap than asked), tile i starting at floor(i (L - T') / (n - 1)). Each shared strip is
cut at its middle: a tile's core (what it writes to the image) ends at least floor(O / 2) latent pixels inside the
tile, a halo that keeps the zero padding of the tile's own borders away from the core. The cores partition the
image.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...config.diffusion import RUNTIME_PATH, Tiling
from ...config.schema import ConfigError
from ...errors import GpuError
from ...gpu.tensor import DTYPE_BYTES

TILING_PATH = f"{RUNTIME_PATH}.decode.tiling"


@dataclass(frozen=True)
class Span:
    """One tile along one axis: pixels start..start+size of the latent, of which core_start..core_end are its core."""

    start: int
    size: int
    core_start: int
    core_end: int


@dataclass(frozen=True)
class Tile:
    rows: Span
    cols: Span

    def core(self, scale: int = 1) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the core inside the tile, at `scale` pixels per latent pixel."""
        r, c = self.rows, self.cols
        return ((r.core_start - r.start) * scale, (c.core_start - c.start) * scale,
                (r.core_end - r.core_start) * scale, (c.core_end - c.core_start) * scale)


def spans(length: int, tile: int, overlap: int) -> list[Span]:
    """The tiles along an axis of `length` pixels, at most `tile` long (module docstring); needs overlap < tile."""
    if tile >= length:
        return [Span(0, length, 0, length)]
    n = -(-(length - overlap) // (tile - overlap))
    tile = -(-(length + (n - 1) * overlap) // n)
    starts = [i * (length - tile) // (n - 1) for i in range(n)]
    cuts = [0] + [(a + tile + b) // 2 for a, b in zip(starts, starts[1:])] + [length]
    return [Span(start, tile, cuts[i], cuts[i + 1]) for i, start in enumerate(starts)]


def plan_tiles(height: int, width: int, tiling: Tiling, scale: int) -> list[Tile]:
    """Tiles over a latent of height x width for `tiling` (sizes in image pixels) and a VAE upscale of `scale`."""
    problems = [f"{TILING_PATH}.{key}: {message}" for key, message in tiling.cross_check()]
    for key, value in (("tileSize", tiling.tile_size), ("overlap", tiling.overlap)):
        if value % scale:
            problems.append(f"{TILING_PATH}.{key}: got {value}; expected a multiple of the VAE's upscale factor "
                            f"{scale}, so tiles start on latent pixels")
    if problems:
        raise ConfigError(problems)
    rows = spans(height, tiling.tile_size // scale, tiling.overlap // scale)
    cols = spans(width, tiling.tile_size // scale, tiling.overlap // scale)
    return [Tile(r, c) for r in rows for c in cols]


def copy_window(gpu, src, src_at: tuple[int, int], dst, dst_at: tuple[int, int], size: tuple[int, int]) -> None:
    """dst[:, dst_at + (0..size)] = src[:, src_at + (0..size)] for f32 NHWC maps of one batch and channel count:
    one copy per batch and row of the window, or per batch when the window spans whole rows of both maps."""
    (sy, sx), (dy, dx), (rows, cols) = src_at, dst_at, size
    if src.shape[::3] != dst.shape[::3] or src.dtype != "f32" or dst.dtype != "f32":
        raise GpuError(f"copy_window: {src.label} {src.shape} {src.dtype} and {dst.label} {dst.shape} {dst.dtype} "
                       "must be f32 NHWC maps of one batch size and channel count")
    fits = all(0 <= at and at + n <= limit for at, n, limit in
               ((sy, rows, src.shape[1]), (sx, cols, src.shape[2]), (dy, rows, dst.shape[1]), (dx, cols, dst.shape[2])))
    if not fits:
        raise GpuError(f"copy_window: a {rows}x{cols} window at {src_at} of {src.label} {src.shape} or at {dst_at} "
                       f"of {dst.label} {dst.shape} lies outside its map")
    pixel = src.shape[3] * DTYPE_BYTES["f32"]
    whole_rows = cols == src.shape[2] == dst.shape[2]
    for b in range(src.shape[0]):
        for r in range(1 if whole_rows else rows):
            gpu.copy(src, dst, (rows if whole_rows else 1) * cols * pixel,
                     src_offset=((b * src.shape[1] + sy + r) * src.shape[2] + sx) * pixel,
                     dst_offset=((b * dst.shape[1] + dy + r) * dst.shape[2] + dx) * pixel)
