"""Scaled dot-product attention in float64 over tokens (B, T, heads * d), heads split as channel = head * d + j."""

from __future__ import annotations

import numpy as np


def attention(q, k, v, heads: int, scale: float | None = None, causal: bool = False):
    q, k, v = (np.asarray(t, np.float64) for t in (q, k, v))
    b, tq, channels = q.shape
    d = channels // heads

    def split(t):  # (B, T, heads*d) -> (B, heads, T, d)
        return t.reshape(b, t.shape[1], heads, d).transpose(0, 2, 1, 3)

    scores = split(q) @ split(k).transpose(0, 1, 3, 2) * (d**-0.5 if scale is None else scale)
    if causal:
        scores = np.where(np.triu(np.ones(scores.shape[-2:], bool), 1), -np.inf, scores)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return (weights @ split(v)).transpose(0, 2, 1, 3).reshape(b, tq, channels)
