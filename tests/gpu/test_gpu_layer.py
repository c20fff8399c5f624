"""The GPU layer on both backends: pool reuse and budget, binding split, plans, stats, profiling, kernel errors."""

import numpy as np
import pytest

from reference import POISON, assert_close, rng


def test_pool_reuses_buckets_and_tracks_bytes(gpu_run):
    got = gpu_run("""
gpu.pool.trim()  # no cached buffers from earlier tests
a = gpu.tensor((1000,), "f32", "a")
start = gpu.pool.current_bytes
buffer = a.alloc.buffer
gpu.free(a)
b = gpu.tensor((990,), "f32", "b")        # same bucket: the same buffer comes back
same = b.alloc.buffer is buffer
c = gpu.tensor((5000,), "f32", "c")
gpu.free(b, c)
[same, gpu.pool.current_bytes - start, gpu.pool.peak_bytes >= gpu.pool.current_bytes]
""")
    assert got == [True, 20480, True]


def test_a_scope_frees_what_was_made_inside_it(gpu_run):
    got = gpu_run("""
kept = gpu.tensor((100,), "f32", "kept")
live = gpu.pool.live_bytes
try:
    with gpu.scope():
        gpu.tensor((1000,), "f32", "left.live")
        gpu.free(gpu.tensor((10,), "f32", "freed.inside"))
        inside = gpu.pool.live_bytes - live
        raise ValueError("stopped part-way")
except ValueError:
    pass
result = [inside, gpu.pool.live_bytes - live, gpu.pool.holds(kept.alloc)]
gpu.free(kept)
result
""")
    assert got == [4096, 0, True]


def test_budget_error_names_the_largest_holders(gpu_run):
    got = gpu_run("""
from doppler.errors import BudgetError
saved = gpu.pool.budget_bytes
gpu.pool.trim()
# Held tensors larger than anything the session's other tests keep live (recorded plans), so they lead the list.
gpu.pool.budget_bytes = gpu.pool.current_bytes + 100 * 2**20
held = [gpu.tensor((2**24,), "f32", "unet.activations"), gpu.tensor((2**23,), "f32", "vae.weights")]
try:
    gpu.tensor((2**25,), "f32", "too.big")
    message = None
except BudgetError as e:
    message = str(e)
finally:
    gpu.pool.budget_bytes = saved
    gpu.free(*held)
message
""")
    assert got is not None
    assert "too.big (128.0 MiB)" in got and "unet.activations 64.0 MiB" in got and "vae.weights 32.0 MiB" in got
    assert "Raise the budget" in got


def test_tensors_over_the_binding_limit_run_in_parts(gpu_run):
    n = 70_000  # 280 KB, bound in parts of at most 64 KiB
    x = rng(3).standard_normal(n, dtype=np.float32)
    got = gpu_run("""
from doppler.ops import elementwise
saved = gpu.caps.limits["maxStorageBufferBindingSize"]
gpu.caps.limits["maxStorageBufferBindingSize"] = 65536
tx, out = gpu.tensor((70000,), "f32", "x"), gpu.tensor((70000,), "f32", "out")
gpu.upload(tx, x); gpu.upload(out, poison)
before = gpu.stats.dispatches["elementwise.wgsl:scale{WG=256}"]
try:
    await elementwise.scale(gpu, tx, out, 3.0, -1.0)
    parts = gpu.stats.dispatches["elementwise.wgsl:scale{WG=256}"]
    result = await gpu.read(out)
finally:
    gpu.caps.limits["maxStorageBufferBindingSize"] = saved
gpu.free(tx, out)
[gpu.stats.dispatches["elementwise.wgsl:scale{WG=256}"] - before, result]
""", x=x.tobytes(), poison=np.full(n, POISON, np.float32).tobytes())
    assert got[0] == 5  # ceil(280000 / 65536)
    assert_close(np.frombuffer(got[1], np.float32), 3.0 * x.astype(np.float64) - 1.0, "f32")


PLAN_SOURCE = """
from doppler.ops import elementwise
n = len(x) // 4
tx, t1, t2 = (gpu.tensor((n,), "f32", f"t{i}") for i in range(3))
gpu.upload(tx, x)

async def chain():
    for i in range(40):   # 80 dispatches, each reading the last one's output
        await elementwise.axpby(gpu, tx, t1 if i else tx, t2, 0.5, 0.9)
        await elementwise.scale(gpu, t2, t1, 1.01, 0.001)

gpu.upload(t1, poison)
await chain()
direct = await gpu.read(t1)
with gpu.record("chain") as plan:
    await chain()
gpu.upload(t1, poison)
base = dict(gpu.stats.dispatches), gpu.stats.replays, gpu.stats.readbacks, gpu.stats.fences
plan.replay()
await gpu.sync()
replayed = await gpu.read(t1)
counts = [sum(gpu.stats.dispatches.values()) - sum(base[0].values()), gpu.stats.replays - base[1],
          gpu.stats.readbacks - base[2], gpu.stats.fences - base[3]]
plan.destroy()
gpu.free(tx, t1, t2)
[direct, replayed, counts]
"""


def test_plan_replay_equals_direct_dispatch_and_is_counted(gpu_run):
    n = 3001
    x = rng(4).standard_normal(n, dtype=np.float32)
    direct, replayed, counts = gpu_run(PLAN_SOURCE, x=x.tobytes(), poison=np.full(n, POISON, np.float32).tobytes())
    assert direct == replayed
    ref = x.astype(np.float64)
    t1 = ref
    for _ in range(40):
        t1 = (0.5 * ref + 0.9 * t1) * 1.01 + 0.001
    assert_close(np.frombuffer(replayed, np.float32), t1, "f32")
    assert counts == [80, 1, 1, 1]  # dispatches, replays, readbacks (tensor data), fences apart


def test_profiling_times_each_kernel(gpu_run):
    got = gpu_run("""
from doppler.ops import elementwise
t, u = gpu.tensor((1 << 16,), "f32", "t"), gpu.tensor((1 << 16,), "f32", "u")
before = dict(gpu.stats.gpu_ms)  # the session's device: other tests profiled too
gpu.profile = True
try:
    for _ in range(3):
        await elementwise.scale(gpu, t, u, 1.0, 1.0)
    with gpu.record("p") as plan:
        await elementwise.axpby(gpu, t, t, u, 1.0, 1.0)
    plan.replay()
    resolves = gpu.stats.timestamp_resolves
    await gpu.sync()
finally:
    gpu.profile = False
gpu.free(t, u)
[gpu.stats.timestamp_resolves - resolves, sorted(k for k, v in gpu.stats.gpu_ms.items() if v > before.get(k, 0))]
""")
    assert got[0] == 2
    assert got[1] == ["elementwise.wgsl:axpby{WG=256}", "elementwise.wgsl:scale{WG=256}"]


def test_compile_errors_name_the_kernel(gpu_run):
    got = gpu_run("""
from pathlib import Path
import tempfile
from doppler.errors import GpuError
from doppler.gpu.kernels import KernelRegistry
folder = Path(tempfile.mkdtemp())
(folder / "broken.wgsl").write_text("@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }")
try:
    await KernelRegistry(gpu.backend, folder).get("broken", "main", {"WG": 8})
    message = None
except GpuError as e:
    message = str(e)
message
""")
    assert got and got.startswith("kernel broken.wgsl:main{WG=8} failed to compile")


def test_a_plan_keeps_the_intermediates_it_freed(gpu_run):
    got = gpu_run("""
from doppler.ops import elementwise
x, out = gpu.tensor((512,), "f32", "x"), gpu.tensor((512,), "f32", "out")
gpu.upload(x, bytes(2048))
with gpu.record("keeps", borrow=False) as plan:  # no other plan's buffers: tmp is the pool's
    tmp = gpu.tensor((512,), "f32", "tmp")
    await elementwise.scale(gpu, x, tmp, 2.0, 1.0)
    await elementwise.scale(gpu, tmp, out, 3.0, 0.0)
    gpu.free(tmp)
after = gpu.tensor((512,), "f32", "after")   # must not get the plan's tmp buffer
distinct = after.alloc is not tmp.alloc
plan.replay()
data = await gpu.read(out)
plan.destroy()
reused = gpu.tensor((512,), "f32", "reused").alloc is tmp.alloc   # once the plan is gone, it is free again
gpu.free(x, out, after)
[distinct, reused, list(data[:4])]
""")
    assert got == [True, True, list(bytes.fromhex("00004040"))]


def test_plans_share_intermediates_and_replay_in_any_order(gpu_run):
    # The second recording puts its intermediate in the first plan's (Plan.borrow): one buffer, both plans right.
    x = rng(7).standard_normal(3000 + 2500, dtype=np.float32)
    got = gpu_run("""
from doppler.gpu.context import Gpu
from doppler.ops import elementwise
gpu = Gpu(gpu.backend, gpu.kernels.source_dir)  # its own pool and plans: none of earlier tests' to borrow from
xa, xb = gpu.tensor((3000,), "f32", "xa"), gpu.tensor((2500,), "f32", "xb")
oa, ob = gpu.tensor((3000,), "f32", "oa"), gpu.tensor((2500,), "f32", "ob")
gpu.upload(xa, x[:12000])
gpu.upload(xb, x[12000:])
gpu.upload(oa, poison)
gpu.upload(ob, poison[:10000])
with gpu.record("a") as a:
    tmp_a = gpu.tensor((3000,), "f32", "tmp_a")
    await elementwise.scale(gpu, xa, tmp_a, 2.0, 1.0)
    await elementwise.scale(gpu, tmp_a, oa, 3.0, 0.0)
    gpu.free(tmp_a)
before = gpu.pool.current_bytes
with gpu.record("b") as b:
    tmp_b = gpu.tensor((2500,), "f32", "tmp_b")  # a smaller bucket: it takes the smallest lendable buffer that fits
    await elementwise.scale(gpu, xb, tmp_b, -1.0, 0.5)
    await elementwise.scale(gpu, tmp_b, ob, 0.5, 0.0)
    gpu.free(tmp_b)
shared = tmp_b.alloc is tmp_a.alloc and gpu.pool.current_bytes == before
outs = []
for plan in (a, b, a, b):
    plan.replay()
    outs.append((await gpu.read(oa), await gpu.read(ob)))
a.destroy()
held = gpu.tensor((3000,), "f32", "after_a").alloc is not tmp_a.alloc  # b still owns the buffer
b.destroy()
freed = gpu.tensor((3000,), "f32", "after_b").alloc is tmp_a.alloc
gpu.free(xa, xb, oa, ob)
gpu.pool.trim()
[shared, held, freed, outs]
""", x=x.tobytes(), poison=np.full(3000, POISON, np.float32).tobytes())
    shared, held, freed, outs = got
    assert [shared, held, freed] == [True, True, True]
    want_a = (2.0 * x[:3000].astype(np.float64) + 1.0) * 3.0
    want_b = (-x[3000:].astype(np.float64) + 0.5) * 0.5
    for i, (oa, ob) in enumerate(outs):
        assert_close(np.frombuffer(oa, np.float32), want_a, "f32", f"plan a, output after replay {i}")
        if i % 2:  # b's output exists from its first replay on
            assert_close(np.frombuffer(ob, np.float32), want_b, "f32", f"plan b, output after replay {i}")


def test_a_recording_keeps_its_outputs_out_of_other_plans_buffers(native_run):
    got = native_run("""
from doppler.errors import GpuError
from doppler.ops import elementwise
gpu.pool.trim()  # no cached buffers of earlier tests: the pool has none of tmp's size to give first
x = gpu.tensor((512,), "f32", "x")
with gpu.record("lender") as lender:
    tmp = gpu.tensor((512,), "f32", "tmp")
    await elementwise.scale(gpu, x, tmp, 2.0, 1.0)
    gpu.free(tmp)
errors = []
try:
    with gpu.record("leaks") as plan:
        out = gpu.tensor((512,), "f32", "leaked_output")  # would lie in the lender's buffer
        await elementwise.scale(gpu, x, out, 2.0, 1.0)
except GpuError as e:
    errors.append(str(e))
try:
    with gpu.record("uploads"):
        table = gpu.tensor((512,), "f32", "table")
        gpu.upload(table, bytes(2048))
except GpuError as e:
    errors.append(str(e))
with gpu.record("keeps") as plan:
    kept = gpu.tensor((512,), "f32", "kept_output", kept=True)
    gpu.upload(kept, bytes(2048))
    await elementwise.scale(gpu, x, kept, 2.0, 1.0)
with gpu.record("own", borrow=False) as own:
    made = gpu.tensor((512,), "f32", "made_inside")
    await elementwise.scale(gpu, x, made, 2.0, 1.0)
[errors, kept.alloc is not tmp.alloc, made.alloc is not tmp.alloc]
""")
    errors, kept_apart, made_apart = got
    assert "leaks: leaked_output outlive the recording" in errors[0] and "kept=True" in errors[0]
    assert "table: uploaded while recording plan uploads" in errors[1]
    assert kept_apart and made_apart


def test_a_trim_while_recording_keeps_what_the_plan_freed(native_run):
    # Over budget mid-recording, the pool trims its free buffers: the plan's freed intermediate must survive.
    got = native_run("""
import struct
from doppler.ops import elementwise
x, out = gpu.tensor((512,), "f32", "x"), gpu.tensor((512,), "f32", "out")
gpu.upload(x, struct.pack("<512f", *([1.0] * 512)))
with gpu.record("trimmed") as plan:
    tmp = gpu.tensor((512,), "f32", "tmp")
    await elementwise.scale(gpu, x, tmp, 2.0, 1.0)
    gpu.free(tmp)
    gpu.pool.trim()
    await elementwise.scale(gpu, tmp, out, 3.0, 0.0)
kept = tmp.alloc in plan.owned and not gpu.pool.pinned
plan.replay()
data = struct.unpack("<4f", (await gpu.read(out))[:16])
plan.destroy()
gpu.free(x, out)
[kept, list(data)]
""")
    assert got == [True, [9.0] * 4]


def test_eager_work_is_submitted_as_it_is_queued(native_run):
    # The GPU starts on eager work while Python queues the rest: a submit every EAGER_FLUSH_DISPATCHES dispatches.
    got = native_run("""
from doppler.gpu.context import EAGER_FLUSH_DISPATCHES
from doppler.ops import elementwise
x, y = gpu.tensor((256,), "f32", "x"), gpu.tensor((256,), "f32", "y")
gpu.upload(x, bytes(1024))
await gpu.sync()
submits = gpu.stats.submits
for _ in range(EAGER_FLUSH_DISPATCHES):
    await elementwise.scale(gpu, x, y, 1.0, 0.0)
queued = gpu.stats.submits - submits
await gpu.sync()
gpu.free(x, y)
queued
""")
    assert got == 1


PRESENT_SOURCE = """
import js
canvas = js.OffscreenCanvas.new(1, 1)
image = gpu.tensor((height, width), "u32", "image")
gpu.upload(image, pixels)
before = (gpu.stats.presents, gpu.stats.readbacks)
gpu.present(image, width, height, canvas)
counts = [gpu.stats.presents - before[0], gpu.stats.readbacks - before[1]]
await gpu.sync()
gpu.free(image)
# What the canvas shows, read back the way only a test does (through a 2D canvas, outside the GPU layer).
frame = canvas.transferToImageBitmap()
copy = js.OffscreenCanvas.new(width, height)
context = copy.getContext("2d")
context.drawImage(frame, 0, 0)
[counts, [canvas.width, canvas.height], context.getImageData(0, 0, width, height).data.to_py().tobytes()]
"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [5, 64])  # rows of 20 bytes go one copy each; rows of 256 bytes in one copy
def test_present_puts_the_pixels_on_a_canvas_without_a_readback(app_page, width):
    from browser_harness import run_python
    from gpu_runner import browser_source

    height = 3
    pixels = rng(9).integers(0, 256, (height, width, 4), dtype=np.uint8)
    pixels[..., 3] = 255  # opaque, so the 2D canvas gives the bytes back unpremultiplied as they are
    counts, size, shown = run_python(app_page, browser_source(
        f"width, height = {width}, {height}\n" + PRESENT_SOURCE, pixels=pixels.tobytes()))
    assert counts == [1, 0] and size == [width, height]
    assert shown == pixels.tobytes()


# `gpu.present` of a 4 x 4 image as `width` x 4 on no canvas: the GpuError's message.
PRESENT_ERROR_SOURCE = """
from doppler.errors import GpuError
image = gpu.tensor((4, 4), "u32", "preview")
try:
    gpu.present(image, width, 4, None)
    message = None
except GpuError as e:
    message = str(e)
gpu.free(image)
message
"""


def test_present_checks_the_image_size(gpu_run):
    got = gpu_run("width = 5\n" + PRESENT_ERROR_SOURCE)
    assert got == "present: preview (4, 4) u32 must be 5 x 4 u32 pixels"


def test_the_native_backend_has_no_canvas(native_run):
    assert "native backend has no canvas" in native_run("width = 4\n" + PRESENT_ERROR_SOURCE)


def test_trimming_submits_queued_work_before_destroying_its_buffers(gpu_run):
    got = gpu_run("""
from doppler.ops import elementwise
x, out = gpu.tensor((512,), "f32", "x"), gpu.tensor((512,), "f32", "out")
gpu.upload(x, bytes(2048))
await elementwise.scale(gpu, x, out, 1.0, 5.0)   # queued, not submitted
gpu.free(x)
submits = gpu.stats.submits
gpu.pool.trim()                                  # destroys x's buffer: the queued read must be submitted first
data = await gpu.read(out)
gpu.free(out)
[gpu.stats.submits > submits, list(data[:4])]
""")
    assert got == [True, list(bytes.fromhex("0000a040"))]
