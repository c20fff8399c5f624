"""Native backend: wgpu-native through wgpu-py (Vulkan; lavapipe in tests). CPython only."""

from __future__ import annotations

from typing import Sequence

import wgpu

from ..errors import GpuError
from .backend import encode_ops
from .caps import FEATURE_ALIASES, LIMIT_NAMES, RAISED_LIMITS, WANTED_FEATURES, Capabilities, normalize_features


def _native_name(feature: str) -> str:
    return {v: k for k, v in FEATURE_ALIASES.items()}.get(feature, feature)


def _kebab(name: str) -> str:
    return "".join("-" + c.lower() if c.isupper() else c for c in name)


class NativeBackend:
    name = "native"

    def __init__(self, device, caps: Capabilities):
        self.device = device
        self.caps = caps
        self._fence_buffer = device.create_buffer(size=4, usage=wgpu.BufferUsage.COPY_SRC, label="fence")

    @classmethod
    async def open(cls, features: Sequence[str] = WANTED_FEATURES, limit_overrides: dict | None = None) -> "NativeBackend":
        adapter = await wgpu.gpu.request_adapter_async(power_preference="high-performance")
        if adapter is None:
            raise GpuError("wgpu found no adapter: install a Vulkan driver (e.g. Debian's mesa-vulkan-drivers).")
        offered = normalize_features(adapter.features)
        enabled = [f for f in features if f in offered]
        limits = {n: adapter.limits[_kebab(n)] for n in RAISED_LIMITS if _kebab(n) in adapter.limits}
        limits.update(limit_overrides or {})
        device = await adapter.request_device_async(
            required_features=[_native_name(f) for f in enabled],
            required_limits={_kebab(k): v for k, v in limits.items()},
            label="doppler",
        )
        info = adapter.info
        all_limits = {n: device.limits[_kebab(n)] for n in LIMIT_NAMES if _kebab(n) in device.limits}
        all_limits.update(limit_overrides or {})
        caps = Capabilities(
            backend="native",
            vendor=info.get("vendor", ""),
            architecture=info.get("architecture", ""),
            description=info.get("device", "") or info.get("description", ""),
            features=frozenset(enabled),
            limits=all_limits,
        )
        return cls(device, caps)

    def create_buffer(self, size, usage, label):
        return self.device.create_buffer(size=size, usage=usage, label=label)

    def destroy_buffer(self, buffer):
        buffer.destroy()

    def write_buffer(self, buffer, offset, data):
        self.device.queue.write_buffer(buffer, offset, data)

    async def create_pipeline(self, code, entry, constants, label):
        try:
            module = self.device.create_shader_module(code=code, label=label)
            return self.device.create_compute_pipeline(
                layout="auto", compute={"module": module, "entry_point": entry, "constants": dict(constants)}, label=label
            )
        except Exception as e:  # wgpu raises its own validation error types
            raise GpuError(f"kernel {label} failed to compile:\n{e}") from None

    def create_bind_group(self, pipeline, entries, label):
        return self.device.create_bind_group(
            layout=pipeline.get_bind_group_layout(0),
            entries=[
                {"binding": i, "resource": {"buffer": b, "offset": off, "size": size}}
                for i, (b, off, size) in entries
            ],
            label=label,
        )

    def create_query_set(self, count):
        return self.device.create_query_set(type="timestamp", count=count)

    def submit(self, ops, max_per_submit, timing=None):
        buffers = encode_ops(self, ops, max_per_submit, timing)
        self.device.queue.submit(buffers)
        return len(buffers)

    def make_plan(self, ops, max_per_submit):
        return (tuple(ops), max_per_submit)

    def replay(self, plan, timing=None):
        return self.submit(*plan, timing)

    # Encoding (see backend.encode_ops)
    def new_encoder(self):
        return self.device.create_command_encoder()

    def begin_pass(self, encoder, timestamps):
        if timestamps is None:
            return encoder.begin_compute_pass()
        qs, begin, end = timestamps
        return encoder.begin_compute_pass(
            timestamp_writes={"query_set": qs, "beginning_of_pass_write_index": begin, "end_of_pass_write_index": end}
        )

    def end_pass(self, cpass):
        cpass.end()

    def finish(self, encoder):
        return encoder.finish()

    def dispatch(self, cpass, pipeline, bind_group, x, y, z):
        cpass.set_pipeline(pipeline)
        cpass.set_bind_group(0, bind_group)
        cpass.dispatch_workgroups(x, y, z)

    def copy(self, encoder, src, src_offset, dst, dst_offset, size):
        encoder.copy_buffer_to_buffer(src, src_offset, dst, dst_offset, size)

    def resolve(self, encoder, query_set, count, buffer):
        encoder.resolve_query_set(query_set, 0, count, buffer, 0)

    async def read_buffer(self, buffer, offset, size):
        return bytes(self.device.queue.read_buffer(buffer, offset, size))

    def present(self, buffer, offset, width, height, canvas):
        raise GpuError("the native backend has no canvas to present on: previews are drawn in the page")

    async def fence(self):
        # wgpu-py 0.32's on_submitted_work_done raises TypeError; a 4-byte read waits for the queue the same way.
        self.device.queue.read_buffer(self._fence_buffer, 0, 4)

    def work_done(self):
        """An awaitable for the work submitted so far; natively it waits, when awaited, for all work by then."""
        return self.fence()

    def lost(self):
        return None  # wgpu-py raises on a lost device at the next call

    def take_errors(self):
        return [], None  # wgpu-py raises device errors where they happen
