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


def test_decode_tiling_reaches_the_vae(tiny_model, reference, native_gpu, event_loop_runner):
    """The manifest's decode.tiling (merged with runtime's) is what the VAE decodes with; a 64-pixel image is one
    64-pixel tile, which is the untiled decode."""
    from dataclasses import replace

    from doppler.config.diffusion import Tiling
    from doppler.inference.diffusion.pipeline import DiffusionPipeline
    from doppler.loader.stores import LocalShardStore
    from doppler.manifest import load_manifest

    manifest = load_manifest(tiny_model / "manifest.json")
    inference, tiling = manifest.inference, Tiling(enabled=True, tile_size=64, overlap=32)
    diffusion = replace(inference.diffusion, decode=replace(inference.diffusion.decode, tiling=tiling))
    manifest = replace(manifest, inference=replace(inference, diffusion=diffusion))
    tiled = event_loop_runner(DiffusionPipeline.create(native_gpu, manifest, LocalShardStore(tiny_model)))
    vae = event_loop_runner(tiled.component("vae"))
    seen = []

    async def recording(gpu, latents, tiling=None):
        seen.append(tiling)
        return await vae(gpu, latents, tiling)

    tiled.resident["vae"] = (tiled.resident["vae"][0], recording)
    request = request_for(reference, "ddim_eta0")
    try:
        image = event_loop_runner(tiled.generate(request))["image"]["rgba"]
    finally:
        tiled.release_all()
    assert seen == [tiling]
    assert psnr(image, reference, "ddim_eta0") >= MIN_PSNR_DB


def test_the_request_reaches_the_decode_settings(pipeline, reference, event_loop_runner):
    from doppler.errors import DopplerError

    request = request_for(reference, "euler")
    with pytest.raises(DopplerError, match="decode.tiling"):
        event_loop_runner(pipeline.generate({**request, "decode": {"tiling": {"enabled": True, "tileSize": 64,
                                                                              "overlap": 64}}}))
    tiled = event_loop_runner(pipeline.generate({**request, "decode": {"tiling": {"enabled": True, "tileSize": 64,
                                                                                  "overlap": 32}}}))
    assert psnr(tiled["image"]["rgba"], reference, "euler") >= MIN_PSNR_DB


def test_the_time_table_follows_the_step_count(pipeline, reference, event_loop_runner):
    # The step's time projections come from a table recorded for a number of steps: another count records it again,
    # and going back gives the same pixels.
    request = request_for(reference, "euler")
    first = event_loop_runner(pipeline.generate(request))["image"]["rgba"]
    step = next(iter(pipeline.recorded["unet"].values()))
    assert step.time_plan[0] == request["steps"] and step.time_plan[3].shape[0] == request["steps"]
    event_loop_runner(pipeline.generate({**request, "steps": request["steps"] + 1}))
    assert next(iter(pipeline.recorded["unet"].values())) is step and step.time_plan[0] == request["steps"] + 1
    assert event_loop_runner(pipeline.generate(request))["image"]["rgba"] == first


def test_one_recorded_step_at_a_time(pipeline, reference, event_loop_runner):
    # CFG (batch 2) then no guidance (batch 1): the second step replaces the first, whose memory goes back.
    request = request_for(reference, "euler_a")
    event_loop_runner(pipeline.generate(request))
    first = dict(pipeline.recorded["unet"])
    event_loop_runner(pipeline.generate({**request, "guidance": 1.0}))
    assert len(pipeline.recorded["unet"]) == 1 and pipeline.recorded["unet"].keys() != first.keys()
    assert all(not plan.plan.owned for plan in first.values())


def test_the_decode_is_recorded_once_per_latent_shape(pipeline, reference, event_loop_runner):
    # Untiled, the VAE decode is recorded for the latents' shape and replayed; a tiled decode frees that recording
    # first (tiling is asked for a lower peak) and runs eagerly; the next untiled one records again.
    request = request_for(reference, "euler")
    first = event_loop_runner(pipeline.generate(request))["image"]["rgba"]
    decode = next(iter(pipeline.recorded["vae"].values()))
    assert event_loop_runner(pipeline.generate(request))["image"]["rgba"] == first
    assert list(pipeline.recorded["vae"].values()) == [decode] and decode.plan.owned
    tiled = {**request, "decode": {"tiling": {"enabled": True, "tileSize": 64, "overlap": 32}}}
    event_loop_runner(pipeline.generate(tiled))
    assert "vae" not in pipeline.recorded and not decode.plan.owned
    event_loop_runner(pipeline.generate(request))
    assert len(pipeline.recorded["vae"]) == 1


def test_evicting_the_unet_before_the_decode(tiny_model, reference, native_gpu, event_loop_runner):
    # swapper.evictUnet: the UNet and its recorded step are freed before the decode, which reads a copy of the latents
    from dataclasses import replace

    from doppler.inference.diffusion.pipeline import DiffusionPipeline
    from doppler.loader.stores import LocalShardStore
    from doppler.manifest import load_manifest

    manifest = load_manifest(tiny_model / "manifest.json")
    inference = manifest.inference
    diffusion = replace(inference.diffusion, swapper=replace(inference.diffusion.swapper, evict_unet=True))
    manifest = replace(manifest, inference=replace(inference, diffusion=diffusion))
    evicting = event_loop_runner(DiffusionPipeline.create(native_gpu, manifest, LocalShardStore(tiny_model)))
    try:
        image = event_loop_runner(evicting.generate(request_for(reference, "euler")))["image"]["rgba"]
        assert "unet" not in evicting.resident and "unet" not in evicting.recorded
    finally:
        evicting.release_all()
    assert psnr(image, reference, "euler") >= MIN_PSNR_DB
