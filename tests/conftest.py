"""Session fixtures: the static server, headless Chromium (WebGPU on SwiftShader) and a booted app page, and the
native wgpu device (lavapipe). Each boots once per session."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from doppler.serve import PROJECT_ROOT, SiteServer, site_layout


@pytest.fixture(scope="session")
def site_url():
    with SiteServer(site_layout()) as url:
        yield url


@pytest.fixture(scope="session")
def playwright_session():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_session):
    from browser_harness import launch

    b = launch(playwright_session)
    yield b
    b.close()


@pytest.fixture(scope="session")
def app_page(browser, site_url):
    """A page whose worker has Pyodide, doppler and a WebGPU device ready (booted once per session)."""
    from browser_harness import open_app

    page = open_app(browser, site_url)
    yield page
    page.close()


@pytest.fixture(scope="session")
def event_loop_runner():
    """Runs coroutines on one loop in its own thread (Playwright's sync API holds the main thread's loop), so every
    native GPU call of the session happens on the same thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield lambda coro: asyncio.run_coroutine_threadsafe(coro, loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()


@pytest.fixture(scope="session")
def native_gpu(event_loop_runner):
    """A wgpu-native device (lavapipe on CI), shared by the session; `run(coro)` runs async GPU code on it."""
    from doppler.gpu.context import Gpu

    os.environ.setdefault("WGPU_LOG_LEVEL", "error")
    return event_loop_runner(Gpu.open("native", PROJECT_ROOT / "wgsl"))


@pytest.fixture(params=["native", "browser"])
def gpu_run(request, event_loop_runner):
    """`gpu_run(source, **byte_inputs)`: the same test source on both backends (see tests/gpu_runner.py)."""
    from browser_harness import run_python
    from gpu_runner import browser_source, run_native

    if request.param == "native":
        gpu = request.getfixturevalue("native_gpu")
        return lambda source, **inputs: event_loop_runner(run_native(gpu, source, **inputs))
    page = request.getfixturevalue("app_page")
    return lambda source, **inputs: run_python(page, browser_source(source, **inputs))


def skip_without_tensor_cores(page) -> None:
    """Skip, saying why, unless the page's GPU has tensor cores (the rule tensor_cores is true:
    Chromium with shader-f16 on an NVIDIA GPU, bench/h100_tests.sh)."""
    from browser_harness import run_python

    if not run_python(page, "from doppler.ops.variants import kernel_rule\nkernel_rule(gpu, 'tensor_cores')"):
        pytest.skip(f"this page's GPU offers no f16 subgroup matrices (the rule tensor_cores is false; SwiftShader and "
                    f"naga have none): these run in Chromium on an NVIDIA GPU, bench/h100_tests.sh")


@pytest.fixture
def tensor_core_run(app_page):
    """`gpu_run` in the page where its GPU has tensor cores; skips elsewhere, saying why."""
    from browser_harness import run_python
    from gpu_runner import browser_source

    skip_without_tensor_cores(app_page)
    return lambda source, **inputs: run_python(app_page, browser_source(source, **inputs))


@pytest.fixture
def native_run(native_gpu, event_loop_runner):
    """`native_run(source, **byte_inputs)`: `gpu_run` on the native backend only (large or f16-math cases)."""
    from gpu_runner import run_native

    return lambda source, **inputs: event_loop_runner(run_native(native_gpu, source, **inputs))


@pytest.fixture
def native_f16_run(native_gpu, native_run):
    """`native_run` where the device has shader-f16 (f16-math kernels); skips elsewhere."""
    if not native_gpu.caps.has("shader-f16"):
        pytest.skip("the native device lacks shader-f16, which f16-math kernels need")
    return native_run


@pytest.fixture(scope="session")
def tiny_sd():
    """The tiny SD 1.5-architecture fixture folder (diffusers folder, LDM single file, reference.npz; see
    tests/fixtures/make_fixtures.py), made on first use and remade when its inputs change."""
    from fixtures.make_fixtures import ensure_fixtures

    return ensure_fixtures()


@pytest.fixture(scope="session")
def tiny_model(tiny_sd, tmp_path_factory):
    """The tiny fixture converted to a Doppler model folder (f32), as `doppler convert` writes it."""
    from doppler.cli import main as cli

    out = tmp_path_factory.mktemp("converted") / "tiny-f32"
    assert cli(["convert", str(tiny_sd / "diffusers"), str(out), "--dtype", "f32"]) == 0
    return out


@pytest.fixture(scope="session")
def random_tiny(tmp_path_factory):
    """The tiny architecture with seeded random weights (f16), as `make serve` builds its default model."""
    from doppler.cli import main as cli

    out = tmp_path_factory.mktemp("random") / "tiny-random"
    assert cli(["convert", "--random", "tiny", "--seed", "0", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def reference(tiny_sd):
    """The fixture's diffusers outputs (reference.npz)."""
    import numpy as np

    return np.load(tiny_sd / "reference.npz")
