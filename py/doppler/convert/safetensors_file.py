"""Reading `.safetensors` files lazily, header first, one tensor at a time (multi-GB checkpoints stay on disk).

Format: an 8-byte little-endian header length N, N bytes of JSON {name: {"dtype", "shape", "data_offsets":
[begin, end]}, "__metadata__": {...}}, then the data; offsets count from the end of the header. Read here rather
than through the `safetensors` package because its numpy loader cannot give bfloat16 tensors (numpy has no such
type), and many community checkpoints are bf16: those are widened to f32 exactly (bf16 is f32's top 16 bits).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from doppler.errors import ConvertError

HEADER_LENGTH_BYTES = 8
# Largest header accepted (the format's own limit), so a wrong file is not read whole as JSON.
MAX_HEADER_BYTES = 100_000_000
FLOAT_DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}
ITEM_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
              "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}
BF16_SHIFT = 16


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor's bytes are in a file."""

    dtype: str  # safetensors' name: F32, F16, BF16, I64, ...
    shape: tuple[int, ...]
    begin: int  # absolute byte offset in the file
    end: int


class SafetensorsFile:
    """One `.safetensors` file: its tensor table (from the header) and float tensors read on demand."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.tensors = _read_header(self.path)

    def read(self, name: str) -> np.ndarray:
        """The tensor as float32 (f16/bf16/f32 exactly, f64 rounded), shaped as stored."""
        info = self.tensors[name]
        if info.dtype not in FLOAT_DTYPES:
            raise ConvertError([f"{self.path}: tensor {name} is {info.dtype}; expected a float tensor "
                                f"({', '.join(FLOAT_DTYPES)})"])
        raw = np.memmap(self.path, dtype=np.uint8, mode="r", offset=info.begin, shape=(info.end - info.begin,))
        values = np.frombuffer(raw, dtype=FLOAT_DTYPES[info.dtype]).reshape(info.shape)
        if info.dtype == "BF16":
            return (values.astype(np.uint32) << BF16_SHIFT).view(np.float32)
        return values.astype(np.float32)


def _read_header(path: Path) -> dict[str, TensorInfo]:
    def bad(why):
        return ConvertError([f"{path}: not a readable safetensors file ({why})"])

    size = path.stat().st_size
    with path.open("rb") as f:
        length = int.from_bytes(f.read(HEADER_LENGTH_BYTES), "little")
        if not 0 < length <= min(MAX_HEADER_BYTES, size - HEADER_LENGTH_BYTES):
            raise bad(f"header length {length} does not fit the file's {size} bytes")
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise bad(f"header is not JSON: {error}") from error
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    header.pop("__metadata__", None)
    data_start = HEADER_LENGTH_BYTES + length
    tensors = {}
    for name, entry in header.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
        except (TypeError, KeyError, ValueError) as error:
            raise bad(f"entry {name!r} lacks dtype, shape or data_offsets") from error
        expected = math.prod(shape) * ITEM_BYTES.get(dtype, 0)
        if dtype not in ITEM_BYTES or end - begin != expected or not 0 <= begin <= end <= size - data_start:
            raise bad(f"entry {name!r} ({dtype} {list(shape)}, bytes [{begin}, {end})) is inconsistent")
        tensors[name] = TensorInfo(dtype, shape, data_start + begin, data_start + end)
    return tensors
