"""Making a model available: storage quota checked, every shard fetched (resuming what is partly cached) and
verified, with byte progress and an ETA. Works with any store of the `stores` contract."""

from __future__ import annotations

import time

from ..manifest import Manifest


async def ensure_model(manifest: Manifest, store, emit=None) -> dict:
    """Fetch what is missing; returns {"fetchedBytes", "totalBytes", "shards"}. `emit(name, data)` gets progress."""
    total = sum(s.size for s in manifest.shards)
    cached = total - await store.missing_bytes(manifest)
    await store.check_quota(manifest)
    started = time.monotonic()
    fetched = 0

    def progress(index: int, shard_bytes: int) -> None:
        if emit is None:
            return
        now = fetched + shard_bytes
        rate = now / max(time.monotonic() - started, 1e-3)
        eta = round((total - cached - now) / rate, 1) if rate > 0 else None
        emit("download", {"model": manifest.id, "shard": index, "bytes": cached + now, "totalBytes": total,
                          "etaSeconds": eta})

    for index, shard in enumerate(manifest.shards):
        fetched += await store.ensure(index, shard, progress)
    return {"fetchedBytes": fetched, "totalBytes": total, "shards": len(manifest.shards)}
