"""Batched transpose (wgsl/transpose.wgsl) against numpy: sizes that are not multiples of the 32 x 32 tile."""

import numpy as np
import pytest

from kernel_case import error_of, run_op
from reference import rng


@pytest.mark.parametrize("shape", [(2, 77, 45), (1, 33, 64)])
def test_transpose_moves_every_element(gpu_run, shape):
    x = rng(30).standard_normal(shape).astype(np.float32)
    got = run_op(gpu_run, "transpose", "transpose(gpu, x, out)",
                 {"x": x, "out": np.zeros((shape[0], shape[2], shape[1]), np.float32)})
    np.testing.assert_array_equal(got, x.transpose(0, 2, 1).astype(np.float64))


def test_bad_shapes_are_named(native_run):
    got = error_of(native_run, "transpose", "transpose(gpu, x, out)",
                   {"x": ((1, 3, 4), "f32"), "out": ((1, 3, 4), "f32")})
    assert got is not None and "must be f32 (B, R, C) and (B, C, R)" in got, got
