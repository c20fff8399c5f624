"""`doppler generate` on both backends, as a user runs it (a subprocess each: the browser backend drives its own
Chromium): the PNG's parameters chunk round-trips, the stats say one readback, and the two backends' pixels agree
up to float differences (SwiftShader vs lavapipe)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from doppler.serve import PROJECT_ROOT
from pipeline_cases import MIN_PSNR_DB

pytestmark = [pytest.mark.browser, pytest.mark.native, pytest.mark.slow]

# Small and quick: 64x64, two steps, guidance 1 (batch 1, no negative branch).
SETTINGS = {"steps": 2, "seed": 7, "scheduler": "euler_a", "width": 64, "height": 64, "guidance": 1.0}
PROMPT = "a lighthouse at dusk, ünïcode"


def run_generate(model, out, backend: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "doppler.cli", "generate", PROMPT, "-o", str(out), "--model", str(model),
            "--backend", backend, "--steps", str(SETTINGS["steps"]), "--seed", str(SETTINGS["seed"]),
            "--scheduler", SETTINGS["scheduler"], "--size", f"{SETTINGS['width']}x{SETTINGS['height']}",
            "--guidance", str(SETTINGS["guidance"]), "--negative", "fog"]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "py")}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def images(random_tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("generate")
    made = {}
    for backend in ("native", "browser"):
        done = run_generate(random_tiny, out / f"{backend}.png", backend)
        assert done.returncode == 0, f"{backend}: {done.stderr}"
        assert f"step {SETTINGS['steps']}/{SETTINGS['steps']}" in done.stderr  # progress per step
        assert "loading the unet weights" in done.stderr  # and as the first image's weights load
        made[backend] = out / f"{backend}.png"
    return made


@pytest.mark.parametrize("backend", ["native", "browser"])
def test_png_carries_the_parameters_and_stats_sit_next_to_it(images, backend):
    png = Image.open(images[backend])
    assert png.size == (SETTINGS["width"], SETTINGS["height"]) and png.mode == "RGB"
    assert json.loads(png.text["parameters"]) == {"model": "tiny-random", "prompt": PROMPT, "negativePrompt": "fog",
                                                  **SETTINGS}
    stats = json.loads(images[backend].with_suffix(".json").read_text())
    assert stats["steps"] == SETTINGS["steps"] and len(stats["stepMs"]) == SETTINGS["steps"]
    assert stats["readbacks"] == 1 and stats["backend"] == backend and stats["device"]["backend"] == backend
    # the page draws the latent preview each step (on the GPU); natively there is no canvas
    assert stats["previews"] == (SETTINGS["steps"] if backend == "browser" else 0)


def test_both_backends_make_the_same_image(images):
    native, browser = (np.asarray(Image.open(images[b]), np.float64) for b in ("native", "browser"))
    assert native.std() > 10, "a flat image would agree trivially"
    mse = np.mean((native - browser) ** 2)
    db = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
    assert db >= MIN_PSNR_DB, f"native vs browser: PSNR {db:.1f} dB < {MIN_PSNR_DB}"
