"""The VAE decoder of AutoencoderKL (diffusers), NHWC: latents -> image in [-1, 1].

    z = latents / scaling_factor;  h = decoder.conv_in(post_quant_conv(z))
    mid: resnet -> attention (one head over all pixels, GroupNorm first, residual) -> resnet
    up blocks (reversed channels): resnets x (layers_per_block + 1), then nearest 2x + conv, except the last
    image = conv_out(silu(conv_norm_out(h)))

Tiled decode (decode.tiling): the decoder runs by levels of resolution (level j: 2^j times the latent's size).
The latent's part and the levels whose whole maps are no larger than a tile's largest run on the whole image; the
later levels and the output head run per tile (tiling.py), so memory follows the tile size, not the image size.
Each GroupNorm there normalizes with the statistics of its whole input map, as the untiled decode does: pass k runs
every tile up to GroupNorm k (the earlier ones applying the statistics found before), adds the moments of the
tile's core to k's, and stops; the last pass runs every tile through and writes its core. With a halo (half the
overlap) at least the receptive field of the tiled layers (SD 1.5, all upsampled levels tiled: 6.25 latent pixels)
the result equals the untiled decode up to float rounding. The price is compute: pass k recomputes the tiles up to
GroupNorm k, and overlapping tiles compute their halos.
"""

from __future__ import annotations

from ...config.schema import ConfigError
from ...gpu.tensor import DTYPE_BYTES
from ...ops import attention, elementwise, groupnorm
from ...ops.groupnorm import Window
from .nn import Conv2d, GroupNorm, Linear, own_statistics, scaled_dot_product_attention
from .tiling import TILING_PATH, Tile, copy_window, plan_tiles
from .unet import ResnetBlock2D

VAE_NORM_EPS = 1e-6
# The mid-block's attention (one head of 512 over every latent pixel) runs as GEMMs through its score matrix when
# that fits in this many bytes (SD 1.5 at 512 px: 4096 tokens, 64 MiB), several times faster than the flash kernel
# at this width; larger latents take the flash kernel, which never holds the scores.
MAX_SCORE_BYTES = 1 << 27


class VAEAttention:
    def __init__(self, weights, path: str, groups: int):
        self.path = path
        self.group_norm = GroupNorm(weights, f"{path}.group_norm", groups, VAE_NORM_EPS, feeds_gemms=True)
        self.to_q, self.to_k, self.to_v = (Linear(weights, f"{path}.{n}") for n in ("to_q", "to_k", "to_v"))
        self.to_out = Linear(weights, f"{path}.to_out.0")

    async def __call__(self, gpu, x):
        b, h, w, c = x.shape
        n = await self.group_norm(gpu, x)
        tokens = n.reshaped((b, h * w, c))
        q, k, v = [await proj(gpu, tokens) for proj in (self.to_q, self.to_k, self.to_v)]
        gpu.free(n)
        if b * (h * w) ** 2 * DTYPE_BYTES["f32"] <= MAX_SCORE_BYTES:
            a = gpu.tensor(q.shape, "f32", self.path)
            await attention.single_head_by_matmuls(gpu, q, k, v, a)
        else:
            a = await scaled_dot_product_attention(gpu, q, k, v, 1, self.path)
        gpu.free(q, k, v)
        out = await self.to_out(gpu, a, residual=x.reshaped((b, h * w, c)))
        gpu.free(a)
        return out.reshaped((b, h, w, c))


class _Gathered(Exception):
    """A statistics pass reached the GroupNorm whose moments it gathers: the tile stops there."""


class SharedStatistics:
    """The `norm` of one tile in one pass: GroupNorms before `gather` apply the whole map's statistics (`stats`);
    `gather` adds the moments of the tile's core to `moments` (merged with earlier tiles' when `merge`) and stops
    the tile. With no `gather` the tile runs through."""

    def __init__(self, tile: Tile, stats: dict, gather: GroupNorm | None = None, moments=None, merge: bool = False):
        self.tile, self.stats, self.gather, self.moments, self.merge = tile, stats, gather, moments, merge

    async def __call__(self, gpu, layer: GroupNorm, x, silu: bool):
        if layer is not self.gather:
            return await layer(gpu, x, silu=silu, stats=self.stats[layer])
        core = Window(*self.tile.core(x.shape[1] // self.tile.rows.size))  # at this map's pixels per latent one
        await layer.accumulate(gpu, x, self.moments, core, self.merge)
        raise _Gathered(layer.path)


class AutoencoderKLDecoder:
    def __init__(self, weights, arch):
        self.scaling_factor = arch.scaling_factor
        self.groups = arch.norm_num_groups
        groups = self.groups
        self.upscale = 2 ** (len(arch.block_out_channels) - 1)
        self.post_quant_conv = Conv2d(weights, "post_quant_conv")
        self.conv_in = Conv2d(weights, "decoder.conv_in")
        self.mid = (ResnetBlock2D(weights, "decoder.mid_block.resnets.0", groups, VAE_NORM_EPS, has_temb=False),
                    VAEAttention(weights, "decoder.mid_block.attentions.0", groups),
                    ResnetBlock2D(weights, "decoder.mid_block.resnets.1", groups, VAE_NORM_EPS, has_temb=False))
        self.up = []
        for i in range(len(arch.block_out_channels)):
            path = f"decoder.up_blocks.{i}"
            resnets = [ResnetBlock2D(weights, f"{path}.resnets.{j}", groups, VAE_NORM_EPS, has_temb=False)
                       for j in range(arch.layers_per_block + 1)]
            up = Conv2d(weights, f"{path}.upsamplers.0.conv") if i < len(arch.block_out_channels) - 1 else None
            self.up.append((resnets, up))
        self.conv_norm_out = GroupNorm(weights, "decoder.conv_norm_out", groups, VAE_NORM_EPS)
        self.conv_out = Conv2d(weights, "decoder.conv_out")
        # Level j runs at 2^j times the latent's size: block j's resnets, after block j-1's upsampler for j >= 1.
        # Its widest maps have these many channels (diffusers' decoder walks block_out_channels reversed).
        widths = list(reversed(arch.block_out_channels))
        self.level_channels = [widths[0]] + [max(a, b) for a, b in zip(widths, widths[1:])]

    async def __call__(self, gpu, latents, tiling=None):
        """latents (B, h, w, C) NHWC -> image (B, 8h, 8w, 3) in about [-1, 1]; in tiles when `tiling` (the
        decode.tiling config) is enabled and the image is larger than one tile."""
        levels = len(self.up)
        tiles = plan_tiles(*latents.shape[1:3], tiling, self.upscale) if tiling and tiling.enabled else []
        if len(tiles) < 2:
            h = await self._levels(gpu, await self._latent(gpu, latents), range(levels))
            return await self._head(gpu, h)
        first = self._first_tiled_level(gpu, latents.shape, tiles, tiling.tile_size)
        h = await self._levels(gpu, await self._latent(gpu, latents), range(first))
        image = await self._tiled(gpu, h, tiles, first)
        gpu.free(h)
        return image

    def _map_bytes(self, level: int, pixels: int) -> int:
        return pixels * self.level_channels[level] * DTYPE_BYTES["f32"]

    def _first_tiled_level(self, gpu, shape, tiles: list[Tile], tile_size: int) -> int:
        """Levels whose whole maps (latents of `shape`) are no larger than a tile's largest run whole (no
        statistics passes there); from the first larger one on, levels run in tiles. Tiles too large to bind are
        named."""
        (batch, h, w, _), levels, rows, cols = shape, len(self.up), tiles[0].rows, tiles[0].cols
        tile_bytes = max((batch * self._map_bytes(j, rows.size * cols.size * 4**j) for j in range(1, levels)),
                         default=0)
        if tile_bytes > gpu.max_binding:
            raise ConfigError([f"{TILING_PATH}.tileSize: got {tile_size}; a tile's largest map takes {tile_bytes} "
                               f"bytes, over this GPU's maxStorageBufferBindingSize ({gpu.max_binding}): use "
                               "smaller tiles"])
        larger = (j for j in range(1, levels) if batch * self._map_bytes(j, h * w * 4**j) > tile_bytes)
        return next(larger, levels)

    async def _latent(self, gpu, latents):
        """post_quant_conv, conv_in and the mid block, on the whole latent."""
        z = gpu.tensor(latents.shape, "f32", "vae.z")
        await elementwise.scale(gpu, latents, z, 1.0 / self.scaling_factor)
        h = await self.post_quant_conv(gpu, z)
        gpu.free(z)
        for layer in (self.conv_in, *self.mid):
            nxt = await layer(gpu, h)
            gpu.free(h)
            h = nxt
        return h

    async def _levels(self, gpu, h, levels: range, norm=own_statistics):
        """Runs `levels` on h, freeing it. `norm` gives each GroupNorm its statistics."""
        for j in levels:
            if j > 0:
                nxt = await self.up[j - 1][1](gpu, h, upsample_to=(2 * h.shape[1], 2 * h.shape[2]))
                gpu.free(h)
                h = nxt
            for resnet in self.up[j][0]:
                nxt = await resnet(gpu, h, norm=norm)
                gpu.free(h)
                h = nxt
        return h

    async def _head(self, gpu, h, norm=own_statistics):
        n = await norm(gpu, self.conv_norm_out, h, True)
        gpu.free(h)
        image = await self.conv_out(gpu, n)
        gpu.free(n)
        return image

    async def _tile(self, gpu, h, tile: Tile, first: int, norm):
        """Levels `first`.. and the head over one tile of h, the map of level first - 1."""
        x = self._crop(gpu, h, tile, 1 << (first - 1))
        return await self._head(gpu, await self._levels(gpu, x, range(first, len(self.up)), norm), norm)

    async def _tiled(self, gpu, h, tiles: list[Tile], first: int):
        """Levels `first`.. and the head per tile (module docstring): a statistics pass per GroupNorm, in call
        order, then the pass that writes each tile's core into the image."""
        b, s, levels = h.shape[0], self.upscale, range(first, len(self.up))
        norms = [n for j in levels for r in self.up[j][0] for n in (r.norm1, r.norm2)] + [self.conv_norm_out]
        stats: dict = {}  # GroupNorm -> (B, G, 2) statistics of its whole input map
        moments = gpu.tensor((b, self.groups, 3), "f32", "vae.tiles.moments")
        for layer in norms:
            for i, tile in enumerate(tiles):
                with gpu.scope():
                    try:
                        await self._tile(gpu, h, tile, first, SharedStatistics(tile, stats, layer, moments, i > 0))
                    except _Gathered:
                        pass
            stats[layer] = gpu.tensor((b, self.groups, 2), "f32", f"{layer.path}.shared_stats")
            await groupnorm.finalize(gpu, moments, stats[layer], layer.eps)
        gpu.free(moments)
        latent = tiles[-1]  # the cores partition the latent: the last one ends at its corner
        image_hw = (latent.rows.core_end * s, latent.cols.core_end * s)
        image = gpu.tensor((b, *image_hw, self.conv_out.out_channels), "f32", "vae.image")
        for tile in tiles:
            top, left, height, width = tile.core(s)
            with gpu.scope():
                out = await self._tile(gpu, h, tile, first, SharedStatistics(tile, stats))
                copy_window(gpu, out, (top, left), image, (tile.rows.core_start * s, tile.cols.core_start * s),
                            (height, width))
        gpu.free(*stats.values())
        return image

    @staticmethod
    def _crop(gpu, h, tile: Tile, f: int):
        """The tile's part of h, a map of f pixels per latent pixel (level j has 2^j)."""
        rows, cols = tile.rows, tile.cols
        x = gpu.tensor((h.shape[0], rows.size * f, cols.size * f, h.shape[3]), "f32", "vae.tile")
        copy_window(gpu, h, (rows.start * f, cols.start * f), x, (0, 0), (rows.size * f, cols.size * f))
        return x
