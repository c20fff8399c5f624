"""Buffer pool: size-bucketed reuse of storage buffers under a byte budget, with current and peak bytes.

Buckets grow geometrically, 8 per octave (at most 12.5% slack), so activations of similar size share buffers.
Over budget, cached free buffers are destroyed first; if that is not enough, BudgetError lists the largest holders.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..errors import BudgetError
from .backend import STORAGE_USAGE

MIN_BUCKET = 256  # bytes; also WebGPU's storage offset alignment
BUCKETS_PER_OCTAVE = 8


def bucket_size(nbytes: int) -> int:
    if nbytes <= MIN_BUCKET:
        return MIN_BUCKET
    octave = 1 << (nbytes - 1).bit_length() - 1  # largest power of two below nbytes
    step = max(MIN_BUCKET, octave // BUCKETS_PER_OCTAVE)
    return -(-nbytes // step) * step


@dataclass(eq=False)
class Allocation:
    buffer: object
    size: int  # bytes of the buffer (the bucket)
    label: str


def _fmt(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


@dataclass
class BufferPool:
    backend: object
    budget_bytes: int
    usage: int = STORAGE_USAGE
    before_destroy: object = None  # called before cached buffers are destroyed
    current_bytes: int = 0
    peak_bytes: int = 0
    _free: dict = field(default_factory=lambda: defaultdict(list))
    _live: set = field(default_factory=set)
    pinned: set = field(default_factory=set)  # free buffers trim must keep: a plan being recorded still uses them

    def acquire(self, nbytes: int, label: str, exact: bool = False) -> Allocation:
        """A buffer of at least nbytes: from its size bucket, or (exact, for weights) rounded to 256 bytes only."""
        size = -(-nbytes // MIN_BUCKET) * MIN_BUCKET if exact else bucket_size(nbytes)
        alloc = self._reuse(size, label)
        if alloc is None:
            self._make_room(size, label)
            alloc = Allocation(self.backend.create_buffer(size, self.usage, label), size, label)
            self.current_bytes += size
            self.peak_bytes = max(self.peak_bytes, self.current_bytes)
            self._live.add(alloc)
        return alloc

    def reuse(self, nbytes: int, label: str) -> Allocation | None:
        """A cached free buffer of nbytes' bucket (live again), or None: nothing is allocated."""
        return self._reuse(bucket_size(nbytes), label)

    def _reuse(self, size: int, label: str) -> Allocation | None:
        free = self._free.get(size)
        if not free:
            return None
        alloc = free.pop()
        alloc.label = label
        self._live.add(alloc)
        return alloc

    def release(self, alloc: Allocation) -> None:
        self._live.discard(alloc)
        self._free[alloc.size].append(alloc)

    def holds(self, alloc: Allocation) -> bool:
        """Whether `alloc` is live (acquired and not yet released)."""
        return alloc in self._live

    def claim(self, allocs) -> list[Allocation]:
        """Take those of `allocs` that are free back out of the pool (live again, for a new owner)."""
        claimed = []
        for alloc in dict.fromkeys(allocs):
            free = self._free.get(alloc.size, [])
            if alloc in free:
                free.remove(alloc)
                self._live.add(alloc)
                claimed.append(alloc)
        return claimed

    def trim(self) -> None:
        """Destroy every cached free buffer but the pinned ones (e.g. when a component is released). Work already
        queued may still read them: `before_destroy` (the Gpu's flush) submits it first, and WebGPU keeps a destroyed
        buffer alive for work already submitted."""
        if self.before_destroy is not None and any(self._free.values()):
            self.before_destroy()
        kept = defaultdict(list)
        for size, allocs in self._free.items():
            for alloc in allocs:
                if alloc in self.pinned:
                    kept[size].append(alloc)
                    continue
                self.backend.destroy_buffer(alloc.buffer)
                self.current_bytes -= size
        self._free = kept

    @property
    def live_bytes(self) -> int:
        return sum(a.size for a in self._live)

    def holders(self, top: int = 5) -> list[tuple[str, int]]:
        by_label: dict[str, int] = defaultdict(int)
        for a in self._live:
            by_label[a.label] += a.size
        return sorted(by_label.items(), key=lambda kv: -kv[1])[:top]

    def _make_room(self, size: int, label: str) -> None:
        if self.current_bytes + size <= self.budget_bytes:
            return
        self.trim()
        if self.current_bytes + size > self.budget_bytes:
            largest = ", ".join(f"{name} {_fmt(n)}" for name, n in self.holders())
            raise BudgetError(
                f"allocating {label} ({_fmt(size)}) would exceed the GPU memory budget of {_fmt(self.budget_bytes)} "
                f"({_fmt(self.current_bytes)} in use; largest holders: {largest}). Raise the budget, release a "
                f"component, or use smaller weights (f16, int8) or a smaller image."
            )
