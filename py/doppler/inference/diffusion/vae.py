"""The VAE decoder of AutoencoderKL (diffusers), NHWC: latents -> image in [-1, 1].

    z = latents / scaling_factor;  h = decoder.conv_in(post_quant_conv(z))
    mid: resnet -> attention (one head over all pixels, GroupNorm first, residual) -> resnet
    up blocks (reversed channels): resnets x (layers_per_block + 1), then nearest 2x + conv, except the last
    image = conv_out(silu(conv_norm_out(h)))

Tiled decode (decode.tiling): everything at latent resolution (up to the first upsampler) runs on the whole latent,
which is small; the upsampled rest runs per tile (tiling.py), so its memory follows the tile, not the image. Each
GroupNorm there normalizes with the statistics of the whole map, as the untiled decode does: statistics pass k runs
every tile up to GroupNorm k (the earlier ones applying the statistics found before), adds the moments of the tile's
core to k's and stops; the final pass runs every tile through and writes its core. With a halo (half the overlap)
at least the receptive field of the upsampled layers (SD 1.5: 6.25 latent pixels), the result equals the untiled
decode up to float rounding; the price is the passes: pass k recomputes the tiles up to GroupNorm k.
"""

from __future__ import annotations

from ...ops import elementwise, groupnorm
from ...ops.groupnorm import Window
from .nn import Conv2d, GroupNorm, Linear, own_statistics, scaled_dot_product_attention
from .tiling import Tile, copy_window, plan_tiles
from .unet import ResnetBlock2D

VAE_NORM_EPS = 1e-6


class VAEAttention:
    def __init__(self, weights, path: str, groups: int):
        self.path = path
        self.group_norm = GroupNorm(weights, f"{path}.group_norm", groups, VAE_NORM_EPS)
        self.to_q, self.to_k, self.to_v = (Linear(weights, f"{path}.{n}") for n in ("to_q", "to_k", "to_v"))
        self.to_out = Linear(weights, f"{path}.to_out.0")

    async def __call__(self, gpu, x):
        b, h, w, c = x.shape
        n = await self.group_norm(gpu, x)
        tokens = n.reshaped((b, h * w, c))
        q, k, v = [await proj(gpu, tokens) for proj in (self.to_q, self.to_k, self.to_v)]
        gpu.free(n)
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
        # The GroupNorms of the upsampled part, in call order: one statistics pass each in a tiled decode.
        self.upsampled_norms = [n for resnets, _ in self.up[1:] for r in resnets for n in (r.norm1, r.norm2)]
        self.upsampled_norms.append(self.conv_norm_out)

    async def __call__(self, gpu, latents, tiling=None):
        """latents (B, h, w, C) NHWC -> image (B, 8h, 8w, 3) in about [-1, 1]; in tiles when `tiling` (the
        decode.tiling config) is enabled and the image is larger than one tile."""
        h = await self._latent_resolution(gpu, latents)
        tiles = plan_tiles(h.shape[1], h.shape[2], tiling, self.upscale) if tiling and tiling.enabled else []
        if len(tiles) < 2:
            return await self._upsampled(gpu, h)
        image = await self._tiled(gpu, h, tiles)
        gpu.free(h)
        return image

    async def _latent_resolution(self, gpu, latents):
        """Everything before the first upsampler: the part every tile needs whole (and latent-sized)."""
        z = gpu.tensor(latents.shape, "f32", "vae.z")
        await elementwise.scale(gpu, latents, z, 1.0 / self.scaling_factor)
        h = await self.post_quant_conv(gpu, z)
        gpu.free(z)
        for layer in (self.conv_in, *self.mid, *self.up[0][0]):
            nxt = await layer(gpu, h)
            gpu.free(h)
            h = nxt
        return h

    async def _upsampled(self, gpu, h, norm=own_statistics):
        """The rest, from the first upsampler on; frees h. `norm` gives each GroupNorm its statistics."""
        h = await self._upsample(gpu, h, self.up[0][1])
        for resnets, up in self.up[1:]:
            for resnet in resnets:
                nxt = await resnet(gpu, h, norm=norm)
                gpu.free(h)
                h = nxt
            h = await self._upsample(gpu, h, up)
        n = await norm(gpu, self.conv_norm_out, h, True)
        gpu.free(h)
        image = await self.conv_out(gpu, n)
        gpu.free(n)
        return image

    @staticmethod
    async def _upsample(gpu, h, conv):
        """conv(nearest 2x of h), freeing h; h itself when the block has no upsampler (the last one)."""
        if conv is None:
            return h
        out = await conv(gpu, h, upsample_to=(2 * h.shape[1], 2 * h.shape[2]))
        gpu.free(h)
        return out

    async def _tiled(self, gpu, h, tiles: list[Tile]):
        """The upsampled part per tile (module docstring): a statistics pass per GroupNorm, in call order, then the
        pass that writes each tile's core into the image."""
        b, s = h.shape[0], self.upscale
        stats: dict = {}  # GroupNorm -> (B, G, 2) statistics of its whole input map
        moments = gpu.tensor((b, self.groups, 3), "f32", "vae.tiles.moments")
        for layer in self.upsampled_norms:
            for i, tile in enumerate(tiles):
                with gpu.scope():
                    try:
                        await self._upsampled(gpu, self._crop(gpu, h, tile),
                                              SharedStatistics(tile, stats, layer, moments, merge=i > 0))
                    except _Gathered:
                        pass
            stats[layer] = gpu.tensor((b, self.groups, 2), "f32", f"{layer.path}.shared_stats")
            await groupnorm.finalize(gpu, moments, stats[layer], layer.eps)
        gpu.free(moments)
        image = gpu.tensor((b, h.shape[1] * s, h.shape[2] * s, self.conv_out.weight.shape[0]), "f32", "vae.image")
        for tile in tiles:
            top, left, height, width = tile.core(s)
            with gpu.scope():
                out = await self._upsampled(gpu, self._crop(gpu, h, tile), SharedStatistics(tile, stats))
                copy_window(gpu, out, (top, left), image, (tile.rows.core_start * s, tile.cols.core_start * s),
                            (height, width))
        gpu.free(*stats.values())
        return image

    @staticmethod
    def _crop(gpu, h, tile: Tile):
        rows, cols = tile.rows, tile.cols
        x = gpu.tensor((h.shape[0], rows.size, cols.size, h.shape[3]), "f32", "vae.tile")
        copy_window(gpu, h, (rows.start, cols.start), x, (0, 0), (rows.size, cols.size))
        return x
