"""Writing a converted model: shards of tensor bytes, tokenizer files and manifest.json, all or nothing.

OUT layout:
    manifest.json                       (doppler.manifest format)
    tokenizer/vocab.json, merges.txt    CLIP BPE files
    shards/<component>-<k>.bin          k = 000, 001, ... per component (the loader fetches one component's shards)

Within a shard, tensors follow each other in the component's layer order, each at an offset that is a multiple of
256 bytes (WebGPU's storage-buffer offset alignment, so each tensor binds in place), zero bytes between them. A
tensor never straddles shards: a new shard starts when the next tensor would pass the shard size, and a tensor
larger than that size gets a shard of its own. Each shard's length is a multiple of 4 bytes, so the last f16
tensor of odd element count still ends inside a whole u32 word (f16 is read two per word).

Everything is written to a hidden temporary folder next to OUT and renamed to OUT at the end; any failure removes
it, so a failed conversion leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from doppler.config.parse import to_json
from doppler.config.schema import ConfigError
from doppler.errors import ConvertError
from doppler.manifest import Manifest, parse_manifest

from .sources import TOKENIZER_FILES, Source
from .tensors import COMPONENTS, params

MIB = 1024 * 1024
DEFAULT_SHARD_MIB = 64
# WebGPU's minStorageBufferOffsetAlignment: every tensor starts on it, so it binds at its own offset.
TENSOR_ALIGNMENT = 256
# f16 values are read two per u32 word: a shard ends on a word boundary.
WORD_BYTES = 4
STORAGE = {"f32": np.dtype("<f4"), "f16": np.dtype("<f2")}
F16_MAX = float(np.finfo(np.float16).max)
# The VAE decoder doubles the resolution at each level but the last: image size = latent size * 2^(levels - 1).
VAE_LEVEL_SCALE = 2
# diffusers scheduler classes -> the page's scheduler names (others, such as SD 1.5's PNDM, keep the default).
SCHEDULER_TYPES = {"DDIMScheduler": "ddim", "EulerDiscreteScheduler": "euler",
                   "EulerAncestralDiscreteScheduler": "euler_a", "DPMSolverMultistepScheduler": "dpmpp_2m",
                   "LCMScheduler": "lcm"}
TOKENIZER_FOLDER = "tokenizer"
SHARD_FOLDER = "shards"
MANIFEST_FILE = "manifest.json"
FOLDER_MODE = 0o777


@dataclass(frozen=True)
class Converted:
    """A written model: its folder, its manifest and what the source carried that was left out."""

    folder: Path
    manifest: Manifest
    ignored: dict[str, list[str]]


def default_model_id(out: Path) -> str:
    """A manifest id from the output folder's name: lowercase, other characters replaced by "-"."""
    text = re.sub(r"[^a-z0-9._-]+", "-", Path(out).name.lower()).lstrip("._-")
    return text or "model"


def write_model(source: Source, out: Path, *, dtype: str, shard_mib: float = DEFAULT_SHARD_MIB, model_id: str,
                name: str, force: bool = False, log: Callable[[str], None] = lambda line: None) -> Converted:
    """Write `source` as a converted model folder `out` with weights stored as `dtype` ("f32" or "f16")."""
    out = Path(out)
    if dtype not in STORAGE:
        raise ConvertError([f"--dtype {dtype}: expected one of {', '.join(STORAGE)} (int8 is not written yet)"])
    if out.exists() and not force:
        raise ConvertError([f"{out}: already exists; choose another folder, remove it, or pass --force to replace it"])
    shard_bytes = int(shard_mib * MIB)
    if shard_bytes < TENSOR_ALIGNMENT:
        raise ConvertError([f"--shard-mib {shard_mib}: expected at least {TENSOR_ALIGNMENT} bytes"])
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    temp.chmod(FOLDER_MODE & ~umask)  # mkdtemp's folder is private; OUT gets a plain mkdir's mode
    try:
        manifest = _write_all(source, temp, dtype, shard_bytes, model_id, name, log)
        _replace(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return Converted(out, manifest, source.ignored)


def _write_all(source: Source, folder: Path, dtype: str, shard_bytes: int, model_id: str, name: str, log) -> Manifest:
    (folder / SHARD_FOLDER).mkdir()
    shards: list[dict] = []
    problems: list[str] = []
    components = {}
    for component in COMPONENTS:
        architecture = source.architectures[component]
        log(f"writing {component}")
        writer = _ShardWriter(folder, component, shard_bytes, shards)
        tensors = []
        for p in params(component, architecture):
            data = _stored(source.loaders[component][p.name](), dtype, f"{component} tensor {p.name}", problems)
            if data is None:
                continue
            shard, offset = writer.add(data)
            tensors.append({"name": p.name, "shape": list(p.shape), "dtype": dtype, "shard": shard,
                            "offset": offset, "bytes": len(data)})
        writer.close()
        components[component] = {"architecture": to_json(architecture), "tensors": tensors}
    if problems:
        raise ConvertError(problems)
    tokenizer = _write_tokenizer(source, folder / TOKENIZER_FOLDER)
    data = {
        "id": model_id,
        "modelType": "diffusion",
        "name": name,
        "components": components,
        "shards": shards,
        "tokenizer": tokenizer,
        "inference": {"diffusion": _recommended(source, dtype), "schedulerConfig": source.scheduler_config},
    }
    try:
        manifest = parse_manifest(data)
    except ConfigError as error:
        raise ConvertError(["the source gives an inconsistent model:", *error.problems]) from error
    (folder / MANIFEST_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return manifest


def _stored(values: np.ndarray, dtype: str, where: str, problems: list[str]) -> bytes | None:
    """The tensor's bytes in the storage dtype (little-endian, row-major); None and a problem if values do not fit."""
    if not np.isfinite(values).all():
        problems.append(f"{where}: has NaN or infinite values; the source checkpoint is damaged")
        return None
    if dtype == "f16" and values.size and float(np.abs(values).max()) > F16_MAX:
        problems.append(f"{where}: has values beyond f16's range (|x| > {F16_MAX:g}); convert with --dtype f32")
        return None
    return np.ascontiguousarray(values, dtype=STORAGE[dtype]).tobytes()


class _ShardWriter:
    """Packs one component's tensors into shards/<component>-<k>.bin, recording each finished shard in `shards`."""

    def __init__(self, folder: Path, component: str, limit: int, shards: list[dict]):
        self.folder, self.component, self.limit, self.shards = folder, component, limit, shards
        self.count = 0
        self.file = None
        self.size = 0
        self.hash = None

    def add(self, data: bytes) -> tuple[int, int]:
        """Write one tensor; its (shard index, offset)."""
        start = _align(self.size, TENSOR_ALIGNMENT)
        if self.file is None or (self.size and start + len(data) > self.limit):
            self.close()
            self._open()
            start = 0
        self._write(bytes(start - self.size) + data)
        return len(self.shards), start

    def close(self):
        if self.file is None:
            return
        self._write(bytes(_align(self.size, WORD_BYTES) - self.size))
        self.file.close()
        self.file = None
        self.shards.append({"path": self.path, "size": self.size, "sha256": self.hash.hexdigest()})

    def _open(self):
        self.path = f"{SHARD_FOLDER}/{self.component}-{self.count:03d}.bin"
        self.count += 1
        self.file = (self.folder / self.path).open("wb")
        self.size = 0
        self.hash = hashlib.sha256()

    def _write(self, data: bytes):
        self.file.write(data)
        self.hash.update(data)
        self.size += len(data)


def _align(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def _write_tokenizer(source: Source, folder: Path) -> dict:
    source.tokenizer.write(folder)
    settings = source.tokenizer.settings
    vocab, merges = TOKENIZER_FILES
    return {"vocab": f"{TOKENIZER_FOLDER}/{vocab}", "merges": f"{TOKENIZER_FOLDER}/{merges}",
            "maxLength": settings.max_length, "padToken": settings.pad_token, "bosToken": settings.bos_token,
            "eosToken": settings.eos_token}


def _recommended(source: Source, dtype: str) -> dict:
    """manifest.inference.diffusion: the settings the model implies; the schema's defaults give the rest."""
    unet, vae = source.architectures["unet"], source.architectures["vae"]
    size = unet.sample_size * VAE_LEVEL_SCALE ** (len(vae.block_out_channels) - 1)
    settings = {
        "latent": {"width": size, "height": size, "channels": unet.in_channels},
        "textEncoder": {"maxLength": source.tokenizer.settings.max_length},
        "quantization": {"weightDtype": dtype},
    }
    scheduler_type = SCHEDULER_TYPES.get(source.scheduler_config.get("_class_name"))
    if scheduler_type:
        settings["scheduler"] = {"type": scheduler_type}
    return settings


def _replace(temp: Path, out: Path):
    """Move the finished folder into place (replacing an old one only once the new one is complete)."""
    if not out.exists():
        temp.rename(out)
        return
    old = out.with_name(f".{out.name}.{os.getpid()}.old")
    out.rename(old)
    temp.rename(out)
    shutil.rmtree(old)
