"""Every kernel SD 1.5 at 512x512 asks for on the H100, on both paths, compiles in Dawn's WGSL compiler (Tint, as
Chromium runs it: tests/tint/compile.mjs on Dawn's null backend). The tensor-core kernels otherwise compile only on
that GPU (SwiftShader and naga offer no subgroup matrices), so a change to a file they include was first seen there.
The kernels and their override constants come from a dry run of the pipeline with the H100's capabilities (as
test_memory_budget's); each is compiled with its constants written in as `const`s, so sizes and branches that depend
on them are checked as that pipeline builds them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from doppler.gpu.backend_dry import DryBackend
from doppler.gpu.context import Gpu
from doppler.gpu.kernels import with_constants
from dry_gpu import PATHS, REQUEST_512, WGSL, dry_pipeline

TINT = Path(__file__).resolve().parents[1] / "tint"


def pipeline_modules(folder: Path, caps, event_loop_runner) -> dict[str, str]:
    """label -> the WGSL of each kernel asked for by a dry run of a 2-step CFG image (the kernels of a longer one) and
    an LCM image with a tiled decode."""

    async def run():
        gpu, pipeline = await dry_pipeline(folder, caps)
        await pipeline.generate(REQUEST_512, preview=object())
        await pipeline.generate({**REQUEST_512, "guidance": 1.0, "scheduler": "lcm",
                                 "decode": {"tiling": {"enabled": True, "tileSize": 256}}})
        return gpu

    gpu = event_loop_runner(run())
    modules = {}
    for name, entry, constants in gpu.kernels.requests():
        label = f"{name}.wgsl:{entry}" + json.dumps(constants, sort_keys=True)
        modules[label] = with_constants(gpu.kernels.source(name), constants, label)
    return modules


def compile_in_tint(modules: dict[str, str], tmp_path: Path) -> dict[str, list[str]]:
    if shutil.which("node") is None or not (TINT / "node_modules" / "webgpu").is_dir():
        pytest.fail("Dawn's compiler for Node is not installed: `make test` installs it (npm ci --prefix tests/tint)")
    listing = tmp_path / "modules.json"
    listing.write_text(json.dumps([{"label": k, "code": v} for k, v in modules.items()]))
    done = subprocess.run(["node", str(TINT / "compile.mjs"), str(listing)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["label"] for r in results] == list(modules), "compile.mjs answered for other modules"
    return {r["label"]: r["errors"] for r in results}


@pytest.mark.parametrize("path", PATHS)
def test_the_pipelines_kernels_compile_in_tint(sd15_folder, event_loop_runner, tmp_path, path):
    modules = pipeline_modules(sd15_folder, PATHS[path], event_loop_runner)
    if path == "tensor-cores":  # the kernels this test exists for
        assert sum("enable chromium_experimental_subgroup_matrix" in code for code in modules.values()) >= 5
    failed = {label: errors for label, errors in compile_in_tint(modules, tmp_path).items() if errors}
    assert not failed, "\n".join(f"{label}: {errors[:3]}" for label, errors in list(failed.items())[:10])


def test_every_kernel_file_compiles_in_tint(tmp_path):
    """Each file with its default constants, so one no image asks for on the H100 (a test's or another GPU's
    variant) is checked too."""
    kernels = Gpu(DryBackend(PATHS["tensor-cores"]), WGSL).kernels
    names = sorted(p.stem for p in WGSL.glob("*.wgsl"))
    assert len(names) >= 30
    failed = {k: v for k, v in compile_in_tint({n: with_constants(kernels.source(n), {}, n) for n in names},
                                               tmp_path).items() if v}
    assert not failed, failed


def test_tint_finds_an_error_in_a_tensor_core_kernel(tmp_path):
    """The check can fail: a left matrix where a right one belongs is refused."""
    code = Gpu(DryBackend(PATHS["tensor-cores"]), WGSL).kernels.source("matmul_subgroup_matrix_f16_input")
    right = "subgroupMatrixMultiplyAccumulate(a0, b0, c00)"
    wrong = code.replace(right, right.replace("b0", "a1"))
    assert wrong != code
    errors = compile_in_tint({"as is": code, "wrong": wrong}, tmp_path)
    assert errors["as is"] == [] and "subgroupMatrixMultiplyAccumulate" in errors["wrong"][0]
