"""`doppler generate PROMPT -o OUT.png` (CPython tools layer): one image from the command line.

`--backend browser` (default) serves the app with the model folder, opens it in headless Chromium (Playwright) and
calls the worker's `generate`, so the image is the page's; `--backend native` runs the same Python pipeline on
wgpu-native, reading the model folder directly. Settings left out come from the model's manifest; all are checked
here before any GPU starts. Writes OUT.png (RGB) with the settings as JSON in a tEXt chunk keyed "parameters" (as
the page's PNG download) and OUT.json with the generation's stats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .config.merge import merge_diffusion_config
from .errors import DopplerError
from .inference.diffusion.pipeline import SEED_RANGE, runtime_settings
from .manifest import Manifest, load_manifest
from .serve import PROJECT_ROOT, SiteServer, model_prefix, site_layout

BACKENDS = ("browser", "native")
# The model `make serve` builds and serves when none is given (Makefile: TINY_MODEL).
DEFAULT_MODEL_DIR = "build/models/tiny-random"
DEFAULT_MODEL = PROJECT_ROOT / DEFAULT_MODEL_DIR
MANIFEST = "manifest.json"
PARAMETERS_KEY = "parameters"  # the PNG text chunk's key, as the page's download and other SD tools write it
_SIZE = re.compile(r"(\d+)(?:x(\d+))?$")


@dataclass(frozen=True)
class Job:
    """One image to make: the model folder, its manifest, and the form's settings, complete and checked."""

    folder: Path
    manifest: Manifest
    request: dict  # {prompt, negativePrompt, steps, guidance, scheduler, seed, width, height}

    def parameters(self) -> dict:
        """What the PNG records: the settings and the model that made it."""
        return {"model": self.manifest.id, **self.request}


def parse_size(text: str) -> tuple[int, int]:
    """`WxH` or `N` (square) in pixels."""
    m = _SIZE.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"expected WxH or N in pixels (e.g. 512x768 or 512), got {text!r}")
    return int(m[1]), int(m[2] or m[1])


def model_folder(given: str | None) -> Path:
    """The model folder of `--model` (a folder written by `doppler convert`, or its manifest.json)."""
    if given is None:
        if not (DEFAULT_MODEL / MANIFEST).is_file():
            raise DopplerError(f"the default model {DEFAULT_MODEL} is not built: run `make tiny-model` (or "
                               f"`doppler convert --random tiny --seed 0 {DEFAULT_MODEL}`), or give --model DIR")
        return DEFAULT_MODEL
    path = Path(given)
    folder = path.parent if path.is_file() and path.suffix == ".json" else path
    if not (folder / MANIFEST).is_file():
        raise DopplerError(f"--model {given}: no {MANIFEST} there; give a folder written by `doppler convert` "
                           f"(or its {MANIFEST})")
    return folder


def make_job(args: argparse.Namespace) -> Job:
    """The job of the command line, every setting held to the model's limits (errors name the setting)."""
    folder = model_folder(args.model)
    manifest = load_manifest(folder / MANIFEST)
    given = {"steps": args.steps, "guidance": args.guidance, "scheduler": args.scheduler, "seed": args.seed,
             "negativePrompt": args.negative}
    if args.size is not None:
        given["width"], given["height"] = args.size
    config = merge_diffusion_config(manifest.inference.diffusion,
                                    runtime_settings({k: v for k, v in given.items() if v is not None}))
    seed = config.seed if config.seed is not None else random.randrange(SEED_RANGE)
    request = {"prompt": args.prompt, "negativePrompt": config.negative_prompt, "steps": config.scheduler.num_steps,
               "guidance": config.scheduler.guidance_scale, "scheduler": config.scheduler.type, "seed": seed,
               "width": config.latent.width, "height": config.latent.height}
    return Job(folder, manifest, request)


def show_progress(name: str, data: dict) -> None:
    if name == "step":
        print(f"step {data['step']}/{data['total']} · {data['ms']} ms", file=sys.stderr, flush=True)
    elif name == "load":
        print(f"loading the {data['component'].replace('_', ' ')} weights", file=sys.stderr, flush=True)


async def _generate_native(job: Job) -> tuple[dict, dict]:
    from .gpu.context import Gpu
    from .inference.diffusion.pipeline import DiffusionPipeline
    from .loader.stores import LocalShardStore

    gpu = await Gpu.open("native", PROJECT_ROOT / "wgsl")
    pipeline = await DiffusionPipeline.create(gpu, job.manifest, LocalShardStore(job.folder), show_progress)
    return await pipeline.generate(job.request), gpu.summary()


def generate_native(job: Job) -> tuple[dict, dict]:
    """(result, device summary) on wgpu-native."""
    return asyncio.run(_generate_native(job))


def generate_browser(job: Job) -> tuple[dict, dict]:
    """(result, device summary) from the page's worker in headless Chromium."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise DopplerError("--backend browser needs Playwright: `pip install playwright` (`make test` installs it), "
                           "or use --backend native") from None
    from .browser import call, launch, open_app

    with SiteServer(site_layout(models=[job.folder])) as url, sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = open_app(browser, url)
            page.expose_function("dopplerProgress", show_progress)
            page.evaluate("for (const name of ['step', 'load'])"
                          " window.doppler.on(name, (d) => dopplerProgress(name, d))")
            result = call(page, "generate", model=f"{model_prefix(job.folder)}/{MANIFEST}", **job.request)
            device = call(page, "device_info")
        except PlaywrightError as error:
            raise DopplerError(f"the page failed: {page_error(error.message)}") from None
        finally:
            browser.close()
    return result, device


RUNNERS = {"browser": generate_browser, "native": generate_native}


def page_error(message: str) -> str:
    """The Python exception a failed worker call carries, without the Python traceback and the JS stack."""
    text = message.split("\n    at ")[0].strip()
    lines = text.splitlines()
    if not lines or not lines[0].endswith("Traceback (most recent call last):"):
        return text
    frames = [i for i, line in enumerate(lines) if line.startswith(" ")]
    return "\n".join(lines[frames[-1] + 1 if frames else 1:]).strip()


def write_png(path: Path, image: dict, parameters: dict) -> None:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(PARAMETERS_KEY, json.dumps(parameters))  # ASCII JSON: a tEXt chunk for any prompt
    size = (image["width"], image["height"])
    Image.frombytes("RGBA", size, image["rgba"]).convert("RGB").save(path, pnginfo=info)


def _run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.suffix.lower() != ".png":
        args.parser.error(f"-o {args.output}: the image is written as PNG; give a name ending in .png")
    try:
        job = make_job(args)
        result, device = RUNNERS[args.backend](job)
    except (DopplerError, FileNotFoundError) as error:  # ConfigError: a line per problem; no Pyodide, no Chromium
        print(f"doppler generate: {error}", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    write_png(out, result["image"], job.parameters())
    stats = {"backend": args.backend, "device": device, "parameters": job.parameters(), **result["stats"]}
    out.with_suffix(".json").write_text(json.dumps(stats, indent=1))
    print(f"wrote {out} and {out.with_suffix('.json').name}: {job.request['width']}x{job.request['height']}, "
          f"seed {result['seed']}, {result['stats']['steps']} steps in {result['stats']['totalMs']} ms "
          f"({args.backend})")
    return 0


def add_command(sub) -> None:
    p = sub.add_parser("generate", help="make one image from a prompt (headless page, or wgpu-native)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prompt")
    p.add_argument("-o", "--output", default="doppler.png", help="PNG to write; the stats go next to it as .json")
    p.add_argument("--model", help=f"model folder (or its {MANIFEST}) from `doppler convert` "
                                   f"(default: {DEFAULT_MODEL_DIR}, built by make)")
    p.add_argument("--backend", choices=BACKENDS, default="browser")
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int, help="noise seed (default: a fresh one, written into the PNG)")
    p.add_argument("--scheduler", help="sampler, one of the model's allowed ones (e.g. euler_a, dpmpp_2m, lcm)")
    p.add_argument("--size", type=parse_size, metavar="WxH", help="image size in pixels (WxH, or N for square)")
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale")
    p.add_argument("--negative", help="negative prompt")
    p.set_defaults(run=_run, parser=p)
