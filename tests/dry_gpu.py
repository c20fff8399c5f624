"""The H100's capabilities as Chromium offers them, for a GPU that runs nothing (doppler/gpu/backend_dry.py): the
pool, the plans and the kernel rules do all their bookkeeping, so tests check memory peaks and the kernels chosen for
that device without it."""

from __future__ import annotations

from pathlib import Path

from doppler.gpu.backend_dry import DryBackend
from doppler.gpu.caps import Capabilities
from doppler.gpu.context import Gpu
from doppler.inference.diffusion.pipeline import DiffusionPipeline
from doppler.manifest import load_manifest

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


# An image of SD 1.5 at 512x512 with CFG; two steps run every kernel a longer one does.
REQUEST_512 = {"prompt": "a photo", "negativePrompt": "", "seed": 0, "steps": 2, "guidance": 7.5,
               "scheduler": "dpmpp_2m", "width": 512, "height": 512}
WGSL = Path(__file__).resolve().parents[1] / "wgsl"


async def dry_pipeline(folder: Path, caps: Capabilities):
    """(gpu, pipeline): the converted model in `folder` on a dry GPU with these capabilities."""
    gpu = Gpu(DryBackend(caps), WGSL)
    return gpu, await DiffusionPipeline.create(gpu, load_manifest(folder / "manifest.json"), CountedShards(folder))


class CountedShards:
    """The converted folder's text files; shard bytes are never read (their files are empty)."""

    def __init__(self, folder: Path):
        self.folder = folder

    async def read_text(self, path: str) -> str:
        return (self.folder / path).read_text(encoding="utf-8")

    async def upload(self, gpu, index, shard, placements) -> None:
        pass
