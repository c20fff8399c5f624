"""Policy: schema-backed config (defaults, bounds, JSON Schema) and the diffusion settings merge."""

from .diffusion import DiffusionConfig, ManifestDiffusion
from .json_schema import json_schema
from .merge import merge_diffusion_config
from .parse import parse, to_json
from .schema import ConfigError, setting

__all__ = ["ConfigError", "DiffusionConfig", "ManifestDiffusion", "json_schema", "merge_diffusion_config", "parse",
           "setting", "to_json"]
