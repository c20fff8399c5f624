"""Browser backend: WebGPU through Pyodide's FFI, inside the module worker. Imports `js` and `pyodide` only.

Per-dispatch FFI calls cost ~9.5 us each in Chromium, so recorded plans replay through one call into
`app/helpers.mjs` (`replay`), which walks a flat ops array on the JS side (~0.4 us a dispatch).
"""

from __future__ import annotations

import json

import js  # type: ignore[import-not-found]
from pyodide.ffi import JsException, to_js  # type: ignore[import-not-found]

import doppler_js  # type: ignore[import-not-found]  # app/helpers.mjs, registered by the worker

from ..errors import GpuError
from .backend import encode_ops
from .caps import LIMIT_NAMES, RAISED_LIMITS, WANTED_FEATURES, Capabilities

_OPCODES = {"dispatch": 0, "copy": 1}


def _js(value):
    return to_js(value, dict_converter=js.Object.fromEntries)


class BrowserBackend:
    name = "browser"

    def __init__(self, device, caps: Capabilities):
        self.device = device
        self.caps = caps
        self._watch = doppler_js.watchDevice(device)

    @classmethod
    async def open(cls, features=WANTED_FEATURES, limit_overrides: dict | None = None) -> "BrowserBackend":
        gpu = getattr(js.navigator, "gpu", None)
        if gpu is None:
            raise GpuError("This browser offers no WebGPU (navigator.gpu is missing): use a WebGPU browser.")
        adapter = await gpu.requestAdapter(_js({"powerPreference": "high-performance"}))
        if adapter is None:
            raise GpuError(
                "WebGPU found no GPU adapter: check chrome://gpu (a blocklisted driver or a disabled GPU), "
                "or start Chromium with --enable-unsafe-webgpu."
            )
        summary = json.loads(doppler_js.adapterSummary(adapter))
        enabled = [f for f in features if f in summary["features"]]
        limits = json.loads(doppler_js.readLimits(adapter.limits, _js(list(RAISED_LIMITS))))
        limits.update(limit_overrides or {})
        try:
            device = await adapter.requestDevice(
                _js({"requiredFeatures": enabled, "requiredLimits": limits, "label": "doppler"})
            )
        except JsException as e:
            raise GpuError(f"The GPU refused a device with features {enabled} and limits {limits}: {e}") from None
        all_limits = json.loads(doppler_js.readLimits(device.limits, _js(list(LIMIT_NAMES))))
        all_limits.update(limit_overrides or {})
        caps = Capabilities(
            backend="browser",
            vendor=summary["vendor"],
            architecture=summary["architecture"],
            description=summary["description"],
            features=frozenset(enabled),
            limits=all_limits,
            subgroup_matrix_configs=tuple(summary["subgroupMatrixConfigs"]),
            subgroup_sizes=(summary["subgroupMinSize"], summary["subgroupMaxSize"]),
        )
        return cls(device, caps)

    def create_buffer(self, size, usage, label):
        return self.device.createBuffer(_js({"size": size, "usage": usage, "label": label}))

    def destroy_buffer(self, buffer):
        buffer.destroy()

    def write_buffer(self, buffer, offset, data):
        self.device.queue.writeBuffer(buffer, offset, to_js(memoryview(data).cast("B")))

    async def create_pipeline(self, code, entry, constants, label):
        # An error scope keeps a bad kernel's validation error here, named, instead of leaking to the next sync.
        self.device.pushErrorScope("validation")
        module = self.device.createShaderModule(_js({"code": code, "label": label}))
        try:
            pipeline = await self.device.createComputePipelineAsync(
                _js({"layout": "auto", "compute": {"module": module, "entryPoint": entry, "constants": dict(constants)},
                     "label": label})
            )
        except JsException as e:
            info = await module.getCompilationInfo()
            messages = [f"{m.lineNum}:{m.linePos} {m.type}: {m.message}" for m in info.messages]
            raise GpuError(f"kernel {label} failed to compile: {e}\n" + "\n".join(messages)) from None
        finally:
            await self.device.popErrorScope()
        return pipeline

    def create_bind_group(self, pipeline, entries, label):
        flat = [value for i, (b, off, size) in entries for value in (i, b, off, size)]
        return doppler_js.bindGroup(self.device, pipeline, to_js(flat), label)

    def create_query_set(self, count):
        return self.device.createQuerySet(_js({"type": "timestamp", "count": count}))

    def submit(self, ops, max_per_submit, timing=None):
        """Encode op by op through the FFI (the eager path; plans replay through one helper call)."""
        buffers = encode_ops(self, ops, max_per_submit, timing)
        self.device.queue.submit(_js(buffers))
        return len(buffers)

    # Encoding (see backend.encode_ops)
    def new_encoder(self):
        return self.device.createCommandEncoder()

    def begin_pass(self, encoder, timestamps):
        if timestamps is None:
            return encoder.beginComputePass()
        qs, begin, end = timestamps
        return encoder.beginComputePass(
            _js({"timestampWrites": {"querySet": qs, "beginningOfPassWriteIndex": begin, "endOfPassWriteIndex": end}})
        )

    def end_pass(self, cpass):
        cpass.end()

    def finish(self, encoder):
        return encoder.finish()

    def dispatch(self, cpass, pipeline, bind_group, x, y, z):
        cpass.setPipeline(pipeline)
        cpass.setBindGroup(0, bind_group)
        cpass.dispatchWorkgroups(x, y, z)

    def copy(self, encoder, src, src_offset, dst, dst_offset, size):
        encoder.copyBufferToBuffer(src, src_offset, dst, dst_offset, size)

    def resolve(self, encoder, query_set, count, buffer):
        encoder.resolveQuerySet(query_set, 0, count, buffer, 0)

    def make_plan(self, ops, max_per_submit):
        objects, index, flat = [], {}, []

        def ref(obj):
            key = id(obj)
            if key not in index:
                index[key] = len(objects)
                objects.append(obj)
            return index[key]

        for op in ops:
            if op[0] == "dispatch":
                flat += [0, ref(op[1]), ref(op[2]), op[3], op[4], op[5]]
            else:
                flat += [1, ref(op[1]), op[2] // 4, ref(op[3]), op[4] // 4, op[5] // 4]
        return doppler_js.makePlan(self.device, _js(objects), _js(flat), max_per_submit)

    def replay(self, plan, timing=None):
        return doppler_js.replay(plan, *(timing or ()))

    async def read_buffer(self, buffer, offset, size):
        data = await doppler_js.readBuffer(self.device, buffer, offset, size)
        return data.to_bytes()

    def present(self, buffer, offset, width, height, canvas):
        doppler_js.present(self.device, canvas, buffer, offset, width, height)

    async def fence(self):
        await self.device.queue.onSubmittedWorkDone()

    def work_done(self):
        """A promise for the work submitted so far, to await later."""
        return self.device.queue.onSubmittedWorkDone()

    def lost(self):
        return self._watch.lost or None  # JS null arrives as Pyodide's (falsy) jsnull, not None

    def take_errors(self):
        state = json.loads(doppler_js.takeErrors(self._watch))
        return state["errors"], state["lost"]
