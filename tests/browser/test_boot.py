"""The page boots Python on WebGPU, or says clearly why it cannot."""

import pytest

from browser_harness import CHROMIUM, CHROMIUM_ARGS, run_python

pytestmark = pytest.mark.browser


def test_page_reports_the_gpu(app_page):
    assert app_page.locator("#boot-state").inner_text().startswith("Ready: Python 3.14")
    info = app_page.locator("#gpu-info").inner_text()
    assert "swiftshader" in info.lower() and "subgroups" in info
    summary = run_python(app_page, "gpu.summary()")
    assert summary["backend"] == "browser" and summary["limits"]["maxStorageBufferBindingSize"] >= 2**27
    # The adapter's subgroup sizes and subgroup-matrix shapes reach the rules (SwiftShader: sizes, no matrices).
    assert summary["subgroupMatrixConfigs"] == [] and 1 <= summary["subgroupSizes"][0] <= summary["subgroupSizes"][1]


def test_python_in_the_worker_imports_no_tools(app_page):
    assert run_python(app_page, "import sys; sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'torch'))") == []


def _banner(playwright_session, url, args):
    browser = playwright_session.chromium.launch(executable_path=CHROMIUM, args=args)
    try:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("!document.getElementById('banner').hidden", timeout=60_000)
        return page.locator("#banner").inner_text()
    finally:
        browser.close()


def test_no_webgpu_message(playwright_session, site_url):
    args = [a for a in CHROMIUM_ARGS if a != "--enable-unsafe-webgpu"]
    text = _banner(playwright_session, site_url + "index.html", args)
    assert "no GPU adapter" in text and "--enable-unsafe-webgpu" in text


def test_insecure_context_message(playwright_session, site_url):
    # A non-local host name over plain http is not a secure context (no WebGPU, no OPFS); it still reaches loopback.
    args = CHROMIUM_ARGS + ["--host-resolver-rules=MAP doppler.test 127.0.0.1"]
    text = _banner(playwright_session, site_url.replace("127.0.0.1", "doppler.test") + "index.html", args)
    assert "not a secure context" in text and "https" in text


@pytest.mark.parametrize("page_name", ["index.html", "bench.html"])
def test_autorun_posts_its_result(browser, site_url, page_name):
    import json
    from urllib.parse import quote, urlsplit

    page = browser.new_page()
    posted = []

    def capture(route):
        posted.append(json.loads(route.request.post_data))
        route.fulfill(status=204)

    page.route(lambda url: urlsplit(url).path == "/report", capture)
    job = quote(json.dumps({"call": "device_info"}))
    page.goto(f"{site_url}{page_name}?autorun={job}&report={quote(site_url + 'report')}")
    page.wait_for_function("document.body.dataset.autorun === 'done'", timeout=120_000)
    page.close()
    result = [p for p in posted if "ok" in p]
    assert result and result[0]["ok"] and result[0]["result"]["backend"] == "browser"
    assert any(p.get("event") == "boot" for p in posted)


def test_a_lost_device_is_replaced_for_the_next_job(browser, site_url):
    from browser_harness import open_app

    page = open_app(browser, site_url)
    try:
        first = run_python(page, "await gpu.kernel('elementwise', 'scale', {'WG': 256}); gpu.backend.device.destroy(); id(gpu)")
        page.wait_for_timeout(200)
        message = run_python(page, """
from doppler.errors import DeviceLostError
try:
    gpu.raise_device_errors()
except DeviceLostError as e:
    str(e)
""")
        assert message is None or "next job opens a fresh device" in message
        # The next job gets a fresh, working device.
        assert run_python(page, "[id(gpu), gpu.backend.lost(), len(gpu.kernels)]") != [first, None, 1]
        fresh = run_python(page, """
from doppler.ops import elementwise
t, u = gpu.tensor((4,), "f32", "t"), gpu.tensor((4,), "f32", "u")
gpu.upload(t, bytes(16))
await elementwise.scale(gpu, t, u, 1.0, 2.0)
[id(gpu), gpu.backend.lost(), list(await gpu.read(u))]
""")
        assert fresh[0] != first and fresh[1] is None and fresh[2] == list(bytes.fromhex("00000040") * 4)
    finally:
        page.close()


def test_the_form_is_ready_with_no_banner(app_page):
    assert app_page.locator("#app").is_visible()
    assert app_page.locator("#banner").is_hidden()
