"""float64 reference of the Winograd F(2x2, 3x3) weight transform (see wgsl/winograd_weights.wgsl)."""

from __future__ import annotations

import numpy as np

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def winograd_weight(weight) -> np.ndarray:
    """U (16, Cout, Cin): G g G^T of each 3x3 kernel g of weight [Cout, Cin, 3, 3], position p = 4i + j first."""
    u = np.einsum("ia,ocab,jb->ijoc", G, np.asarray(weight, np.float64), G)
    return u.reshape(16, *np.shape(weight)[:2])
