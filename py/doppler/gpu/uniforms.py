"""Uniform structs: one frozen dataclass per WGSL `struct`, whose fields carry their WGSL scalar type.

`pack()` gives the bytes the kernel reads; `wgsl()` gives the struct as WGSL text, which a test compares with
the struct in the kernel file, so the two cannot drift. Only 4-byte scalars (u32, i32, f32): their std140-free
WGSL uniform layout is then simply consecutive, padded to 16 bytes.
"""

from __future__ import annotations

import struct
from dataclasses import field, fields

_FORMATS = {"u32": "I", "i32": "i", "f32": "f"}


def u32(default=0):
    return field(default=default, metadata={"wgsl": "u32"})


def i32(default=0):
    return field(default=default, metadata={"wgsl": "i32"})


def f32(default=0.0):
    return field(default=default, metadata={"wgsl": "f32"})


def pack(uniform) -> bytes:
    fs = fields(uniform)
    fmt = "<" + "".join(_FORMATS[f.metadata["wgsl"]] for f in fs)
    data = struct.pack(fmt, *(getattr(uniform, f.name) for f in fs))
    return data + bytes(-len(data) % 16)


def wgsl(cls) -> str:
    body = ", ".join(f"{f.name}: {f.metadata['wgsl']}" for f in fields(cls))
    return f"struct {cls.WGSL_NAME} {{ {body} }}"


def to_f32(value: float) -> float:
    """The f32 nearest `value`, as a Python float: what a kernel sees of a host number."""
    return struct.unpack("<f", struct.pack("<f", value))[0]
