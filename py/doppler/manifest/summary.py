"""Sizes of a manifest's components (what the swapper and loader budget with) and a one-screen summary."""

from __future__ import annotations

from .format import Manifest


def component_bytes(manifest: Manifest) -> dict[str, int]:
    """Total tensor bytes of each present component, by key (text_encoder, unet, vae, ...)."""
    return {key: sum(t.bytes for t in part.tensors) for key, part in manifest.components.present().items()}


def summary(manifest: Manifest) -> str:
    """What the manifest holds: id, type, shards and each component's tensor count and bytes."""
    shard_bytes = sum(shard.size for shard in manifest.shards)
    lines = [f"{manifest.id} ({manifest.model_type}, {manifest.name!r}): {len(manifest.shards)} shards, "
             f"{shard_bytes} bytes"]
    sizes = component_bytes(manifest)
    for key, part in manifest.components.present().items():
        state = " (disabled)" if getattr(part, "enabled", True) is False else ""
        lines.append(f"  {key}: {len(part.tensors)} tensors, {sizes[key]} bytes{state}")
    return "\n".join(lines)
