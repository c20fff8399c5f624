"""A first visit's model download in Chromium, over a network of a given speed: `load_model` wall time.

    .venv/bin/python bench/download.py [--tree ab/base] [--shards 12] [--shard-mib 56] [--mbps 100 0] [--runs 2]

Serves a model of `shards` random shards (the test fixture's tensor table, its shards enlarged) from a fresh origin
each run (an empty OPFS cache), throttles the page's network to each `--mbps` (MB/s; 0: unthrottled) through
DevTools (which throttles the module worker's fetches too), and times `load_model(precompile=False)`: the fetch into
OPFS and the checks of each shard. `--tree` runs another copy of the app (bench/ab_tree.sh) for an A/B; runs of
the trees given alternate. Needs no GPU: prints one row a run for bench/RESULTS.md.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "unit" / "data" / "tiny_manifest.json"

RUN = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(sys.argv[1]).resolve() / "py"))
from playwright.sync_api import sync_playwright
from doppler.browser import call, launch, open_app
from doppler.serve import SiteServer, site_layout
folder, mbps = Path(sys.argv[2]), float(sys.argv[3])
with SiteServer(site_layout(models=[folder])) as url, sync_playwright() as p:
    browser = launch(p)
    page = open_app(browser, url)
    if mbps:
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        rate = mbps * 1e6
        cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": rate,
                                                      "uploadThroughput": rate})
    t0 = time.perf_counter()
    result = call(page, "load_model", url=f"models/{folder.name}/manifest.json", precompile=False)
    print(json.dumps({"ms": round((time.perf_counter() - t0) * 1000), "bytes": result["fetchedBytes"]}))
    browser.close()
"""


def build_model(folder: Path, shards: int, shard_bytes: int) -> int:
    """The fixture's manifest with `shards` random shards of `shard_bytes` (its tensors stay in the first three)."""
    manifest = json.loads(FIXTURE.read_text())
    manifest["id"] = folder.name
    (folder / "shards").mkdir(parents=True)
    specs = []
    for i in range(shards):
        data = os.urandom(shard_bytes)
        path = f"shards/{i}.bin"
        (folder / path).write_bytes(data)
        specs.append({"path": path, "size": shard_bytes, "sha256": hashlib.sha256(data).hexdigest()})
    manifest["shards"] = specs
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return shards * shard_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", action="append", help="app trees to run (default: this one)")
    parser.add_argument("--shards", type=int, default=12)
    parser.add_argument("--shard-mib", type=int, default=56)
    parser.add_argument("--mbps", type=float, nargs="+", default=[100.0, 0.0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    trees = args.tree or [str(ROOT)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "download-bench"
        total = build_model(folder, args.shards, args.shard_mib << 20)
        for mbps in args.mbps:
            for run in range(args.runs):
                for tree in trees:
                    out = subprocess.run([sys.executable, "-c", RUN, tree, str(folder), str(mbps)], check=True,
                                         capture_output=True, text=True).stdout
                    r = json.loads(out.strip().splitlines()[-1])
                    assert r["bytes"] == total, r
                    print(f"| {tree} | {mbps or 'unthrottled'} | {run + 1} | {total / 2**20:.0f} MiB | {r['ms']} ms |",
                          flush=True)


if __name__ == "__main__":
    main()
