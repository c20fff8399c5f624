"""Merge: schema defaults < manifest.inference.diffusion < runtime.inference.diffusion.

The manifest's section is already parsed over the schema defaults, so merging is: its JSON (limits aside), with
the runtime JSON laid over it key by key, parsed again under the runtime path, then held to the manifest's limits.
A bad runtime value is therefore reported at `runtime.inference.diffusion.<key>`.
"""

from __future__ import annotations

from collections.abc import Mapping

from .diffusion import RUNTIME_PATH, DiffusionConfig, ManifestDiffusion
from .parse import parse, to_json
from .schema import ConfigError


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """`override` laid over `base`: objects merge key by key, anything else in `override` replaces."""
    merged = dict(base)
    for key, value in override.items():
        both_objects = isinstance(value, Mapping) and isinstance(merged.get(key), Mapping)
        merged[key] = deep_merge(merged[key], value) if both_objects else value
    return merged


def merge_diffusion_config(manifest: ManifestDiffusion, runtime: Mapping) -> DiffusionConfig:
    """The settings of one generation: `runtime` (JSON of runtime.inference.diffusion) over the manifest's."""
    if not isinstance(runtime, Mapping):
        raise ConfigError([f"{RUNTIME_PATH}: got {type(runtime).__name__}; expected an object"])
    base = to_json(manifest)
    del base["limits"]
    config = parse(DiffusionConfig, deep_merge(base, runtime), RUNTIME_PATH)
    problems = [f"{RUNTIME_PATH}.{where}: {message}" for where, message in manifest.limit_problems(config)]
    if problems:
        raise ConfigError(problems)
    return config
