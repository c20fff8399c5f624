"""Text to image through the page's real UI on the tiny model (WebGPU on SwiftShader), against diffusers."""

import shutil

import numpy as np
import pytest

from browser_harness import call, open_app, run_python
from doppler.serve import SiteServer, site_layout
from pipeline_cases import CASES, MIN_PSNR_DB, psnr, request_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(browser, tiny_model, tmp_path_factory):
    broken = tmp_path_factory.mktemp("broken") / "tiny-missing-shard"
    shutil.copytree(tiny_model, broken)
    manifest = (broken / "manifest.json").read_text().replace('"id": "', '"id": "missing-', 1)
    (broken / "manifest.json").write_text(manifest)
    next((broken / "shards").glob("unet-*.bin")).unlink()
    with SiteServer(site_layout(models=[tiny_model, broken])) as url:
        context = browser.new_context()  # a returning visit opens a second page in it
        p = open_app(context, url)
        p.wait_for_function("document.getElementById('scheduler').options.length > 0")
        yield p
        context.close()


def fill(page, request: dict) -> None:
    for field, key in (("prompt", "prompt"), ("negative", "negativePrompt"), ("steps", "steps"),
                       ("guidance", "guidance"), ("seed", "seed"), ("width", "width"), ("height", "height")):
        page.fill(f"#{field}", str(request[key]))
    page.select_option("#scheduler", request["scheduler"])


def generate(page, request: dict) -> bytes:
    """Fill the form, click Generate, and read the result canvas back (RGBA)."""
    fill(page, request)
    page.evaluate("document.getElementById('download-png').hidden = true")
    page.click("#generate")
    page.wait_for_function("!document.getElementById('download-png').hidden || !document.getElementById('banner').hidden")
    banner = page.locator("#banner")
    if banner.is_visible():
        raise AssertionError(f"the page says: {banner.inner_text()}")
    data = page.evaluate("""() => {
      const c = document.getElementById('result');
      return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
    }""")
    return bytes(data)


def read_preview(page) -> np.ndarray:
    """The preview canvas as the page shows it (its placeholder drawn into a 2D canvas): (h, w, 4) RGBA8."""
    size, data = page.evaluate("""async () => {
      await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
      const preview = document.getElementById('preview');
      const copy = document.createElement('canvas');
      copy.width = preview.width; copy.height = preview.height;
      const g = copy.getContext('2d');
      g.drawImage(preview, 0, 0);
      return [[copy.height, copy.width], Array.from(g.getImageData(0, 0, copy.width, copy.height).data)];
    }""")
    return np.array(data, np.uint8).reshape(*size, 4)


def test_the_download_compiles_every_kernel_of_the_first_image(page, reference):
    # The first Generate loads the model, and meanwhile the kernels a dry run of its settings lists compile
    # (pipeline.precompile): the image itself then compiles none.
    page.evaluate("""() => {
      window.stages = []; window.doppler.on('stage', (d) => window.stages.push(d));
      window.loads = []; window.doppler.on('load', (d) => window.loads.push(d.component));
    }""")
    before = run_python(page, "len(gpu.kernels)")
    generate(page, request_for(reference, "dpmpp_2m_karras"))
    precompiled = next(s["precompiled"] for s in page.evaluate("window.stages") if "precompiled" in s)
    assert precompiled["failed"] == [] and precompiled["kernels"] >= 30, precompiled
    assert run_python(page, "len(gpu.kernels)") == before + precompiled["kernels"]
    assert page.locator("#kernels-text").inner_text().startswith(f"· {precompiled['kernels']} kernels compiled in ")
    # each said as its weights start loading, once, in the order its shards arrived (the preload's)
    assert sorted(page.evaluate("window.loads")) == ["text_encoder", "unet", "vae"]


def test_a_returning_visit_has_the_weights_on_the_gpu_before_generate(page, reference):
    # A second page of the origin (so of its cache): the cached model it picks at open is prepared while the prompt
    # is typed (loaded, kernels compiled, the first image's weights uploaded); Generate then loads no weights.
    again = open_app(page.context, page.url.rsplit("/", 1)[0] + "/")
    try:
        again.wait_for_function("document.getElementById('steps-text').textContent === 'ready'")
        resident = "from doppler import api\nsorted(next(iter(api._state['pipelines'].values())).resident)"
        assert run_python(again, resident) == ["text_encoder", "unet", "vae"]
        again.evaluate("() => { window.loads = []; window.doppler.on('load', (d) => window.loads.push(d.component)); }")
        case = "dpmpp_2m_karras"
        assert psnr(generate(again, request_for(reference, case)), reference, case) >= MIN_PSNR_DB
        assert again.evaluate("window.loads") == []
    finally:
        again.close()


@pytest.mark.parametrize("case", [c for c in CASES if c != "ddim_eta05"])
def test_the_form_makes_the_diffusers_image(page, reference, case):
    db = psnr(generate(page, request_for(reference, case)), reference, case)
    assert db >= MIN_PSNR_DB, f"{case}: PSNR {db:.1f} dB < {MIN_PSNR_DB}"
    assert page.locator("#steps-text").inner_text().startswith(f"{int(reference['pipeline_steps'])} / ")
    assert "UNet" in page.locator("#timings").inner_text()


def test_the_pipeline_benchmark_runs_at_the_smallest_tile(page, reference):
    # bench/h100_app.sh's job on the GPU machine, here on the tiny model at its 64 px: every run it reports (the tiled
    # decode at the smallest tile, whose overlap has to stay under it) and the three profiles.
    size = int(reference["pipeline_size"])
    result = call(page, "bench_pipeline", model="models/tiny-f32/manifest.json", steps=1, size=size, lcm_steps=1,
                  profile_layers=2)
    assert list(result["runs"]) == ["cold", "warm", "lcmCold", "lcmWarm", "lcmWarmTiledVae"]
    assert all(run["totalMs"] > 0 and run["steps"] == 1 for run in result["runs"].values())
    for stage in ("unetStepProfile", "vaeDecodeProfile", "textEncoderProfile"):
        assert result[stage]["gpuMs"] > 0 and len(result[stage]["topLayers"]) == 2


def test_ddim_with_eta_through_the_api(page, reference):
    request = request_for(reference, "ddim_eta05")
    result = call(page, "generate", model="models/tiny-f32/manifest.json", **request)
    assert psnr(result["image"]["rgba"], reference, "ddim_eta05") >= MIN_PSNR_DB
    assert result["stats"]["readbacks"] == 1


def test_each_step_draws_the_latent_preview_on_the_gpu(page, reference):
    request = request_for(reference, "euler")
    generate(page, request)
    preview = read_preview(page)
    latent = int(reference["pipeline_size"]) // 8  # the VAE's downscale: one preview pixel per latent pixel
    assert preview.shape == (latent, latent, 4)
    assert (preview[..., 3] == 255).all(), "an undrawn canvas is transparent"
    assert len(np.unique(preview[..., :3].reshape(-1, 3), axis=0)) > 1, "the preview is one flat colour"
    stats = call(page, "generate", model="models/tiny-f32/manifest.json", **request)["stats"]
    assert stats["previews"] == request["steps"] and stats["readbacks"] == 1


def test_same_seed_twice_gives_identical_pixels(page, reference):
    request = request_for(reference, "euler_a")
    assert generate(page, request) == generate(page, request)


def test_a_width_off_the_grid_is_refused_clearly(page, reference):
    with pytest.raises(AssertionError, match=r"latent.width: got 500.*multiple of 8"):
        generate(page, {**request_for(reference, "euler"), "width": 500})


def test_a_width_not_a_multiple_of_64_works(page, reference):
    request = {**request_for(reference, "euler"), "width": 520, "steps": 1}
    assert len(generate(page, request)) == 520 * 64 * 4


def test_cancel_stops_within_a_step_and_frees_memory(page, reference):
    fill(page, {**request_for(reference, "euler"), "steps": 200})
    page.evaluate("""() => { window.stepsSeen = 0; window.doppler.on('step', () => window.stepsSeen++); }""")
    page.click("#generate")
    page.wait_for_function("window.stepsSeen >= 1")
    page.click("#cancel")
    page.wait_for_function("!document.getElementById('banner').hidden")
    assert "cancelled" in page.locator("#banner").inner_text()
    assert page.evaluate("window.stepsSeen") < 200
    held = run_python(page, "gpu.pool.current_bytes")
    assert held < 1 << 20, f"{held} bytes still held after cancel"


def test_a_missing_shard_is_an_error_and_the_cache_stays_usable(page, reference):
    page.select_option("#model", "models/tiny-missing-shard/manifest.json")
    with pytest.raises(AssertionError, match="HTTP 404"):
        generate(page, request_for(reference, "euler"))
    page.select_option("#model", "models/tiny-f32/manifest.json")
    assert psnr(generate(page, request_for(reference, "euler")), reference, "euler") >= MIN_PSNR_DB
