"""float64 reference of the Winograd F(2x2, 3x3) weight transform (see wgsl/winograd_weights.wgsl)."""

from __future__ import annotations

import numpy as np

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def winograd_weight(weight) -> np.ndarray:
    """U (16, Cout, Cin): G g G^T of each 3x3 kernel g of weight [Cout, Cin, 3, 3], position p = 4i + j first."""
    u = np.einsum("ia,ocab,jb->ijoc", G, np.asarray(weight, np.float64), G)
    return u.reshape(16, *np.shape(weight)[:2])


B_T = np.array([[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0]])


def input_transform(x) -> np.ndarray:
    """V (16, tiles, Cin) = B^T d B per 2x2 output tile of a 3x3, padding-1 convolution over NHWC x (B, H, W, Cin), d
    the tile's 4x4 patch (zeros outside the image); tiles (b, ty, tx) in order, position p = 4i + j first."""
    b, h, w, c = np.shape(x)
    th, tw = -(-h // 2), -(-w // 2)
    padded = np.zeros((b, 2 * th + 2, 2 * tw + 2, c))
    padded[:, 1:h + 1, 1:w + 1] = x
    patches = np.stack([np.stack([padded[:, r:r + 2 * th:2, s:s + 2 * tw:2] for s in range(4)], 3)
                        for r in range(4)], 3)  # (b, th, tw, 4 rows, 4 columns, c)
    v = np.einsum("ir,btwrsc,js->ijbtwc", B_T, patches, B_T)
    return v.reshape(16, b * th * tw, c)
