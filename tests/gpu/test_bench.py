"""The in-page kernel benchmark runs every kind of case and sweep, here at toy shapes on the native backend (the real
shapes are for a GPU machine: bench/h100_app.sh)."""

import json

from doppler import bench
from doppler.ops.matmul import GemmTiles

TOY_CASES = [{"op": "conv3x3", "b": 1, "hw": 8, "cin": 16, "cout": 16},
             {"op": "conv3x3_winograd", "b": 1, "hw": 8, "cin": 16, "cout": 16, "tile": 4, "transform_weights": True},
             {"op": "linear", "m": 64, "k": 32, "n": 32},
             {"op": "attention", "b": 1, "tq": 64, "tk": 64, "heads": 2, "d": 40},
             {"op": "groupnorm", "b": 1, "hw": 8, "c": 64, "whole_group": False},  # two passes: two kernels
             {"op": "copy", "b": 1, "hw": 8, "c": 64}]


def test_kernel_bench_sweeps(native_gpu, event_loop_runner, monkeypatch):
    monkeypatch.setattr(bench, "kernel_cases", lambda batch=2: TOY_CASES)
    tensor_cores = [64, 128, 16, 8, 8, True]  # refused on lavapipe: a row with the error
    rows = event_loop_runner(bench.kernels(native_gpu, reps=1, gemm_tiles=[[32, 64, 16, 4, 4], tensor_cores],
                                           attention_overrides=[{"KEY_TILE": 32}, {"NO_SUCH_KNOB": 1}]))
    small = [32, 64, 16, 4, 4, False, 8]  # rows name every field of the tiles, defaults too
    tensor_cores = tensor_cores + [8]
    assert [(r["op"], r.get("tiles"), r.get("overrides")) for r in rows] == [
        ("conv3x3", "default", None), ("conv3x3", small, None), ("conv3x3", tensor_cores, None),
        ("conv3x3_winograd", "default", None), ("conv3x3_winograd", small, None),
        ("conv3x3_winograd", tensor_cores, None),
        ("linear", "default", None), ("linear", small, None), ("linear", tensor_cores, None),
        ("attention", None, "default"), ("attention", None, {"KEY_TILE": 32}),
        ("attention", None, {"NO_SUCH_KNOB": 1}), ("groupnorm", "default", None), ("copy", "default", None)]
    assert all(r["ms"] > 0 for r in rows if "error" not in r)
    # Ops of several dispatches time each kernel: groupnorm's two passes add up to its row's time.
    norm = rows[12]["byKernel"]
    assert sorted(label.split("{")[0] for label in norm) == [
        "groupnorm.wgsl:normalize", "groupnorm.wgsl:partial_moments"]
    assert abs(sum(norm.values()) - rows[12]["ms"]) < 1e-3 and "byKernel" not in rows[13]
    assert [i for i, r in enumerate(rows) if "error" in r] == [2, 5, 8, 11]
    # F(4x4) with its weights transformed each run: four kernels, all at TILE 4
    assert sorted(label.split("{")[0] for label in rows[3]["byKernel"]) == [
        "matmul.wgsl:main", "winograd_input.wgsl:main", "winograd_output.wgsl:main", "winograd_weights.wgsl:per_kernel"]
    assert all("TILE=4" in label for label in rows[3]["byKernel"] if label.startswith("winograd"))
    assert "chromium-experimental-subgroup-matrix" in rows[2]["error"] and "NO_SUCH_KNOB" in rows[11]["error"]


def test_kernel_bench_times_the_cases_given(native_gpu, event_loop_runner):
    given = [TOY_CASES[3], {**TOY_CASES[3], "heads": 3}]
    heard = []
    rows = event_loop_runner(bench.kernels(native_gpu, reps=1, cases=given, attention_overrides=[{"KEY_TILE": 32}],
                                           progress=lambda now, data: heard.append((now, json.dumps(data)))))
    assert [(r["op"], r["heads"]) for r in rows] == [("attention", 2)] * 2 + [("attention", 3)] * 2
    assert all(r["ms"] > 0 for r in rows)
    # Progress: each config as its compile starts, each case's rows once timed (JSON, as the page posts them).
    assert [now for now, _ in heard] == ["compiling", "compiling", "timed"] * 2
    assert [json.loads(data) for _, data in heard[2::3]] == [rows[:2], rows[2:]]
    assert json.loads(heard[4][1])["overrides"] == {"KEY_TILE": 32} and "ms" not in json.loads(heard[4][1])


def test_kernel_bench_takes_a_cases_configs_in_turn(native_gpu, event_loop_runner, monkeypatch):
    # Each config's first run, then WINDOWS rounds of one window each: a drift of the clocks over the case reaches
    # every config alike.
    measured = []
    real = bench._mean_gpu_ms_by_kernel

    async def spy(gpu, run, reps):
        measured.append(run.keywords.get("tiles"))
        return await real(gpu, run, reps)

    monkeypatch.setattr(bench, "_mean_gpu_ms_by_kernel", spy)
    rows = event_loop_runner(bench.kernels(native_gpu, reps=1, gemm_tiles=[[32, 64, 16, 4, 4]], cases=[TOY_CASES[2]],
                                           replayed=False))
    assert measured == [None, GemmTiles(32, 64, 16, 4, 4)] * (1 + bench.WINDOWS)
    assert [r["tiles"] for r in rows] == ["default", [32, 64, 16, 4, 4, False, 8]] and all(r["ms"] > 0 for r in rows)


def test_kernel_bench_replays_a_window_as_one_plan(native_gpu, event_loop_runner, monkeypatch):
    # By default a config's first run is timed eagerly (to size its window), then its window's runs are recorded as
    # one plan, which each round replays in one call: as the pipeline runs.
    calls = []
    real = bench._mean_gpu_ms_by_kernel

    async def spy(gpu, run, reps):
        calls.append((getattr(run, "keywords", "a replay"), reps))
        return await real(gpu, run, reps)

    monkeypatch.setattr(bench, "_mean_gpu_ms_by_kernel", spy)
    replays = native_gpu.stats.replays
    rows = event_loop_runner(bench.kernels(native_gpu, reps=3, gemm_tiles=[[32, 64, 16, 4, 4]],
                                           cases=[TOY_CASES[2], TOY_CASES[4]]))
    first_runs = [({}, 1), ({"tiles": GemmTiles(32, 64, 16, 4, 4)}, 1)]
    assert calls[:2] == first_runs and calls[2:2 + 2 * bench.WINDOWS] == [("a replay", 1)] * 2 * bench.WINDOWS
    assert native_gpu.stats.replays - replays == 3 * bench.WINDOWS  # the linear's two configs and the norm
    assert all(r["ms"] > 0 for r in rows)
    # Per run, as eagerly: the norm's two passes by kernel, adding up to its row's time
    eager = event_loop_runner(bench.kernels(native_gpu, reps=3, cases=[TOY_CASES[4]], replayed=False))
    assert set(rows[2]["byKernel"]) == set(eager[0]["byKernel"])
    assert abs(sum(rows[2]["byKernel"].values()) - rows[2]["ms"]) < 1e-3


def test_step_profile_names_layers(native_gpu, event_loop_runner):
    from types import SimpleNamespace

    from doppler.ops import matmul

    async def go(gpu):
        x, w, y = (gpu.tensor((64, 64), "f32", f"bench.{name}") for name in "xwy")
        for t in (x, w):
            gpu.upload(t, bytes(4 * 64 * 64))
        with gpu.record("bench.plan") as plan:
            await matmul.linear(gpu, x, w, y)
            await matmul.linear(gpu, y, w, x)
        profile = await bench.profile_step(gpu, SimpleNamespace(plan=plan))
        plan.destroy()
        gpu.free(x, w, y)
        return profile

    profile = event_loop_runner(go(native_gpu))
    assert profile["dispatches"] == 2 and set(profile["topLayers"]) == {"bench.y <- matmul", "bench.x <- matmul"}


def test_dispatch_overhead_times_each_path(native_gpu, event_loop_runner):
    result = event_loop_runner(bench.dispatch_overhead(native_gpu, dispatches=20, reps=2))
    assert result["dispatches"] == 20
    assert all(result[key] > 0 for key in ("issueUsPerDispatch", "directUsPerDispatch", "replayUsPerDispatch",
                                           "executedUsPerDispatch"))
