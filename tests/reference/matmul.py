"""float64 references for linear layers and batched matmul: y = act(x W^T + b) + r (see wgsl/matmul.wgsl)."""

from __future__ import annotations

from math import erf, sqrt

import numpy as np

QUICK_GELU_SCALE = 1.702
_erf = np.vectorize(erf, otypes=[np.float64])


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


ACTIVATIONS = {
    "none": lambda v: v,
    "gelu": lambda v: 0.5 * v * (1.0 + _erf(v / sqrt(2.0))),
    "silu": lambda v: v * sigmoid(v),
    "quick_gelu": lambda v: v * sigmoid(QUICK_GELU_SCALE * v),
}


def epilogue(v, bias=None, residual=None, activation: str = "none"):
    """act(v + bias) + residual, in float64."""
    v = np.asarray(v, np.float64)
    if bias is not None:
        v = v + np.asarray(bias, np.float64)
    v = ACTIVATIONS[activation](v)
    return v if residual is None else v + np.asarray(residual, np.float64)


def linear(x, weight, bias=None, residual=None, activation: str = "none"):
    """x (..., K), weight [N, K] -> (..., N)."""
    return epilogue(np.asarray(x, np.float64) @ np.asarray(weight, np.float64).T, bias, residual, activation)


def batched_matmul(a, b, residual=None, activation: str = "none"):
    """a (B, M, K), b (B, N, K) -> (B, M, N)."""
    product = np.einsum("bmk,bnk->bmn", np.asarray(a, np.float64), np.asarray(b, np.float64))
    return epilogue(product, None, residual, activation)
