"""Making a model available: storage quota checked, every shard fetched (resuming what is partly cached) and
verified, with byte progress and an ETA. Works with any store of the `stores` contract."""

from __future__ import annotations

import asyncio
import time

from ..manifest import Manifest


# Shards fetched at once. One at a time, the connection idled between shards (the shard's checks, the next request's
# start); with three in flight a throttled first visit took 18.5-18.8 s instead of 21.3-21.4 (bench/download.py,
# bench/RESULTS.md session 17).
DOWNLOADS_IN_FLIGHT = 3


async def ensure_model(manifest: Manifest, store, emit=None, in_flight: int = DOWNLOADS_IN_FLIGHT) -> dict:
    """Fetch what is missing, `in_flight` shards at a time; returns {"fetchedBytes", "totalBytes", "shards"}.
    `emit(name, data)` gets progress. After a shard fails no other starts; those in flight finish (what they
    fetched stays cached), then the first failure, in shard order, is raised."""
    total = sum(s.size for s in manifest.shards)
    cached = total - await store.missing_bytes(manifest)
    await store.check_quota(manifest)
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

    slots = asyncio.Semaphore(in_flight)
    failed = False

    async def fetch(index: int, shard) -> int:
        nonlocal failed
        async with slots:
            if failed:
                return 0
            try:
                return await store.ensure(index, shard, progress)
            except BaseException:
                failed = True
                raise

    results = await asyncio.gather(*(fetch(i, s) for i, s in enumerate(manifest.shards)), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return {"fetchedBytes": sum(results), "totalBytes": total, "shards": len(manifest.shards)}
