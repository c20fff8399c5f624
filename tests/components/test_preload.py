"""The swapper's preload strategy (pipeline.preload, the page's `prepare`): the first image's weights upload and its
calls record before Generate, once, even when Generate comes meanwhile; full-size SD 1.5 planned dry."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from pathlib import Path

from doppler.gpu.backend_dry import DryBackend
from doppler.gpu.context import Gpu
from doppler.inference.diffusion.pipeline import DiffusionPipeline
from doppler.loader.models import ComponentArrivals
from doppler.manifest import load_manifest
from dry_gpu import PATHS, CountedShards

ROOT = Path(__file__).resolve().parents[2]
REQUEST = {"prompt": "a photo", "negativePrompt": "", "seed": 0, "steps": 2, "guidance": 7.5,
           "scheduler": "euler", "width": 512, "height": 512}


class SlowShards(CountedShards):
    """Counts each shard's uploads, each taking a few event-loop turns (so an image can start during a preload)."""

    def __init__(self, folder: Path):
        super().__init__(folder)
        self.uploads = Counter()

    async def upload(self, gpu, index, shard, placements) -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        self.uploads[index] += 1


def _with_swapper(manifest, **swapper):
    """The manifest with these swapper settings (the form sends none: they are the model's)."""
    diffusion = manifest.inference.diffusion
    diffusion = dataclasses.replace(diffusion, swapper=dataclasses.replace(diffusion.swapper, **swapper))
    return dataclasses.replace(manifest, inference=dataclasses.replace(manifest.inference, diffusion=diffusion))


def _preload_then_generate(folder, run, request: dict, generate_midway: bool, **swapper):
    async def go():
        shards = SlowShards(folder)
        manifest = _with_swapper(load_manifest(folder / "manifest.json"), **swapper)
        pipeline = await DiffusionPipeline.create(Gpu(DryBackend(PATHS["default"]), ROOT / "wgsl"), manifest, shards)
        preload = asyncio.ensure_future(pipeline.preload(request))
        if not generate_midway:
            await preload
        else:
            for _ in range(5):
                await asyncio.sleep(0)  # the text encoder's shards under way
        setup = (await pipeline.generate(request))["stats"]["setupMs"]
        shards.recorded = {name: len(calls) for name, calls in pipeline.recorded.items()}
        return await preload, setup, shards

    return run(go())


def test_preloaded_weights_are_the_first_images(sd15_folder, event_loop_runner):
    names, setup, shards = _preload_then_generate(sd15_folder, event_loop_runner, REQUEST, generate_midway=False)
    assert names == ["text_encoder", "vae", "unet"]
    assert setup == {}  # the image loaded and recorded nothing: all was there
    assert set(shards.uploads.values()) == {1}
    assert len(shards.uploads) == len(load_manifest(sd15_folder / "manifest.json").shards)


def test_a_generate_during_the_preload_waits_for_its_uploads_and_recordings(sd15_folder, event_loop_runner):
    names, setup, shards = _preload_then_generate(sd15_folder, event_loop_runner, REQUEST, generate_midway=True)
    assert names == ["text_encoder", "vae", "unet"]
    assert set(shards.uploads.values()) == {1}  # each shard once: the image waited for the preload's loads
    assert shards.recorded == {"text_encoder": 1, "vae": 1, "unet": 1}  # and for its recordings


def test_the_preload_keeps_to_the_swapper(sd15_folder, event_loop_runner):
    names, setup, _ = _preload_then_generate(sd15_folder, event_loop_runner, REQUEST, False, evict_text_encoder=True)
    assert names == ["text_encoder"] and {"vae.load", "unet.load"} <= set(setup)
    assert "text_encoder.record" not in setup
    names, setup, _ = _preload_then_generate(sd15_folder, event_loop_runner, REQUEST, False, strategy="on_demand")
    assert names == [] and {"text_encoder.load", "vae.load", "unet.load"} <= set(setup)


async def _preload_during_download(folder):
    """A preload started as a download would start it: (manifest, pipeline, its ComponentArrivals, the preload)."""
    manifest = load_manifest(folder / "manifest.json")
    pipeline = await DiffusionPipeline.create(Gpu(DryBackend(PATHS["default"]), ROOT / "wgsl"), manifest,
                                              SlowShards(folder))
    arrivals = ComponentArrivals(manifest)
    return manifest, pipeline, arrivals, asyncio.ensure_future(pipeline.preload(REQUEST, arrivals.wait))


def test_during_a_download_each_component_preloads_once_its_shards_are_there(sd15_folder, event_loop_runner):
    async def go():
        manifest, pipeline, arrivals, preload = await _preload_during_download(sd15_folder)
        for _ in range(20):
            await asyncio.sleep(0)
        before = set(pipeline.resident)
        for entry in manifest.components.present()["text_encoder"].tensors:
            arrivals.add(entry.shard)
        while "text_encoder" not in pipeline.resident:
            await asyncio.sleep(0)
        for _ in range(20):
            await asyncio.sleep(0)
        with_text_encoder = set(pipeline.resident)
        for entry in manifest.components.present()["unet"].tensors:  # the UNet's shards before the VAE's
            arrivals.add(entry.shard)
        while "unet" not in pipeline.resident:
            await asyncio.sleep(0)
        with_unet = set(pipeline.resident)
        for index in range(len(manifest.shards)):
            arrivals.add(index)
        return before, with_text_encoder, with_unet, await preload

    before, with_text_encoder, with_unet, names = event_loop_runner(asyncio.wait_for(go(), 120))
    assert before == set() and with_text_encoder == {"text_encoder"}
    assert with_unet == {"text_encoder", "unet"}  # uploaded while the VAE's shards were still missing
    assert names == ["text_encoder", "vae", "unet"]


def test_a_failed_download_stops_the_preload_after_the_uploads_under_way(sd15_folder, event_loop_runner):
    async def go():
        manifest, pipeline, arrivals, preload = await _preload_during_download(sd15_folder)
        for entry in manifest.components.present()["text_encoder"].tensors:
            arrivals.add(entry.shard)
        for _ in range(5):
            await asyncio.sleep(0)  # the text encoder's upload under way
        arrivals.fail()
        return await preload, set(pipeline.resident), pipeline.recorded

    names, resident, recorded = event_loop_runner(asyncio.wait_for(go(), 120))
    assert names == ["text_encoder"] and resident == {"text_encoder"} and recorded == {}
