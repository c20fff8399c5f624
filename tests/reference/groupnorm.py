"""GroupNorm over NHWC maps in float64: y = (x - mean_bg) / sqrt(var_bg + eps) * gamma_c + beta_c, then SiLU."""

from __future__ import annotations

import numpy as np


def moments(x, groups: int, window: tuple[int, int, int, int] | None = None):
    """(B, G, 3) = (count, mean, M2) over the window (top, left, height, width) of x (B, H, W, C)."""
    x = np.asarray(x, np.float64)
    if window is not None:
        top, left, height, width = window
        x = x[:, top:top + height, left:left + width]
    b, c = x.shape[0], x.shape[-1]
    grouped = x.reshape(b, -1, groups, c // groups).transpose(0, 2, 1, 3).reshape(b, groups, -1)
    mean = grouped.mean(-1)
    m2 = ((grouped - mean[..., None]) ** 2).sum(-1)
    return np.stack([np.full_like(mean, grouped.shape[-1]), mean, m2], -1)


def stats(m, eps: float):
    """(B, G, 2) = (mean, rstd) from moments (B, G, 3)."""
    return np.stack([m[..., 1], 1.0 / np.sqrt(m[..., 2] / m[..., 0] + eps)], -1)


def group_norm(x, gamma, beta, groups: int, eps: float, silu: bool = False, s=None):
    """With `s` (B, G, 2) given, those statistics are applied instead of x's own."""
    x = np.asarray(x, np.float64)
    b, c = x.shape[0], x.shape[-1]
    s = stats(moments(x, groups), eps) if s is None else s
    per_channel = np.repeat(s, c // groups, axis=1)  # (B, C, 2)
    y = (x - per_channel[:, None, None, :, 0]) * per_channel[:, None, None, :, 1]
    y = y * np.asarray(gamma, np.float64) + np.asarray(beta, np.float64)
    return y / (1.0 + np.exp(-y)) if silu else y
