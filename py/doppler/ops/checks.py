"""Argument checks shared by the kernel wrappers: a wrong tensor fails in Python with its label and the fix,
before the GPU sees it."""

from __future__ import annotations

from ..errors import GpuError


def require_dtype(op: str, tensor, *dtypes: str) -> None:
    if tensor.dtype not in dtypes:
        raise GpuError(f"{op}: {tensor.label} is {tensor.dtype}; this kernel takes {' or '.join(dtypes)}")


def require_shader_f16(gpu, op: str, tensor) -> None:
    """An f16 tensor needs array<f16> bindings: the device feature shader-f16."""
    if tensor.dtype == "f16" and not gpu.caps.has("shader-f16"):
        raise GpuError(f"{op}: {tensor.label} is f16, which needs the shader-f16 feature; this GPU lacks it")


def require_shape(op: str, tensor, shape) -> None:
    if tuple(tensor.shape) != tuple(shape):
        raise GpuError(f"{op}: {tensor.label} has shape {tensor.shape}; expected {tuple(shape)}")


def require_one_binding(gpu, op: str, *tensors) -> None:
    """For kernels that bind small tensors whole (latents, images, tables of a few rows)."""
    for t in tensors:
        if t.nbytes > gpu.max_binding:
            raise GpuError(
                f"{op}: {t.label} {t.shape} {t.dtype} ({t.nbytes} bytes) exceeds this GPU's "
                f"maxStorageBufferBindingSize {gpu.max_binding}; this kernel binds it whole, so make it smaller"
            )


def same_storage(a, b) -> bool:
    """Whether two tensors are views of the same bytes (an in-place call)."""
    return a.alloc is b.alloc and a.offset == b.offset
