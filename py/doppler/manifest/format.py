"""The model manifest: components (architecture + tensor table), shards, tokenizer files, inference settings.

A tensor's bytes are shards[shard][offset : offset + bytes], row-major, in its storage dtype (fixed by the
converter; nothing is cast at load). A tensor is never split across shards. Checks spanning tables (shard
ranges, overlaps, names) are in validate.py; manifests/README.md documents the format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from doppler.config.diffusion import DTYPE_BYTES, ManifestDiffusion
from doppler.config.schema import setting

from .architectures import (AutoencoderKL, CLIPTextModel, LinearProjection, StableDiffusionSafetyChecker,
                            UNet2DConditionModel)

SCALE_DTYPES = ("f32", "f16")
SHA256 = r"^[0-9a-f]{64}$"
# Relative, inside the manifest's folder: no leading "/", no ".." segment, no "\" or ":" (drives, schemes).
RELATIVE_PATH = r"^(?!/)(?!(.*/)?\.\.(/|$))[^\\:]+$"
INSIDE = "relative to the manifest, inside its folder: no leading /, no .. segment, no \\ or :"
URL = r"^https?://\S+$"
# Model ids name the model's cache folder.
MODEL_ID = r"^[a-z0-9][a-z0-9._-]*$"
# Keys the schedulers read from the model's diffusers scheduler_config.json.
SCHEDULER_CONFIG_KEYS = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "prediction_type")


@dataclass(frozen=True, kw_only=True)
class TensorQuantization:
    """How an int8 tensor maps back to real numbers: w = q * scale."""

    scheme: str = setting("symmetric", doc="symmetric: w = q * scale, q in [-127, 127]", choices=("symmetric",))
    scales_tensor: str = setting(doc="name of the f32/f16 tensor of scales, in the same component")
    axis: int | None = setting(None, doc="the axis with one scale per index; null: one scale for the whole tensor",
                               minimum=0)


@dataclass(frozen=True, kw_only=True)
class TensorEntry:
    """One tensor: where its bytes are and how to read them."""

    name: str = setting(doc="the diffusers checkpoint key, e.g. conv_in.weight", pattern=r"^\S+$")
    shape: tuple[int, ...] = setting(doc="dimensions, outermost first (row-major); [] for a scalar", minimum=1)
    dtype: str = setting(doc="storage dtype, fixed by the converter", choices=tuple(DTYPE_BYTES))
    shard: int = setting(doc="index into shards", minimum=0)
    offset: int = setting(doc="byte offset of the first element in its shard", minimum=0)
    bytes: int = setting(doc="byte length: prod(shape) * dtype size", minimum=1)
    quantization: TensorQuantization | None = setting(None, doc="int8 tensors only: how to dequantize")

    def cross_check(self):
        expected = math.prod(self.shape) * DTYPE_BYTES[self.dtype]
        if self.bytes != expected:
            yield "bytes", (f"got {self.bytes}; expected {expected} = prod({list(self.shape)}) * "
                            f"{DTYPE_BYTES[self.dtype]} ({self.dtype})")
        if self.dtype == "int8" and self.quantization is None:
            yield "quantization", "missing; int8 tensors need {scheme, scalesTensor, axis}"
        if self.dtype != "int8" and self.quantization is not None:
            yield "quantization", f"got an object; only int8 tensors are quantized (this one is {self.dtype})"
        axis = self.quantization.axis if self.quantization else None
        if axis is not None and axis >= len(self.shape):
            yield "quantization.axis", f"got {axis}; expected < {len(self.shape)} (the tensor's number of axes)"


@dataclass(frozen=True, kw_only=True)
class Shard:
    """One file of tensor bytes, found by path (next to the manifest) or URL."""

    path: str | None = setting(None, doc=f"file path {INSIDE}", pattern=RELATIVE_PATH)
    url: str | None = setting(None, doc="absolute http(s) URL", pattern=URL)
    size: int = setting(doc="file size in bytes", minimum=1)
    sha256: str = setting(doc="SHA-256 of the file, 64 lowercase hex digits", pattern=SHA256)

    def cross_check(self):
        if (self.path is None) == (self.url is None):
            given = "both" if self.path else "neither"
            yield "path", f"got {given} of path and url; expected exactly one"


@dataclass(frozen=True, kw_only=True)
class Component:
    """Base of the component classes: the tensor table (each subclass adds its architecture)."""

    tensors: tuple[TensorEntry, ...] = setting(doc="the component's weights", min_items=1)


@dataclass(frozen=True, kw_only=True)
class TextEncoderComponent(Component):
    """The text encoder: prompt token ids -> embeddings the UNet attends to."""

    architecture: CLIPTextModel = setting(doc="its config.json numbers")


@dataclass(frozen=True, kw_only=True)
class UNetComponent(Component):
    """The UNet: predicts the noise in a latent."""

    architecture: UNet2DConditionModel = setting(doc="its config.json numbers")


@dataclass(frozen=True, kw_only=True)
class VAEComponent(Component):
    """The VAE: its decoder turns the final latent into pixels."""

    architecture: AutoencoderKL = setting(doc="its config.json numbers")


@dataclass(frozen=True, kw_only=True)
class ClipProjectionComponent(Component):
    """A CLIP projection head (text_projection or visual_projection)."""

    architecture: LinearProjection = setting(doc="its shape")


@dataclass(frozen=True, kw_only=True)
class SafetyCheckerComponent(Component):
    """The safety checker hook: off unless the manifest turns it on."""

    architecture: StableDiffusionSafetyChecker = setting(doc="its config.json numbers")
    enabled: bool = setting(False, doc="run it on every image")


@dataclass(frozen=True, kw_only=True)
class Components:
    """The model's parts, keyed as diffusers' pipeline folders."""

    SNAKE_CASE_KEYS: ClassVar[bool] = True

    text_encoder: TextEncoderComponent = setting(doc="transformers CLIPTextModel")
    unet: UNetComponent = setting(doc="diffusers UNet2DConditionModel")
    vae: VAEComponent = setting(doc="diffusers AutoencoderKL")
    clip_projection: ClipProjectionComponent | None = setting(None, doc="optional CLIP projection head")
    safety_checker: SafetyCheckerComponent | None = setting(None, doc="optional safety checker (disabled by default)")

    def present(self) -> dict[str, Component]:
        """The components this manifest has, by key."""
        parts = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: part for name, part in parts.items() if part is not None}


@dataclass(frozen=True, kw_only=True)
class Tokenizer:
    """CLIP BPE tokenizer files and special tokens."""

    vocab: str = setting(doc=f"vocab.json (token -> id), {INSIDE}", pattern=RELATIVE_PATH)
    merges: str = setting(doc=f"merges.txt (BPE merges by rank), {INSIDE}", pattern=RELATIVE_PATH)
    max_length: int = setting(doc="tokens per prompt, BOS and EOS included (CLIP: 77)", minimum=2)
    pad_token: int | str = setting(doc="padding token: its id, or its text such as \"<|endoftext|>\"", minimum=0)
    bos_token: int | str = setting(doc="begin-of-text token: id or text", minimum=0)
    eos_token: int | str = setting(doc="end-of-text token: id or text", minimum=0)


@dataclass(frozen=True, kw_only=True)
class Inference:
    """How to run the model."""

    diffusion: ManifestDiffusion = setting(ManifestDiffusion(), doc="recommended settings (runtime's keys) and "
                                                                    "limits on what runtime may ask")
    scheduler_config: dict[str, Any] = setting(doc="the model's diffusers scheduler_config.json, as is",
                                               required_keys=SCHEDULER_CONFIG_KEYS)


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """A converted model: what the page fetches, checks and runs."""

    id: str = setting(doc="model id, lowercase; names the model's cache folder", pattern=MODEL_ID)
    model_type: str = setting(doc="which pipeline runs it", choices=("diffusion",))
    name: str = setting(doc="name shown to people")
    components: Components = setting(doc="the model's parts")
    shards: tuple[Shard, ...] = setting(doc="files holding the tensor bytes", min_items=1)
    tokenizer: Tokenizer = setting(doc="tokenizer files")
    inference: Inference = setting(doc="settings and limits for generation, and the scheduler's config")
