"""Kernel wrappers: one module per `wgsl/` file, each with its uniform dataclass and dispatch functions.
They know tensors and shapes, not models."""
