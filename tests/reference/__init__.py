"""float64 numpy references for the kernels, and the one tolerance table every comparison uses."""

from __future__ import annotations

import numpy as np

# Relative error bounds, ||out - ref|| / ||ref||, by the path's math dtype (storage f16 with f32 math is "f16w").
TOLERANCES = {"f32": 1e-4, "f16w": 1e-3, "f16": 1e-2}
POISON = np.float32(np.nan)
F16_ULP = 2.0 ** -10  # relative spacing of f16 values: a value rounded once to f16 is within half of it


def assert_close(actual, expected, path: str, what: str = "output") -> None:
    """Relative L2 error within TOLERANCES[path], no NaN (outputs are poisoned with NaN before each kernel);
    on failure, the first mismatching elements are printed."""
    actual = np.asarray(actual, dtype=np.float64).reshape(np.shape(expected))
    expected = np.asarray(expected, dtype=np.float64)
    bad_nan = np.isnan(actual)
    err = np.linalg.norm((actual - expected)[~bad_nan]) / max(np.linalg.norm(expected), 1e-30)
    tol = TOLERANCES[path]
    if bad_nan.any() or not err <= tol:
        diff = np.abs(actual - expected)
        diff[bad_nan] = np.inf
        idx = np.argsort(-diff, axis=None)[:8]
        rows = "\n".join(
            f"  at {np.unravel_index(i, expected.shape)}: got {actual.flat[i]:.6g}, want {expected.flat[i]:.6g}"
            for i in idx
        )
        raise AssertionError(
            f"{what}: relative error {err:.3g} > {tol:g} ({path}); {int(bad_nan.sum())} unwritten (NaN) elements; "
            f"worst mismatches:\n{rows}"
        )


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)
