"""Per-component weights on the GPU: one buffer per (component, shard) holding the byte range of that component's
tensors, filled by one shard upload; each tensor is a view at its manifest offset (256-aligned by the converter),
so loading walks no tensor in Python and copies nothing twice. Components load and release one at a time.
Convolution weights are stored as the checkpoint has them ([Cout, Cin, KH, KW]); the implicit-GEMM layers ask for
channels last (`conv_weight`) as the model is built, and `apply_layouts` rewrites those in place on the GPU once.
(Winograd layers read the stored layout and transform it per call: see nn.Conv2d.)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..errors import GpuError
from ..gpu.tensor import Tensor
from ..ops import conv2d
from .bounded import run_bounded

# Manifest storage dtypes -> GPU tensor dtypes.
GPU_DTYPES = {"f32": "f32", "f16": "f16", "int8": "i8"}
# Shards of a component uploading at once. In the page each shard's OPFS read and XXH32 run in a worker of
# app/shard_reader.mjs's pool (one per upload in flight), while this worker writes the shards read to the GPU.
# Each holds its bytes while in flight (up to ~56 MB a shard for SD 1.5), so a few, not all.
SHARD_UPLOADS_IN_FLIGHT = 4


@dataclass
class ComponentWeights:
    name: str
    tensors: dict[str, Tensor]
    allocations: list = field(default_factory=list)
    pending_layouts: list = field(default_factory=list)  # (stored tensor, its channels-last view) to rewrite
    winograd_u: int = 0  # elements of the largest transformed weights U of its Winograd convs: their shared scratch

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

    @property
    def pending(self) -> bool:
        """Whether layouts asked for are still to be made (`apply_layouts`)."""
        return bool(self.pending_layouts)

    async def apply_layouts(self, gpu) -> None:
        """Rewrite the weights asked for by `conv_weight` in place, through one scratch copy each."""
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
        self.allocations.clear()


async def load_component(gpu, store, manifest, name: str) -> ComponentWeights:
    """Upload one component's tensors from `store` (already holding every shard: see the stores' `ensure`),
    SHARD_UPLOADS_IN_FLIGHT shards at a time. A shard that fails (a corrupt cache) frees the component's buffers,
    once the uploads under way have finished, and raises its error."""
    component = manifest.components.present()[name]
    by_shard = defaultdict(list)
    for entry in component.tensors:
        by_shard[entry.shard].append(entry)
    weights = ComponentWeights(name, {})
    jobs = []
    for index, entries in sorted(by_shard.items()):
        start = min(e.offset for e in entries)
        end = max(e.offset + e.bytes for e in entries)
        length = -(-(end - start) // 4) * 4
        alloc = gpu.pool.acquire(length, f"{name}.shard{index}", exact=True)
        weights.allocations.append(alloc)
        for e in entries:
            weights.tensors[e.name] = Tensor(tuple(e.shape), GPU_DTYPES[e.dtype], alloc, e.offset - start)
        place = [(alloc.buffer, 0, start, length)]
        jobs.append(lambda index=index, place=place: store.upload(gpu, index, manifest.shards[index], place))
    try:
        await run_bounded(jobs, SHARD_UPLOADS_IN_FLIGHT)
    except BaseException:
        weights.release(gpu)
        raise
    return weights
