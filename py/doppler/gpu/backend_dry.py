"""A backend that runs nothing: buffers are sizes, pipelines their labels, dispatches no-ops. The pool, the plans and
the kernel rules above it do all their bookkeeping, so a dry run of the pipeline with a real device's capabilities
lists the kernels an image needs (inference/diffusion/pipeline.py's `precompile`) and its memory peaks (the tests'
budget checks) without compiling or allocating anything."""

from __future__ import annotations

import asyncio

from .caps import Capabilities


class DryBuffer:
    def __init__(self, size: int):
        self.size = size


class DryBackend:
    """Buffers are sizes, pipelines names, dispatches nothing: the pool and the plans do all their bookkeeping. It
    preprocesses kernels as the browser does (`name`)."""

    name = "browser"

    def __init__(self, caps: Capabilities):
        self.caps = caps

    def create_buffer(self, size, usage, label):
        return DryBuffer(size)

    def destroy_buffer(self, buffer):
        pass

    def write_buffer(self, buffer, offset, data):
        pass

    async def create_pipeline(self, code, entry, constants, label):
        return label

    def create_bind_group(self, pipeline, entries, label):
        return None

    def create_query_set(self, count):
        return None

    def submit(self, ops, max_per_submit, timing=None):
        return 1

    def make_plan(self, ops, max_per_submit):
        return ops

    def replay(self, plan, timing=None):
        return 1

    async def read_buffer(self, buffer, offset, size):
        return bytes(size)

    def present(self, buffer, offset, width, height, canvas):
        pass

    async def fence(self):
        pass

    def work_done(self):
        return asyncio.sleep(0)

    def lost(self):
        return None

    def take_errors(self):
        return [], None
