"""Seeded random weights from a preset's architecture alone (benchmarks at full size, tests without downloads).

Each tensor draws from its own generator, PCG64 seeded with (seed, crc32("component/name")), so a tensor's values
depend only on the seed and its name, not on the order or the other tensors. Scales keep activations O(1) through
the full-size net:

    linear / conv weight   N(0, 1 / fan_in), fan_in = prod(shape[1:])   (variance-preserving, as LeCun init)
    bias, norm beta        N(0, bias_std^2)
    norm gamma             1 + N(0, norm_std^2)
    embedding rows         N(0, embedding_std^2)                        (CLIP's own init scale; a LayerNorm follows)
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from functools import partial

import numpy as np

from doppler.config.schema import setting

from .clip_vocab import write_clip_tokenizer_files
from .presets import Preset
from .sources import Source, TokenizerSource
from .tensors import COMPONENTS, Param, params


@dataclass(frozen=True, kw_only=True)
class RandomInit:
    """Standard deviations of the random weights (besides the 1/sqrt(fan_in) of linear and conv weights)."""

    bias_std: float = setting(0.02, doc="biases and norm betas: small, nonzero so a dropped bias shows",
                              exclusive_minimum=0.0)
    norm_std: float = setting(0.02, doc="norm gammas: spread around 1", exclusive_minimum=0.0)
    embedding_std: float = setting(0.02, doc="token and position embeddings (CLIP's init)", exclusive_minimum=0.0)


def random_source(preset: Preset, seed: int, init: RandomInit = RandomInit()) -> Source:
    """A conversion source whose tensors are drawn from `seed`, for `preset`'s architecture."""
    loaders = {component: {p.name: partial(random_tensor, seed, component, p, init)
                           for p in params(component, preset.architecture(component))}
               for component in COMPONENTS}
    architectures = {component: preset.architecture(component) for component in COMPONENTS}
    return Source(architectures, loaders, dict(preset.scheduler_config), TokenizerSource(write_clip_tokenizer_files, preset.tokenizer))


def random_tensor(seed: int, component: str, p: Param, init: RandomInit) -> np.ndarray:
    """One tensor's random values (float32, its diffusers shape)."""
    rng = np.random.Generator(np.random.PCG64([seed, zlib.crc32(f"{component}/{p.name}".encode())]))
    normal = rng.standard_normal(p.shape, dtype=np.float32)
    if p.kind == "weight":
        return normal * np.float32(1 / math.sqrt(math.prod(p.shape[1:])))
    if p.kind == "norm_weight":
        return 1 + normal * np.float32(init.norm_std)
    std = {"bias": init.bias_std, "norm_bias": init.bias_std, "embedding": init.embedding_std}[p.kind]
    return normal * np.float32(std)
