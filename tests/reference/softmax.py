"""Row softmax in float64, optionally causal over square (T, T) blocks (masked entries are 0)."""

from __future__ import annotations

import numpy as np


def softmax(x, scale: float = 1.0, causal: bool = False):
    s = scale * np.asarray(x, np.float64)
    if causal:
        t = s.shape[-1]
        s = np.where(np.triu(np.ones((t, t), bool), 1), -np.inf, s)
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)
