"""GroupNorm (NHWC) against the float64 reference: whole maps by both algorithms (partial moments in passes, one
workgroup a group), fused SiLU, f16-stored affine, a large mean that a naive E[x^2] - E[x]^2 would ruin, statistics
shared across overlapping tiles, and f16 out."""

import numpy as np
import pytest

from reference import F16_ULP, POISON, assert_close, rng
from reference import groupnorm as ref


WHOLE = """
from doppler.ops import groupnorm
shape, groups = {shape}, {groups}
tx = gpu.tensor(shape, "f32", "x"); out = gpu.tensor(shape, "{out_dtype}", "out")
g = gpu.tensor((shape[-1],), "{pdtype}", "gamma"); b = gpu.tensor((shape[-1],), "{pdtype}", "beta")
stats = gpu.tensor((shape[0], groups, 2), "f32", "stats")
gpu.upload(tx, x); gpu.upload(g, gamma); gpu.upload(b, beta); gpu.upload(out, poison)
gpu.flush()
before = dict(gpu.stats.dispatches)
await groupnorm.group_norm(gpu, tx, g, b, out, stats, groups, {eps}, silu={silu}, whole_group={whole})
result = [await gpu.read(out), await gpu.read(stats)]
entries = sorted({{k.split("{{")[0] for k, n in gpu.stats.dispatches.items() if n > before.get(k, 0)}})
gpu.free(tx, out, g, b, stats)
result + [entries]
"""


def _inputs(shape, seed, mean=0.0, pdtype="f32"):
    r = rng(seed)
    x = (mean + r.standard_normal(shape) * r.uniform(0.5, 2.0, shape[-1])).astype(np.float32)
    gamma = (1.0 + 0.3 * r.standard_normal(shape[-1])).astype(np.float16 if pdtype == "f16" else np.float32)
    beta = (0.2 * r.standard_normal(shape[-1])).astype(gamma.dtype)
    return x, gamma, beta


# (shape, groups, eps, silu, param storage, mean of x): SD 1.5's UNet (eps 1e-5) and VAE (eps 1e-6) maps scaled
# down; widths and channel counts that are not multiples of the 4 lanes and 64-channel workgroups. Groups of 3, 10
# and 4 channels (workgroups of 63, 60 and 64), of 80 (wider than 64) and of 1.
CASES = {
    "unet": ((2, 9, 13, 96), 32, 1e-5, False, "f32", 0.0),
    "unet-silu-f16w": ((2, 8, 7, 80), 8, 1e-5, True, "f16", 0.0),
    "vae-large-mean": ((1, 12, 21, 128), 32, 1e-6, True, "f32", 1000.0),
    "wide-groups": ((1, 3, 5, 160), 2, 1e-5, True, "f32", 0.0),
    "one-pixel": ((2, 1, 1, 64), 32, 1e-5, False, "f32", 0.0),
    # 20 rows of 64 one-channel groups: 1280 partials for a workgroup of 256 to combine, over
    # FUSED_PARTIALS_PER_THREAD: the separate passes
    "many-rows": ((1, 20, 5, 64), 64, 1e-6, True, "f32", 5.0),
}
SEPARATE_PASSES = {"many-rows"}
BROWSER = {"unet-silu-f16w"}


def _passes(case, whole_group):
    if whole_group:
        return ["whole_group"]
    return ["apply", "finalize", "group_moments", "partial_moments"] if case in SEPARATE_PASSES else [
        "normalize", "partial_moments"]


@pytest.mark.parametrize("whole_group", [False, True], ids=["passes", "whole-group"])
@pytest.mark.parametrize("case", CASES)
def test_group_norm_matches_reference(gpu_run, request, case, whole_group):
    # Both algorithms: partial moments then normalize (or the separate passes), and one workgroup a group.
    shape, groups, eps, silu, pdtype, mean = CASES[case]
    if "browser" in request.node.callspec.id and case not in BROWSER:
        pytest.skip("SwiftShader is slow: the browser runs one case")
    x, gamma, beta = _inputs(shape, 1, mean, pdtype)
    poison = np.full(shape, POISON, np.float32)
    out, stats, entries = gpu_run(WHOLE.format(shape=shape, groups=groups, pdtype=pdtype, eps=eps, silu=silu,
                                               out_dtype="f32", whole=whole_group),
                                  x=x.tobytes(), gamma=gamma.tobytes(), beta=beta.tobytes(), poison=poison.tobytes())
    assert entries == [f"groupnorm.wgsl:{entry}" for entry in _passes(case, whole_group)]
    path = "f16w" if pdtype == "f16" else "f32"
    want_stats = ref.stats(ref.moments(x, groups), eps)
    assert_close(np.frombuffer(stats, np.float32), want_stats, "f32", "stats")
    assert_close(np.frombuffer(out, np.float32), ref.group_norm(x, gamma, beta, groups, eps, silu), path)


@pytest.mark.parametrize("whole_group", [False, True], ids=["passes", "whole-group"])
@pytest.mark.parametrize("case", ["unet-silu-f16w", "wide-groups", "many-rows"])
def test_group_norm_to_f16(native_f16_run, case, whole_group):
    # f16 out (wgsl/groupnorm_f16_output.wgsl) for tensor-core GEMMs: the f32 result rounded once, from normalize,
    # (many rows) from apply, or from whole_group.
    shape, groups, eps, silu, pdtype, mean = CASES[case]
    x, gamma, beta = _inputs(shape, 3, mean, pdtype)
    poison = np.full(shape, np.nan, np.float16)
    out, _, entries = native_f16_run(WHOLE.format(shape=shape, groups=groups, pdtype=pdtype, eps=eps, silu=silu,
                                                  out_dtype="f16", whole=whole_group),
                                     x=x.tobytes(), gamma=gamma.tobytes(), beta=beta.tobytes(), poison=poison.tobytes())
    assert f"groupnorm_f16_output.wgsl:{_passes(case, whole_group)[0]}" in entries
    want = ref.group_norm(x, gamma, beta, groups, eps, silu)
    got = np.frombuffer(out, np.float16)[:want.size].reshape(want.shape).astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=F16_ULP / 2 + 1e-4, atol=1e-6)


@pytest.mark.parametrize("batch, most, chosen", [(2, 351, "whole"), (2, 350, "passes"), (1, 4 * 351, "whole"),
                                                (1, 4 * 351 - 1, "passes")])
def test_group_norm_takes_one_workgroup_a_group_up_to_a_size(native_run, monkeypatch, batch, most, chosen):
    # By default group_norm takes whole_group for groups of at most WHOLE_GROUP_MAX_VALUES values (here 9 x 13 x 3 =
    # 351) at 2 x 32 = WHOLE_GROUP_WORKGROUPS workgroups, and a quarter of that at half as many.
    from doppler.ops import groupnorm

    monkeypatch.setattr(groupnorm, "WHOLE_GROUP_MAX_VALUES", most)  # native_run runs in this process
    shape, groups, eps, silu, pdtype, mean = CASES["unet"]
    shape = (batch, *shape[1:])
    x, gamma, beta = _inputs(shape, 4, mean, pdtype)
    poison = np.full(shape, POISON, np.float32)
    code = WHOLE.format(shape=shape, groups=groups, pdtype=pdtype, eps=eps, silu=silu, out_dtype="f32", whole=None)
    out, _, entries = native_run(code, x=x.tobytes(), gamma=gamma.tobytes(), beta=beta.tobytes(),
                                 poison=poison.tobytes())
    assert entries == [f"groupnorm.wgsl:{e}" for e in _passes("unet", chosen == "whole")]
    assert_close(np.frombuffer(out, np.float32), ref.group_norm(x, gamma, beta, groups, eps, silu), "f32")


TILED = """
from doppler.ops import groupnorm
from doppler.ops.groupnorm import Window
tiles = {tiles}
groups, eps = {groups}, {eps}
moments = gpu.tensor((1, groups, 3), "f32", "moments"); stats = gpu.tensor((1, groups, 2), "f32", "stats")
g = gpu.tensor((len(gamma) // 4,), "f32", "gamma"); b = gpu.tensor((len(beta) // 4,), "f32", "beta")
gpu.upload(g, gamma); gpu.upload(b, beta)
held, data = [], memoryview(x)
for i, (shape, window) in enumerate(tiles):
    t = gpu.tensor(shape, "f32", f"tile{{i}}")
    gpu.upload(t, data[:t.nbytes]); data = data[t.nbytes:]
    scratch = gpu.tensor(groupnorm.partials_shape(shape, groups, Window(*window)), "f32", "partials")
    await groupnorm.accumulate_moments(gpu, t, moments, scratch, groups, Window(*window), accumulate=i > 0)
    held += [t, scratch]
await groupnorm.finalize(gpu, moments, stats, eps)
last = held[-2]
out = gpu.tensor(last.shape, "f32", "out"); gpu.upload(out, poison)
await groupnorm.apply(gpu, last, stats, g, b, out, groups, silu=True)
result = [await gpu.read(moments), await gpu.read(stats), await gpu.read(out)]
gpu.free(moments, stats, g, b, out, *held)
result
"""


def test_tiles_share_the_statistics_of_their_map(gpu_run):
    """Overlapping tiles (4-pixel halos) each count their core once: the moments and statistics are the whole
    map's, and a tile normalized with them equals that part of the whole map normalized."""
    groups, eps, h, w, cut_h, cut_w, halo = 32, 1e-6, 14, 19, 6, 11, 4
    x, gamma, beta = _inputs((1, h, w, 64), 2, mean=3.0)
    tiles, blobs = [], []
    for top, bottom in ((0, cut_h), (cut_h, h)):
        for left, right in ((0, cut_w), (cut_w, w)):
            t0, l0 = max(0, top - halo), max(0, left - halo)
            tile = x[:, t0:min(h, bottom + halo), l0:min(w, right + halo)]
            tiles.append((tile.shape, (top - t0, left - l0, bottom - top, right - left)))
            blobs.append(np.ascontiguousarray(tile).tobytes())
    last_shape = tiles[-1][0]
    moments, stats, out = gpu_run(TILED.format(tiles=tiles, groups=groups, eps=eps), x=b"".join(blobs),
                                  gamma=gamma.tobytes(), beta=beta.tobytes(),
                                  poison=np.full(last_shape, POISON, np.float32).tobytes())
    want = ref.moments(x, groups)
    assert_close(np.frombuffer(moments, np.float32), want, "f32", "moments")
    assert_close(np.frombuffer(stats, np.float32), ref.stats(want, eps), "f32", "stats")
    whole = ref.group_norm(x, gamma, beta, groups, eps, silu=True)
    assert_close(np.frombuffer(out, np.float32), whole[:, -last_shape[1]:, -last_shape[2]:], "f32")


def test_reference_matches_torch():
    torch = pytest.importorskip("torch")
    x, gamma, beta = _inputs((2, 5, 6, 64), 3)
    want = torch.nn.functional.silu(torch.nn.functional.group_norm(
        torch.from_numpy(x).double().permute(0, 3, 1, 2), 32, torch.from_numpy(gamma).double(),
        torch.from_numpy(beta).double(), 1e-6)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ref.group_norm(x, gamma, beta, 32, 1e-6, silu=True), want, rtol=1e-12, atol=1e-12)


def test_bad_shapes_are_named(native_gpu, event_loop_runner):
    from doppler.errors import GpuError
    from doppler.ops import groupnorm

    x = native_gpu.tensor((1, 4, 4, 48), "f32", "unet.x")
    stats = native_gpu.tensor((1, 32, 2), "f32", "stats")
    try:
        with pytest.raises(GpuError, match="48 channels of unet.x do not split into 32 groups"):
            event_loop_runner(groupnorm.group_norm(native_gpu, x, x, x, x, stats, 32, 1e-5))
    finally:
        native_gpu.free(x, stats)


def test_windows_outside_the_map_are_named(native_gpu, event_loop_runner):
    from doppler.errors import GpuError
    from doppler.ops import groupnorm

    x = native_gpu.tensor((1, 4, 6, 32), "f32", "vae.tile")
    moments = native_gpu.tensor((1, 32, 3), "f32", "moments")
    try:
        with pytest.raises(GpuError, match="does not lie inside the 4x6 map vae.tile"):
            event_loop_runner(groupnorm.accumulate_moments(native_gpu, x, moments, x, 32, groupnorm.Window(2, 0, 3, 6)))
    finally:
        native_gpu.free(x, moments)
