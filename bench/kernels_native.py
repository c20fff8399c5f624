"""The page's kernel benchmark (`doppler.bench.kernels`, as `JOB=bench_kernels bench/h100_app.sh` runs it in Chromium)
on wgpu-native: the same cases, tile sweeps and JSON rows, for a quick local comparison (lavapipe here runs a few
GFLOP/s: use reduced shapes; the benchmark of record is the browser's on the H100).

    .venv/bin/python bench/kernels_native.py '{"cases": [{"op": "conv3x3", "b": 1, "hw": 128, "cin": 128,
        "cout": 3}], "gemm_tiles": [[64, 64, 16, 4, 4]]}'
"""

import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "py"))

from doppler import bench  # noqa: E402
from doppler.gpu.context import Gpu  # noqa: E402


async def main(args: dict) -> None:
    gpu = await Gpu.open("native", ROOT / "wgsl")
    rows = await bench.kernels(gpu, **args)
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}))
