"""The backend contract: the few device calls that differ between the browser (Pyodide FFI) and native (wgpu-py).

Everything above this (pool, kernels, plans, stats) is shared Python. Ops are plain tuples:
    ("dispatch", pipeline, bind_group, x, y, z)
    ("copy", src_buffer, src_offset, dst_buffer, dst_offset, size)        offsets and size in bytes, 4-aligned
"""

from __future__ import annotations

from typing import Protocol, Sequence

# GPUBufferUsage bits (identical numbers in the WebGPU spec and wgpu-native).
MAP_READ = 0x0001
COPY_SRC = 0x0004
COPY_DST = 0x0008
UNIFORM = 0x0040
STORAGE = 0x0080
QUERY_RESOLVE = 0x0200

STORAGE_USAGE = STORAGE | COPY_SRC | COPY_DST
UNIFORM_USAGE = UNIFORM | COPY_DST


class Backend(Protocol):
    name: str

    def create_buffer(self, size: int, usage: int, label: str): ...

    def destroy_buffer(self, buffer) -> None: ...

    def write_buffer(self, buffer, offset: int, data: bytes) -> None: ...

    async def create_pipeline(self, code: str, entry: str, constants: dict, label: str): ...

    def create_bind_group(self, pipeline, entries: Sequence[tuple], label: str):
        """entries: [(binding, (buffer, offset, size))]."""

    def create_query_set(self, count: int): ...

    def submit(self, ops: Sequence[tuple], max_per_submit: int, timing: tuple | None = None) -> int: ...

    def make_plan(self, ops: Sequence[tuple], max_per_submit: int): ...

    def replay(self, plan, timing: tuple | None = None) -> int: ...

    async def read_buffer(self, buffer, offset: int, size: int) -> bytes: ...

    def present(self, buffer, offset: int, width: int, height: int, canvas) -> None:
        """Copy width x height RGBA8 pixels (one u32 each, rows packed) from the buffer onto the canvas, on the GPU."""

    async def fence(self) -> None: ...

    def lost(self) -> str | None: ...

    def take_errors(self) -> tuple[list[str], str | None]: ...


class Encoding(Protocol):
    """The encoder calls, spelled per backend (wgpu-py snake_case, WebGPU camelCase)."""

    def new_encoder(self): ...

    def begin_pass(self, encoder, timestamps: tuple | None): ...  # (query_set, begin_index, end_index)

    def end_pass(self, cpass) -> None: ...

    def finish(self, encoder): ...

    def dispatch(self, cpass, pipeline, bind_group, x: int, y: int, z: int) -> None: ...

    def copy(self, encoder, src, src_offset: int, dst, dst_offset: int, size: int) -> None: ...

    def resolve(self, encoder, query_set, count: int, buffer) -> None: ...


def encode_ops(api: Encoding, ops: Sequence[tuple], max_per_submit: int, timing: tuple | None = None) -> list:
    """Command buffers for `ops`: one compute pass per run of dispatches, a new command buffer every
    `max_per_submit` dispatches (so no single submit runs long enough to trip a driver watchdog).
    With `timing` = (query_set, resolve_buffer), each dispatch gets its own pass with begin/end timestamps
    (queries 2i, 2i+1 for the i-th dispatch), resolved into the buffer at the end."""
    buffers = []
    encoder = api.new_encoder()
    cpass = None
    count = timed = 0
    for op in ops:
        if op[0] == "dispatch":
            if cpass is None:
                stamps = (timing[0], 2 * timed, 2 * timed + 1) if timing else None
                cpass = api.begin_pass(encoder, stamps)
            api.dispatch(cpass, *op[1:])
            count += 1
            timed += 1
            if timing or count == max_per_submit:
                api.end_pass(cpass)
                cpass = None
            if count == max_per_submit:
                buffers.append(api.finish(encoder))
                encoder = api.new_encoder()
                count = 0
        else:
            if cpass is not None:
                api.end_pass(cpass)
                cpass = None
            api.copy(encoder, *op[1:])
    if cpass is not None:
        api.end_pass(cpass)
    if timing and timed:
        api.resolve(encoder, timing[0], 2 * timed, timing[1])
    buffers.append(api.finish(encoder))
    return buffers
