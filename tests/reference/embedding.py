"""float64 reference for wgsl/embedding.wgsl."""

import numpy as np


def embed(ids, tokens, positions):
    """ids (B, T), tokens (V, C), positions (P, C) -> (B, T, C): tokens[ids] + positions[:T]."""
    tokens, positions = np.asarray(tokens, np.float64), np.asarray(positions, np.float64)
    return tokens[ids] + positions[: ids.shape[1]][None]
