"""Playwright harness for the tests: Chromium, the app page and worker calls come from `doppler.browser` (shared with
`doppler generate`); `run_python(page, source)` runs Python in the worker and returns JSON."""

from __future__ import annotations

from doppler.browser import CHROMIUM, CHROMIUM_ARGS, call, decode, launch, open_app

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "call", "launch", "open_app", "run_python"]


def run_python(page, source: str):
    """Run Python source in the page's worker (await allowed; `gpu` is the device); returns its last value."""
    return decode(page.evaluate("(src) => window.doppler.python(src)", source))
