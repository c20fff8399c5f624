"""Host time per dispatch in Chromium: eager (call by call through Pyodide's FFI) vs. a replayed plan.

    .venv/bin/python bench/dispatch_overhead.py [--dispatches 500] [--reps 20]

Runs the app headless here (WebGPU on SwiftShader) and prints one row for bench/RESULTS.md. On the GPU machine,
the same measurement runs through `index.html?autorun={"call": "bench_dispatch"}&report=...`.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / p) for p in ("py", "tests")]

from playwright.sync_api import sync_playwright  # noqa: E402

from browser_harness import call, launch, open_app  # noqa: E402
from doppler.serve import SiteServer, site_layout  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dispatches", type=int, default=500)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    with SiteServer(site_layout()) as url, sync_playwright() as p:
        browser = launch(p)
        page = open_app(browser, url)
        result = call(page, "bench_dispatch", dispatches=args.dispatches, reps=args.reps)
        browser.close()
    print(json.dumps(result))
    print(f"| dispatch overhead | {result['adapter']} | {result['dispatches']} dispatches | "
          f"issue {result['issueUsPerDispatch']} us | direct {result['directUsPerDispatch']} us | "
          f"replay {result['replayUsPerDispatch']} us | {result['speedup']}x |")


if __name__ == "__main__":
    main()
