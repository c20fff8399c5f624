"""Elementwise maps (`wgsl/elementwise.wgsl`). Tensors over the binding limit run in parts (`Tensor.row_parts`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import GpuError
from ..gpu.tensor import shared_row_parts
from ..gpu.uniforms import f32, pack, u32
from .checks import require_dtype, require_one_binding, require_shape, same_storage
from .grid import linear_groups

WORKGROUP = 256


@dataclass(frozen=True)
class Elementwise:
    WGSL_NAME: ClassVar[str] = "Elementwise"
    n: int = u32()
    a: float = f32(1.0)
    b: float = f32(0.0)


@dataclass(frozen=True)
class Broadcast:
    WGSL_NAME: ClassVar[str] = "Broadcast"
    n: int = u32()
    first: int = u32()
    inner: int = u32(1)
    channels: int = u32(1)


def _dispatch_flat(gpu, kernel, slots, uniform, whole=()) -> None:
    """Dispatch a 1-D kernel over same-sized tensors seen flat, in matching parts: `slots` are the bindings in
    order (None where unused), those in `whole` bound whole; uniform(first, n) packs each part's uniform."""
    split = [t for t in slots if t is not None and t not in whole]
    for views, first, n in shared_row_parts([t.reshaped((t.numel,)) for t in split], gpu.max_binding):
        part = dict(zip(map(id, split), views))
        bindings = [None if t is None else part.get(id(t), t) for t in slots]
        gpu.dispatch(kernel, bindings, linear_groups(n, WORKGROUP), uniform(first, n))


async def _map(gpu, entry: str, x, y, out, a: float, b: float) -> None:
    inplace = same_storage(x, out)
    kernel = await gpu.kernel("elementwise", entry + ("_inplace" if inplace else ""), {"WG": WORKGROUP})
    slots = [None if inplace else x, y, out]
    _dispatch_flat(gpu, kernel, slots, lambda first, n: pack(Elementwise(n, a, b)))


async def axpby(gpu, x, y, out, a: float, b: float) -> None:
    """out = a * x + b * y; `out` may be `x`."""
    await _map(gpu, "axpby", x, y, out, a, b)


async def scale(gpu, x, out, a: float, b: float = 0.0) -> None:
    """out = a * x + b; `out` may be `x`."""
    await _map(gpu, "scale", x, None, out, a, b)


async def add(gpu, x, y, out) -> None:
    """out = x + y; `out` may be `x`. y has x's shape, or is (B, C) for x of shape (B, ..., C) and is added per
    (batch, channel) over the middle axes (the time embedding on NHWC maps), or is (C,): a bias per channel, f32 or
    a stored f16 one."""
    bias = len(y.shape) == 1 and tuple(y.shape) != tuple(x.shape)
    for t in (x, out) if bias else (x, y, out):
        require_dtype("add", t, "f32")
    if y.dtype not in ("f32", "f16"):
        raise GpuError(f"add: {y.label} is {y.dtype}; a (C,) bias is f32 or f16, other tensors f32")
    require_shape("add", out, x.shape)
    if tuple(y.shape) == tuple(x.shape):
        await axpby(gpu, x, y, out, 1.0, 1.0)
        return
    channels = x.shape[-1]
    batch = 1 if len(y.shape) == 1 else x.shape[0]
    if tuple(y.shape) not in ((channels,), (batch, channels)) or len(x.shape) < 2:
        raise GpuError(
            f"add: {y.label} {y.shape} does not broadcast over {x.label} {x.shape}: give x's shape, "
            f"(B, C) = {(x.shape[0], channels)} or (C,) = {(channels,)}"
        )
    require_one_binding(gpu, "add", y)
    inplace = same_storage(x, out)
    kernel = await gpu.kernel("elementwise", "add_rows_inplace" if inplace else "add_rows",
                              {"WG": WORKGROUP, "F16_WEIGHTS": y.dtype == "f16"})
    inner = x.numel // batch
    slots = [None if inplace else x, y, out]
    _dispatch_flat(gpu, kernel, slots, lambda first, n: pack(Broadcast(n, first, inner, channels)), whole=(y,))
