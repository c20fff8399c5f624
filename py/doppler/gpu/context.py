"""`Gpu`: the one object kernels and components use. Tensors from the pool, kernels from the registry, dispatches
encoded eagerly or recorded into plans, readbacks and fences counted. It knows no model and no config file:
budget, limits and the kernel folder come in as plain values.

Uniforms: each dispatch gets its own 256-byte slot (a queue write lands before the next submit, so dispatches in one
submit must not share a slot). Eager slots come from an arena recycled after each submit; a plan owns its slots.
"""

from __future__ import annotations

import struct
from bisect import bisect_left, insort
from contextlib import contextmanager
from pathlib import Path

from ..errors import DeviceLostError, GpuError
from .backend import COPY_SRC, QUERY_RESOLVE, UNIFORM_USAGE
from .kernels import Kernel, KernelRegistry
from .pool import BufferPool, bucket_size
from .stats import GpuStats
from .tensor import Tensor, storage_bytes

UNIFORM_SLOT = 256  # minUniformBufferOffsetAlignment upper bound across devices
UNIFORM_PAGE = 64 * 1024  # maxUniformBufferBindingSize's guaranteed minimum
SLOTS_PER_PAGE = UNIFORM_PAGE // UNIFORM_SLOT
DEFAULT_BUDGET = 4 * 2**30
DEFAULT_MAX_DISPATCHES_PER_SUBMIT = 512
# Eager work is submitted every this many dispatches, so the GPU starts while Python queues the rest (an eager VAE
# decode takes ~30 ms of host time for ~100 ms of GPU work on an H100: submitted only at its readback, the two add up).
EAGER_FLUSH_DISPATCHES = 32
MAX_QUERIES = 4096  # WebGPU's maxQuerySetSize


class _UniformArena:
    """Uniform slots in pages of one buffer each. `slot` stages a dispatch's bytes on the host; `upload` writes what
    was staged since the last upload, one writeBuffer per page (one FFI call per page, not per dispatch), and must
    run before the dispatches using those slots are submitted."""

    def __init__(self, backend, label: str):
        self.backend = backend
        self.label = label
        self.pages: list = []
        self.staged: list[bytearray] = []  # each page's bytes, as the host wrote them
        self.used = 0  # slots handed out
        self.uploaded = 0  # slots written to the GPU

    def slot(self, data: bytes) -> tuple:
        if len(data) > UNIFORM_SLOT:
            raise GpuError(f"a uniform of {len(data)} bytes exceeds the {UNIFORM_SLOT}-byte slot")
        page, index = divmod(self.used, SLOTS_PER_PAGE)
        if page == len(self.pages):
            self.pages.append(self.backend.create_buffer(UNIFORM_PAGE, UNIFORM_USAGE, f"{self.label}[{page}]"))
            self.staged.append(bytearray(UNIFORM_PAGE))
        self.used += 1
        offset, size = index * UNIFORM_SLOT, -(-len(data) // 16) * 16
        self.staged[page][offset:offset + size] = bytes(data) + bytes(size - len(data))
        return (self.pages[page], offset, size)

    def upload(self) -> None:
        for page in range(self.uploaded // SLOTS_PER_PAGE, -(-self.used // SLOTS_PER_PAGE)):
            first = max(self.uploaded - page * SLOTS_PER_PAGE, 0) * UNIFORM_SLOT
            end = min(self.used - page * SLOTS_PER_PAGE, SLOTS_PER_PAGE) * UNIFORM_SLOT
            self.backend.write_buffer(self.pages[page], first, memoryview(self.staged[page])[first:end])
        self.uploaded = self.used

    def reset(self) -> None:
        self.used = self.uploaded = 0

    def destroy(self) -> None:
        for page in self.pages:
            self.backend.destroy_buffer(page)
        self.pages.clear()


class Plan:
    """A recorded op list, replayed with one backend call (one FFI call in the browser).

    Its intermediates (tensors freed while recording) stay its own for every replay. Plans replay one at a time on
    one queue and write an intermediate before reading it, so a recording also places intermediates in buffers other
    plans own (`borrow`): the UNet step and the VAE decode then share one working set instead of adding two."""

    def __init__(self, gpu: "Gpu", label: str):
        self.gpu = gpu
        self.label = label
        self.ops: list[tuple] = []
        self.kernels: list[str] = []  # label per dispatch, for stats
        self.outputs: list[str] = []  # label of each dispatch's last tensor binding (its output), for profiles
        self.uniforms = _UniformArena(gpu.backend, f"{label}.uniforms")
        self.freed: list = []  # buffers freed while recording: the plan still reads and writes them
        self.owned: list = []
        self.lendable: list = []  # other plans' buffers this recording may take, smallest first
        self.borrowed: set = set()  # those it took: the plan owns them too
        self.lent: set = set()  # those holding a tensor of the recording that is not freed yet
        self.handle = None

    def borrow(self, nbytes: int, label: str):
        """The smallest lendable buffer of at least nbytes' bucket, or None. (Capping the slack, e.g. at 2x so that a
        small tensor never takes a big buffer, raised SD 1.5's 512x512 peak: 3.37 -> 3.49 GiB.)"""
        i = bisect_left(self.lendable, bucket_size(nbytes), key=lambda a: a.size)
        if i == len(self.lendable):
            return None
        alloc = self.lendable.pop(i)
        alloc.label = label
        self.borrowed.add(alloc)
        self.lent.add(alloc)
        return alloc

    def give_back(self, alloc) -> None:
        self.lent.discard(alloc)
        insort(self.lendable, alloc, key=lambda a: a.size)

    def replay(self) -> None:
        self.gpu.replay(self)

    def destroy(self) -> None:
        self.uniforms.destroy()
        self.gpu.disown(self)


class Gpu:
    def __init__(self, backend, kernel_dir: Path, budget_bytes: int = DEFAULT_BUDGET,
                 max_dispatches_per_submit: int = DEFAULT_MAX_DISPATCHES_PER_SUBMIT, profile: bool = False):
        self.backend = backend
        self.caps = backend.caps
        self.kernels = KernelRegistry(backend, kernel_dir)
        self.pool = BufferPool(backend, budget_bytes, before_destroy=self.flush)
        self.stats = GpuStats()
        self.max_dispatches_per_submit = max_dispatches_per_submit
        self._pending: list[tuple] = []
        self._pending_kernels: list[str] = []
        self._arena = _UniformArena(backend, "uniforms")
        self._recording: Plan | None = None
        self._plan_buffers: dict = {}  # Allocation -> the plans that own it (see Plan)
        self._scopes: list[list] = []  # allocations made inside each open `scope`, innermost last
        if profile and not self.caps.has("timestamp-query"):
            raise GpuError("profiling needs the 'timestamp-query' feature, which this GPU does not offer")
        self.profile = profile
        self._timings: list[tuple] = []  # (query_set, resolve_buffer, labels) awaiting `sync`

    @classmethod
    async def open(cls, backend: str, kernel_dir: Path, limit_overrides: dict | None = None, **kwargs) -> "Gpu":
        if backend == "browser":
            from .backend_browser import BrowserBackend as impl
        elif backend == "native":
            from .backend_native import NativeBackend as impl
        else:
            raise GpuError(f"unknown GPU backend {backend!r}; choose 'browser' or 'native'")
        return cls(await impl.open(limit_overrides=limit_overrides), kernel_dir, **kwargs)

    @property
    def recording(self) -> bool:
        """Whether dispatches go into a plan (replayed without host work a dispatch) rather than run now."""
        return self._recording is not None

    @property
    def max_binding(self) -> int:
        return self.caps.limits["maxStorageBufferBindingSize"]

    # tensors
    def tensor(self, shape, dtype: str, label: str, kept: bool = False) -> Tensor:
        """A tensor from the pool. Inside a recording, one that outlives it (an output, uploaded constants) must be
        `kept`: the others may lie in buffers of other plans, whose replays overwrite them."""
        shape = tuple(int(d) for d in shape)
        limit = self.caps.limits.get("maxBufferSize")
        nbytes = storage_bytes(shape, dtype)
        if limit is not None and nbytes > limit:
            raise GpuError(f"{label} {shape} {dtype} needs {nbytes} bytes, over this GPU's maxBufferSize {limit}")
        alloc = self.pool.reuse(nbytes, label)
        if alloc is None and self._recording is not None and not kept:
            alloc = self._recording.borrow(nbytes, label)
        if alloc is None:
            alloc = self.pool.acquire(nbytes, label)
        if self._scopes:
            self._scopes[-1].append(alloc)
        return Tensor(shape, dtype, alloc)

    def upload(self, tensor: Tensor, data) -> None:
        data = memoryview(data).cast("B")
        if self._recording is not None and tensor.alloc in self._recording.lent:
            raise GpuError(f"{tensor.label}: uploaded while recording plan {self._recording.label}, into another "
                           f"plan's buffer, which that plan's replays overwrite; make it with "
                           f"gpu.tensor(..., kept=True)")
        if len(data) > tensor.nbytes:
            raise GpuError(f"{tensor.label}: {len(data)} bytes do not fit its {tensor.nbytes}")
        self.backend.write_buffer(tensor.alloc.buffer, tensor.offset, bytes(data) + bytes(-len(data) % 4))

    def free(self, *tensors: Tensor) -> None:
        for t in tensors:
            self._release(t.alloc)

    def _release(self, alloc) -> None:
        recording = self._recording
        if recording is not None and alloc in recording.lent:
            recording.give_back(alloc)
            return
        self.pool.release(alloc)
        if recording is not None:
            recording.freed.append(alloc)
            self.pool.pinned.add(alloc)  # free for the rest of the recording to reuse, but never destroyed

    def _holds(self, alloc) -> bool:
        """Whether alloc holds a tensor not freed yet (a borrowed buffer stays live for the plans that own it)."""
        if self._recording is not None and alloc in self._recording.borrowed:
            return alloc in self._recording.lent
        return self.pool.holds(alloc)

    @contextmanager
    def scope(self):
        """Tensors made inside the block and still live when it ends, also by an exception, are freed then: work
        that stops part-way (a tiled decode's statistics pass) leaves nothing behind without tracking each tensor."""
        made: list = []
        self._scopes.append(made)
        try:
            yield
        finally:
            self._scopes.pop()
            for alloc in dict.fromkeys(made):
                if self._holds(alloc):
                    self._release(alloc)

    async def read(self, tensor: Tensor) -> bytes:
        """The one way tensor data leaves the GPU; counted as a readback."""
        self.flush()
        data = await self.backend.read_buffer(tensor.alloc.buffer, tensor.offset, tensor.nbytes)
        self.stats.readbacks += 1
        self.stats.readback_bytes += len(data)
        self.raise_device_errors()
        return data

    def present(self, image: Tensor, width: int, height: int, canvas) -> None:
        """Show `image` (width x height u32 RGBA8 pixels, row-major) on `canvas` (the page's OffscreenCanvas): queued
        work is submitted first, then a GPU-side copy into the canvas's texture. Not a readback."""
        if image.dtype != "u32" or image.numel != width * height:
            raise GpuError(f"present: {image.label} {image.shape} {image.dtype} must be {width} x {height} u32 pixels")
        self.flush()
        self.backend.present(image.alloc.buffer, image.offset, width, height, canvas)
        self.stats.presents += 1
        self.stats.submits += 1

    def work_done(self):
        """An awaitable for the work submitted so far (flushed now), to await later, so the host goes on queueing
        while the GPU works (a denoise loop waits for step i - 1 after queueing step i). Counted as a fence when
        awaited; timestamps (profile) are read by `sync` only."""
        self.flush()
        done = self.backend.work_done()

        async def wait():
            await done
            self.stats.fences += 1
        return wait()

    async def sync(self) -> None:
        """Wait for submitted work (progress, timing); counted as a fence. When profiling, the GPU time of every
        dispatch since the last sync is read (counted as timestamp resolves, apart from readbacks)."""
        self.flush()
        await self.backend.fence()
        self.stats.fences += 1
        self.stats.last_timings = []
        for query_set, buffer, labels in self._timings:
            raw = await self.backend.read_buffer(buffer, 0, 16 * len(labels))
            stamps = struct.unpack(f"<{2 * len(labels)}Q", raw)
            for i, label in enumerate(labels):
                ms = max(0, stamps[2 * i + 1] - stamps[2 * i]) / 1e6
                self.stats.gpu_ms[label] += ms
                self.stats.last_timings.append(ms)
            self.stats.timestamp_resolves += 1
            self.backend.destroy_buffer(buffer)
            query_set.destroy()
        self._timings.clear()
        self.raise_device_errors()

    def _timing_for(self, labels: list[str]) -> tuple | None:
        """A query set and resolve buffer for these dispatches, when profiling."""
        if not self.profile or not labels:
            return None
        if 2 * len(labels) > MAX_QUERIES:
            raise GpuError(f"profiling {len(labels)} dispatches at once exceeds {MAX_QUERIES // 2}: sync more often")
        query_set = self.backend.create_query_set(2 * len(labels))
        buffer = self.backend.create_buffer(16 * len(labels), QUERY_RESOLVE | COPY_SRC, "timestamps")
        self._timings.append((query_set, buffer, list(labels)))
        return (query_set, buffer)

    def raise_device_errors(self) -> None:
        errors, lost = self.backend.take_errors()
        if lost:
            raise DeviceLostError(f"the GPU device was lost ({lost}); the next job opens a fresh device")
        if errors:
            oom = [e for e in errors if "OutOfMemory" in e]
            hint = "the GPU ran out of memory: lower the budget or image size" if oom else "a GPU validation error"
            raise GpuError(f"{hint}: " + "; ".join(errors[:5]))

    # kernels
    async def kernel(self, name: str, entry: str = "main", overrides: dict | None = None) -> Kernel:
        return await self.kernels.get(name, entry, overrides)

    def dispatch(self, kernel: Kernel, bindings, groups, uniform: bytes | None = None) -> None:
        """Queue one dispatch. `bindings` are tensors or (buffer, offset, size) views in binding order (None for
        a binding the entry point does not use); the uniform, if any, takes the next binding."""
        if any(g < 1 or g > self.caps.limits.get("maxComputeWorkgroupsPerDimension", 65535) for g in groups):
            raise GpuError(f"{kernel.label}: workgroup counts {groups} out of range (1..maxComputeWorkgroupsPerDimension)")
        arena = self._recording.uniforms if self._recording else self._arena
        entries = [(i, b.binding() if isinstance(b, Tensor) else b) for i, b in enumerate(bindings) if b is not None]
        if uniform is not None:
            entries.append((len(bindings), arena.slot(uniform)))
        bind_group = self.backend.create_bind_group(kernel.pipeline, entries, kernel.label)
        x, y, z = (tuple(groups) + (1, 1))[:3]
        op = ("dispatch", kernel.pipeline, bind_group, x, y, z)
        if self._recording is not None:
            self._recording.ops.append(op)
            self._recording.kernels.append(kernel.label)
            outputs = [b for b in bindings if isinstance(b, Tensor)]
            self._recording.outputs.append(outputs[-1].label if outputs else "")
        else:
            self._pending.append(op)
            self._pending_kernels.append(kernel.label)
            if len(self._pending) >= EAGER_FLUSH_DISPATCHES:
                self.flush()

    def copy(self, src: Tensor, dst: Tensor, nbytes: int | None = None, src_offset: int = 0, dst_offset: int = 0):
        n = src.nbytes if nbytes is None else nbytes
        op = ("copy", src.alloc.buffer, src.offset + src_offset, dst.alloc.buffer, dst.offset + dst_offset, n)
        (self._recording.ops if self._recording else self._pending).append(op)

    def flush(self) -> None:
        if not self._pending:
            return
        self._arena.upload()
        timing = self._timing_for(self._pending_kernels)
        self.stats.submits += self.backend.submit(self._pending, self.max_dispatches_per_submit, timing)
        self.stats.dispatches.update(self._pending_kernels)
        self._pending, self._pending_kernels = [], []
        self._arena.reset()

    # plans
    @contextmanager
    def record(self, label: str, borrow: bool = True):
        """Dispatches inside the block go into a plan instead of running: `with gpu.record("unet") as plan:`.
        With `borrow`, intermediates may lie in other plans' buffers (Plan), so tensors that outlive the block are
        made before it or `kept` (gpu.tensor); without, the block may make its outputs as it likes."""
        if self._recording is not None:
            raise GpuError(f"already recording plan {self._recording.label}; plans do not nest")
        self.flush()
        plan = self._recording = Plan(self, label)
        if borrow:
            plan.lendable = sorted(self._plan_buffers, key=lambda a: a.size)
        try:
            yield plan
        finally:
            self._recording = None
            self.pool.pinned.difference_update(plan.freed)
        if plan.lent:
            names = ", ".join(sorted({a.label for a in plan.lent}))
            raise GpuError(f"plan {label}: {names} outlive the recording in buffers of other plans; make a plan's "
                           f"outputs before recording it, or with gpu.tensor(..., kept=True)")
        plan.uniforms.upload()
        # Intermediates freed inside the recording are still the plan's at every replay: keep them out of the pool.
        plan.owned = self.pool.claim(plan.freed) + list(plan.borrowed)
        for alloc in plan.owned:
            self._plan_buffers.setdefault(alloc, set()).add(plan)
        plan.freed, plan.lendable = [], []
        plan.handle = self.backend.make_plan(plan.ops, self.max_dispatches_per_submit)

    def disown(self, plan: Plan) -> None:
        """Give a destroyed plan's buffers back to the pool, but those other plans still own."""
        for alloc in plan.owned:
            owners = self._plan_buffers[alloc]
            owners.discard(plan)
            if not owners:
                del self._plan_buffers[alloc]
                self.pool.release(alloc)
        plan.owned.clear()

    def replay(self, plan: Plan) -> None:
        self.flush()
        self.stats.submits += self.backend.replay(plan.handle, self._timing_for(plan.kernels))
        self.stats.replays += 1
        self.stats.dispatches.update(plan.kernels)

    def summary(self) -> dict:
        return {**self.caps.summary(), "kernelsCompiled": len(self.kernels), "stats": self.stats.summary(self.pool)}
