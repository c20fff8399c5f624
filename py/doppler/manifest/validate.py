"""Manifest parsing and the checks that span its tables.

Each tensor occupies the byte range [offset, offset + bytes) of one shard: the range lies inside the shard and
overlaps no other tensor's range in that shard. Names are unique within a component; an int8 tensor's scales
tensor exists in the same component with one scale per index of its axis. The latent channels agree across
UNet, VAE and settings, and the tokenizer's length fits the text encoder's position table.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path

from doppler.config.parse import parse
from doppler.config.schema import ConfigError, show

from .format import SCALE_DTYPES, Component, Manifest, TensorEntry

ROOT = "manifest"
TENSOR_ALIGNMENT = 256  # minStorageBufferOffsetAlignment: tensors are bound in place inside their shard's buffer


def parse_manifest(data: Mapping) -> Manifest:
    """A Manifest from its JSON object; ConfigError listing every problem (JSON path, value, fix)."""
    manifest = parse(Manifest, data, ROOT)
    problems = list(_problems(manifest))
    if problems:
        raise ConfigError(problems)
    return manifest


def load_manifest(path: str | Path) -> Manifest:
    """Read and parse a manifest file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError([f"{path}: cannot read a JSON manifest: {error}"]) from error
    return parse_manifest(data)


def file_problems(manifest: Manifest, folder: str | Path) -> Iterator[str]:
    """Problems with the files the manifest names in `folder` (its own): each path shard exists, with the recorded
    size and sha256, and the tokenizer files exist. URL shards are not fetched."""
    folder = Path(folder)
    for i, shard in enumerate(manifest.shards):
        if shard.path is None:
            continue
        path, where = folder / shard.path, f"{ROOT}.shards[{i}]"
        if not path.is_file():
            yield f"{where}.path: {path} does not exist"
            continue
        size = path.stat().st_size
        if size != shard.size:
            yield f"{where}.size: got {shard.size}; the file {path} has {size} bytes"
            continue
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if digest != shard.sha256:
            yield f"{where}.sha256: got {shard.sha256}; the file {path} hashes to {digest}"
    for key in ("vocab", "merges"):
        path = folder / getattr(manifest.tokenizer, key)
        if not path.is_file():
            yield f"{ROOT}.tokenizer.{key}: {path} does not exist"


def _problems(manifest: Manifest) -> Iterator[str]:
    placed = []  # (shard, offset, end, path, name) of every tensor whose range is inside its shard
    for key, component in manifest.components.present().items():
        where = f"{ROOT}.components.{key}"
        yield from _names_and_scales(component, where)
        for i, tensor in enumerate(component.tensors):
            path = f"{where}.tensors[{i}]"
            problem = _shard_problem(manifest, tensor, path)
            if problem:
                yield problem
            else:
                placed.append((tensor.shard, tensor.offset, tensor.offset + tensor.bytes, path, tensor.name))
    yield from _overlaps(placed)
    yield from _agreement(manifest)


def _shard_problem(manifest: Manifest, tensor: TensorEntry, path: str) -> str | None:
    count = len(manifest.shards)
    if tensor.shard >= count:
        return f"{path}.shard: got {tensor.shard}; expected an index into shards (0 to {count - 1})"
    if tensor.offset % TENSOR_ALIGNMENT:
        return (f"{path}.offset: got {tensor.offset}; expected a multiple of {TENSOR_ALIGNMENT} (WebGPU binds "
                f"storage at {TENSOR_ALIGNMENT}-byte offsets): convert the model again with `doppler convert`")
    size = manifest.shards[tensor.shard].size
    end = tensor.offset + tensor.bytes
    if end > size:
        return (f"{path}.offset: got offset {tensor.offset} + bytes {tensor.bytes} = {end}; expected <= "
                f"shards[{tensor.shard}].size ({size}): a tensor lies whole inside one shard")
    return None


def _overlaps(placed) -> Iterator[str]:
    placed.sort()
    for before, after in zip(placed, placed[1:]):
        shard, start, _, path, _ = after
        if before[0] == shard and before[2] > start:
            yield (f"{path}.offset: got {start}; overlaps {before[4]} ({before[3]}), which spans "
                   f"[{before[1]}, {before[2]}) of shards[{shard}]")


def _names_and_scales(component: Component, where: str) -> Iterator[str]:
    first_index = {}
    for i, tensor in enumerate(component.tensors):
        if tensor.name in first_index:
            yield (f"{where}.tensors[{i}].name: got {show(tensor.name)}; already the name of "
                   f"tensors[{first_index[tensor.name]}]: names are unique within a component")
        first_index.setdefault(tensor.name, i)
    for i, tensor in enumerate(component.tensors):
        if tensor.quantization is None:
            continue
        path = f"{where}.tensors[{i}].quantization.scalesTensor"
        scales_name = tensor.quantization.scales_tensor
        if scales_name not in first_index:
            yield f"{path}: got {show(scales_name)}; expected the name of a tensor of this component"
            continue
        scales = component.tensors[first_index[scales_name]]
        axis = tensor.quantization.axis
        count = 1 if axis is None else tensor.shape[axis]
        if scales.dtype not in SCALE_DTYPES or math.prod(scales.shape) != count:
            per = "the whole tensor" if axis is None else f"each index of axis {axis}"
            yield (f"{path}: {scales_name} is {scales.dtype} {list(scales.shape)}; expected {count} "
                   f"{' or '.join(SCALE_DTYPES)} scales (one for {per})")


def _agreement(manifest: Manifest) -> Iterator[str]:
    parts = manifest.components
    channels = {
        "components.unet.architecture.in_channels": parts.unet.architecture.in_channels,
        "components.vae.architecture.latent_channels": parts.vae.architecture.latent_channels,
        "inference.diffusion.latent.channels": manifest.inference.diffusion.latent.channels,
    }
    if len(set(channels.values())) > 1:
        listed = ", ".join(f"{path} = {value}" for path, value in channels.items())
        yield f"{ROOT}.inference.diffusion.latent.channels: latent channels disagree ({listed}); make them equal"
    positions = parts.text_encoder.architecture.max_position_embeddings
    if manifest.tokenizer.max_length > positions:
        yield (f"{ROOT}.tokenizer.maxLength: got {manifest.tokenizer.max_length}; expected <= the text encoder's "
               f"max_position_embeddings ({positions})")
