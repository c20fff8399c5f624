"""The loader's per-shard work (downloads, uploads), a few shards at a time."""

from __future__ import annotations

import asyncio


async def run_bounded(jobs: list, limit: int) -> list:
    """Await `jobs` (callables that return a coroutine), at most `limit` at once, started in order; their results in
    order. After one fails no other starts; those under way finish (nothing they use is freed under them), then the
    first failure, in order, is raised."""
    slots = asyncio.Semaphore(limit)
    failed = False

    async def run(job):
        nonlocal failed
        async with slots:
            if failed:
                return None
            try:
                return await job()
            except BaseException:
                failed = True
                raise

    results = await asyncio.gather(*(run(job) for job in jobs), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
