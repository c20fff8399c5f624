"""Dispatch geometry and binding checks shared by the kernels."""

from ..errors import GpuError

MAX_GROUPS_X = 65535  # WebGPU's guaranteed maxComputeWorkgroupsPerDimension; kernels wrap rows into y


def linear_groups(n: int, workgroup: int) -> tuple[int, int, int]:
    """Workgroups covering n invocations of a 1-D kernel, wrapped into y past MAX_GROUPS_X (WGSL: `wg.y * 65535 + wg.x`)."""
    groups = max(1, -(-n // workgroup))
    rows = -(-groups // MAX_GROUPS_X)
    return (min(groups, MAX_GROUPS_X), rows, 1)


def tile_groups(cols: int, rows: int, label: str) -> tuple[int, int, int]:
    """Workgroups for a grid of cols x rows tiles: cols along x, rows along y wrapped into z past MAX_GROUPS_X
    (WGSL: `row = wg.z * 65535 + wg.y`; the surplus of the last z layer returns at once)."""
    if cols > MAX_GROUPS_X:
        raise GpuError(f"{label}: {cols} column tiles exceed {MAX_GROUPS_X} workgroups; use a wider tile_n")
    rows = max(1, rows)
    return (max(1, cols), min(rows, MAX_GROUPS_X), -(-rows // MAX_GROUPS_X))


def require_whole_bindings(gpu, label: str, **tensors) -> None:
    """Kernels that bind each tensor whole: refuse, by name, any over the device's storage binding limit."""
    for name, t in tensors.items():
        if t is not None and t.nbytes > gpu.max_binding:
            raise GpuError(
                f"{label}: {name} {t.label} {t.shape} is {t.nbytes} bytes, over this GPU's maxStorageBufferBindingSize "
                f"{gpu.max_binding}; split the work (e.g. tiled VAE decode) or use a device with a higher limit"
            )


def require_output_apart(label: str, out, **inputs) -> None:
    """WebGPU refuses a buffer bound both writable and read-only in one dispatch: name the input that shares out's."""
    for name, t in inputs.items():
        if t is not None and t.alloc is out.alloc:
            raise GpuError(f"{label}: {name} {t.label} shares its buffer with out; write to another tensor")
