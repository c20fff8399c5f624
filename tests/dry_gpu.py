"""A GPU that runs nothing, with the H100's capabilities as Chromium offers them: the pool, the plans and the kernel
rules do all their bookkeeping, so tests check memory peaks and the kernels chosen for that device without it."""

from __future__ import annotations

import asyncio

from doppler.gpu.caps import Capabilities

# The H100's adapter in Chromium 156 with $CHROME_F16_FLAGS (bench/results/h100-app-tensor-cores-s9-final.json);
# the default path is the same adapter without shader-f16, as Chromium offers it on that driver.
H100_FEATURES = frozenset({"chromium-experimental-subgroup-matrix", "shader-f16", "subgroups", "timestamp-query"})
H100_LIMITS = {"maxBufferSize": 4294967292, "maxStorageBufferBindingSize": 2147483644,
               "maxComputeWorkgroupStorageSize": 49152, "maxComputeInvocationsPerWorkgroup": 1024,
               "maxComputeWorkgroupSizeX": 1024, "maxComputeWorkgroupSizeY": 1024, "maxStorageBuffersPerShaderStage": 16,
               "maxComputeWorkgroupSizeZ": 64, "maxComputeWorkgroupsPerDimension": 65535,
               "maxUniformBufferBindingSize": 65536, "minStorageBufferOffsetAlignment": 256,
               "minUniformBufferOffsetAlignment": 256, "maxBindGroups": 4}
H100_MATRIX_CONFIGS = ("f16>f16 16x16x16", "f16>f16 16x8x16", "f16>f16 16x8x8", "f16>f32 16x16x16", "f16>f32 16x8x16",
                       "f16>f32 16x8x8", "u8>u32 16x16x32", "i8>i32 16x16x32", "u8>u32 16x8x32", "i8>i32 16x8x32")
PATHS = {
    "tensor-cores": Capabilities("browser", "nvidia", "", "NVIDIA H100 80GB HBM3", H100_FEATURES, H100_LIMITS,
                                 H100_MATRIX_CONFIGS, (32, 32)),
    "default": Capabilities("browser", "nvidia", "", "NVIDIA H100 80GB HBM3",
                            H100_FEATURES - {"shader-f16", "chromium-experimental-subgroup-matrix"}, H100_LIMITS,
                            (), (32, 32)),
}


class DryBuffer:
    def __init__(self, size: int):
        self.size = size


class DryBackend:
    """Buffers are sizes, pipelines names, dispatches nothing: the pool and the plans do all their bookkeeping."""

    name = "browser"

    def __init__(self, caps: Capabilities):
        self.caps = caps

    def create_buffer(self, size, usage, label):
        return DryBuffer(size)

    def destroy_buffer(self, buffer):
        pass

    def write_buffer(self, buffer, offset, data):
        pass

    async def create_pipeline(self, code, entry, constants, label):
        return label

    def create_bind_group(self, pipeline, entries, label):
        return None

    def create_query_set(self, count):
        return None

    def submit(self, ops, max_per_submit, timing=None):
        return 1

    def make_plan(self, ops, max_per_submit):
        return ops

    def replay(self, plan, timing=None):
        return 1

    async def read_buffer(self, buffer, offset, size):
        return bytes(size)

    def present(self, buffer, offset, width, height, canvas):
        pass

    async def fence(self):
        pass

    def work_done(self):
        return asyncio.sleep(0)

    def lost(self):
        return None

    def take_errors(self):
        return [], None
