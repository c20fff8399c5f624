"""In-page benchmarks (page side, stdlib only), run through the api by `bench/` drivers or `?autorun=`.

dispatch_overhead: host time to issue a UNet-step-sized list of small dispatches: the ops' Python work (bind groups,
uniforms), then encoding them call by call through the FFI (the eager path) versus replaying a recorded plan with one
call into `app/helpers.mjs`; and the replays run to completion (the GPU's own cost of a small dependent dispatch).
kernels: GPU time of the heaviest kernels at SD 1.5's 512x512 shapes (timestamp queries), as TFLOP/s and GB/s.
pipeline: cold and warm images of a model with the app's own stats, and one profiled UNet step by kernel.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import statistics
import struct
import time

from .errors import GpuError
from .gpu.context import MAX_QUERIES
from .inference.diffusion.nn import WINOGRAD_MAX_WEIGHTS
from .ops import attention, conv2d, elementwise, groupnorm, matmul, sampling, winograd

UNET_STEP_DISPATCHES = 500
# Kernel timings: the best of several windows of reps, since a GPU idle between cases clocks down and ramps up
# again over the first windows (seen on the H100: 2-4x slower first windows). A case's configs take their windows in
# turn, so a drift within the case reaches each alike (session 10 saw times grow config by config, 1.3-3x).
WINDOWS = 5
MIN_WINDOW_MS = 30.0  # and each window at least this long, so short kernels keep the clocks up too
MAX_WINDOW_RUNS = 400  # runs per window at most (and dispatches per window at most MAX_QUERIES / 2, one sync's)
PROFILE_TOP_KERNELS = 25  # the profile lists this many kernels (file, entry and overrides) by GPU time
PROFILE_TOP_LAYERS = 40  # and this many outputs (layers: pool labels) with the kernel file that wrote them


async def dispatch_overhead(gpu, dispatches: int = UNET_STEP_DISPATCHES, reps: int = 20) -> dict:
    tensors = [gpu.tensor((256,), "f32", f"bench{i}") for i in range(8)]
    for t in tensors:
        gpu.upload(t, bytes(1024))

    async def step():
        for i in range(dispatches // 2):
            a, b, c = tensors[i % 8], tensors[(i + 1) % 8], tensors[(i + 2) % 8]
            await elementwise.axpby(gpu, a, b, c, 0.5, 0.5)
            await elementwise.scale(gpu, c, a, 1.0, 0.0)

    await step()  # compile the kernels outside the timing
    await gpu.sync()
    t0 = time.perf_counter()
    with gpu.record("bench.step") as plan:
        await step()  # the eager path's Python work: ops, bind groups, uniforms (submits aside)
    issued = (time.perf_counter() - t0) / len(plan.ops) * 1e6
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
    # Replays back to back until the GPU is done: what a small dispatch costs in a recorded step, execution included
    # (each reads the one before: no overlap).
    t0 = time.perf_counter()
    for _ in range(reps):
        gpu.backend.replay(plan.handle)
    await gpu.sync()
    executed = (time.perf_counter() - t0) / (reps * len(ops)) * 1e6
    plan.destroy()
    gpu.free(*tensors)
    return {"dispatches": len(ops), "issueUsPerDispatch": round(issued, 3), "directUsPerDispatch": round(direct, 3),
            "replayUsPerDispatch": round(replayed, 3), "speedup": round(direct / replayed, 1),
            "executedUsPerDispatch": round(executed, 3),
            "backend": gpu.caps.backend, "adapter": gpu.caps.description}


def _pattern(n_bytes: int, dtype: str, seed: int = 1) -> bytes:
    """Non-zero pseudo-random values (a repeated 4 KiB block): weights for timing, cheap to make in the page."""
    rng = random.Random(seed)
    count = 1024 if dtype == "f32" else 2048
    block = struct.pack(f"<{count}{'f' if dtype == 'f32' else 'e'}", *(rng.uniform(-0.05, 0.05) for _ in range(count)))
    return (block * (n_bytes // len(block) + 1))[:n_bytes]


async def _filled(gpu, shape, dtype: str, label: str):
    t = gpu.tensor(shape, dtype, label)
    if dtype == "f32" and t.numel >= 1 << 16:
        await sampling.noise(gpu, t, seed=len(label), stream=0, scale=0.5)
    else:
        gpu.upload(t, _pattern(t.nbytes, dtype))
    return t


def kernel_cases(batch: int = 2) -> list[dict]:
    """The UNet's and VAE's heaviest shapes at 512x512 (latent 64x64; CFG batch 2)."""
    cases = []
    for hw, c in ((64, 320), (32, 640), (16, 1280)):
        cases.append({"op": "conv3x3", "b": batch, "hw": hw, "cin": c, "cout": c})
    cases += [{"op": "conv3x3", "b": 1, "hw": 512, "cin": 128, "cout": 128, "stage": "vae"},
              {"op": "conv3x3", "b": 1, "hw": 256, "cin": 256, "cout": 256, "stage": "vae"}]
    # Winograd where nn.Conv2d takes it by weights (the VAE's maps in chunks); TFLOP/s counted as the direct conv's
    cases += [{**case, "op": "conv3x3_winograd"} for case in cases
              if case["cin"] * case["cout"] <= WINOGRAD_MAX_WEIGHTS]
    tokens = batch * 64 * 64
    for k, n in ((320, 320), (320, 2560), (1280, 320)):
        cases.append({"op": "linear", "m": tokens, "k": k, "n": n})
    cases += [{"op": "attention", "b": batch, "tq": 4096, "tk": 4096, "heads": 8, "d": 40},
              {"op": "attention", "b": batch, "tq": 4096, "tk": 77, "heads": 8, "d": 40},
              {"op": "attention", "b": batch, "tq": 1024, "tk": 1024, "heads": 8, "d": 80},
              {"op": "attention", "b": batch, "tq": 256, "tk": 256, "heads": 8, "d": 160},
              {"op": "groupnorm", "b": batch, "hw": 64, "c": 320},
              {"op": "copy", "b": batch, "hw": 64, "c": 320}]  # groupnorm's bandwidth reference
    return cases


async def _run_case(gpu, case: dict, weights: str) -> tuple:
    """(an async callable running the op once with a config's knobs (`tiles` for GEMMs, `overrides` for attention),
    its FLOPs, bytes moved at least once, its tensors)."""
    op = case["op"]
    if op == "conv3x3":
        b, hw, cin, cout = case["b"], case["hw"], case["cin"], case["cout"]
        x = await _filled(gpu, (b, hw, hw, cin), case.get("x", "f32"), "x")
        w = await _filled(gpu, (cout, 3, 3, cin), weights, "w")
        bias = await _filled(gpu, (cout,), weights, "bias")
        out = gpu.tensor((b, hw, hw, cout), "f32", "out")
        run = lambda tiles=None: conv2d.conv2d(gpu, x, w, out, bias=bias, padding=1, tiles=tiles)  # noqa: E731
        return run, 2.0 * b * hw * hw * cout * cin * 9, 4.0 * (x.numel + out.numel), [x, w, bias, out]
    if op == "conv3x3_winograd":  # u filled directly (its values do not change the time), or made from w each run
        b, hw, cin, cout = case["b"], case["hw"], case["cin"], case["cout"]
        x = await _filled(gpu, (b, hw, hw, cin), "f32", "x")
        u = await _filled(gpu, winograd.weight_shape(cout, cin, case.get("tile", winograd.TILES[0])), weights, "u")
        w = await _filled(gpu, (cout, 3, 3, cin), weights, "w")
        bias = await _filled(gpu, (cout,), weights, "bias")
        out = gpu.tensor((b, hw, hw, cout), "f32", "out")
        scratch = case.get("scratch_bytes", winograd.SCRATCH_BYTES)

        async def run(tiles=None):
            if case.get("transform_weights"):
                await winograd.winograd_weight(gpu, w, u)
            await winograd.conv3x3_winograd(gpu, x, u, out, bias=bias, tiles=tiles, scratch_bytes=scratch)
        return run, 2.0 * b * hw * hw * cout * cin * 9, 4.0 * (x.numel + out.numel), [x, u, w, bias, out]
    if op == "linear":
        m, k, n = case["m"], case["k"], case["n"]
        x = await _filled(gpu, (m, k), case.get("x", "f32"), "x")
        w = await _filled(gpu, (n, k), weights, "w")
        out = gpu.tensor((m, n), "f32", "out")
        run = lambda tiles=None: matmul.linear(gpu, x, w, out, tiles=tiles, splits=case.get("splits"))  # noqa: E731
        return run, 2.0 * m * n * k, 4.0 * (x.numel + out.numel), [x, w, out]
    if op == "attention":
        b, tq, tk, heads, d = case["b"], case["tq"], case["tk"], case["heads"], case["d"]
        q = await _filled(gpu, (b, tq, heads * d), "f32", "q")
        kv = [await _filled(gpu, (b, tk, heads * d), "f32", name) for name in ("k", "v")]
        out = gpu.tensor(q.shape, "f32", "out")
        run = lambda overrides=None: attention.attention(gpu, q, kv[0], kv[1], out, heads=heads,  # noqa: E731
                                                         overrides=overrides)
        return run, 4.0 * b * heads * tq * tk * d, 4.0 * (2 * q.numel + 2 * kv[0].numel), [q, *kv, out]
    b, hw, c = case["b"], case["hw"], case["c"]
    x = await _filled(gpu, (b, hw, hw, c), "f32", "x")
    if op == "copy":  # one read and one write an element, one dispatch: what memory-bound kernels are held to
        out = gpu.tensor(x.shape, "f32", "out")
        return lambda: elementwise.scale(gpu, x, out, 1.0), 0.0, 8.0 * x.numel, [x, out]
    gamma, beta = await _filled(gpu, (c,), weights, "gamma"), await _filled(gpu, (c,), weights, "beta")
    out = gpu.tensor(x.shape, "f32", "out")
    stats = gpu.tensor((b, 32, 2), "f32", "stats")
    run = lambda: groupnorm.group_norm(gpu, x, gamma, beta, out, stats, 32, 1e-5, silu=True,  # noqa: E731
                                       whole_group=case.get("whole_group"))
    return run, 10.0 * x.numel, 8.0 * x.numel, [x, gamma, beta, out, stats]


async def kernels(gpu, weights: str = "f16", reps: int = 10, gemm_tiles: list | None = None,
                  attention_overrides: list[dict] | None = None, cases: list[dict] | None = None,
                  replayed: bool = True, progress=lambda now, data: None) -> list[dict]:
    """GPU time (timestamp queries, the best of WINDOWS windows of at least `reps` runs, a case's configs taking
    their windows in turn) of each heavy kernel at SD 1.5 512x512 shapes, as TFLOP/s and GB/s. GEMM kernels (conv,
    linear) run once per tile configuration in `gemm_tiles` ([tile_m, tile_n, tile_k, thread_m, thread_n,
    tensor_cores] each, tensor_cores optional; default: chosen by the ops per shape and device), attention once with
    its defaults and once per knob set in `attention_overrides` (e.g. {"QUERY_BLOCKS": 4}; see
    doppler/ops/attention.py); a case's configs share its tensors. A set the kernel refuses (unknown knob, too much
    workgroup memory for the head, a feature the device lacks) gives a row with its error instead of a time.
    `cases`: the shapes to time, as kernel_cases() gives them (default: those); a linear case may name its number of
    K `splits` (default: the op's choice), a linear or conv3x3 case x's dtype `x` ("f16": as a producer writes it for
    the tensor cores; default "f32"), a groupnorm case `whole_group` (true or false: the algorithm; default: the op's
    choice), a conv3x3_winograd case its `tile` (2 or 4: F(2x2) or F(4x4)), its
    `scratch_bytes` (default winograd.SCRATCH_BYTES) and `transform_weights` (true: the weight transform runs
    before each conv, as nn.Conv2d does). `replayed`: a window's runs are recorded as one plan and replayed in one call,
    as the pipeline runs its steps; else they are issued eagerly from Python, submitted every
    gpu/context.py's EAGER_FLUSH_DISPATCHES, so the GPU may wait on the host between submits (on an H200 eager
    windows read some whole-K GEMMs 1.6-1.7x slower than replayed ones; bench/RESULTS.md, session 13).
    `progress(now, data)` hears ("compiling", row) before each config's first run and ("timed", the case's rows)
    after each case, so a run cut short by a time limit still tells how far it got and where it stopped."""
    rows = []
    configs = [None] + [matmul.GemmTiles(*t) for t in gemm_tiles or []]
    knob_sets = [None] + list(attention_overrides or [])
    for case in cases or kernel_cases():
        if case["op"] in ("conv3x3", "conv3x3_winograd", "linear"):
            sweep = [{"tiles": t} if t else {} for t in configs]
        elif case["op"] == "attention":
            sweep = [{"overrides": o} if o else {} for o in knob_sets]
        else:
            sweep = [{}]
        run_with, flops, nbytes, tensors = await _run_case(gpu, case, weights)
        timed = []  # (row, window: (run, calls, runs a call)) of the configs that compiled
        plans = []
        for knobs in sweep:
            tile = knobs.get("tiles")
            row = {**case, "tiles": list(dataclasses.astuple(tile)) if tile else "default", "weights": weights}
            if case["op"] == "attention":
                row = {**case, "overrides": knobs.get("overrides") or "default", "weights": weights}
            rows.append(row)
            progress("compiling", row)
            run = functools.partial(run_with, **knobs)
            try:
                await run()  # compile
            except GpuError as error:
                row["error"] = str(error)
                continue
            await gpu.sync()
            dispatched = sum(gpu.stats.dispatches.values())
            first = await _mean_gpu_ms(gpu, run, 1)
            per_run = sum(gpu.stats.dispatches.values()) - dispatched
            runs = min(MAX_WINDOW_RUNS, MAX_QUERIES // 2 // per_run, max(reps, int(MIN_WINDOW_MS / max(first, 1e-3))))
            if not replayed:
                timed.append((row, (run, runs, 1)))
                continue
            with gpu.record(f"bench.{case['op']}.{len(plans)}", borrow=False) as plan:
                for _ in range(runs):
                    await run()
            plans.append(plan)
            timed.append((row, (_replaying(plan), 1, runs)))
        best: list[dict | None] = [None] * len(timed)
        for _ in range(WINDOWS):
            for i, (_, (run, calls, runs)) in enumerate(timed):
                times = {label: ms / runs for label, ms in (await _mean_gpu_ms_by_kernel(gpu, run, calls)).items()}
                if best[i] is None or sum(times.values()) < sum(best[i].values()):
                    best[i] = times
        for plan in plans:
            plan.destroy()
        gpu.free(*tensors)
        for (row, _), by_kernel in zip(timed, best):
            ms = sum(by_kernel.values())
            row.update(ms=round(ms, 4), tflops=round(flops / ms / 1e9, 2), gbps=round(nbytes / ms / 1e6, 1))
            if len(by_kernel) > 1:  # several dispatches (split-K, norms): each kernel's share
                row["byKernel"] = {label: round(t, 4) for label, t in by_kernel.items()}
        progress("timed", rows[len(rows) - len(sweep):])
    return rows


def _replaying(plan):
    """An async callable replaying `plan` once."""
    async def run():
        plan.replay()
    return run


async def _mean_gpu_ms(gpu, run, reps: int) -> float:
    """Mean GPU ms (timestamp queries) of `reps` back-to-back runs."""
    return sum((await _mean_gpu_ms_by_kernel(gpu, run, reps)).values())


async def _mean_gpu_ms_by_kernel(gpu, run, reps: int) -> dict:
    """Mean GPU ms (timestamp queries) of `reps` back-to-back runs, by kernel label (file, entry, overrides)."""
    before = dict(gpu.stats.gpu_ms)
    gpu.profile = True
    try:
        for _ in range(reps):
            await run()
        await gpu.sync()
    finally:
        gpu.profile = False
    return {label: (ms - before.get(label, 0.0)) / reps for label, ms in gpu.stats.gpu_ms.items()
            if ms > before.get(label, 0.0)}


def _by_kernel_file(gpu_ms: dict) -> dict:
    totals: dict = {}
    for label, ms in gpu_ms.items():
        name = label.split(".wgsl", 1)[0]
        totals[name] = round(totals.get(name, 0.0) + ms, 3)
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


async def profile_step(gpu, step, top_layers: int = PROFILE_TOP_LAYERS) -> dict:
    """One replay of a recorded call (a denoise step, a VAE decode: `step.plan`) with a timestamp per dispatch: GPU ms
    by kernel file, the top kernels and the `top_layers` slowest layers."""
    await gpu.sync()
    before = dict(gpu.stats.gpu_ms)
    gpu.profile = True
    try:
        step.plan.replay()
        await gpu.sync()
    finally:
        gpu.profile = False
    delta = {k: v - before.get(k, 0.0) for k, v in gpu.stats.gpu_ms.items() if v - before.get(k, 0.0) > 0}
    top = sorted(delta.items(), key=lambda kv: -kv[1])[:PROFILE_TOP_KERNELS]
    by_layer: dict = {}
    for output, kernel, ms in zip(step.plan.outputs, step.plan.kernels, gpu.stats.last_timings):
        key = f"{output or '?'} <- {kernel.split('.wgsl', 1)[0]}"
        by_layer[key] = by_layer.get(key, 0.0) + ms
    layers = sorted(by_layer.items(), key=lambda kv: -kv[1])[:top_layers]
    return {"gpuMs": round(sum(delta.values()), 3), "dispatches": len(step.plan.kernels),
            "byKernel": _by_kernel_file(delta), "topKernels": {label: round(ms, 3) for label, ms in top},
            "topLayers": {layer: round(ms, 3) for layer, ms in layers}}
