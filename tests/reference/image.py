"""References for wgsl/image.wgsl."""

import numpy as np
import torch


def diffusers_rgba8(image_nhwc):
    """RGBA8 bytes (B, H, W, 4) of diffusers' VaeImageProcessor.postprocess(output_type="pil") of an NHWC
    [-1, 1] image, alpha 255."""
    from diffusers.image_processor import VaeImageProcessor

    nchw = torch.from_numpy(np.ascontiguousarray(np.asarray(image_nhwc, np.float32).transpose(0, 3, 1, 2)))
    pil = VaeImageProcessor().postprocess(nchw, output_type="pil")
    return np.stack([np.asarray(p.convert("RGBA")) for p in pil])


def preview(latents, factors, bias, upscale):
    """float64 latent -> RGB (B, h s, w s, 3) in [0, 255] before rounding, nearest-upscaled."""
    rgb = np.asarray(latents, np.float64) @ np.asarray(factors, np.float64) + np.asarray(bias, np.float64)
    rgb = rgb.repeat(upscale, axis=1).repeat(upscale, axis=2)
    return np.clip(rgb * 0.5 + 0.5, 0.0, 1.0) * 255.0
