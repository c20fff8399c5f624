"""The whole pipeline (native backend) against diffusers' StableDiffusionPipeline on the tiny fixture model, per
scheduler, with the same noise (the GPU generator's numpy twin fed to diffusers). PSNR >= 35 dB on the f32 path."""

import json

import numpy as np
import pytest

from pipeline_cases import CASES, MIN_PSNR_DB, psnr, request_for

pytestmark = pytest.mark.native


@pytest.fixture(scope="session")
def pipeline(tiny_model, native_gpu, event_loop_runner):
    from doppler.inference.diffusion.pipeline import DiffusionPipeline
    from doppler.loader.stores import LocalShardStore
    from doppler.manifest import load_manifest

    manifest = load_manifest(tiny_model / "manifest.json")
    return event_loop_runner(DiffusionPipeline.create(native_gpu, manifest, LocalShardStore(tiny_model)))


@pytest.mark.parametrize("case", list(CASES))
def test_pipeline_matches_diffusers(pipeline, reference, event_loop_runner, case):
    result = event_loop_runner(pipeline.generate(request_for(reference, case)))
    db = psnr(result["image"]["rgba"], reference, case)
    assert db >= MIN_PSNR_DB, f"{case}: PSNR {db:.1f} dB < {MIN_PSNR_DB}"
    assert result["stats"]["readbacks"] == 1 and result["stats"]["steps"] == int(reference["pipeline_steps"])


def test_same_seed_same_pixels(pipeline, reference, event_loop_runner):
    request = request_for(reference, "euler_a")
    first = event_loop_runner(pipeline.generate(request))["image"]["rgba"]
    assert event_loop_runner(pipeline.generate(request))["image"]["rgba"] == first
    assert event_loop_runner(pipeline.generate({**request, "seed": request["seed"] + 1}))["image"]["rgba"] != first
