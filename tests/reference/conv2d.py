"""float64 references for NHWC convolutions (see wgsl/conv2d.wgsl, wgsl/conv2d_depthwise.wgsl), numpy only:
im2col by strided slices of the zero-padded input, then one einsum over (channel, tap)."""

from __future__ import annotations

import numpy as np

from .matmul import epilogue


def nearest_indices(size_out: int, size_in: int) -> np.ndarray:
    """Source index per destination index, as torch's nearest upsampling computes it (float32 scale in/out)."""
    if size_out == size_in:
        return np.arange(size_out)
    if size_out == 2 * size_in:
        return np.arange(size_out) // 2
    scale = np.float32(size_in) / np.float32(size_out)
    return np.minimum(np.floor(np.arange(size_out, dtype=np.float32) * scale).astype(np.int64), size_in - 1)


def upsample_nearest(x, size: tuple[int, int]):
    """x (B, H, W, C) seen at size (SH, SW)."""
    rows, cols = (nearest_indices(s, n) for s, n in zip(size, np.shape(x)[1:3]))
    return np.asarray(x)[:, rows][:, :, cols]


def taps(x, kh: int, kw: int, stride: int, padding: int) -> np.ndarray:
    """(B, OH, OW, C, KH*KW): the input under each tap of each output pixel (im2col)."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    oh = (x.shape[1] - kh) // stride + 1
    ow = (x.shape[2] - kw) // stride + 1
    views = [x[:, ky:ky + stride * (oh - 1) + 1:stride, kx:kx + stride * (ow - 1) + 1:stride, :]
             for ky in range(kh) for kx in range(kw)]
    return np.stack(views, axis=-1)


def conv2d(x, weight, bias=None, residual=None, stride: int = 1, padding: int = 0, upsample_to=None):
    """NHWC x (B, H, W, Cin), weight [Cout, Cin, KH, KW] -> (B, OH, OW, Cout); x upsampled first if asked."""
    if upsample_to is not None:
        x = upsample_nearest(x, upsample_to)
    cout, cin, kh, kw = np.shape(weight)
    cols = taps(x, kh, kw, stride, padding)
    product = np.einsum("bhwct,oct->bhwo", cols, np.asarray(weight, np.float64).reshape(cout, cin, kh * kw))
    return epilogue(product, bias, residual)


def depthwise_conv2d(x, weight, bias=None, residual=None, stride: int = 1, padding: int = 0):
    """NHWC x (B, H, W, C), weight [C, 1, KH, KW] -> (B, OH, OW, C)."""
    c, _, kh, kw = np.shape(weight)
    cols = taps(x, kh, kw, stride, padding)
    product = np.einsum("bhwct,ct->bhwc", cols, np.asarray(weight, np.float64).reshape(c, kh * kw))
    return epilogue(product, bias, residual)
