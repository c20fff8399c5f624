"""In-page benchmarks (page side, stdlib only), run through the api by `bench/` drivers or `?autorun=`.

dispatch_overhead: host time to issue a UNet-step-sized list of small dispatches, encoded call by call from Python
through the FFI (the eager path) versus replayed from a recorded plan by one call into `app/helpers.mjs`.
"""

from __future__ import annotations

import statistics
import time

from .ops import elementwise

UNET_STEP_DISPATCHES = 500


async def dispatch_overhead(gpu, dispatches: int = UNET_STEP_DISPATCHES, reps: int = 20) -> dict:
    tensors = [gpu.tensor((256,), "f32", f"bench{i}") for i in range(8)]
    for t in tensors:
        gpu.upload(t, bytes(1024))

    async def step():
        for i in range(dispatches // 2):
            a, b, c = tensors[i % 8], tensors[(i + 1) % 8], tensors[(i + 2) % 8]
            await elementwise.axpby(gpu, a, b, c, 0.5, 0.5)
            await elementwise.scale(gpu, c, a, 1.0, 0.0)

    with gpu.record("bench.step") as plan:
        await step()
    ops = plan.ops

    def per_dispatch_us(issue) -> float:
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            issue()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) / len(ops) * 1e6

    async def measure(issue) -> float:
        issue()  # warm up
        await gpu.sync()
        us = per_dispatch_us(issue)
        await gpu.sync()
        return us

    direct = await measure(lambda: gpu.backend.submit(ops, gpu.max_dispatches_per_submit))
    replayed = await measure(lambda: gpu.backend.replay(plan.handle))
    plan.destroy()
    gpu.free(*tensors)
    return {"dispatches": len(ops), "directUsPerDispatch": round(direct, 3),
            "replayUsPerDispatch": round(replayed, 3), "speedup": round(direct / replayed, 1),
            "backend": gpu.caps.backend, "adapter": gpu.caps.description}
