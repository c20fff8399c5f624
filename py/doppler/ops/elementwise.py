"""Elementwise maps (`wgsl/elementwise.wgsl`). Tensors over the binding limit run in parts (`Tensor.row_parts`)."""

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


async def _map(gpu, entry: str, x, y, out, a: float, b: float) -> None:
    kernel = await gpu.kernel("elementwise", entry, {"WG": WORKGROUP})
    flat = [t.reshaped((t.numel,)) if t is not None else None for t in (x, y, out)]
    parts = [t.row_parts(gpu.max_binding) if t is not None else None for t in flat]
    for i, (view, _, n) in enumerate(parts[0]):
        bindings = [view, parts[1][i][0] if parts[1] else None, parts[2][i][0]]
        gpu.dispatch(kernel, bindings, linear_groups(n, WORKGROUP), pack(Elementwise(n, a, b)))


async def axpby(gpu, x, y, out, a: float, b: float) -> None:
    """out = a * x + b * y"""
    await _map(gpu, "axpby", x, y, out, a, b)


async def scale(gpu, x, out, a: float, b: float = 0.0) -> None:
    """out = a * x + b"""
    await _map(gpu, "scale", x, None, out, a, b)
