"""GEMM kernels (linear, conv2d) at SD 1.5 shapes on wgpu-native (Vulkan), TFLOP/s per path and tile config.

A quick tuning proxy on a GPU machine, not the Chromium benchmark of record (Dawn compiles WGSL differently).
Needs numpy and wgpu-py; where the machine's Python lacks wgpu, carry its package and cffi's wheel for that Python
in build/pydeps (e.g. `pip download cffi pycparser --python-version 3.12 --only-binary=:all:
--platform manylinux2014_x86_64`, unzipped, plus site-packages/wgpu and rendercanvas copied) and the Vulkan loader.
Run from the project root: `python3 bench/gemm_native.py` (results also in $OUT/bench_gemm.json when OUT is set).
"""

import asyncio
import json
import os
import sys
from pathlib import Path

sys.path[:0] = ["build/pydeps", "py", "tests"]

import numpy as np  # noqa: E402
from doppler.gpu.context import Gpu  # noqa: E402
from doppler.ops import conv2d, matmul  # noqa: E402
from doppler.ops.matmul import GemmTiles  # noqa: E402

TILES = {
    "64x64x16/4x4": GemmTiles(),
    "64x64x32/4x4": GemmTiles(64, 64, 32, 4, 4),
    "128x64x16/8x4": GemmTiles(128, 64, 16, 8, 4),
    "64x128x16/4x8": GemmTiles(64, 128, 16, 4, 8),
    "128x128x16/8x8": GemmTiles(128, 128, 16, 8, 8),
    "128x128x32/8x8": GemmTiles(128, 128, 32, 8, 8),
}
CASES = [
    ("linear 4096^3", "linear", (4096, 4096, 4096)),
    ("linear M8192 N1280 K320", "linear", (8192, 1280, 320)),
    ("linear M8192 N2560 K320 (GEGLU proj)", "linear", (8192, 2560, 320)),
    ("linear M2048 N5120 K640", "linear", (2048, 5120, 640)),
    ("conv3x3 2x64x64 320->320", "conv", ((2, 64, 64, 320), 320)),
    ("conv3x3 2x32x32 640->640", "conv", ((2, 32, 32, 640), 640)),
    ("conv3x3 2x16x16 1280->1280", "conv", ((2, 16, 16, 1280), 1280)),
]
REPS = 10


def flops(kind, shape):
    if kind == "linear":
        m, n, k = shape
        return 2 * m * n * k
    (b, h, w, c), cout = shape
    return 2 * b * h * w * cout * c * 9


async def run_case(gpu, kind, shape, wdtype, adtype, tiles):
    if kind == "linear":
        m, n, k = shape
        x, w, out = gpu.tensor((m, k), adtype, "x"), gpu.tensor((n, k), wdtype, "w"), gpu.tensor((m, n), adtype, "out")

        def call():
            return matmul.linear(gpu, x, w, out, tiles=tiles)
    else:
        (b, h, wd, c), cout = shape
        x, w = gpu.tensor((b, h, wd, c), adtype, "x"), gpu.tensor((cout, c, 3, 3), wdtype, "w")
        out = gpu.tensor((b, h, wd, cout), adtype, "out")

        def call():
            return conv2d.conv2d(gpu, x, w, out, padding=1, tiles=tiles)
    for _ in range(2):
        await call()
    await gpu.sync()
    before = sum(gpu.stats.gpu_ms.values())
    for _ in range(REPS):
        await call()
    await gpu.sync()
    ms = (sum(gpu.stats.gpu_ms.values()) - before) / REPS
    gpu.free(x, w, out)
    return ms


async def check_large(gpu):
    """Full-size conv (M=8192, N=320, K=2880) against float64 numpy, default and 128x128 tiles."""
    from reference import conv2d as ref
    r = np.random.default_rng(0)
    xs = r.standard_normal((2, 64, 64, 320)).astype(np.float32)
    ws = (r.standard_normal((320, 320, 3, 3)) / np.sqrt(2880)).astype(np.float32)
    want = ref.conv2d(xs, ws, padding=1)
    out = {}
    for name in ("64x64x16/4x4", "128x128x32/8x8"):
        x, w, y = (gpu.tensor(a.shape, "f32", name) for a, name in ((xs, "x"), (ws, "w"), (want, "y")))
        gpu.upload(x, xs.tobytes())
        gpu.upload(w, ws.tobytes())
        await conv2d.conv2d(gpu, x, w, y, padding=1, tiles=TILES[name])
        got = np.frombuffer(await gpu.read(y), np.float32).reshape(want.shape)
        out[name] = float(np.linalg.norm(got - want) / np.linalg.norm(want))
        gpu.free(x, w, y)
    return out


async def main():
    gpu = await Gpu.open("native", Path("wgsl"), profile=True)
    caps = gpu.caps.summary()
    limits = {k: caps["limits"][k] for k in ("maxComputeWorkgroupStorageSize", "maxComputeInvocationsPerWorkgroup")}
    print(json.dumps(caps["adapter"]), caps["features"], limits, flush=True)
    print("large conv rel err:", await check_large(gpu), flush=True)
    paths = [("f32", "f32", "f32"), ("f16w", "f16", "f32")]
    if gpu.caps.has("shader-f16"):
        paths.append(("f16", "f16", "f16"))
    results = []
    for label, kind, shape in CASES:
        for path, wdtype, adtype in paths:
            row = []
            for tname, tiles in TILES.items():
                try:
                    ms = await run_case(gpu, kind, shape, wdtype, adtype, tiles)
                    tf = flops(kind, shape) / ms / 1e9
                except Exception as e:
                    ms, tf = None, None
                    print("ERR", label, path, tname, str(e)[:200], flush=True)
                results.append(dict(case=label, path=path, tiles=tname, ms=ms, tflops=tf))
                row.append(f"{tname}: {tf:.1f}" if tf else f"{tname}: -")
            print(f"{label:40s} {path:5s} " + " | ".join(row), flush=True)
    out = os.environ.get("OUT")
    if out:
        Path(out, "bench_gemm.json").write_text(json.dumps(results, indent=1))


asyncio.run(main())
