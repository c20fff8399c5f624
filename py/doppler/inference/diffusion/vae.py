"""The VAE decoder of AutoencoderKL (diffusers), NHWC: latents -> image in [-1, 1].

    z = latents / scaling_factor;  h = decoder.conv_in(post_quant_conv(z))
    mid: resnet -> attention (one head over all pixels, GroupNorm first, residual) -> resnet
    up blocks (reversed channels): resnets x (layers_per_block + 1), then nearest 2x + conv, except the last
    image = conv_out(silu(conv_norm_out(h)))
"""

from __future__ import annotations

from ...ops import elementwise
from .nn import Conv2d, GroupNorm, Linear, scaled_dot_product_attention
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


class AutoencoderKLDecoder:
    def __init__(self, weights, arch):
        self.scaling_factor = arch.scaling_factor
        groups = arch.norm_num_groups
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

    async def __call__(self, gpu, latents):
        """latents (B, h, w, C) NHWC -> image (B, 8h, 8w, 3) in about [-1, 1]."""
        z = gpu.tensor(latents.shape, "f32", "vae.z")
        await elementwise.scale(gpu, latents, z, 1.0 / self.scaling_factor)
        h = await self.post_quant_conv(gpu, z)
        gpu.free(z)
        for layer in (self.conv_in, *self.mid):
            nxt = await layer(gpu, h)
            gpu.free(h)
            h = nxt
        for resnets, up in self.up:
            for resnet in resnets:
                nxt = await resnet(gpu, h)
                gpu.free(h)
                h = nxt
            if up is not None:
                nxt = await up(gpu, h, upsample_to=(2 * h.shape[1], 2 * h.shape[2]))
                gpu.free(h)
                h = nxt
        n = await self.conv_norm_out(gpu, h, silu=True)
        gpu.free(h)
        image = await self.conv_out(gpu, n)
        gpu.free(n)
        return image
