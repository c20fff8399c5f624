"""GPU time of the normalization and attention kernels at SD 1.5's 512x512 shapes on wgpu-native (Vulkan), from
the dispatches' timestamps: TFLOP/s for attention, GB/s (bytes read + written once) for the norms beside a copy
(`elementwise.scale`) of the same tensor. Checks attention against float64 on the device first.

    python bench/norm_attention_native.py [attention] [norms]      (SMOKE=1: tiny shapes, to check on lavapipe)

ATTENTION_OVERRIDES='[{"WG": 128}, ...]' times attention once more per knob set (doppler/ops/attention.py) where
the kernel takes it; a set it refuses prints its error.

On the H100 machine: wgpu, cffi, pycparser and rendercanvas travel as wheels and libvulkan1 as a .deb (see the
device README), and VK_DRIVER_FILES names the NVIDIA ICD. Chromium's numbers (Tint, not naga) go in RESULTS.md.
"""

import asyncio
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "py"), str(ROOT / "tests")]

from doppler.errors import GpuError  # noqa: E402
from doppler.gpu.context import Gpu  # noqa: E402
from doppler.ops import attention, elementwise, groupnorm, layernorm  # noqa: E402
from reference import attention as ref_attention  # noqa: E402

REPS = 10
SMOKE = bool(os.environ.get("SMOKE"))
GROUPS = 32
# name, batch, queries, keys, heads, head dim, causal
ATTENTION = [
    ("unet 64x64 self", 2, 4096, 4096, 8, 40, False),
    ("unet 32x32 self", 2, 1024, 1024, 8, 80, False),
    ("unet 16x16 self", 2, 256, 256, 8, 160, False),
    ("unet 64x64 cross", 2, 4096, 77, 8, 40, False),
    ("vae 64x64 mid", 1, 4096, 4096, 1, 512, False),
    ("clip causal", 2, 77, 77, 12, 64, True),
]
GROUP_NORM = [("unet 64x64x320", (2, 64, 64, 320)), ("unet 8x8x1280", (2, 8, 8, 1280)),
              ("vae 256x256x256", (1, 256, 256, 256)), ("vae 512x512x128", (1, 512, 512, 128))]
LAYER_NORM = [("unet 64x64x320", (8192, 320)), ("unet 16x16x1280", (512, 1280)), ("clip 77x768", (154, 768))]


def random_tensor(gpu, shape, label, rng):
    t = gpu.tensor(shape, "f32", label)
    gpu.upload(t, rng.standard_normal(shape).astype(np.float32).tobytes())
    return t


async def gpu_ms(gpu, run) -> float:
    """Mean GPU time of one `run` (all its dispatches), after one untimed run."""
    await run()
    await gpu.sync()
    gpu.stats.gpu_ms.clear()
    for _ in range(REPS):
        await run()
    await gpu.sync()
    return sum(gpu.stats.gpu_ms.values()) / REPS


async def check_attention(gpu, rng) -> str:
    b, t, heads, d = 1, 100 if SMOKE else 1000, 2, 40
    data = [rng.standard_normal((b, t, heads * d)).astype(np.float32) for _ in range(3)]
    q, k, v = (gpu.tensor(x.shape, "f32", n) for x, n in zip(data, "qkv"))
    out = gpu.tensor(data[0].shape, "f32", "out")
    for tensor, x in zip((q, k, v, out), data + [np.full(data[0].shape, np.nan, np.float32)]):
        gpu.upload(tensor, x.tobytes())
    await attention.attention(gpu, q, k, v, out, heads)
    got = np.frombuffer(await gpu.read(out), np.float32).reshape(data[0].shape)
    want = ref_attention.attention(*data, heads)
    gpu.free(q, k, v, out)
    return f"attention check: relative error {np.linalg.norm(got - want) / np.linalg.norm(want):.2e}"


async def bench_attention(gpu, rng) -> list[str]:
    rows = []
    knob_sets = [None] + json.loads(os.environ.get("ATTENTION_OVERRIDES", "[]"))
    for name, b, tq, tk, heads, d, causal in ATTENTION:
        if SMOKE:
            b, tq, tk, heads = 1, min(tq, 128), min(tk, 128), 1
        q, out = random_tensor(gpu, (b, tq, heads * d), "q", rng), gpu.tensor((b, tq, heads * d), "f32", "out")
        k, v = (random_tensor(gpu, (b, tk, heads * d), n, rng) for n in "kv")
        for knobs in knob_sets if attention.tiling(d, True).kernel != "attention_wide" else [None]:
            label = f"attention {name:18s} d={d:<4d} {json.dumps(knobs or 'default'):70s}"
            try:
                ms = await gpu_ms(gpu, lambda: attention.attention(gpu, q, k, v, out, heads, causal=causal,
                                                                   overrides=knobs))
            except GpuError as e:
                rows.append(f"{label} error: {str(e)[:150]}")
                continue
            flops = 4 * b * heads * tq * tk * d / (2 if causal else 1)
            rows.append(f"{label} {ms:8.3f} ms {flops / ms / 1e9:7.2f} TFLOP/s")
        gpu.free(q, k, v, out)
    return rows


async def bench_norms(gpu, rng) -> list[str]:
    rows = []
    for op, cases in (("groupnorm", GROUP_NORM), ("layernorm", LAYER_NORM)):
        for name, shape in cases:
            if SMOKE:
                shape = (1, 8, 8, shape[-1]) if op == "groupnorm" else (8, shape[-1])
            x, out = random_tensor(gpu, shape, "x", rng), gpu.tensor(shape, "f32", "out")
            gamma, beta = (random_tensor(gpu, shape[-1:], n, rng) for n in ("gamma", "beta"))
            if op == "groupnorm":
                stats = gpu.tensor((shape[0], GROUPS, 2), "f32", "stats")
                ms = await gpu_ms(gpu, lambda: groupnorm.group_norm(gpu, x, gamma, beta, out, stats, GROUPS, 1e-5,
                                                                    silu=True))
                gpu.free(stats)
            else:
                ms = await gpu_ms(gpu, lambda: layernorm.layer_norm(gpu, x, gamma, beta, out, 1e-5))
            copy = await gpu_ms(gpu, lambda: elementwise.scale(gpu, x, out, 1.0))
            moved = 2 * x.nbytes
            rows.append(f"{op} {name:18s} {ms:8.3f} ms {moved / ms / 1e6:7.1f} GB/s, copy {moved / copy / 1e6:7.1f} "
                        f"GB/s: {copy / ms:4.0%} of copy")
            gpu.free(x, out, gamma, beta)
    return rows


async def main():
    gpu = await Gpu.open("native", ROOT / "wgsl", budget_bytes=16 * 2**30, profile=True)
    print(gpu.caps.summary()["adapter"], flush=True)
    rng = np.random.default_rng(0)
    which = sys.argv[1:] or ["attention", "norms"]
    rows = [await check_attention(gpu, rng)]
    if "norms" in which:
        rows += await bench_norms(gpu, rng)
    if "attention" in which:
        rows += await bench_attention(gpu, rng)
    print("\n".join(rows))


asyncio.run(main())
