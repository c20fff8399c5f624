"""A model's settings from its diffusers folder: architecture numbers (component config.json files), the scheduler
config and the tokenizer's lengths and special tokens.

A key missing from a config.json means the reference class's default (as diffusers and transformers read it);
recent transformers versions write only the keys that differ from CLIPTextConfig's defaults. Config keys that
change the math of SD 1.x's layers without changing its tensors (e.g. `center_input_sample`) must hold SD 1.x's
values: the page implements those layers only.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from doppler.config.parse import parse
from doppler.config.schema import ConfigError
from doppler.manifest.architectures import AutoencoderKL, CLIPTextModel, UNet2DConditionModel
from doppler.manifest.format import SCHEDULER_CONFIG_KEYS

from .presets import TokenizerDefaults

ARCHITECTURES = {"text_encoder": CLIPTextModel, "unet": UNet2DConditionModel, "vae": AutoencoderKL}

# __init__ defaults of transformers CLIPTextConfig, diffusers UNet2DConditionModel and AutoencoderKL, for the keys
# the manifest keeps (tests/components/test_convert_diffusers.py checks them against the installed classes).
CLASS_DEFAULTS: dict[str, dict[str, Any]] = {
    "text_encoder": {
        "vocab_size": 49408, "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
        "num_attention_heads": 8, "max_position_embeddings": 77, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
        "projection_dim": 512,
    },
    "unet": {
        "in_channels": 4, "out_channels": 4, "block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "mid_block_type": "UNetMidBlock2DCrossAttn", "cross_attention_dim": 1280, "attention_head_dim": 8,
        "norm_num_groups": 32, "norm_eps": 1e-5, "time_cond_proj_dim": None, "flip_sin_to_cos": True,
        "freq_shift": 0, "act_fn": "silu", "use_linear_projection": False,
    },
    "vae": {
        "latent_channels": 4, "out_channels": 3, "block_out_channels": [64], "layers_per_block": 1,
        "norm_num_groups": 32, "scaling_factor": 0.18215, "sample_size": 32, "up_block_types": ["UpDecoderBlock2D"],
        "act_fn": "silu",
    },
}

# Config keys whose other values change the layers' math (not only their tensors); SD 1.x's values, which are also
# the classes' defaults. A list value (one per level) must repeat the value.
SD1_ONLY: dict[str, dict[str, Any]] = {
    "unet": {
        "center_input_sample": False, "only_cross_attention": False, "downsample_padding": 1,
        "mid_block_scale_factor": 1, "dual_cross_attention": False, "class_embed_type": None,
        "addition_embed_type": None, "num_class_embeds": None, "encoder_hid_dim": None, "upcast_attention": False,
        "resnet_time_scale_shift": "default", "resnet_skip_time_act": False, "resnet_out_scale_factor": 1.0,
        "time_embedding_type": "positional", "time_embedding_dim": None, "time_embedding_act_fn": None,
        "timestep_post_act": None, "conv_in_kernel": 3, "conv_out_kernel": 3, "attention_type": "default",
        "class_embeddings_concat": False, "mid_block_only_cross_attention": None, "cross_attention_norm": None,
        "transformer_layers_per_block": 1, "num_attention_heads": None,
    },
    "vae": {"use_post_quant_conv": True, "mid_block_add_attention": True, "shift_factor": None,
            "latents_mean": None, "latents_std": None},
    "text_encoder": {},
}
# transformers class whose checkpoints carry `text_projection` (then projection_dim applies).
CLIP_WITH_PROJECTION = "CLIPTextModelWithProjection"
# What the schedulers assume when scheduler_config.json leaves a required key out (every diffusers scheduler
# SD uses has these __init__ defaults).
SCHEDULER_DEFAULTS = {"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear",
                      "prediction_type": "epsilon"}


def read_json(path: Path, problems: list[str], what: str) -> dict | None:
    """The JSON object in `path`, or None with a problem naming the file and what it should be."""
    if not path.is_file():
        problems.append(f"{path}: missing; expected {what}")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        problems.append(f"{path}: cannot read it as JSON ({error}); expected {what}")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path}: got a JSON {type(data).__name__}; expected {what}")
        return None
    return data


def component_architecture(component: str, config_path: Path, problems: list[str]):
    """The architecture numbers of `component` from its config.json, or None after adding problems."""
    config = read_json(config_path, problems, f"the {component}'s config.json")
    if config is None:
        return None
    for key, value in SD1_ONLY[component].items():
        given = config.get(key, value)
        if (set(given) if isinstance(given, list) and given else {given}) != {value}:
            problems.append(f"{config_path}: {key} is {json.dumps(given)}; only SD 1.x's {json.dumps(value)} is "
                            "supported (the page implements SD 1.x layers)")
    cls = ARCHITECTURES[component]
    defaults = CLASS_DEFAULTS[component]
    data = {f.name: config.get(f.name, defaults.get(f.name)) for f in fields(cls)
            if f.name in config or f.name in defaults}
    try:
        architecture = parse(cls, data, str(config_path))
    except ConfigError as error:
        problems.extend(error.problems)
        return None
    if component == "text_encoder" and CLIP_WITH_PROJECTION not in config.get("architectures", ()):
        # CLIPTextConfig always has a projection_dim; only the WithProjection class has the layer.
        architecture = replace(architecture, projection_dim=None)
    return architecture


def scheduler_config(path: Path, problems: list[str]) -> dict | None:
    """A diffusers scheduler_config.json, with the keys the schedulers need filled from diffusers' defaults."""
    config = read_json(path, problems, "a diffusers scheduler_config.json")
    if config is None:
        return None
    return {**{key: SCHEDULER_DEFAULTS[key] for key in SCHEDULER_CONFIG_KEYS}, **config}


def tokenizer_settings(folder: Path, max_positions: int, defaults: TokenizerDefaults,
                       problems: list[str]) -> TokenizerDefaults:
    """Length and special tokens from a tokenizer folder's special_tokens_map.json / tokenizer_config.json (both
    optional), over CLIP's defaults.

    transformers writes a huge sentinel for an unset model_max_length; a length beyond the text encoder's
    position table means "unset", so the table's size is used.
    """
    settings = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        if (folder / name).is_file():
            settings.update(read_json(folder / name, problems, "a transformers tokenizer settings file") or {})

    def token(key):
        value = settings.get(key) or getattr(defaults, key)
        return value["content"] if isinstance(value, dict) else value

    length = settings.get("model_max_length", defaults.max_length)
    return TokenizerDefaults(max_length=length if isinstance(length, int) and length <= max_positions
                             else max_positions,
                             pad_token=token("pad_token"), bos_token=token("bos_token"), eos_token=token("eos_token"))
