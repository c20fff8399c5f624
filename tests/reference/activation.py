"""float64 references for wgsl/activation.wgsl."""

import math

import numpy as np

_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def gelu(x):
    x = np.asarray(x, np.float64)
    return x * 0.5 * _erfc(-x / math.sqrt(2.0))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def quick_gelu(x):
    x = np.asarray(x, np.float64)
    return x * sigmoid(1.702 * x)


def silu(x):
    x = np.asarray(x, np.float64)
    return x * sigmoid(x)


def geglu(x):
    """x (..., 2F) -> (..., F): diffusers' GEGLU chunk order, hidden * gelu(gate)."""
    hidden, gate = np.split(np.asarray(x, np.float64), 2, axis=-1)
    return hidden * gelu(gate)
