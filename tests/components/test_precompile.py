"""The kernels compiled during the download (pipeline.precompile) are every kernel the first image needs: a dry run of
full-size SD 1.5 at 512x512 with the H100's capabilities, on both kernel paths (nothing compiled or allocated)."""

from __future__ import annotations

from pathlib import Path

import pytest

from doppler.gpu.backend_dry import DryBackend
from doppler.gpu.context import Gpu
from doppler.inference.diffusion.pipeline import DiffusionPipeline, precompile
from doppler.manifest import load_manifest
from dry_gpu import PATHS, CountedShards

ROOT = Path(__file__).resolve().parents[2]
REQUEST = {"prompt": "a photo", "negativePrompt": "", "seed": 0, "steps": 20, "guidance": 7.5,
           "scheduler": "dpmpp_2m", "width": 512, "height": 512}


@pytest.mark.parametrize("path", PATHS)
def test_an_image_after_precompile_compiles_nothing_more(sd15_folder, event_loop_runner, path):
    async def counts():
        gpu = Gpu(DryBackend(PATHS[path]), ROOT / "wgsl")
        manifest = load_manifest(sd15_folder / "manifest.json")
        result = await precompile(gpu, manifest, REQUEST)
        precompiled = len(gpu.kernels)
        pipeline = await DiffusionPipeline.create(gpu, manifest, CountedShards(sd15_folder))
        first = await pipeline.generate({**REQUEST, "prompt": "another", "seed": 7, "steps": 3, "scheduler": "euler"})
        same_shapes = len(gpu.kernels)
        # batch 1: other GEMMs
        lcm = await pipeline.generate({**REQUEST, "guidance": 1.0, "scheduler": "lcm", "steps": 4})
        setup = [set(r["stats"]["setupMs"]) for r in (first, lcm)]
        return result, precompiled, same_shapes, len(gpu.kernels), setup

    result, precompiled, same_shapes, without_cfg, setup = event_loop_runner(counts())
    assert result == {"kernels": precompiled, "failed": []} and precompiled > 50, result
    assert same_shapes == precompiled  # prompt, seed, steps and sampler choose no kernel
    assert without_cfg > precompiled  # so the test can fail: other shapes are other kernels
    # what each image set up first, in its stats: the first loads and records all; the next records its batch's calls
    components = {"text_encoder", "unet", "vae"}
    assert setup[0] == {f"{c}.{what}" for c in components for what in ("load", "record")}
    assert setup[1] == {"text_encoder.record", "unet.record"}
