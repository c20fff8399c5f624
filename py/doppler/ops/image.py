"""Pixels for the canvas (`wgsl/image.wgsl`): the VAE's output and a latent preview as RGBA8, one u32 per pixel
(bytes R, G, B, A in memory order, alpha 255), so the one readback is the canvas's ImageData as is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import GpuError
from ..gpu.uniforms import f32, pack, u32
from .checks import require_dtype, require_one_binding, require_shape
from .grid import linear_groups

WORKGROUP = 256
RGB = 3
LATENT_CHANNELS = 4  # the preview's factor table has a row per latent channel

# SD 1.x latents -> RGB in about [-1, 1]: rows are latent channels, columns (R, G, B); no bias. From ComfyUI's
# comfy/latent_formats.py (class SD15, latent_rgb_factors), applied there to the UNet-space latent (scaled by the
# VAE's 0.18215) as here. Model data: the pipeline passes it, so other model families can bring their own.
SD15_LATENT_RGB = ((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721),
                   (-0.2120, -0.2616, -0.7177))
SD15_LATENT_RGB_BIAS = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Pixels:
    WGSL_NAME: ClassVar[str] = "Pixels"
    n: int = u32()


@dataclass(frozen=True)
class Preview:
    WGSL_NAME: ClassVar[str] = "Preview"
    n: int = u32()
    out_h: int = u32(1)
    out_w: int = u32(1)
    upscale: int = u32(1)
    c0_r: float = f32()
    c0_g: float = f32()
    c0_b: float = f32()
    c1_r: float = f32()
    c1_g: float = f32()
    c1_b: float = f32()
    c2_r: float = f32()
    c2_g: float = f32()
    c2_b: float = f32()
    c3_r: float = f32()
    c3_g: float = f32()
    c3_b: float = f32()
    bias_r: float = f32()
    bias_g: float = f32()
    bias_b: float = f32()


async def to_rgba8(gpu, image, out) -> None:
    """image (B, H, W, 3) f32 in [-1, 1] -> out (B, H, W) u32 RGBA8: round(clamp(x / 2 + 0.5, 0, 1) * 255),
    as diffusers' VaeImageProcessor.postprocess(output_type="pil")."""
    require_dtype("to_rgba8", image, "f32")
    require_dtype("to_rgba8", out, "u32")
    if image.shape[-1] != RGB:
        raise GpuError(f"to_rgba8: {image.label} {image.shape} must end in {RGB} channels (NHWC RGB)")
    require_shape("to_rgba8", out, image.shape[:-1])
    require_one_binding(gpu, "to_rgba8", image, out)
    kernel = await gpu.kernel("image", "to_rgba8", {"WG": WORKGROUP})
    gpu.dispatch(kernel, [image, out], linear_groups(out.numel, WORKGROUP), pack(Pixels(out.numel)))


async def preview(gpu, latents, out, factors, bias) -> None:
    """latents (B, h, w, 4) -> out (B, h s, w s) u32 RGBA8, s a whole upscale: rgb = bias + latent @ factors
    (factors: 4 rows of (R, G, B), e.g. SD15_LATENT_RGB), nearest-upscaled, with to_rgba8's byte rule. Previewing
    the step's x0 (the denoised estimate) shows the image to come; x shows it under the remaining noise."""
    require_dtype("preview", latents, "f32")
    require_dtype("preview", out, "u32")
    batch, h, w, channels = latents.shape
    upscale = out.shape[1] // h if len(out.shape) == 3 else 0
    if channels != LATENT_CHANNELS or upscale < 1 or tuple(out.shape) != (batch, h * upscale, w * upscale):
        raise GpuError(f"preview: {latents.label} {latents.shape} (B, h, w, {LATENT_CHANNELS}) and {out.label} "
                       f"{out.shape} must be (B, h s, w s) for a whole upscale s")
    if len(factors) != LATENT_CHANNELS or any(len(row) != RGB for row in factors) or len(bias) != RGB:
        raise GpuError(f"preview: factors must be {LATENT_CHANNELS} rows of (R, G, B) and bias one (R, G, B)")
    require_one_binding(gpu, "preview", latents, out)
    kernel = await gpu.kernel("image", "preview", {"WG": WORKGROUP})
    uniform = Preview(out.numel, out.shape[1], out.shape[2], upscale, *(v for row in factors for v in row), *bias)
    gpu.dispatch(kernel, [latents, out], linear_groups(out.numel, WORKGROUP), pack(uniform))
