"""Model data to GPU buffers: shard stores (browser OPFS cache, local folder) and per-component weight loading."""

from .weights import ComponentWeights, load_component

__all__ = ["ComponentWeights", "load_component"]
