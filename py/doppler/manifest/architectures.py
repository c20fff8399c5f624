"""The architecture numbers of each model component, as in its diffusers/transformers config.json.

Keys are those of the reference class's config.json (snake_case), so a converter copies them across; only the
keys the page needs are kept, and unknown keys are errors. One frozen dataclass per architecture kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from doppler.config.schema import setting, show

CLIP_ACTIVATIONS = ("quick_gelu", "gelu")


def _count(doc: str):
    return setting(doc=doc, minimum=1)


def _epsilon(doc: str):
    return setting(doc=doc, exclusive_minimum=0.0)


def _same_lengths(obj, reference: str, others: tuple[str, ...]):
    """A problem for each tuple field of `obj` in `others` whose length differs from field `reference`'s."""
    expected = len(getattr(obj, reference))
    for name in others:
        value = getattr(obj, name)
        if isinstance(value, tuple) and len(value) != expected:
            yield name, f"got {len(value)} entries; expected one per {reference} entry ({expected})"


@dataclass(frozen=True, kw_only=True)
class DiffusersConfig:
    """Base of the architecture classes: JSON keys are the config.json keys, as written."""

    SNAKE_CASE_KEYS: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class CLIPTextModel(DiffusersConfig):
    """transformers CLIPTextModel (CLIPTextConfig): the text encoder."""

    vocab_size: int = _count("token embedding rows")
    hidden_size: int = _count("width of the residual stream")
    intermediate_size: int = _count("width of each MLP's hidden layer")
    num_hidden_layers: int = _count("transformer layers")
    num_attention_heads: int = _count("attention heads per layer (hidden_size is a multiple of it)")
    max_position_embeddings: int = _count("position embedding rows: the longest prompt in tokens")
    hidden_act: str = setting(doc="MLP activation", choices=CLIP_ACTIVATIONS)
    layer_norm_eps: float = _epsilon("LayerNorm epsilon")
    projection_dim: int | None = setting(None, doc="text_projection output width, when the model has one",
                                         minimum=1)

    def cross_check(self):
        if self.hidden_size % self.num_attention_heads:
            yield "hidden_size", (f"got {self.hidden_size}; expected a multiple of num_attention_heads "
                                  f"({self.num_attention_heads})")


@dataclass(frozen=True, kw_only=True)
class UNet2DConditionModel(DiffusersConfig):
    """diffusers UNet2DConditionModel: the noise predictor eps(x_t, t, text)."""

    in_channels: int = _count("latent channels in")
    out_channels: int = _count("channels out (the predicted noise)")
    block_out_channels: tuple[int, ...] = setting(doc="channels of each resolution level", minimum=1, min_items=1)
    layers_per_block: int = _count("resnet layers per down block (up blocks have one more)")
    down_block_types: tuple[str, ...] = setting(doc="one per level, highest resolution first",
                                                choices=("CrossAttnDownBlock2D", "DownBlock2D"), min_items=1)
    up_block_types: tuple[str, ...] = setting(doc="one per level, lowest resolution first",
                                              choices=("CrossAttnUpBlock2D", "UpBlock2D"), min_items=1)
    mid_block_type: str = setting(doc="the block between down and up paths", choices=("UNetMidBlock2DCrossAttn",))
    cross_attention_dim: int = _count("width of the text embeddings the cross-attention reads")
    attention_head_dim: int | tuple[int, ...] = setting(
        doc="as diffusers (for SD 1.x the head count): one number, or one per level", minimum=1)
    norm_num_groups: int = _count("GroupNorm groups (every channel count is a multiple of it)")
    norm_eps: float = _epsilon("GroupNorm epsilon")
    time_cond_proj_dim: int | None = setting(None, doc="guidance-embedding width of LCM-distilled UNets; null "
                                                       "otherwise", minimum=1)
    sample_size: int = _count("latent size it was trained at (512 px / 8 = 64 for SD 1.5)")
    flip_sin_to_cos: bool = setting(doc="timestep embedding order: cos first when true")
    freq_shift: int = setting(doc="timestep embedding frequency shift (downscale_freq_shift)", minimum=0)
    act_fn: str = setting(doc="resnet activation", choices=("silu",))
    use_linear_projection: bool = setting(False, doc="transformer proj_in/proj_out are Linear (true) or 1x1 Conv")

    def cross_check(self):
        lengths = ("down_block_types", "up_block_types", "attention_head_dim")
        yield from _same_lengths(self, "block_out_channels", lengths)
        yield from _divisible_channels(self)


@dataclass(frozen=True, kw_only=True)
class AutoencoderKL(DiffusersConfig):
    """diffusers AutoencoderKL: the VAE; the page runs its decoder (latent -> image)."""

    latent_channels: int = _count("latent channels")
    out_channels: int = _count("image channels out")
    block_out_channels: tuple[int, ...] = setting(doc="channels of each resolution level", minimum=1, min_items=1)
    layers_per_block: int = _count("resnet layers per encoder block (decoder blocks have one more)")
    norm_num_groups: int = _count("GroupNorm groups (every channel count is a multiple of it)")
    scaling_factor: float = _epsilon("latents are multiplied by it after encoding, divided before decoding")
    sample_size: int = _count("image size it was trained at, in pixels")
    up_block_types: tuple[str, ...] = setting(doc="decoder blocks, one per level", choices=("UpDecoderBlock2D",),
                                              min_items=1)
    act_fn: str = setting(doc="resnet activation", choices=("silu",))

    def cross_check(self):
        yield from _same_lengths(self, "block_out_channels", ("up_block_types",))
        yield from _divisible_channels(self)


def _divisible_channels(obj):
    for i, channels in enumerate(obj.block_out_channels):
        if channels % obj.norm_num_groups:
            yield f"block_out_channels[{i}]", (f"got {channels}; expected a multiple of norm_num_groups "
                                               f"({obj.norm_num_groups})")


@dataclass(frozen=True, kw_only=True)
class LinearProjection(DiffusersConfig):
    """torch.nn.Linear, as CLIP's text_projection / visual_projection: y = x W^T (+ b)."""

    in_features: int = _count("input width")
    out_features: int = _count("output width")
    bias: bool = setting(doc="whether it adds a bias")


@dataclass(frozen=True, kw_only=True)
class StableDiffusionSafetyChecker(DiffusersConfig):
    """diffusers StableDiffusionSafetyChecker: the CLIP vision tower (its config's vision_config) + projection."""

    hidden_size: int = _count("width of the residual stream")
    intermediate_size: int = _count("width of each MLP's hidden layer")
    num_hidden_layers: int = _count("transformer layers")
    num_attention_heads: int = _count("attention heads per layer")
    image_size: int = _count("input image size in pixels")
    patch_size: int = _count("patch edge in pixels")
    num_channels: int = _count("image channels in")
    hidden_act: str = setting(doc="MLP activation", choices=CLIP_ACTIVATIONS)
    layer_norm_eps: float = _epsilon("LayerNorm epsilon")
    projection_dim: int = _count("width of the image embedding compared with the concept embeddings")

    def cross_check(self):
        if self.image_size % self.patch_size:
            yield "image_size", f"got {show(self.image_size)}; expected a multiple of patch_size ({self.patch_size})"
