"""Elementwise maps (`wgsl/elementwise.wgsl`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..gpu.uniforms import f32, pack, u32
from .grid import linear_groups

WORKGROUP = 256


@dataclass(frozen=True)
class Elementwise:
    WGSL_NAME: ClassVar[str] = "Elementwise"
    n: int = u32()
    a: float = f32(1.0)
    b: float = f32(0.0)


async def axpby(gpu, x, y, out, a: float, b: float) -> None:
    """out = a * x + b * y"""
    kernel = await gpu.kernel("elementwise", "axpby", {"WG": WORKGROUP})
    gpu.dispatch(kernel, [x, y, out], linear_groups(x.numel, WORKGROUP), pack(Elementwise(x.numel, a, b)))


async def scale(gpu, x, out, a: float, b: float = 0.0) -> None:
    """out = a * x + b"""
    kernel = await gpu.kernel("elementwise", "scale", {"WG": WORKGROUP})
    gpu.dispatch(kernel, [x, None, out], linear_groups(x.numel, WORKGROUP), pack(Elementwise(x.numel, a, b)))
