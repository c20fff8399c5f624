"""The tiny pipeline on tensor cores (every GEMM through f16 x f16 -> f32 subgroup matrices: the page's default on
such a GPU), through the page's API, against diffusers. Runs in Chromium on an NVIDIA GPU (bench/h100_tests.sh) and
skips elsewhere, saying why."""

import pytest

from browser_harness import call, open_app
from conftest import skip_without_tensor_cores
from doppler.serve import SiteServer, site_layout
from pipeline_cases import psnr, request_for

pytestmark = pytest.mark.browser

# Activations are rounded to f16 at every GEMM and attention (~5e-4 relative each). Measured on an H100 (session 4,
# bench/RESULTS.md): 59.4 dB (DPM++ 2M Karras) and 59.0 dB (LCM); a wrong GEMM gives ~10 dB.
MIN_TENSOR_CORE_PSNR_DB = 50.0


@pytest.fixture(scope="module")
def page(app_page, browser, tiny_model):
    skip_without_tensor_cores(app_page)
    with SiteServer(site_layout(models=[tiny_model])) as url:
        p = open_app(browser, url)
        yield p
        p.close()


@pytest.mark.parametrize("case", ["dpmpp_2m_karras", "lcm"])
def test_tensor_core_images_match_diffusers(page, reference, case):
    result = call(page, "generate", model="models/tiny-f32/manifest.json", **request_for(reference, case))
    db = psnr(result["image"]["rgba"], reference, case)
    print(f"{case}: {db:.1f} dB on tensor cores")  # bench/h100_tests.sh -rP shows it: the bound's calibration
    assert db >= MIN_TENSOR_CORE_PSNR_DB, f"{case}: PSNR {db:.1f} dB < {MIN_TENSOR_CORE_PSNR_DB}"
