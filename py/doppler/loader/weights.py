"""Per-component weights on the GPU: one buffer per (component, shard) holding the byte range of that component's
tensors, filled by one shard upload; each tensor is a view at its manifest offset (256-aligned by the converter),
so loading walks no tensor in Python and copies nothing twice. Components load and release one at a time.
Convolution weights are stored as the checkpoint has them ([Cout, Cin, KH, KW]); the layers that read them ask for
channels last (`conv_weight`) or Winograd-transformed copies (`request_winograd`) as the model is built, and
`apply_layouts` makes those on the GPU once: channels last in place, Winograd weights in buffers of their own.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..errors import GpuError
from ..gpu.tensor import Tensor, storage_bytes
from ..ops import conv2d, winograd

# Manifest storage dtypes -> GPU tensor dtypes.
GPU_DTYPES = {"f32": "f32", "f16": "f16", "int8": "i8"}


@dataclass
class ComponentWeights:
    name: str
    tensors: dict[str, Tensor]
    allocations: list = field(default_factory=list)
    pending_layouts: list = field(default_factory=list)  # (stored tensor, its channels-last view) to rewrite
    pending_winograd: list = field(default_factory=list)  # keys of 3x3 weights to transform
    winograd_weights: dict[str, Tensor] = field(default_factory=dict)  # key -> U (16, Cout, Cin), by apply_layouts

    def __getitem__(self, key: str) -> Tensor:
        tensor = self.tensors.get(key)
        if tensor is None:
            raise KeyError(f"{self.name} has no tensor {key!r}: the manifest's tensor table and its architecture "
                           f"numbers disagree; convert the model again")
        return tensor

    def get(self, key: str) -> Tensor | None:
        return self.tensors.get(key)

    def conv_weight(self, key: str) -> Tensor:
        """The convolution weight `key` seen channels last, [Cout, KH, KW, Cin], as conv2d reads it; its bytes are
        rewritten by `apply_layouts` (1x1 kernels are the same bytes either way)."""
        stored = self[key]
        if len(stored.shape) != 4:
            raise GpuError(f"{self.name}: {key} {stored.shape} is not a convolution weight [Cout, Cin, KH, KW]")
        cout, cin, kh, kw = stored.shape
        view = Tensor((cout, kh, kw, cin), stored.dtype, stored.alloc, stored.offset)
        if kh * kw > 1:
            self.pending_layouts.append((stored, view))
        return view

    def request_winograd(self, key: str) -> None:
        """Ask for the 3x3 convolution weight `key` transformed for Winograd F(2x2, 3x3): `apply_layouts` puts
        U (16, Cout, Cin), in the weight's storage dtype, in `winograd_weights[key]`; the stored weight stays."""
        stored = self[key]
        if len(stored.shape) != 4 or stored.shape[2:] != (winograd.KERNEL, winograd.KERNEL):
            raise GpuError(f"{self.name}: {key} {stored.shape} is not a 3x3 convolution weight [Cout, Cin, 3, 3]")
        self.pending_winograd.append(key)

    @property
    def pending(self) -> bool:
        """Whether layouts asked for are still to be made (`apply_layouts`)."""
        return bool(self.pending_layouts or self.pending_winograd)

    async def apply_layouts(self, gpu) -> None:
        """Make the weights asked for by `request_winograd` (each in an exact-size buffer the component owns, from
        the stored weight before any rewrite) and by `conv_weight` (rewritten in place through one scratch copy)."""
        for key in self.pending_winograd:
            stored = self[key]
            shape = winograd.weight_shape(*stored.shape[:2])
            alloc = gpu.pool.acquire(storage_bytes(shape, stored.dtype), f"{self.name}.{key}.winograd", exact=True)
            self.allocations.append(alloc)
            self.winograd_weights[key] = Tensor(shape, stored.dtype, alloc)
            await winograd.winograd_weight(gpu, stored, self.winograd_weights[key])
        self.pending_winograd.clear()
        for stored, view in self.pending_layouts:
            scratch = gpu.tensor(stored.shape, stored.dtype, f"{self.name}.layout")
            gpu.copy(stored, scratch)
            await conv2d.channels_last_weight(gpu, scratch, view)
            gpu.free(scratch)
        self.pending_layouts.clear()
        await gpu.sync()

    @property
    def nbytes(self) -> int:
        return sum(a.size for a in self.allocations)

    def release(self, gpu) -> None:
        """Give the component's buffers back and destroy them (weights are not reused as activations)."""
        for alloc in self.allocations:
            gpu.pool.release(alloc)
        gpu.pool.trim()
        self.tensors.clear()
        self.winograd_weights.clear()
        self.allocations.clear()


async def load_component(gpu, store, manifest, name: str, progress=None) -> ComponentWeights:
    """Upload one component's tensors from `store` (already holding every shard: see the stores' `ensure`)."""
    component = manifest.components.present()[name]
    by_shard = defaultdict(list)
    for entry in component.tensors:
        by_shard[entry.shard].append(entry)
    weights = ComponentWeights(name, {})
    for index, entries in sorted(by_shard.items()):
        start = min(e.offset for e in entries)
        end = max(e.offset + e.bytes for e in entries)
        length = -(-(end - start) // 4) * 4
        alloc = gpu.pool.acquire(length, f"{name}.shard{index}", exact=True)
        weights.allocations.append(alloc)
        for e in entries:
            weights.tensors[e.name] = Tensor(tuple(e.shape), GPU_DTYPES[e.dtype], alloc, e.offset - start)
        shard = manifest.shards[index]
        await store.upload(gpu, index, shard, [(alloc.buffer, 0, start, length)])
        if progress is not None:
            progress(name, index)
    return weights
