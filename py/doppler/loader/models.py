"""Making a model available: storage quota checked, every shard fetched (resuming what is partly cached) and
verified, with byte progress and an ETA. Works with any store of the `stores` contract."""

from __future__ import annotations

import asyncio
import time

from ..manifest import Manifest
from .bounded import run_bounded


# Shards fetched at once. One at a time, the connection idled between shards (the shard's checks, the next request's
# start); with three in flight a throttled first visit took 18.5-18.8 s instead of 21.3-21.4 (bench/download.py,
# bench/RESULTS.md session 17).
DOWNLOADS_IN_FLIGHT = 3


async def ensure_model(manifest: Manifest, store, emit=None, in_flight: int = DOWNLOADS_IN_FLIGHT,
                       on_shard=None) -> dict:
    """Fetch what is missing, `in_flight` shards at a time (run_bounded: a failure stops new ones, those in flight
    finish and what they fetched stays cached); returns {"fetchedBytes", "totalBytes", "shards"}. `emit(name, data)`
    gets progress; `on_shard(index)` is called as each shard is there (ComponentArrivals.add)."""
    total = sum(s.size for s in manifest.shards)
    missing = await store.missing_bytes(manifest)
    await store.check_quota(manifest, missing)
    cached = total - missing
    started = time.monotonic()
    arrived: dict[int, int] = {}  # shard index -> bytes fetched so far

    def progress(index: int, shard_bytes: int) -> None:
        arrived[index] = shard_bytes
        if emit is None:
            return
        now = sum(arrived.values())
        rate = now / max(time.monotonic() - started, 1e-3)
        eta = round((total - cached - now) / rate, 1) if rate > 0 else None
        emit("download", {"model": manifest.id, "shard": index, "bytes": cached + now, "totalBytes": total,
                          "etaSeconds": eta})

    async def fetch(index: int, shard) -> int:
        fetched = await store.ensure(index, shard, progress)
        if on_shard is not None:
            on_shard(index)
        return fetched

    fetched = await run_bounded([lambda i=i, s=s: fetch(i, s) for i, s in enumerate(manifest.shards)], in_flight)
    return {"fetchedBytes": sum(fetched), "totalBytes": total, "shards": len(manifest.shards)}


class ComponentArrivals:
    """Which components have all their shards cached as a download goes (`add`: ensure_model's on_shard), so that
    their weights may upload while the other shards download (`wait(name)`)."""

    def __init__(self, manifest: Manifest):
        self.missing = {name: {e.shard for e in c.tensors} for name, c in manifest.components.present().items()}
        self.events = {name: asyncio.Event() for name in self.missing}

    def add(self, index: int) -> None:
        for name, shards in self.missing.items():
            shards.discard(index)
            if not shards:
                self.events[name].set()

    def fail(self) -> None:
        """The download stopped: every wait returns, False where shards are missing."""
        for event in self.events.values():
            event.set()

    async def wait(self, name: str) -> bool:
        """True once the component's shards are all in; False if the download failed first."""
        await self.events[name].wait()
        return not self.missing[name]
