"""A tensor is a labelled range of one pooled GPU buffer with a shape and a storage dtype.

f16 values are stored packed two to a u32 word (read with `unpack2x16float`), so kernels need no shader-f16 to
read them; every binding is rounded up to whole 4-byte words. A tensor larger than maxStorageBufferBindingSize
lives in one buffer but is bound in parts along its leading axis (`row_parts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd, prod

from ..errors import GpuError
from .pool import Allocation

DTYPE_BYTES = {"f32": 4, "f16": 2, "u32": 4, "i32": 4, "u8": 1, "i8": 1}


def storage_bytes(shape: tuple[int, ...], dtype: str) -> int:
    if dtype not in DTYPE_BYTES:
        raise GpuError(f"unknown storage dtype {dtype!r}; known: {', '.join(DTYPE_BYTES)}")
    return -(-prod(shape) * DTYPE_BYTES[dtype] // 4) * 4


@dataclass(eq=False)
class Tensor:
    shape: tuple[int, ...]
    dtype: str
    alloc: Allocation
    offset: int = 0  # bytes into the buffer

    @property
    def nbytes(self) -> int:
        return storage_bytes(self.shape, self.dtype)

    @property
    def numel(self) -> int:
        return prod(self.shape)

    @property
    def label(self) -> str:
        return self.alloc.label

    def reshaped(self, shape) -> "Tensor":
        """The same storage seen with another shape of as many elements."""
        if prod(shape) != self.numel:
            raise GpuError(f"{self.label}: cannot view {self.shape} as {tuple(shape)}")
        return Tensor(tuple(shape), self.dtype, self.alloc, self.offset)

    def binding(self) -> tuple:
        """(buffer, offset, size): the whole tensor as one binding."""
        return (self.alloc.buffer, self.offset, self.nbytes)

    def row_parts(self, max_binding: int, alignment: int = 256) -> list[tuple[tuple, int, int]]:
        """Bindings of at most `max_binding` bytes, each whole rows of the leading axis, offsets aligned:
        [((buffer, offset, size), first_row, rows)]."""
        rows = self.shape[0]
        if self.nbytes <= max_binding:
            return [(self.binding(), 0, rows)]
        row_bytes = prod(self.shape[1:]) * DTYPE_BYTES[self.dtype]
        unit = alignment // gcd(row_bytes, alignment)  # rows per step that keep part offsets aligned
        step = (max_binding // row_bytes) // unit * unit
        if step == 0:
            raise GpuError(
                f"{self.label}: rows of {row_bytes} bytes cannot be bound in {alignment}-aligned parts of at most "
                f"{max_binding} bytes; split this tensor along another axis."
            )
        return [
            ((self.alloc.buffer, self.offset + r * row_bytes, min(step, rows - r) * row_bytes), r, min(step, rows - r))
            for r in range(0, rows, step)
        ]
