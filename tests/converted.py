"""Reading a `doppler convert` output folder back into numpy arrays (tests only): manifest -> {component: {name: array}}."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from doppler.manifest import load_manifest

NUMPY_DTYPES = {"f32": np.dtype("<f4"), "f16": np.dtype("<f2")}


def read_converted(folder: Path, components: tuple[str, ...] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Every tensor of the model in `folder` (or of the given components), as stored (f32 or f16)."""
    manifest = load_manifest(Path(folder) / "manifest.json")
    shards = [np.memmap(Path(folder) / shard.path, dtype=np.uint8, mode="r") for shard in manifest.shards]
    tensors = {}
    for key, part in manifest.components.present().items():
        if components is not None and key not in components:
            continue
        tensors[key] = {
            t.name: np.frombuffer(shards[t.shard][t.offset:t.offset + t.bytes], dtype=NUMPY_DTYPES[t.dtype])
            .reshape(t.shape) for t in part.tensors}
    return tensors
