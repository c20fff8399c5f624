"""Headless Chromium on the app (CPython tools layer: `doppler generate` and the Playwright tests): launch it with
WebGPU, open the app with its worker booted, and call the worker's entry points by name."""

from __future__ import annotations

import base64
import os
import shutil

from .errors import DopplerError

CHROMIUM = os.environ.get("DOPPLER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# WebGPU on SwiftShader in a headless Chromium with no network: quiet the background services that would try one.
# DOPPLER_CHROMIUM_ARGS (space-separated) replaces them, e.g. for a real GPU (bench/h100_tests.sh).
CHROMIUM_ARGS = os.environ.get("DOPPLER_CHROMIUM_ARGS", "").split() or [
    "--enable-unsafe-webgpu",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--enable-webgpu-developer-features",
    # The compositor on Vulkan (SwiftShader) like WebGPU: a WebGPU canvas's texture then crosses into it (without
    # these, the first getCurrentTexture breaks the device: "A valid external Instance reference no longer exists").
    "--enable-features=Vulkan",
    "--use-vulkan=swiftshader",
    "--use-angle=swiftshader",
]
# The page the tests open: the app, or bench.html (the same worker, no text) where a headless shell has no fonts.
APP_PAGE = os.environ.get("DOPPLER_APP_PAGE", "index.html")
BOOT_TIMEOUT_MS = 120_000
CALL_TIMEOUT_MS = 600_000


def launch(playwright, extra_args=()):
    if not os.path.exists(CHROMIUM):
        raise FileNotFoundError(f"no Chromium at {CHROMIUM}: install Debian's `chromium` (`make test` does) or set "
                                f"DOPPLER_CHROMIUM to a Chromium binary")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + list(extra_args), headless=True)


def open_app(browser, url: str, query: str = ""):
    """A new page on the app, its worker booted. Raises with the page's own message if it could not start."""
    page = browser.new_page()
    page.set_default_timeout(CALL_TIMEOUT_MS)
    page.goto(url + APP_PAGE + query)
    page.wait_for_function("window.doppler !== undefined || document.getElementById('banner')?.hidden === false",
                           timeout=BOOT_TIMEOUT_MS)
    state = page.evaluate(
        "() => window.doppler ? window.doppler.ready.then(() => 'ready', (e) => 'failed: ' + e.message + ' ' + e.hint)"
        " : 'failed: ' + document.getElementById('banner').textContent"
    )
    if state != "ready":
        raise DopplerError(f"the app did not start: {state}")
    return page


def decode(value):
    """JSON from the worker, with {"__bytes__": base64} turned back into bytes."""
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def call(page, name: str, **args):
    """One of the worker's entry points (`doppler.api.CALLS`) by name; its JSON result."""
    return decode(page.evaluate("([n, a]) => window.doppler.call(n, a)", [name, args]))
