"""Text to image: tokenize -> encode (prompt and negative) -> denoise with classifier-free guidance -> decode.

One denoising step on the GPU is one replay of a recorded plan (`DenoiseStep`): the UNet's input (the latent
scaled, stacked twice for CFG), the UNet (batch 2 in one pass; batch 1 when guidance <= 1 or the UNet takes a
guidance embedding, as LCM-distilled ones do), and the scheduler update with CFG fused in. What depends on the
text or the schedule alone is made once an image: the cross-attentions' keys and values, and every step's time
projections (UNet.time_table). Per step the host writes the step's scalars, copies its row of the time table and
replays; latents never leave the GPU and the finished image is the only readback. In the page, each step's x0 (the
image to come) is drawn as a latent preview (a linear latent-to-RGB map, one pixel per latent pixel) and copied onto
the page's canvas on the GPU. The untiled VAE decode and the text encoder are recorded plans too (`VaeDecode`,
`TextEncoding`), replayed once per image.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
from dataclasses import dataclass, field

from ...config.merge import merge_diffusion_config
from ...errors import DopplerError
from ...gpu.backend_dry import DryBackend
from ...gpu.context import Gpu
from ...gpu.uniforms import pack
from ...loader import load_component
from ...ops import image, sampling
from .schedulers import make_scheduler
from .text_encoder import CLIPTextModel
from .tokenizer import ClipTokenizer
from .unet import UNet2DConditionModel
from .vae import AutoencoderKLDecoder

COMPONENTS = {"text_encoder": CLIPTextModel, "unet": UNet2DConditionModel, "vae": AutoencoderKLDecoder}
# The product's samplers over the model's own scheduler config: "dpmpp_2m" is DPM++ 2M with Karras sigmas.
SAMPLER_CONFIG = {"dpmpp_2m": {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}}
SEED_RANGE = 2**32  # a fresh seed when none is given


class Cancelled(DopplerError):
    """The job was cancelled; the GPU memory it held was freed."""


def runtime_settings(request: dict) -> dict:
    """The form's settings as runtime.inference.diffusion JSON (the prompt is not a setting: it stays apart)."""
    where = {"scheduler": ("scheduler", "type"), "steps": ("scheduler", "numSteps"),
             "guidance": ("scheduler", "guidanceScale"), "eta": ("scheduler", "eta"),
             "width": ("latent", "width"), "height": ("latent", "height")}
    runtime: dict = {}
    for key, (section, name) in where.items():
        if key in request:
            runtime.setdefault(section, {})[name] = request[key]
    for key in ("seed", "negativePrompt", "decode"):  # decode: {"tiling": {...}} as the schema has it
        if key in request:
            runtime[key] = request[key]
    return runtime


@dataclass
class DenoiseStep:
    """The recorded step for one (batch, latent shape): its own input/output tensors, so every replay binds the
    same buffers. `x` holds the latent; `x0` the scheduler's last x0 (DPM++ 2M's history); `pixels` its preview.
    `cross_kv_plan` makes the cross-attentions' keys and values from `context` (held), once an image; `time_rows`
    takes the step's row of the image's time table (UNet.time_table, which reads `guidance`), made by `time_plan`
    (recorded for a number of steps: (steps, plan, timesteps, table))."""

    plan: object
    x: object
    x0: object
    context: object
    params: object
    time_rows: object
    guidance: object
    pixels: object
    cross_kv_plan: object
    held: list = field(default_factory=list)
    time_plan: tuple | None = None

    @classmethod
    async def record(cls, gpu, unet, batch: int, shape: tuple, context_shape: tuple) -> "DenoiseStep":
        x = gpu.tensor(shape, "f32", "latents")
        x0 = gpu.tensor(shape, "f32", "latents.x0")
        context = gpu.tensor((batch,) + context_shape, "f32", "text_embeddings")
        params = sampling.params_tensor(gpu, "sampler_step")
        time_rows = gpu.tensor((1, unet.time_row_layout()[1]), "f32", "time_rows")
        guidance = gpu.tensor((1,), "f32", "guidance_w")
        x_in = gpu.tensor((batch,) + shape[1:], "f32", "unet.sample")
        pixels = gpu.tensor(shape[:3], "u32", "preview.rgba8")
        with gpu.record(f"cross_keys_values.b{batch}", borrow=False) as cross_kv_plan:  # its outputs are made inside
            cross_kv, cross_held = await unet.cross_keys_values(gpu, context)
        with gpu.record(f"denoise_step.b{batch}.{shape[1]}x{shape[2]}") as plan:
            await sampling.model_input(gpu, x, x_in, params)
            eps = await unet(gpu, x_in, None, context, cross_kv=cross_kv, time_rows=unet.time_row_views(time_rows))
            await sampling.step(gpu, x, eps, x0, params)
            gpu.free(eps)
        return cls(plan, x, x0, context, params, time_rows, guidance, pixels, cross_kv_plan, held=[x_in, *cross_held])

    def tensors(self) -> list:
        return [self.x, self.x0, self.context, self.params, self.time_rows, self.guidance, self.pixels, *self.held]

    async def time_table(self, gpu, unet, scheduler):
        """The image's time table (UNet.time_table) over the scheduler's timesteps, by a replay of the plan recorded
        for that many steps (host work once, not a dispatch and a copy at a time); `guidance` written first."""
        count = len(scheduler.timesteps)
        if self.time_plan is None or self.time_plan[0] != count:
            self._drop_time_plan(gpu)
            timesteps = gpu.tensor((count,), "f32", "timesteps")
            with gpu.record(f"time_table.{count}", borrow=False) as plan:  # its table is made inside
                table = await unet.time_table(gpu, timesteps, self.guidance if unet.cond_proj else None)
            self.time_plan = (count, plan, timesteps, table)
        _, plan, timesteps, table = self.time_plan
        gpu.upload(timesteps, struct.pack(f"<{count}f", *(float(scheduler.model_timestep(i)) for i in range(count))))
        plan.replay()
        return table

    def _drop_time_plan(self, gpu) -> None:
        if self.time_plan is not None:
            _, plan, timesteps, table = self.time_plan
            plan.destroy()
            gpu.free(timesteps, table)
            self.time_plan = None

    def run(self, gpu, scheduler, index: int, guidance_scale: float, seed: int, time_table) -> None:
        c = scheduler.step_coefficients(index)
        lo, hi = sampling.seed_words(seed)
        gpu.upload(self.params, pack(sampling.SamplerStep(
            model_input_scale=scheduler.model_input_scale(index), guidance_scale=guidance_scale,
            x0_from_x=c.x0_from_x, x0_from_model=c.x0_from_model, next_from_x=c.next_from_x,
            next_from_model=c.next_from_model, next_from_x0=c.next_from_x0, next_from_x0_prev=c.next_from_x0_prev,
            next_from_noise=c.next_from_noise, seed_lo=lo, seed_hi=hi, noise_stream=index + 1)))
        gpu.copy(time_table, self.time_rows, self.time_rows.nbytes, src_offset=index * self.time_rows.nbytes)
        self.plan.replay()

    async def preview(self, gpu, canvas) -> None:
        """Draw the step's x0 onto the canvas, GPU to GPU (no readback)."""
        await image.preview(gpu, self.x0, self.pixels, image.SD15_LATENT_RGB, image.SD15_LATENT_RGB_BIAS)
        _, height, width = self.pixels.shape
        gpu.present(self.pixels, width, height, canvas)

    def destroy(self, gpu) -> None:
        self.plan.destroy()
        self.cross_kv_plan.destroy()
        self._drop_time_plan(gpu)
        gpu.free(*self.tensors())


@dataclass
class TextEncoding:
    """The text encoder recorded for one batch of prompts: token ids in, embeddings out, one replay per image."""

    plan: object
    ids: object
    context: object

    @classmethod
    async def record(cls, gpu, text_encoder, batch: int, length: int) -> "TextEncoding":
        ids = gpu.tensor((batch, length), "u32", "token_ids")
        with gpu.record(f"text_encoder.b{batch}", borrow=False) as plan:  # its output is made inside
            context = await text_encoder(gpu, ids)
        return cls(plan, ids, context)

    def destroy(self, gpu) -> None:
        self.plan.destroy()
        gpu.free(self.ids, self.context)


async def decode_to_rgba8(gpu, vae, latents, tiling=None):
    """The image of the latents as RGBA8 pixels (B, H, W) u32, in a tensor of the caller's."""
    decoded = await vae(gpu, latents, tiling)
    rgba = gpu.tensor(decoded.shape[:3], "u32", "image.rgba8", kept=True)
    await image.to_rgba8(gpu, decoded, rgba)
    gpu.free(decoded)
    return rgba


@dataclass
class VaeDecode:
    """The untiled VAE decode recorded for one latent shape: latents in, RGBA8 pixels out, one replay per image (an
    eager decode issues hundreds of dispatches from Python: 20-50 ms of host time on an H100)."""

    plan: object
    latents: object
    rgba: object

    @classmethod
    async def record(cls, gpu, vae, shape: tuple) -> "VaeDecode":
        latents = gpu.tensor(shape, "f32", "vae.latents")
        with gpu.record(f"vae_decode.{shape[1]}x{shape[2]}") as plan:
            rgba = await decode_to_rgba8(gpu, vae, latents)
        return cls(plan, latents, rgba)

    def destroy(self, gpu) -> None:
        self.plan.destroy()
        gpu.free(self.latents, self.rgba)


@dataclass
class DiffusionPipeline:
    """One model on one GPU. Components load on first use and stay resident between images while they fit."""

    gpu: object
    manifest: object
    store: object
    tokenizer: ClipTokenizer
    emit: object = None
    resident: dict = field(default_factory=dict)  # name -> (weights, model)
    busy: asyncio.Lock = field(default_factory=asyncio.Lock)  # held by an image or a preload, one at a time
    recorded: dict = field(default_factory=dict)  # component -> {key: DenoiseStep, TextEncoding or VaeDecode}
    cancel_requested: bool = False
    images_made: int = 0
    setup_ms: dict = field(default_factory=dict)  # this image's one-off work: "<component>.load" and ".record" ms

    @classmethod
    async def create(cls, gpu, manifest, store, emit=None) -> "DiffusionPipeline":
        tok = manifest.tokenizer
        tokenizer = ClipTokenizer(await store.read_text(tok.vocab), await store.read_text(tok.merges),
                                  max_length=tok.max_length, pad_token=tok.pad_token)
        return cls(gpu, manifest, store, tokenizer, emit)

    async def component(self, name: str):
        if name not in self.resident:
            t0 = time.perf_counter()
            self._emit("load", {"component": name})  # the first image's seconds of weights, said as they start
            weights = await load_component(self.gpu, self.store, self.manifest, name)
            arch = self.manifest.components.present()[name].architecture
            model = COMPONENTS[name](weights, arch)
            await weights.apply_layouts(self.gpu)
            self.resident[name] = (weights, model)
            self._setup(f"{name}.load", t0)
        return self.resident[name][1]

    async def preload(self, request: dict, arrived=None) -> list[str]:
        """With the swapper's "preload" strategy, upload the weights an image of `request` loads and record its
        calls before it is asked for: the text encoder, the VAE and the UNet, unless the text encoder is released
        after encoding (then it alone: the others would share the budget with it). With `arrived` (a download's
        ComponentArrivals.wait) each uploads once its shards are in, in the order they come (a manifest may list
        the VAE's last); then the calls record in the image's order (shapes, not the prompt, choose them). An image
        asked for meanwhile waits for it (`busy`: the GPU context records one plan at a time, and an eager op
        issued during a recording would join that plan). Returns the components loaded."""
        config = merge_diffusion_config(self.manifest.inference.diffusion, runtime_settings(request))
        if config.swapper.strategy != "preload":
            return []
        names = ["text_encoder"] if config.swapper.evict_text_encoder else ["text_encoder", "vae", "unet"]
        async with self.busy:
            self.gpu.pool.budget_bytes = config.memory_budget_bytes
            waits = {asyncio.ensure_future(arrived(name) if arrived else _arrived(name)): name for name in names}
            missing = False
            while waits:
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=lambda t: names.index(waits[t])):  # the image's order among them
                    if task.result():
                        await self.component(waits[task])
                    else:
                        missing = True
                    del waits[task]
            if missing:  # the download failed (and says why): nothing to record
                return [name for name in names if name in self.resident]
            cfg, shape = self.image_shapes(config)
            encoding = await self.text_encoding(2 if cfg else 1)
            if not config.swapper.evict_text_encoder:
                if not config.decode.tiling.enabled:  # recorded first, as the image does
                    await self.decode_call(shape)
                await self.step_call(encoding.context.shape[0], shape, encoding.context.shape[1:])
        return names

    def release(self, name: str) -> None:
        """Free a component's weights and the recorded calls that bind them."""
        self.forget_calls(name)
        if name in self.resident:
            self.resident.pop(name)[0].release(self.gpu)

    def release_all(self) -> None:
        for name in list(self.resident):
            self.release(name)
        self.gpu.pool.trim()

    def forget_calls(self, name: str) -> None:
        """Free the calls of component `name` recorded so far (their working sets); its weights stay."""
        for call in self.recorded.pop(name, {}).values():
            call.destroy(self.gpu)

    async def recorded_call(self, name: str, key, record):
        """The call of component `name` recorded for `key` (by `await record(model)` the first time). One call per
        component stays recorded: a UNet step owns its whole working set (hundreds of MiB at 512x512), and a second
        one (CFG's batch 2 beside LCM's batch 1) would not fit SD 1.5's 4 GiB budget; switching records again."""
        model = await self.component(name)
        calls = self.recorded.setdefault(name, {})
        if key not in calls:
            for other in calls.values():
                other.destroy(self.gpu)
            calls.clear()
            t0 = time.perf_counter()
            calls[key] = await record(model)
            self._setup(f"{name}.record", t0)
        return calls[key]

    def cancel(self) -> None:
        self.cancel_requested = True

    def _setup(self, what: str, since: float) -> None:
        self.setup_ms[what] = round(self.setup_ms.get(what, 0.0) + (time.perf_counter() - since) * 1000, 1)

    def _emit(self, name: str, data: dict) -> None:
        if self.emit is not None:
            self.emit(name, data)

    async def text_encoding(self, batch: int) -> "TextEncoding":
        length = self.tokenizer.max_length
        return await self.recorded_call("text_encoder", batch, lambda model: TextEncoding.record(
            self.gpu, model, batch, length))

    async def step_call(self, batch: int, shape: tuple, context_shape: tuple) -> "DenoiseStep":
        return await self.recorded_call("unet", (batch, shape), lambda unet: DenoiseStep.record(
            self.gpu, unet, batch, shape, context_shape))

    def image_shapes(self, config) -> tuple[bool, tuple]:
        """(classifier-free guidance, the latent's shape (1, h, w, channels)) of an image of `config`."""
        unet_arch = self.manifest.components.unet.architecture
        cfg = config.scheduler.guidance_scale > 1.0 and unet_arch.time_cond_proj_dim is None
        vae_scale = 2 ** (len(self.manifest.components.vae.architecture.block_out_channels) - 1)
        return cfg, (1, config.latent.height // vae_scale, config.latent.width // vae_scale, unet_arch.in_channels)

    async def encode_prompts(self, prompts: list[str]):
        """Embeddings (B, T, hidden) of the prompts, in a tensor of the caller's."""
        gpu = self.gpu
        encoding = await self.text_encoding(len(prompts))
        ids = [i for p in prompts for i in self.tokenizer.encode(p)]
        gpu.upload(encoding.ids, struct.pack(f"<{len(ids)}I", *ids))
        encoding.plan.replay()
        context = gpu.tensor(encoding.context.shape, "f32", "text_embeddings")
        gpu.copy(encoding.context, context)
        return context

    async def decode(self, latents, tiling) -> bytes:
        """RGBA8 pixels of the latents: a replay of the decode recorded for their shape; with decode tiling enabled,
        the VAE called tile by tile, eagerly, after freeing the recorded decode (tiling is for a lower peak)."""
        gpu = self.gpu
        if not tiling.enabled:
            decode = await self.decode_call(latents.shape)
            gpu.copy(latents, decode.latents)
            decode.plan.replay()
            return await gpu.read(decode.rgba)
        self.forget_calls("vae")
        rgba = await decode_to_rgba8(gpu, await self.component("vae"), latents, tiling)
        pixels = await gpu.read(rgba)
        gpu.free(rgba)
        return pixels

    async def decode_call(self, shape: tuple) -> VaeDecode:
        return await self.recorded_call("vae", shape, lambda vae: VaeDecode.record(self.gpu, vae, shape))

    async def generate(self, request: dict, preview=None) -> dict:
        """One image for the form's settings; `preview`, the page's OffscreenCanvas, gets each step's latent. A
        preload under way finishes first (`busy`)."""
        async with self.busy:
            return await self._generate(request, preview)

    async def _generate(self, request: dict, preview=None) -> dict:
        gpu = self.gpu
        self.cancel_requested = False
        self.setup_ms = {}
        config = merge_diffusion_config(self.manifest.inference.diffusion, runtime_settings(request))
        gpu.pool.budget_bytes = config.memory_budget_bytes
        seed = config.seed if config.seed is not None else random.randrange(SEED_RANGE)
        sched = config.scheduler
        cfg, shape = self.image_shapes(config)
        prompt = request.get("prompt", "")
        t0 = time.perf_counter()
        cold = self.images_made == 0
        readbacks, presents = gpu.stats.readbacks, gpu.stats.presents

        context = await self.encode_prompts([config.negative_prompt, prompt] if cfg else [prompt])
        if config.swapper.evict_text_encoder:
            self.release("text_encoder")
        await gpu.sync()
        t_text = time.perf_counter()

        scheduler = make_scheduler(sched.type, {**self.manifest.inference.scheduler_config,
                                                **SAMPLER_CONFIG.get(sched.type, {})}, eta=sched.eta)
        scheduler.set_timesteps(sched.num_steps)
        if not config.decode.tiling.enabled:  # recorded first: the step's recording then borrows its big maps (Plan)
            await self.decode_call(shape)
        step = await self.step_call(context.shape[0], shape, context.shape[1:])
        gpu.copy(context, step.context)
        gpu.free(context)
        step.cross_kv_plan.replay()
        await sampling.noise(gpu, step.x, seed=seed, stream=0, scale=scheduler.init_noise_sigma)
        gpu.upload(step.x0, bytes(step.x0.nbytes))  # x0_prev of step 0 is read with coefficient 0: no NaN there
        gpu.upload(step.guidance, struct.pack("<f", sched.guidance_scale - 1.0))
        time_table = await step.time_table(gpu, await self.component("unet"), scheduler)
        step_ms = []
        previous = None  # step i - 1's completion: awaited once step i is queued, so the GPU never waits for the host
        ts = time.perf_counter()
        for i in range(len(scheduler.timesteps)):
            step.run(gpu, scheduler, i, sched.guidance_scale, seed, time_table)
            if preview is not None:
                await step.preview(gpu, preview)
            queued, previous = previous, gpu.work_done()
            if queued is not None:
                await queued
            if i == len(scheduler.timesteps) - 1:
                await previous
                previous = None
            step_ms.append((time.perf_counter() - ts) * 1000)
            ts = time.perf_counter()
            self._emit("step", {"step": i + 1, "total": len(scheduler.timesteps), "ms": round(step_ms[-1], 1)})
            if self.cancel_requested:
                if previous is not None:
                    await previous
                self.release_all()
                raise Cancelled("cancelled: the image was not finished, and the GPU memory it held is freed")
        t_unet = time.perf_counter()

        latents = step.x
        if config.swapper.evict_unet:  # the step owns its latents: a copy outlives the UNet's release
            latents = gpu.tensor(step.x.shape, "f32", "latents.final")
            gpu.copy(step.x, latents)
            self.release("unet")
        pixels = await self.decode(latents, config.decode.tiling)
        if latents is not step.x:
            gpu.free(latents)
        t_end = time.perf_counter()
        self.images_made += 1
        return {
            "image": {"width": config.latent.width, "height": config.latent.height, "rgba": pixels},
            "seed": seed,
            "stats": {
                "textEncoderMs": round((t_text - t0) * 1000, 1),
                "unetMsPerStep": round(sum(step_ms) / len(step_ms), 2),
                "stepMs": [round(s, 2) for s in step_ms],
                "steps": len(step_ms),
                "unetMs": round((t_unet - t_text) * 1000, 1),
                "vaeMs": round((t_end - t_unet) * 1000, 1),
                "totalMs": round((t_end - t0) * 1000, 1),
                "cold": cold,
                "setupMs": self.setup_ms,  # weights loaded and calls recorded for this image (within the times above)
                "peakBytes": gpu.pool.peak_bytes,
                "readbacks": gpu.stats.readbacks - readbacks,
                "previews": gpu.stats.presents - presents,
                "gpu": gpu.stats.summary(gpu.pool),  # the device's counters since it opened
            },
        }


async def _arrived(name: str) -> bool:
    return True


class _NoShards:
    """The dry run's store: the pool places the weights, nothing is read."""

    async def upload(self, gpu, index, shard, placements) -> None:
        pass


@dataclass(frozen=True)
class _BlankTokenizer:
    """The dry run's tokenizer: token ids choose no kernel."""

    max_length: int

    def encode(self, text: str) -> list[int]:
        return [0] * self.max_length


async def precompile(gpu, manifest, request: dict | None = None) -> dict:
    """Compile the kernels an image of `request` (the form's settings; default: the manifest's) needs, all at once
    and before the weights are there: kernels depend on shapes and the device, never on weight values, so a dry run
    of the pipeline with this GPU's capabilities (gpu/backend_dry.py: nothing allocated, compiled or run) lists them,
    then the GPU compiles them concurrently, while the shards download. Otherwise the first denoising step compiles
    them one by one (11.9 s of a 13.8 s first image on an H200, bench/RESULTS.md session 15). Returns {"kernels": how
    many, "failed": their errors} (a kernel that failed here fails again, named, where an image needs it)."""
    planner = Gpu(DryBackend(gpu.caps), gpu.kernels.source_dir)
    dry = DiffusionPipeline(planner, manifest, _NoShards(), _BlankTokenizer(manifest.tokenizer.max_length))
    await dry.generate(request or {}, preview=object())  # a canvas the dry backend never draws on: the preview's kernel
    requests = planner.kernels.requests()
    return {"kernels": len(requests), "failed": await gpu.kernels.compile_all(requests)}
