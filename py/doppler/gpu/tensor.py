"""A tensor is a labelled range of one pooled GPU buffer with a shape and a storage dtype.

f16 values are stored packed two to a u32 word (read with `unpack2x16float`), so kernels need no shader-f16 to
read them. Sizes are whole 4-byte words, and a tensor bound whole is bound in whole 16-byte vec4s where its allocation
has the room (always, from the pool: allocations are 256-byte multiples and bound tensors start 256-aligned), so
kernels may read it as array<vec4<...>>. A tensor larger than maxStorageBufferBindingSize
lives in one buffer but is bound in parts along its leading axis (`row_parts`; `shared_row_parts` for tensors
that a kernel walks together, `rows_window` for the input rows one output part needs).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd, lcm, prod

from ..errors import GpuError
from .pool import Allocation

OFFSET_ALIGNMENT = 256  # the largest minStorageBufferOffsetAlignment WebGPU allows
VEC4_BYTES = 16  # whole bindings round up to this: kernels read activations and weights as vec4s
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
        """(buffer, offset, size): the whole tensor as one binding, in whole vec4s where the allocation has room."""
        size = -(-self.nbytes // VEC4_BYTES) * VEC4_BYTES
        return (self.alloc.buffer, self.offset, size if self.offset + size <= self.alloc.size else self.nbytes)

    def row_parts(self, max_binding: int, alignment: int = OFFSET_ALIGNMENT) -> list[tuple[tuple, int, int]]:
        """Bindings of at most `max_binding` bytes, each whole rows of the leading axis, offsets aligned:
        [((buffer, offset, size), first_row, rows)]."""
        return [(views[0], first, rows) for views, first, rows in shared_row_parts([self], max_binding, alignment)]

    def rows_window(self, first_row: int, rows: int, alignment: int = OFFSET_ALIGNMENT) -> tuple[tuple, int]:
        """A binding that holds rows [first_row, first_row + rows) of the leading axis, started at the aligned
        offset at or before them: ((buffer, offset, size), elements of the binding before first_row's start)."""
        row_bytes = prod(self.shape[1:]) * DTYPE_BYTES[self.dtype]
        start = first_row * row_bytes
        aligned = start // alignment * alignment
        end = -(-(start + rows * row_bytes) // 4) * 4
        return (self.alloc.buffer, self.offset + aligned, end - aligned), (start - aligned) // DTYPE_BYTES[self.dtype]


def shared_row_parts(tensors, max_binding: int, alignment: int = OFFSET_ALIGNMENT) -> list[tuple[list[tuple], int, int]]:
    """Bind tensors that share their leading axis in parts over the same row ranges, each binding at most
    `max_binding` bytes with an aligned offset: [([binding per tensor], first_row, rows)]. One part (the whole
    tensors) when all fit."""
    rows = tensors[0].shape[0]
    if any(t.shape[0] != rows for t in tensors):
        raise GpuError(f"row parts of {[t.label for t in tensors]}: leading axes differ ({[t.shape for t in tensors]})")
    if all(t.nbytes <= max_binding for t in tensors):
        return [([t.binding() for t in tensors], 0, rows)]
    row_bytes = [prod(t.shape[1:]) * DTYPE_BYTES[t.dtype] for t in tensors]
    unit = 1  # rows per step that keep every part offset aligned
    for b in row_bytes:
        unit = lcm(unit, alignment // gcd(b, alignment))
    step = min(max_binding // b for b in row_bytes) // unit * unit
    if step == 0:
        raise GpuError(
            f"{', '.join(t.label for t in tensors)}: rows of {max(row_bytes)} bytes cannot be bound in "
            f"{alignment}-aligned parts of at most {max_binding} bytes; split these tensors along another axis."
        )
    return [
        ([(t.alloc.buffer, t.offset + r * b, -(-min(step, rows - r) * b // 4) * 4) for t, b in zip(tensors, row_bytes)],
         r, min(step, rows - r))
        for r in range(0, rows, step)
    ]
