"""`runtime.inference.diffusion` and `manifest.inference.diffusion`: the settings of one text-to-image generation.

Sizes are in pixels. SD's VAE maps an image of H x W pixels to a latent of (H/8) x (W/8), so pixel sizes are
multiples of 8, as diffusers requires. The manifest's section holds the model's recommended values (same keys as
runtime's) plus `limits` that bound what runtime may ask; merge.py combines them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .schema import setting, show

SCHEDULERS = ("ddim", "euler", "euler_a", "dpmpp_2m", "lcm")
# Storage dtypes of weights and their sizes in bytes (the manifest's tensor tables use the same names).
DTYPE_BYTES = {"f32": 4, "f16": 2, "int8": 1}
# Largest seed the page can carry exactly: JavaScript numbers are exact up to 2**53 - 1.
MAX_SEED = 2**53 - 1
GIB = 1024**3
RUNTIME_PATH = "runtime.inference.diffusion"
MANIFEST_PATH = "manifest.inference.diffusion"


@dataclass(frozen=True, kw_only=True)
class Scheduler:
    """Which sampler runs the denoising loop, and how."""

    type: str = setting("ddim", doc="sampler: ddim | euler | euler_a | dpmpp_2m | lcm", choices=SCHEDULERS)
    num_steps: int = setting(25, doc="denoising steps (UNet evaluations per image)", minimum=1, maximum=1000)
    guidance_scale: float = setting(
        7.5, doc="classifier-free guidance w: eps = eps_uncond + w (eps_cond - eps_uncond); <= 1 turns CFG off",
        minimum=0.0, maximum=100.0)
    eta: float = setting(0.0, doc="DDIM eta: 0 is deterministic DDIM, 1 is DDPM-like noise; other samplers ignore it",
                         minimum=0.0, maximum=1.0)


@dataclass(frozen=True, kw_only=True)
class Latent:
    """Output size and the latent tensor it implies."""

    width: int = setting(512, doc="image width in pixels", minimum=8, maximum=8192, multiple_of=8)
    height: int = setting(512, doc="image height in pixels", minimum=8, maximum=8192, multiple_of=8)
    channels: int = setting(4, doc="latent channels (the UNet's in_channels)", minimum=1, maximum=64)
    dtype: str = setting("f32", doc="dtype of the latents on the GPU", choices=("f32", "f16"))


@dataclass(frozen=True, kw_only=True)
class TextEncoder:
    """Prompt encoding."""

    max_length: int = setting(77, doc="prompt length in tokens, BOS and EOS included (CLIP: 77)", minimum=2,
                              maximum=1024)


@dataclass(frozen=True, kw_only=True)
class Tiling:
    """Decoding the upsampled part of the VAE in overlapping tiles bounds its memory by the tile size; every tile
    normalizes with the whole image's GroupNorm statistics, found by one more pass over the tiles per GroupNorm
    (inference/diffusion/vae.py), so the image equals the untiled one and the passes cost compute."""

    enabled: bool = setting(False, doc="decode in tiles")
    tile_size: int = setting(512, doc="largest tile edge in pixels (tiles shrink to the least size that keeps the "
                                      "overlap); a tile's memory follows it", minimum=64, maximum=8192, multiple_of=8)
    overlap: int = setting(
        64, doc="pixels neighbouring tiles share at least; each keeps the half nearer its centre, the other half is "
                "its halo. Exact when the halo covers the receptive field of the tiled layers: for SD 1.5's VAE "
                "22 px while its first upsampled level runs whole (images up to 8 tiles in area), else 50 px",
        minimum=0, maximum=8192, multiple_of=8)

    def cross_check(self):
        if self.overlap >= self.tile_size:
            yield "overlap", f"got {self.overlap}; expected less than tileSize ({self.tile_size})"


@dataclass(frozen=True, kw_only=True)
class Decode:
    """VAE decode and readback."""

    output_dtype: str = setting(
        "u8", doc="what is read back: u8 = RGBA8 pixels (w*h*4 bytes); f16/f32 = the VAE's raw [-1, 1] output",
        choices=("u8", "f16", "f32"))
    tiling: Tiling = setting(Tiling(), doc="tiled decode")


@dataclass(frozen=True, kw_only=True)
class Swapper:
    """Which model components stay in GPU memory between stages."""

    enabled: bool = setting(True, doc="load and release components by stage to stay under memoryBudgetBytes")
    strategy: str = setting(
        "preload", doc="preload: once a cached model is picked, before Generate, load the weights its first image "
        "needs (the text encoder alone where evictTextEncoder); on_demand: each component before its first stage",
        choices=("on_demand", "preload"))
    evict_text_encoder: bool = setting(False, doc="release the text encoder right after encoding the prompt")
    evict_unet: bool = setting(False, doc="release the UNet before VAE decode (lower peak, slower next image)")


@dataclass(frozen=True, kw_only=True)
class Quantization:
    """Weight storage. The converter fixes the stored dtype; nothing is cast at load."""

    weight_dtype: str = setting(
        "auto", doc="stored weight dtype: auto = as the manifest says; any other value must match the manifest",
        choices=("auto", *DTYPE_BYTES))
    dequantize: bool = setting(
        False, doc="int8 weights: true expands them once on the GPU after load (more memory, faster matmuls); "
                   "false dequantizes inside the matmul kernels")


@dataclass(frozen=True, kw_only=True)
class DiffusionConfig:
    """runtime.inference.diffusion: everything one generation needs besides the prompt."""

    scheduler: Scheduler = setting(Scheduler(), doc="sampler settings")
    latent: Latent = setting(Latent(), doc="output size and latent layout")
    text_encoder: TextEncoder = setting(TextEncoder(), doc="prompt encoding")
    decode: Decode = setting(Decode(), doc="VAE decode")
    swapper: Swapper = setting(Swapper(), doc="component residency")
    quantization: Quantization = setting(Quantization(), doc="weight storage")
    seed: int | None = setting(None, doc="noise seed; null draws a fresh one (reported with the image)", minimum=0,
                               maximum=MAX_SEED)
    negative_prompt: str = setting("", doc="what to steer away from (the unconditional branch of CFG)")
    memory_budget_bytes: int = setting(4 * GIB, doc="GPU memory the page may use for weights and activations",
                                       minimum=64 * 1024**2, maximum=2**50)


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What runtime may ask of this model."""

    allowed_schedulers: tuple[str, ...] = setting(SCHEDULERS, doc="samplers that work with this model",
                                                  choices=SCHEDULERS, min_items=1)
    min_size: int = setting(64, doc="smallest width/height in pixels", minimum=8, maximum=8192, multiple_of=8)
    max_size: int = setting(2048, doc="largest width/height in pixels", minimum=8, maximum=8192, multiple_of=8)
    size_multiple: int = setting(8, doc="width and height must be multiples of this (the VAE's downscale, or more)",
                                 minimum=8, maximum=1024, multiple_of=8)

    def cross_check(self):
        if self.min_size > self.max_size:
            yield "minSize", f"got {self.min_size}; expected <= maxSize ({self.max_size})"


@dataclass(frozen=True, kw_only=True)
class ManifestDiffusion(DiffusionConfig):
    """manifest.inference.diffusion: the model's recommended settings (runtime's keys) and limits on runtime."""

    limits: Limits = setting(Limits(), doc="bounds on what runtime may ask of this model")

    def cross_check(self):
        yield from self.limit_problems(self)

    def limit_problems(self, config: DiffusionConfig):
        """(relative JSON path, message) for each setting of `config` that this model does not allow."""
        limits = self.limits
        where = f"{MANIFEST_PATH}.limits"
        if config.scheduler.type not in limits.allowed_schedulers:
            allowed = ", ".join(show(name) for name in limits.allowed_schedulers)
            yield "scheduler.type", (f"got {show(config.scheduler.type)}; this model allows {allowed} "
                                     f"({where}.allowedSchedulers)")
        for side in ("width", "height"):
            size = getattr(config.latent, side)
            if not limits.min_size <= size <= limits.max_size or size % limits.size_multiple:
                yield f"latent.{side}", (f"got {size}; this model allows multiples of {limits.size_multiple} in "
                                         f"[{limits.min_size}, {limits.max_size}] ({where})")
        stored = self.quantization.weight_dtype
        if stored != "auto" and config.quantization.weight_dtype not in ("auto", stored):
            yield "quantization.weightDtype", (
                f"got {show(config.quantization.weight_dtype)}; this model stores {stored} weights and nothing is "
                f"cast at load: use \"auto\" or {show(stored)}")
