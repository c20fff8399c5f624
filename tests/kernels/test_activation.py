import numpy as np
import pytest

from gpu_runner import binding_limited
from kernel_case import run_op
from reference import F16_ULP, POISON, activation as ref, assert_close, rng

SOURCE = """
from doppler.ops import activation
x_t = gpu.tensor(x_shape, "f32", "x")
gpu.upload(x_t, x)
out_t = x_t if inplace else gpu.tensor(out_shape, "f32", "out")
if not inplace:
    gpu.upload(out_t, poison)
""" + binding_limited("""
await getattr(activation, name)(gpu, x_t, out_t)
""") + """
result = await gpu.read(out_t)
gpu.free(*{x_t, out_t})
[result, dispatched]
"""


def run(gpu_run, name, x, out_shape, inplace=False, max_binding=0, dispatches=1):
    got, count = gpu_run(f"x_shape, out_shape, name, inplace, max_binding = {x.shape}, {out_shape}, {name!r}, {inplace}, "
                  f"{max_binding}\n" + SOURCE,
                  x=x.tobytes(), poison=np.full(out_shape, POISON, np.float32).tobytes())
    assert count == dispatches
    return np.frombuffer(got, np.float32).reshape(out_shape)


@pytest.mark.parametrize("inplace", [False, True], ids=["out", "inplace"])
@pytest.mark.parametrize("name", ["gelu", "quick_gelu", "silu"])
def test_activation_matches_numpy(gpu_run, name, inplace):
    x = (rng(1).standard_normal((3, 333)) * 4).astype(np.float32)
    x[0, :4] = [-120.0, -30.0, 30.0, 120.0]  # sigmoid's exp must not overflow
    assert_close(run(gpu_run, name, x, x.shape, inplace), getattr(ref, name)(x), "f32")


def test_gelu_error_against_float64_is_below_1e_6(gpu_run):
    x = np.linspace(-12.0, 12.0, 24_001, dtype=np.float32)
    err = np.abs(run(gpu_run, "gelu", x, x.shape) - ref.gelu(x))
    assert err.max() < 1e-6, f"max |gelu - float64| = {err.max():.3g} at x = {x[err.argmax()]}"


def test_geglu_matches_numpy(gpu_run):
    x = rng(2).standard_normal((2, 7, 2 * 45)).astype(np.float32)
    assert_close(run(gpu_run, "geglu", x, (2, 7, 45)), ref.geglu(x), "f32")


def test_geglu_to_f16(native_f16_run):
    # f16 out (wgsl/activation_f16_output.wgsl) for the tensor-core GEMM after it: the f32 kernel's result (the
    # reference above checks that one) rounded once, so within half an f16 ulp of it.
    x = (rng(3).standard_normal((2, 7, 90)) * 3).astype(np.float32)
    outs = {dtype: run_op(native_f16_run, "activation", "geglu(gpu, x, out)",
                          {"x": x, "out": np.zeros((2, 7, 45), dtype)}) for dtype in (np.float32, np.float16)}
    np.testing.assert_allclose(outs[np.float16], outs[np.float32], rtol=F16_ULP / 2, atol=2.0 ** -25)


def test_geglu_over_the_binding_limit_runs_in_parts(gpu_run):
    x = rng(3).standard_normal((700, 2 * 48)).astype(np.float32)  # 268800 bytes: 170 rows per 64 KiB part
    got = run(gpu_run, "geglu", x, (700, 48), max_binding=65536, dispatches=5)
    assert_close(got, ref.geglu(x), "f32")


def test_map_over_the_binding_limit_runs_in_parts(gpu_run):
    x = rng(4).standard_normal(40_000).astype(np.float32)  # 160000 bytes
    got = run(gpu_run, "silu", x, x.shape, inplace=True, max_binding=65536, dispatches=3)
    assert_close(got, ref.silu(x), "f32")
