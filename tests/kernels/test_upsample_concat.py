import numpy as np
import pytest

from gpu_runner import binding_limited
from reference import POISON, rng, upsample as ref

SOURCE = """
from doppler.ops import concat, upsample
inputs = [gpu.tensor(shape, "f32", f"in{i}") for i, shape in enumerate(in_shapes)]
for t, data in zip(inputs, (a, b)):
    gpu.upload(t, data)
out_t = gpu.tensor(out_shape, "f32", "out")
gpu.upload(out_t, poison)
""" + binding_limited("""
if op == "upsample":
    await upsample.upsample_nearest(gpu, inputs[0], out_t)
else:
    await concat.concat_channels(gpu, inputs[0], inputs[1], out_t)
""") + """
result = await gpu.read(out_t)
gpu.free(out_t, *inputs)
[result, dispatched]
"""


def run(gpu_run, op, inputs, out_shape, max_binding=0):
    header = f"op, in_shapes, out_shape, max_binding = {op!r}, {[i.shape for i in inputs]}, {out_shape}, {max_binding}\n"
    data = [i.tobytes() for i in inputs] + [b""] * (2 - len(inputs))
    got, dispatches = gpu_run(header + SOURCE, a=data[0], b=data[1],
                              poison=np.full(out_shape, POISON, np.float32).tobytes())
    return np.frombuffer(got, np.float32).reshape(out_shape), dispatches


@pytest.mark.parametrize("in_hw,out_hw", [((5, 7), (10, 14)), ((5, 7), (5, 7)), ((3, 5), (7, 9)), ((6, 5), (13, 16))],
                         ids=["2x", "same", "odd", "odd2"])
def test_upsample_nearest_equals_torch(gpu_run, in_hw, out_hw):
    x = rng(10).standard_normal((2, *in_hw, 6), dtype=np.float32)
    got, _ = run(gpu_run, "upsample", [x], (2, *out_hw, 6))
    np.testing.assert_array_equal(got, ref.upsample_nearest(x, out_hw))


@pytest.mark.parametrize("out_hw", [(18, 26), (25, 31)], ids=["2x", "odd"])
def test_upsample_over_the_binding_limit_runs_in_parts(gpu_run, out_hw):
    x = rng(11).standard_normal((2, 9, 13, 20), dtype=np.float32)
    got, dispatches = run(gpu_run, "upsample", [x], (2, *out_hw, 20), max_binding=16384)
    assert dispatches == (5 if out_hw == (18, 26) else 9)  # 936 or 1550 pixels of 80 B in parts of 192 pixels
    np.testing.assert_array_equal(got, ref.upsample_nearest(x, out_hw))


@pytest.mark.parametrize("max_binding", [0, 8192], ids=["whole", "parts"])
def test_concat_channels_equals_numpy(gpu_run, max_binding):
    r = rng(12)
    a, b = r.standard_normal((2, 7, 9, 12), dtype=np.float32), r.standard_normal((2, 7, 9, 5), dtype=np.float32)
    got, dispatches = run(gpu_run, "concat", [a, b], (2, 7, 9, 17), max_binding)
    assert dispatches == (1 if max_binding == 0 else 2)  # 126 rows in parts of 64
    np.testing.assert_array_equal(got, np.concatenate([a, b], axis=-1))


def test_host_source_index_is_torchs_for_every_small_size():
    """The host's copy of the kernel's index rule (it picks each part's input rows) against torch's."""
    import torch

    from doppler.ops.upsample import nearest_source

    for n in range(1, 25):
        row = torch.arange(n, dtype=torch.float32).reshape(1, 1, 1, n)
        for m in range(n, 4 * n + 2):
            want = torch.nn.functional.interpolate(row, size=(1, m), mode="nearest").flatten().int().tolist()
            assert [nearest_source(d, n, m) for d in range(m)] == want, (n, m)
