import numpy as np
import pytest

from gpu_runner import binding_limited
from reference import POISON, assert_close, rng

# Sizes that are not multiples of the 256-wide workgroup, and one past a full x-row of workgroups.
SIZES = [1, 1000, 256 * 65535 + 7]

SOURCE = """
import struct
from doppler.ops import elementwise
n = len(x) // 4
tx, ty, out = (gpu.tensor((n,), "f32", name) for name in ("x", "y", "out"))
gpu.upload(tx, x); gpu.upload(ty, y); gpu.upload(out, poison)
await elementwise.{call}
result = await gpu.read(out)
gpu.free(tx, ty, out)
result
"""


@pytest.mark.parametrize("n", SIZES[:2])
def test_axpby_matches_numpy(gpu_run, n):
    r = rng(n)
    x, y = r.standard_normal(n, dtype=np.float32), r.standard_normal(n, dtype=np.float32)
    poison = np.full(n, POISON, np.float32)
    got = gpu_run(SOURCE.format(call="axpby(gpu, tx, ty, out, 1.5, -0.25)"),
                  x=x.tobytes(), y=y.tobytes(), poison=poison.tobytes())
    assert_close(np.frombuffer(got, np.float32), 1.5 * x.astype(np.float64) - 0.25 * y, "f32")


def test_scale_wraps_past_65535_workgroups(native_gpu, event_loop_runner):
    from gpu_runner import run_native

    n = SIZES[2]
    x = rng(1).standard_normal(n, dtype=np.float32)
    poison = np.full(n, POISON, np.float32)
    got = event_loop_runner(run_native(native_gpu, SOURCE.format(call="scale(gpu, tx, out, -2.0, 0.5)"),
                                       x=x.tobytes(), y=x.tobytes(), poison=poison.tobytes()))
    assert_close(np.frombuffer(got, np.float32), -2.0 * x.astype(np.float64) + 0.5, "f32")


ADD_SOURCE = """
from doppler.ops import elementwise
x_t, y_t = gpu.tensor(x_shape, "f32", "x"), gpu.tensor(y_shape, y_dtype, "y")
gpu.upload(x_t, x); gpu.upload(y_t, y)
out_t = x_t if inplace else gpu.tensor(x_shape, "f32", "out")
if not inplace:
    gpu.upload(out_t, poison)
""" + binding_limited("""
await elementwise.add(gpu, x_t, y_t, out_t)
""") + """
result = await gpu.read(out_t)
gpu.free(*{x_t, y_t, out_t})
[result, dispatched]
"""


def run_add(gpu_run, x, y, inplace=False, max_binding=0):
    y_dtype = "f16" if y.dtype == np.float16 else "f32"
    got, dispatches = gpu_run(
        f"x_shape, y_shape, inplace, max_binding, y_dtype = {x.shape}, {y.shape}, {inplace}, {max_binding}, "
        f"'{y_dtype}'\n" + ADD_SOURCE,
        x=x.tobytes(), y=y.tobytes(), poison=np.full(x.shape, POISON, np.float32).tobytes())
    return np.frombuffer(got, np.float32).reshape(x.shape), dispatches


@pytest.mark.parametrize("inplace", [False, True], ids=["out", "inplace"])
@pytest.mark.parametrize("y_shape", [(2, 5, 7, 24), (2, 24), (24,)], ids=["same", "per_batch", "per_channel"])
def test_add_broadcasts_per_batch_and_channel(gpu_run, y_shape, inplace):
    r = rng(5)
    x = r.standard_normal((2, 5, 7, 24), dtype=np.float32)
    y = r.standard_normal(y_shape, dtype=np.float32)
    got, _ = run_add(gpu_run, x, y, inplace)
    expected = x.astype(np.float64) + (y[:, None, None, :] if len(y_shape) == 2 else y)
    assert_close(got, expected, "f32")


@pytest.mark.parametrize("inplace", [False, True], ids=["out", "inplace"])
def test_add_takes_a_stored_f16_bias(gpu_run, inplace):
    # (C,) f16 pairs, as a conv's stored bias (UNet.time_table adds resnets' conv1 biases so); C odd: a half word
    r = rng(7)
    x = r.standard_normal((3, 21), dtype=np.float32)
    y = r.standard_normal(21).astype(np.float16)
    got, _ = run_add(gpu_run, x, y, inplace)
    assert_close(got, x.astype(np.float64) + y.astype(np.float64), "f32")


def test_add_per_batch_over_the_binding_limit_runs_in_parts(gpu_run):
    r = rng(6)
    x = r.standard_normal((3, 37, 11, 40), dtype=np.float32)  # 195360 bytes: 4 parts of at most 64 KiB
    y = r.standard_normal((3, 40), dtype=np.float32)
    got, dispatches = run_add(gpu_run, x, y, max_binding=65536)
    assert dispatches == 3
    assert_close(got, x.astype(np.float64) + y[:, None, None, :], "f32")


def test_add_refuses_a_shape_that_does_not_broadcast(gpu_run):
    got = gpu_run("""
from doppler.errors import GpuError
from doppler.ops import elementwise
x, y = gpu.tensor((2, 4, 8), "f32", "maps"), gpu.tensor((2, 4), "f32", "bias")
try:
    await elementwise.add(gpu, x, y, x)
    message = None
except GpuError as e:
    message = str(e)
gpu.free(x, y)
message
""")
    assert got and "bias (2, 4) does not broadcast over maps (2, 4, 8)" in got
