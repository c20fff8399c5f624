"""Architectures the converter knows by name: `sd15` (Stable Diffusion 1.5) and `tiny` (the same architecture at toy
widths, for tests and fixtures).

A preset is what a single-file checkpoint lacks (its components' config.json numbers, the scheduler config, the
tokenizer's lengths and special tokens) and all that `--random` needs.

`tiny` keeps every structural feature of SD 1.5 (cross-attention and plain levels, channel changes that need
shortcut convs, a VAE with three 2x upsamplers so latents are 1/8 of the image, the real CLIP vocabulary) at
widths small enough for CPU tests. Its GroupNorms use 8 groups so each group spans several channels, as in
SD 1.5 (32 groups over 128-1280 channels); 32 groups over 32 channels would hide group-reduction bugs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from doppler.inference.diffusion.tokenizer import BOS_TOKEN, EOS_TOKEN
from doppler.manifest.architectures import AutoencoderKL, CLIPTextModel, UNet2DConditionModel

from .clip_vocab import VOCAB_SIZE as CLIP_VOCAB_SIZE

CLIP_MAX_LENGTH = 77
SD_LATENT_CHANNELS = 4
SD_VAE_SCALING_FACTOR = 0.18215

# runwayml/stable-diffusion-v1-5's scheduler/scheduler_config.json, with the prediction_type it leaves to
# diffusers' default written out.
SD15_SCHEDULER_CONFIG: dict[str, Any] = {
    "_class_name": "PNDMScheduler",
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "clip_sample": False,
    "trained_betas": None,
}


@dataclass(frozen=True)
class TokenizerDefaults:
    """CLIP's tokenizer settings (openai/clip-vit-large-patch14, as SD 1.5 ships it)."""

    max_length: int = CLIP_MAX_LENGTH
    pad_token: str = EOS_TOKEN
    bos_token: str = BOS_TOKEN
    eos_token: str = EOS_TOKEN


@dataclass(frozen=True)
class Preset:
    """A named architecture with the settings a single file does not carry."""

    name: str
    text_encoder: CLIPTextModel
    unet: UNet2DConditionModel
    vae: AutoencoderKL
    scheduler_config: dict[str, Any]
    tokenizer: TokenizerDefaults = TokenizerDefaults()

    def architecture(self, component: str):
        return getattr(self, component)


SD15 = Preset(
    name="sd15",
    text_encoder=CLIPTextModel(
        vocab_size=CLIP_VOCAB_SIZE, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
        num_attention_heads=12, max_position_embeddings=CLIP_MAX_LENGTH, hidden_act="quick_gelu",
        layer_norm_eps=1e-5),
    unet=UNet2DConditionModel(
        in_channels=SD_LATENT_CHANNELS, out_channels=SD_LATENT_CHANNELS, block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        mid_block_type="UNetMidBlock2DCrossAttn", cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
        norm_eps=1e-5, sample_size=64, flip_sin_to_cos=True, freq_shift=0, act_fn="silu"),
    vae=AutoencoderKL(
        latent_channels=SD_LATENT_CHANNELS, out_channels=3, block_out_channels=(128, 256, 512, 512),
        layers_per_block=2, norm_num_groups=32, scaling_factor=SD_VAE_SCALING_FACTOR, sample_size=512,
        up_block_types=("UpDecoderBlock2D",) * 4, act_fn="silu"),
    scheduler_config=SD15_SCHEDULER_CONFIG,
)

TINY = Preset(
    name="tiny",
    text_encoder=CLIPTextModel(
        vocab_size=CLIP_VOCAB_SIZE, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=CLIP_MAX_LENGTH, hidden_act="quick_gelu", layer_norm_eps=1e-5),
    unet=UNet2DConditionModel(
        in_channels=SD_LATENT_CHANNELS, out_channels=SD_LATENT_CHANNELS, block_out_channels=(32, 64),
        layers_per_block=1, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), mid_block_type="UNetMidBlock2DCrossAttn",
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8, norm_eps=1e-5, sample_size=8,
        flip_sin_to_cos=True, freq_shift=0, act_fn="silu"),
    vae=AutoencoderKL(
        latent_channels=SD_LATENT_CHANNELS, out_channels=3, block_out_channels=(16, 32, 64, 64), layers_per_block=1,
        norm_num_groups=8, scaling_factor=SD_VAE_SCALING_FACTOR, sample_size=64,
        up_block_types=("UpDecoderBlock2D",) * 4, act_fn="silu"),
    scheduler_config=SD15_SCHEDULER_CONFIG,
)

PRESETS = {preset.name: preset for preset in (SD15, TINY)}
