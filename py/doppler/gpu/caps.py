"""What a device offers, in WebGPU's own names, whichever backend found it. Rules read `Capabilities.context()`."""

from __future__ import annotations

from dataclasses import dataclass, field

# Features Doppler asks for when the adapter offers them (WebGPU spec names).
WANTED_FEATURES = ("shader-f16", "subgroups", "timestamp-query", "chromium-experimental-subgroup-matrix")
# wgpu-native spells some features its own way.
FEATURE_ALIASES = {"subgroup": "subgroups"}
# Limits raised to the adapter's maximum at device creation (the defaults are far below what diffusion needs).
RAISED_LIMITS = (
    "maxBufferSize",
    "maxStorageBufferBindingSize",
    "maxComputeWorkgroupStorageSize",
    "maxComputeInvocationsPerWorkgroup",
    "maxComputeWorkgroupSizeX",
    "maxComputeWorkgroupSizeY",
    "maxStorageBuffersPerShaderStage",
)
LIMIT_NAMES = RAISED_LIMITS + (
    "maxComputeWorkgroupSizeZ",
    "maxComputeWorkgroupsPerDimension",
    "maxUniformBufferBindingSize",
    "minStorageBufferOffsetAlignment",
    "minUniformBufferOffsetAlignment",
    "maxBindGroups",
)


def normalize_features(names) -> frozenset[str]:
    return frozenset(FEATURE_ALIASES.get(n, n) for n in names)


@dataclass(frozen=True)
class Capabilities:
    backend: str  # "browser" | "native"
    vendor: str
    architecture: str
    description: str
    features: frozenset[str]  # enabled on the device
    limits: dict[str, int] = field(hash=False)
    # chromium-experimental-subgroup-matrix shapes, "f16>f32 16x16x16" (operands>results MxNxK); none natively
    subgroup_matrix_configs: tuple[str, ...] = ()
    subgroup_sizes: tuple[int, int] = (0, 0)  # (min, max) invocations per subgroup; 0 where the adapter does not say

    def has(self, feature: str) -> bool:
        return feature in self.features

    def context(self) -> dict:
        """The rule context (`rules/`): plain values only."""
        return {
            "backend": self.backend,
            "vendor": self.vendor.lower(),
            "architecture": self.architecture,
            "description": self.description,
            "features": sorted(self.features),
            "limits": dict(self.limits),
            "subgroupMatrixConfigs": list(self.subgroup_matrix_configs),
            "subgroupMinSize": self.subgroup_sizes[0],
            "subgroupMaxSize": self.subgroup_sizes[1],
        }

    def summary(self) -> dict:
        return {
            "backend": self.backend,
            "adapter": {"vendor": self.vendor, "architecture": self.architecture, "description": self.description},
            "features": sorted(self.features),
            "limits": dict(self.limits),
            "subgroupMatrixConfigs": list(self.subgroup_matrix_configs),
            "subgroupSizes": list(self.subgroup_sizes),
        }
