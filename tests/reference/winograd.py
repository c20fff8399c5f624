"""float64 reference of the Winograd F(m x m, 3x3) transforms (see wgsl/lib/winograd_matrices.wgsl), m = 2 or 4,
with the matrices derived here by Toom-Cook from their interpolation points (not copied from the WGSL)."""

from __future__ import annotations

import numpy as np

TAPS = 3


def toom_cook(points, m: int, r: int = TAPS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B^T, G, A^T) of F(m, r) at the finite `points` (and infinity): A^T[i, j] = p_j^i, G[j, k] = p_j^k / prod of
    (p_j - p_l) over the other points; B^T solves sum_j A^T[i, j] G[j, k] B^T[j, l] = [l == i + k] (a correlation).
    Signs as Lavin & Gray's F(2x2, 3x3): each finite point's G row starts positive, the B^T row of infinity has a
    positive second entry (a point's B^T row flips with its G row or A^T column, leaving the product)."""
    n = m + r - 1
    a_t, g = np.zeros((m, n)), np.zeros((n, r))
    for j, p in enumerate(points):
        a_t[:, j] = [p ** i for i in range(m)]
        g[j] = [p ** k / np.prod([p - q for q in points if q != p]) for k in range(r)]
    a_t[m - 1, n - 1] = g[n - 1, r - 1] = 1.0
    system = np.einsum("ij,jk,lL->ikLjl", a_t, g, np.eye(n)).reshape(m * r * n, n * n)
    want = np.array([[[float(l == i + k) for l in range(n)] for k in range(r)] for i in range(m)]).ravel()
    b_t = np.linalg.lstsq(system, want, rcond=None)[0].reshape(n, n)
    for j in range(n - 1):
        sign = np.sign(g[j][np.flatnonzero(g[j])[0]])
        g[j], b_t[j] = sign * g[j], sign * b_t[j]
    sign = np.sign(b_t[n - 1, 1])
    a_t[:, n - 1], b_t[n - 1] = sign * a_t[:, n - 1], sign * b_t[n - 1]
    return b_t, g, a_t


B_T_2, G_2, A_T_2 = toom_cook([0.0, 1.0, -1.0], 2)
B_T_4, G_4, A_T_4 = toom_cook([0.0, 1.0, -1.0, 2.0, -0.5], 4)
# F(4x4) quarters B^T and quadruples A^T (exact: powers of 2) to keep V within f16's range.
MATRICES = {2: (B_T_2, G_2, A_T_2), 4: (B_T_4 / 4, G_4, A_T_4 * 4)}


def side(tile: int) -> int:
    return tile + TAPS - 1


def weight_shape(cout: int, cin: int, tile: int) -> tuple[int, int, int]:
    return (side(tile) ** 2, cout, cin)


def winograd_weight(weight, tile: int = 2) -> np.ndarray:
    """U (positions, Cout, Cin): G g G^T of each 3x3 kernel g of weight [Cout, Cin, 3, 3], position p = SIDE i + j
    first."""
    g = MATRICES[tile][1]
    u = np.einsum("ia,ocab,jb->ijoc", g, np.asarray(weight, np.float64), g)
    return u.reshape(side(tile) ** 2, *np.shape(weight)[:2])


def input_transform(x, tile: int = 2) -> np.ndarray:
    """V (positions, tiles, Cin) = B^T d B per m x m output tile of a 3x3, padding-1 convolution over NHWC x
    (B, H, W, Cin), d the tile's SIDE x SIDE patch (zeros outside the image); tiles (b, ty, tx) in order, position
    p = SIDE i + j first."""
    b_t, n = MATRICES[tile][0], side(tile)
    b, h, w, c = np.shape(x)
    th, tw = -(-h // tile), -(-w // tile)
    padded = np.zeros((b, tile * th + 2, tile * tw + 2, c))
    padded[:, 1:h + 1, 1:w + 1] = x
    patches = np.stack([np.stack([padded[:, r:r + tile * th:tile, s:s + tile * tw:tile] for s in range(n)], 3)
                        for r in range(n)], 3)  # (b, th, tw, SIDE rows, SIDE columns, c)
    v = np.einsum("ir,btwrsc,js->ijbtwc", b_t, patches, b_t)
    return v.reshape(n * n, b * th * tw, c)
