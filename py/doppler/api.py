"""The worker's entry points (page side): start the GPU, then answer calls by name with JSON.

`app/worker.mjs` calls `start` once, then `handle(name, args_json)` per request; `run_python` serves tests and
diagnostics (the value of the source's last expression comes back as JSON; bytes as {"__bytes__": base64}).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import sys
import time
from pathlib import Path

from urllib.parse import urljoin

from . import bench
from .config.diffusion import Tiling
from .config.schema import ConfigError
from .errors import DopplerError
from .gpu.context import Gpu
from .loader.models import ComponentArrivals, ensure_model
from .loader.stores import BrowserShardStore
from .manifest import parse_manifest

MODEL_INDEX_URL = "models/index.json"

_state: dict = {}


def _jsonable(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


async def start(assets_dir: str, site_url: str, emit) -> str:
    """Open the browser's GPU; returns the device summary (adapter, features, limits) as JSON."""
    _state.update(assets=Path(assets_dir), site=site_url, emit=lambda name, data: emit(name, json.dumps(data)),
                  models={}, manifests={}, pipeline_lock=asyncio.Lock())
    info = (await _gpu()).summary()
    info["python"] = sys.version.split()[0]
    return json.dumps(info)


async def _gpu() -> Gpu:
    """The worker's device; a fresh one after the last was lost."""
    gpu = _state.get("gpu")
    if gpu is None or gpu.backend.lost() is not None:
        gpu = _state["gpu"] = await Gpu.open("browser", _state["assets"] / "wgsl")
    return gpu


async def device_info() -> dict:
    return (await _gpu()).summary()


async def _fetch_text(url: str, what: str) -> str | None:
    """A site-relative or absolute URL's text; None on 404."""
    from pyodide.http import pyfetch  # type: ignore[import-not-found]

    response = await pyfetch(urljoin(_state["site"], url))
    if response.status == 404:
        return None
    if not response.ok:
        raise DopplerError(f"{what} {url}: HTTP {response.status}")
    return await response.string()


async def _manifest(url: str) -> tuple:
    """(manifest, its JSON text, its absolute URL), parsed once per URL."""
    if url not in _state["manifests"]:
        text = await _fetch_text(url, "model manifest")
        if text is None:
            raise DopplerError(f"no model manifest at {url}: check the model URL (or `make serve MODELS=...`)")
        try:
            manifest = parse_manifest(json.loads(text))
        except (ValueError, ConfigError) as e:
            raise DopplerError(f"model manifest {url} is not valid:\n{e}") from None
        _state["manifests"][url] = (manifest, text, urljoin(_state["site"], url))
    return _state["manifests"][url]


async def available_models() -> list:
    """The models this site serves (`models/index.json`): [{name, url}]."""
    text = await _fetch_text(MODEL_INDEX_URL, "model index")
    return json.loads(text) if text else []


async def model_info(url: str) -> dict:
    """What the form may offer for a model: schedulers, defaults and size limits from its manifest."""
    manifest = (await _manifest(url))[0]
    section = manifest.inference.diffusion
    limits = section.limits
    return {
        "id": manifest.id,
        "name": manifest.name,
        "schedulers": list(limits.allowed_schedulers),
        "defaults": {"scheduler": section.scheduler.type, "steps": section.scheduler.num_steps,
                     "guidance": section.scheduler.guidance_scale, "width": section.latent.width,
                     "height": section.latent.height},
        "limits": {"minSize": limits.min_size, "maxSize": limits.max_size, "sizeMultiple": limits.size_multiple},
    }


def _store(manifest, manifest_url: str) -> BrowserShardStore:
    """The OPFS cache of a model, filled from its manifest's folder."""
    return BrowserShardStore(manifest.id, manifest_url.rsplit("/", 1)[0] + "/")


async def load_model(url: str, settings: dict | None = None, precompile: bool = True,
                     await_kernels: bool = True, on_shard=None) -> dict:
    """Fetch a model's manifest (URL relative to the site), check it, and make every shard available in the OPFS
    cache (resuming partial shards, verifying the sha256 of what it fetches), with download progress events;
    meanwhile, with `precompile`, compile the kernels of an image of `settings` (the form's; default: the model's
    own), reported as `precompiled` (how many, how long, what failed) and by a "stage" event. Without
    `await_kernels` it returns once the shards are there and the compiles go on (an image's first use of a kernel
    waits for its compile): from a cache the download is over in milliseconds, and the weights upload while the
    kernels compile. `on_shard(index)`: called as each shard is there (ensure_model)."""
    manifest, text, manifest_url = await _manifest(url)
    store = _store(manifest, manifest_url)
    # a failed download leaves the compiles to finish on their own
    compiling = asyncio.ensure_future(_precompile(manifest, settings or {})) if precompile else None
    _state["compiling"] = compiling  # held, so that a compile not awaited here is not collected
    result = await ensure_model(manifest, store, _state["emit"], on_shard=on_shard)
    if compiling is not None and await_kernels:
        result["precompiled"] = await compiling
    await store.save_manifest(text)
    _state["models"][manifest.id] = (manifest, store)
    return {"id": manifest.id, "name": manifest.name, **result}


async def _precompile(manifest, settings: dict) -> dict:
    """pipeline.precompile on this device, timed. It only saves time: a dry run that fails, whatever the error, says
    why here instead of stopping the download (an image of those settings fails the same way, with the same error)."""
    from .inference.diffusion.pipeline import precompile

    t0 = time.perf_counter()
    try:
        result = await precompile(await _gpu(), manifest, settings)
    except Exception as error:  # noqa: BLE001 (see above)
        result = {"kernels": 0, "failed": [f"the dry run of an image of {settings}: {type(error).__name__}: {error}"]}
    result["ms"] = round((time.perf_counter() - t0) * 1000, 1)
    _state["emit"]("stage", {"precompiled": result})
    return result


async def list_models() -> list:
    """Cached models: [{id, name, bytes}]."""
    import doppler_shards  # type: ignore[import-not-found]

    cached = json.loads(await doppler_shards.listModels())
    return [{"id": m["id"], "name": json.loads(m["manifest"])["name"] if m["manifest"] else m["id"],
             "bytes": m["bytes"]} for m in cached]


async def delete_model(id: str) -> dict:
    import doppler_shards  # type: ignore[import-not-found]

    _state["models"].pop(id, None)
    await doppler_shards.deleteModel(id)
    return {"deleted": id}


async def bench_dispatch(dispatches: int = bench.UNET_STEP_DISPATCHES, reps: int = 20, **_) -> dict:
    return await bench.dispatch_overhead(await _gpu(), dispatches, reps)


async def _pipeline(url: str, settings: dict | None = None, precompile: bool = True):
    """The pipeline of a model, kept between images. A model not loaded yet is made available first (downloaded
    where it is not cached), the kernels of an image of `settings` compiling meanwhile and on, and (the swapper's
    preload strategy) each component's weights uploading as soon as its shards are there."""
    from .inference.diffusion.pipeline import DiffusionPipeline

    manifest, _, manifest_url = await _manifest(url)
    async with _state["pipeline_lock"]:  # a prepare and a generate at once make one pipeline
        pipelines = _state.setdefault("pipelines", {})
        gpu = await _gpu()
        if manifest.id not in pipelines or pipelines[manifest.id].gpu is not gpu:
            for other in pipelines.values():  # one model resident at a time
                async with other.busy:  # after its image or preload (uploads under way write its buffers)
                    other.release_all()
            pipelines.clear()
            store = _store(manifest, manifest_url)  # the tokenizer's files are read now, the shards when loaded
            pipelines[manifest.id] = await DiffusionPipeline.create(gpu, manifest, store, _state["emit"])
        pipeline = pipelines[manifest.id]
        if manifest.id not in _state["models"]:
            arrivals = ComponentArrivals(manifest)
            preload = asyncio.ensure_future(pipeline.preload(settings or {}, arrivals.wait))
            preload.add_done_callback(lambda task: task.cancelled() or task.exception())  # its image says why
            _state["preload"] = preload  # held: an image waits for it (busy)
            try:
                _state["loaded"] = await load_model(url, settings, precompile, await_kernels=False,
                                                    on_shard=arrivals.add)
            except BaseException:
                arrivals.fail()  # the preload finishes the uploads under way, then stops
                raise
        return pipeline


async def prepare(model: str, **settings) -> dict:
    """Get a cached model ready before its first Generate (the page calls this when a model is picked): loaded from
    the cache, its kernels compiling and, with the swapper's preload strategy, the weights of an image of `settings`
    uploaded. A model not wholly cached is left alone: its download waits for Generate. Returns {"preloaded": the
    components now on the GPU}."""
    manifest, _, manifest_url = await _manifest(model)
    if manifest.id not in _state["models"]:
        if await _store(manifest, manifest_url).missing_bytes(manifest):
            return {"preloaded": []}
    return {"preloaded": await (await _pipeline(model, settings)).preload(settings)}


async def generate(model: str, **settings) -> dict:
    """One image: settings as the form gives them ({prompt, negativePrompt, steps, guidance, scheduler, seed, width,
    height}); returns {image: {width, height, rgba}, seed, stats}."""
    return await (await _pipeline(model, settings)).generate(settings, preview=_state.get("preview_canvas"))


async def bench_kernels(weights: str = "f16", reps: int = 10, gemm_tiles: list | None = None,
                        attention_overrides: list | None = None, cases: list | None = None, replayed: bool = True,
                        **_) -> dict:
    gpu = await _gpu()
    rows = await bench.kernels(gpu, weights, reps, gemm_tiles, attention_overrides, cases, replayed,
                               progress=lambda now, data: _state["emit"]("stage", {"kernels": {now: data}}))
    return {"device": gpu.caps.summary(), "rows": rows}


async def bench_pipeline(model: str, steps: int = 20, size: int = 512, lcm_steps: int = 4,
                         profile_layers: int = bench.PROFILE_TOP_LAYERS, precompile: bool = True) -> dict:
    """Cold and warm images of a model (download and shader compile in the cold one; with `precompile`, as the app
    does, the kernels compile during the download and the first image's weight uploads; a model already cached is
    first prepared, as the page does when it is picked, and `load.prepare` says in how long), a 4-step LCM-style run
    without CFG, and one profiled UNet step, VAE decode and text encoder (their `profile_layers` slowest layers
    each): the app's own stats, for bench/ on a real GPU."""
    request = {"prompt": "a photo of an astronaut riding a horse on the moon", "negativePrompt": "", "seed": 0,
               "steps": steps, "guidance": 7.5, "scheduler": "dpmpp_2m", "width": size, "height": size}
    t0 = time.perf_counter()
    prepared = await prepare(model, **request)  # as the page does when the model is picked
    prepare_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    if (await _manifest(model))[0].id in _state["models"]:  # prepared from the cache: Generate loads nothing more
        loaded = {"fetchedBytes": 0, "prepare": {**prepared, "ms": round(prepare_ms, 1)}}
        pipeline = await _pipeline(model)
    else:  # as the app's Generate does: the download, the kernels' compile and the preload meanwhile
        pipeline = await _pipeline(model, request, precompile)
        loaded = dict(_state["loaded"])
    load_ms = (time.perf_counter() - t0) * 1000
    _state["emit"]("stage", {"loaded": loaded, "ms": round(load_ms)})
    runs, profiles = {}, {}
    fields = {f.name: f for f in dataclasses.fields(Tiling)}
    tile = max(size // 2, fields["tile_size"].metadata["minimum"])  # four tiles at 512 px; small dry runs the smallest
    overlap = min(fields["overlap"].default, tile // 2)  # the default, or less where the tile would not exceed it
    lcm = {**request, "steps": lcm_steps, "guidance": 1.0, "scheduler": "lcm"}
    tiled = {"tiling": {"enabled": True, "tileSize": tile, "overlap": overlap}}
    for name, req in (("cold", request), ("warm", request), ("lcmCold", lcm), ("lcmWarm", lcm),
                      ("lcmWarmTiledVae", {**lcm, "decode": tiled})):
        result = await pipeline.generate(req)
        runs[name] = result["stats"]
        if name == "cold" and _state.get("compiling") is not None:
            loaded["precompiled"] = await _state["compiling"]  # done: the image used each kernel
        _state["emit"]("stage", {name: {k: v for k, v in result["stats"].items() if k != "stepMs"}})
        if name == "warm":  # the CFG step (batch 2), before the LCM runs record theirs in its place
            profiles = await _profile_stages(pipeline, (2, (1, size // 8, size // 8, 4)), profile_layers)
    return {"device": pipeline.gpu.caps.summary(), "load": {**loaded, "ms": round(load_ms, 1)}, "runs": runs,
            **profiles}


async def bench_upload(model: str, shards: int = 8, concurrent: int = 1, **_) -> dict:
    """The model's first `shards` shards (fetched first where missing), each timed through the steps of an upload
    (app/shards.mjs's timeUploadShard: open, OPFS read, XXH32 check, sha256, writeBuffer, queue), `concurrent` at a
    time, and their GB/s over the wall time."""
    manifest = (await _manifest(model))[0]
    if manifest.id not in _state["models"]:
        await load_model(model, precompile=False)
    store, gpu = _state["models"][manifest.id][1], await _gpu()
    slots = asyncio.Semaphore(concurrent)

    async def timed(index: int, shard) -> dict:
        async with slots:
            return await store.time_upload(gpu, index, shard)

    t0 = time.perf_counter()
    rows = await asyncio.gather(*(timed(i, s) for i, s in enumerate(manifest.shards[:shards])))
    wall_ms = (time.perf_counter() - t0) * 1000
    nbytes = sum(s.size for s in manifest.shards[:shards])
    return {"shards": len(rows), "bytes": nbytes, "concurrent": concurrent, "wallMs": round(wall_ms, 1),
            "totalMs": {key: round(sum(r[key] for r in rows), 1) for key in rows[0]},
            "gbPerS": round(nbytes / 1e6 / max(wall_ms, 1e-3), 3), "rows": rows}


async def _profile_stages(pipeline, step_key, top_layers: int) -> dict:
    """One profiled replay each of the recorded UNet step `step_key`, of the recorded VAE decode of its latents and of
    the recorded text encoder of its batch."""
    gpu = pipeline.gpu
    step = pipeline.recorded["unet"][step_key]
    decode = pipeline.recorded["vae"][step.x.shape]
    encoding = pipeline.recorded["text_encoder"][step_key[0]]
    return {"unetStepProfile": await bench.profile_step(gpu, step, top_layers),
            "vaeDecodeProfile": await bench.profile_step(gpu, decode, top_layers),
            "textEncoderProfile": await bench.profile_step(gpu, encoding, top_layers)}


async def bench_suite(model: str, steps: int = 20, size: int = 512, gemm_tiles: list | None = None,
                      attention_overrides: list | None = None) -> dict:
    """Everything bench/ measures on a GPU machine, in one page session: dispatch overhead, kernels (with the
    sweeps bench_kernels takes), pipeline."""
    dispatch = await bench_dispatch()
    _state["emit"]("stage", {"dispatch": dispatch})
    pipeline = await bench_pipeline(model, steps, size)
    kernels = await bench_kernels(gemm_tiles=gemm_tiles, attention_overrides=attention_overrides)
    return {"dispatch": dispatch, "pipeline": pipeline, "kernels": kernels}


async def cancel() -> dict:
    """Stop the running generation within one step; its GPU memory is freed."""
    for pipeline in _state.get("pipelines", {}).values():
        pipeline.cancel()
    return {"cancelled": True}


def attach_preview(canvas) -> str:
    """Keep the page's OffscreenCanvas: the denoise loop draws each step's latent preview into it on the GPU."""
    _state["preview_canvas"] = canvas
    return "null"


CALLS = {"device_info": device_info, "bench_dispatch": bench_dispatch, "bench_kernels": bench_kernels,
         "bench_pipeline": bench_pipeline, "bench_upload": bench_upload, "bench_suite": bench_suite,
         "available_models": available_models, "model_info": model_info, "load_model": load_model,
         "list_models": list_models, "delete_model": delete_model, "prepare": prepare, "generate": generate,
         "cancel": cancel}


async def handle(name: str, args_json: str) -> str:
    fn = CALLS.get(name)
    if fn is None:
        raise DopplerError(f"unknown call {name!r}; known: {', '.join(sorted(CALLS))}")
    return json.dumps(_jsonable(await fn(**json.loads(args_json))))


async def run_python(source: str) -> str:
    from pyodide.code import eval_code_async  # type: ignore[import-not-found]

    namespace = {"gpu": await _gpu(), "assets": _state["assets"], "models": _state["models"]}
    return json.dumps(_jsonable(await eval_code_async(source, namespace)))
