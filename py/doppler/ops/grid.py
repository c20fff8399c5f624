"""Dispatch geometry shared by the kernels."""

MAX_GROUPS_X = 65535  # WebGPU's guaranteed maxComputeWorkgroupsPerDimension; kernels wrap rows into y


def linear_groups(n: int, workgroup: int) -> tuple[int, int, int]:
    """Workgroups covering n invocations of a 1-D kernel, wrapped into y past MAX_GROUPS_X (WGSL: `wg.y * 65535 + wg.x`)."""
    groups = max(1, -(-n // workgroup))
    rows = -(-groups // MAX_GROUPS_X)
    return (min(groups, MAX_GROUPS_X), rows, 1)
