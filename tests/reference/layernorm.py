"""LayerNorm over the last axis in float64: y = (x - mean) / sqrt(var + eps) * gamma + beta."""

from __future__ import annotations

import numpy as np


def layer_norm(x, gamma, beta, eps: float):
    x = np.asarray(x, np.float64)
    centred = x - x.mean(-1, keepdims=True)
    y = centred / np.sqrt((centred**2).mean(-1, keepdims=True) + eps)
    return y * np.asarray(gamma, np.float64) + np.asarray(beta, np.float64)
