import numpy as np
import pytest

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
