"""Attention against the float64 reference at SD 1.5's cases scaled down: UNet self-attention (head dims 40, 80,
160), cross-attention over 77 text tokens, CLIP's causal 77 x 77 with d = 64, the VAE's one wide head (up to 512),
token counts that are not multiples of the query and key tiles. Heads up to 80 run attention_rows.wgsl (no
subgroups: nothing to fall back from) with its defaults, workgroups and key tiles that divide neither the queries nor
the keys, and the largest KEY_TILE; wider or odd heads run attention_wide.wgsl. On tensor cores (Chromium on an NVIDIA
GPU, bench/h100_tests.sh; skipped elsewhere) heads up to 160 run attention_subgroup_matrix.wgsl, within the f16
bound."""

from pathlib import Path

import numpy as np
import pytest

from reference import POISON, assert_close, rng
from reference import attention as ref

ROOT = Path(__file__).resolve().parents[2]

SOURCE = """
from doppler.ops import attention
qs, kvs, heads = {q_shape}, {kv_shape}, {heads}
tq, tk, tv = (gpu.tensor(s, "f32", n) for s, n in ((qs, "q"), (kvs, "k"), (kvs, "v")))
out = gpu.tensor(qs, "{out_dtype}", "out")
gpu.upload(tq, q); gpu.upload(tk, k); gpu.upload(tv, v); gpu.upload(out, poison)
await attention.attention(gpu, tq, tk, tv, out, heads, scale={scale}, causal={causal}, overrides={overrides})
result = await gpu.read(out)
gpu.free(tq, tk, tv, out)
result
"""

# (batch, queries, keys, heads, head dim, scale, causal, kernel knobs replacing the defaults)
CASES = {
    "self-d40": (2, 64 + 13, 64 + 13, 2, 40, None, False, None),
    # peaked softmax over many key tiles: the running max moves between tiles
    "self-d40-sharp": (1, 150, 200, 2, 40, 0.6, False, None),
    "self-d40-sharp-odd-tiles": (1, 150, 200, 2, 40, 0.6, False, {"WG": 48, "KEY_TILE": 24}),
    "self-d40-sharp-tile64": (1, 150, 200, 2, 40, 0.6, False, {"WG": 32, "KEY_TILE": 64}),
    "cross-77": (2, 29, 77, 2, 40, None, False, None),
    "cross-77-tile7": (1, 29, 77, 2, 40, None, False, {"WG": 16, "KEY_TILE": 7}),
    "self-d80-sharp": (1, 100, 100, 2, 80, 0.5, False, None),
    "self-d80-tile32": (1, 100, 100, 2, 80, 0.5, False, {"WG": 40, "KEY_TILE": 32}),
    "causal-clip": (1, 77, 77, 12, 64, None, True, None),
    "causal-clip-small-groups": (1, 77, 77, 12, 64, None, True, {"WG": 20, "KEY_TILE": 12}),
    "tiny-d4": (1, 9, 20, 3, 4, None, False, None),
    "self-d20": (1, 40, 33, 2, 20, None, False, None),
    "self-d160": (1, 70, 70, 1, 160, None, False, None),  # attention_wide: two column chunks
    "self-d160-mv4": (1, 70, 70, 1, 160, None, False, {"MV": 4}),  # three column chunks
    "vae-d512": (1, 37, 37, 1, 512, None, False, None),  # four column chunks of 128
    "odd-d": (1, 5, 3, 3, 33, None, False, None),
}
BROWSER = {"cross-77", "self-d40-sharp-odd-tiles", "causal-clip"}


@pytest.mark.parametrize("case", CASES)
def test_attention_matches_reference(gpu_run, request, case):
    batch, queries, keys, heads, d, scale, causal, overrides = CASES[case]
    if "browser" in request.node.callspec.id and case not in BROWSER:
        pytest.skip("SwiftShader is slow: the browser runs one case")
    r = rng(9)
    q_shape, kv_shape = (batch, queries, heads * d), (batch, keys, heads * d)
    q, k, v = (r.standard_normal(s).astype(np.float32) for s in (q_shape, kv_shape, kv_shape))
    source = SOURCE.format(q_shape=q_shape, kv_shape=kv_shape, heads=heads, scale=scale, causal=causal,
                           overrides=overrides, out_dtype="f32")
    got = gpu_run(source,
                  q=q.tobytes(), k=k.tobytes(), v=v.tobytes(), poison=np.full(q_shape, POISON, np.float32).tobytes())
    assert_close(np.frombuffer(got, np.float32), ref.attention(q, k, v, heads, scale, causal), "f32")


# On tensor cores: (batch, queries, keys, heads, head dim, scale, causal, knobs replacing the defaults)
TENSOR_CORE_CASES = {
    "self-d40": (2, 64 + 13, 64 + 13, 2, 40, None, False, None),
    # keys from GROW_FROM score twice as high: rows' maxima outgrow the first tiles' by more than RESCALE_SLACK
    "self-d40-grow": (1, 150, 200, 2, 40, 0.6, False, None),
    "self-d40-grow-one-block": (1, 150, 200, 2, 40, 0.6, False, {"QUERY_BLOCKS": 1}),
    "self-d40-grow-no-prefetch": (1, 150, 200, 2, 40, 0.6, False, {"QUERY_BLOCKS": 2, "PREFETCH": 0}),
    "self-d40-three-blocks": (1, 150, 200, 2, 40, 0.6, False, {"QUERY_BLOCKS": 3}),
    "cross-77": (2, 29, 77, 2, 40, None, False, None),
    "self-d80": (1, 100, 100, 2, 80, 0.5, False, None),
    # Q staged 2 blocks at a time (the last round of 5 holds one), and all 3 at once
    "self-d80-q-rounds": (1, 100, 100, 2, 80, 0.5, False, {"Q_BLOCKS": 2}),
    "self-d40-q-at-once": (2, 77, 77, 2, 40, None, False, {"Q_BLOCKS": 3}),
    "self-d160": (1, 70, 70, 1, 160, None, False, None),
    "causal-clip": (1, 77, 77, 12, 64, None, True, None),
    "causal-clip-one-block": (1, 77, 77, 12, 64, None, True, {"QUERY_BLOCKS": 1}),
    "tiny-d4": (1, 9, 20, 3, 4, None, False, None),
}
GROW_FROM = 130
KEY_TILE = 16  # attention_subgroup_matrix.wgsl: rows that outgrow the first tile's keys rescale O
RESCALE_SLACK = 8.0  # attention_subgroup_matrix.wgsl, log2 units


# heads of 40, 160 and 4 quads
F16_OUTPUT_CASES = ("self-d40", "self-d40-grow", "cross-77", "self-d160", "tiny-d4")


@pytest.mark.parametrize("out_dtype, case", [("f32", c) for c in TENSOR_CORE_CASES] +
                         [("f16", c) for c in F16_OUTPUT_CASES])
def test_tensor_cores_match_reference(tensor_core_run, out_dtype, case):
    """f32 out, and f16 out (attention_subgroup_matrix_f16_output.wgsl: the same sums, rounded as stored)."""
    batch, queries, keys, heads, d, scale, causal, overrides = TENSOR_CORE_CASES[case]
    r = rng(12)
    q_shape, kv_shape = (batch, queries, heads * d), (batch, keys, heads * d)
    q, k, v = (r.standard_normal(s).astype(np.float32) for s in (q_shape, kv_shape, kv_shape))
    if "grow" in case:
        k[:, GROW_FROM:] *= 2
        scores = np.einsum("bqd,bkd->bqk", q[..., :d], k[..., :d]) * scale / np.log(2)
        first = scores[..., :KEY_TILE].max(-1)
        assert (scores[..., GROW_FROM:].max(-1) > first + RESCALE_SLACK).any()
    source = SOURCE.format(q_shape=q_shape, kv_shape=kv_shape, heads=heads, scale=scale, causal=causal,
                           overrides=overrides, out_dtype=out_dtype)
    dtype = np.float16 if out_dtype == "f16" else np.float32
    got = tensor_core_run(source, q=q.tobytes(), k=k.tobytes(), v=v.tobytes(),
                          poison=np.full(q_shape, POISON, dtype).tobytes())
    assert_close(np.frombuffer(got, dtype).astype(np.float32), ref.attention(q, k, v, heads, scale, causal), "f16")
    plan = tensor_core_run(f"from doppler.ops import attention\nattention.tiling({d}, {overrides}, "
                           f"tensor_cores=True).kernel")
    assert plan == "attention_subgroup_matrix"


def test_reference_matches_torch():
    torch = pytest.importorskip("torch")
    r = rng(10)
    q, k, v = (r.standard_normal((2, 9, 3 * 8)) for _ in range(3))

    def heads(t):
        return torch.from_numpy(t).reshape(2, 9, 3, 8).transpose(1, 2)

    for causal in (False, True):
        want = torch.nn.functional.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=causal)
        np.testing.assert_allclose(ref.attention(q, k, v, 3, causal=causal),
                                   want.transpose(1, 2).reshape(2, 9, 24).numpy(), rtol=1e-10, atol=1e-12)


def test_bad_inputs_are_named(native_gpu, event_loop_runner):
    from doppler.errors import GpuError
    from doppler.ops import attention

    q, out = (native_gpu.tensor((1, 7, 64), "f32", f"clip.{n}") for n in ("q", "out"))
    k = native_gpu.tensor((1, 9, 64), "f32", "clip.k")
    half = native_gpu.tensor((1, 7, 64), "f16", "clip.half")
    cases = [
        ((q, k, k, out, 1), {"causal": True}, "causal attention needs as many queries as keys; got 7 and 9"),
        ((q, k, k, out, 3), {}, "64 channels of clip.q do not split into 3 heads"),
        ((q, k, k, q, 1), {}, "out clip.q shares a buffer with q, k or v"),
        ((q, q, q, out, 1), {"overrides": {"LANES": 2, "TILE": 8}}, r"unknown knobs \['LANES', 'TILE'\]; this "
         r"kernel's are \['KEY_TILE', 'WG'\]"),
        ((q, q, q, out, 1), {"overrides": {"KEY_TILE": 65}}, "need WG >= 1 and 1 <= KEY_TILE <= 64"),
        ((q, q, q, out, 1), {"overrides": {"WG": 0}}, "need WG >= 1 and 1 <= KEY_TILE <= 64"),
        ((q, q, q, half, 1), {}, r"out clip.half is f16, but attention_rows.wgsl writes f32 \(only "
         r"attention_subgroup_matrix writes f16: see writes_f16\); give an f32 out"),
        ((q, q, half, out, 1), {}, r"clip.half is \(1, 7, 64\) f16; expected \(1, 7, 64\) f32"),
    ]
    try:
        for args, kwargs, message in cases:
            with pytest.raises(GpuError, match=message):
                event_loop_runner(attention.attention(native_gpu, *args, **kwargs))
    finally:
        native_gpu.free(q, k, out, half)


def test_tiling_picks_the_variant():
    from doppler.ops import attention

    # the measured defaults (WG, KEY_TILE): heads up to 40 (256, 16), wider (64, 8)
    for d, wg, keys in ((4, 256, 16), (40, 256, 16), (44, 64, 8), (64, 64, 8), (80, 64, 8)):
        plan = attention.tiling(d)
        assert plan.kernel == "attention_rows" and plan.queries_per_workgroup == wg
        assert plan.overrides == {"HEAD_DIM": d, "WG": wg, "KEY_TILE": keys}
        assert plan.workgroup_bytes == 2 * keys * d * 4 <= 16384
    for d in (33, 84, 160, 512):
        assert attention.tiling(d).kernel == "attention_wide"


def test_tiling_takes_tensor_cores_where_offered():
    from doppler.errors import GpuError
    from doppler.ops import attention

    for d in (4, 40, 64, 80, 160):
        plan = attention.tiling(d, tensor_cores=True)
        assert plan.kernel == "attention_subgroup_matrix" and plan.workgroup_bytes <= attention.TARGET_WORKGROUP_BYTES
        assert plan.queries_per_workgroup == 16 * plan.overrides["QUERY_BLOCKS"]
        small = attention.tiling(d, workgroup_limit=16384, tensor_cores=True)
        # d = 160 fits no tensor-core shape there: attention_wide takes it (its own defaults)
        assert small.kernel == ("attention_wide" if d == 160 else "attention_subgroup_matrix")
        assert small.workgroup_bytes <= 16384 or d == 160
    # d = 40 and 80 take 8 subgroups (query blocks) and 16 keys, Q a block at a time (24 and 28 KiB: K and V buffers
    # with room for the 10 blocks' constant offsets at d = 40); d = 160 4 with Q at once (47 KiB)
    assert attention.tiling(40, tensor_cores=True).overrides == {"HEAD_DIM": 40, "QUERY_BLOCKS": 8, "Q_BLOCKS": 1,
                                                                 "PREFETCH": 1}
    assert attention.tiling(40, tensor_cores=True).workgroup_bytes == 2 * (4 * 1000 + 128 * 24) + 4 * 128 * 20 + 16
    assert attention.tiling(80, tensor_cores=True).workgroup_bytes == 2 * (4 * 1480 + 128 * 24) + 4 * 128 * 20 + 16
    assert attention.tiling(160, tensor_cores=True).overrides == {"HEAD_DIM": 160, "QUERY_BLOCKS": 4, "Q_BLOCKS": 10,
                                                                  "PREFETCH": 1}
    # a tile is 16 keys: 12 quads a key at d = 40 (192, within one query block's 8 x 32 slots), 40 at d = 160 (640)
    assert attention.tiling(40, {"QUERY_BLOCKS": 1}, tensor_cores=True).overrides["PREFETCH"] == 1
    assert attention.tiling(160, {"QUERY_BLOCKS": 2}, tensor_cores=True).overrides["PREFETCH"] == 0
    assert attention.tiling(160, {"QUERY_BLOCKS": 3}, tensor_cores=True).overrides["PREFETCH"] == 1
    for d in (33, 164, 512):
        assert attention.tiling(d, tensor_cores=True).kernel == "attention_wide"
    assert attention.tiling(40, {"TENSOR_CORES": 0}, tensor_cores=True).kernel == "attention_rows"
    with pytest.raises(GpuError, match="TENSOR_CORES 1 asked, but this device has no f16 subgroup matrices"):
        attention.tiling(40, {"TENSOR_CORES": 1})
    with pytest.raises(GpuError, match=r"unknown knobs \['KEY_TILE'\]; this kernel's are \['PREFETCH', 'QUERY_BLOCKS', "
                                       r"'Q_BLOCKS'\]"):
        attention.tiling(40, {"KEY_TILE": 32}, tensor_cores=True)
    with pytest.raises(GpuError, match=r"need QUERY_BLOCKS >= 1, Q_BLOCKS 1 to 10, PREFETCH 0 or 1 \(1: 16 x 40 <= 256 "
                                       r"QUERY_BLOCKS\)"):
        attention.tiling(160, {"QUERY_BLOCKS": 2, "Q_BLOCKS": 4, "PREFETCH": 1}, tensor_cores=True)


SINGLE_HEAD_SOURCE = """
from doppler.ops import attention
qs, kvs = {q_shape}, {kv_shape}
tq, tk, tv, out = (gpu.tensor(s, "f32", n) for s, n in ((qs, "q"), (kvs, "k"), (kvs, "v"), (qs, "out")))
gpu.upload(tq, q); gpu.upload(tk, k); gpu.upload(tv, v); gpu.upload(out, poison)
await attention.single_head_by_matmuls(gpu, tq, tk, tv, out)
result = await gpu.read(out)
gpu.free(tq, tk, tv, out)
result
"""


@pytest.mark.parametrize("batch,queries,keys,d", [(1, 37, 37, 512), (2, 70, 45, 24)])
def test_single_head_by_matmuls(gpu_run, request, batch, queries, keys, d):
    if "browser" in request.node.callspec.id and d == 512:
        pytest.skip("SwiftShader is slow: the browser runs the small case")
    r = rng(11)
    q_shape, kv_shape = (batch, queries, d), (batch, keys, d)
    q, k, v = (r.standard_normal(s).astype(np.float32) for s in (q_shape, kv_shape, kv_shape))
    got = gpu_run(SINGLE_HEAD_SOURCE.format(q_shape=q_shape, kv_shape=kv_shape), q=q.tobytes(), k=k.tobytes(),
                  v=v.tobytes(), poison=np.full(q_shape, POISON, np.float32).tobytes())
    assert_close(np.frombuffer(got, np.float32), ref.attention(q, k, v, 1), "f32")


@pytest.mark.parametrize("path", ["tensor-cores", "default"])
def test_attention_feeding_gemms_writes_f16_on_tensor_cores(event_loop_runner, path):
    """A UNet attention's out, which only to_out reads, is f16 where that GEMM runs on tensor cores (more than
    matmul.SMALL_GEMM_ROWS rows) and the attention kernel writes f16; f32 elsewhere. Planned on the H100's
    capabilities without a GPU."""
    from doppler.gpu.backend_dry import DryBackend
    from dry_gpu import PATHS

    from doppler.gpu.context import Gpu
    from doppler.inference.diffusion.nn import scaled_dot_product_attention

    gpu = Gpu(DryBackend(PATHS[path]), ROOT / "wgsl")
    tensor_cores = path == "tensor-cores"

    async def out_dtype(tokens: int, channels: int, heads: int, feeds_gemms: bool) -> str:
        q = gpu.tensor((2, tokens, channels), "f32", "q")
        out = await scaled_dot_product_attention(gpu, q, q, q, heads, "attn", feeds_gemms=feeds_gemms)
        gpu.free(q, out)
        return out.dtype

    for tokens, channels, heads, want in ((4096, 320, 8, "f16"), (256, 1280, 8, "f16"), (64, 1280, 8, "f32"),
                                          (37, 512, 1, "f32")):  # 2 x 64 rows: small; d = 512: attention_wide
        assert event_loop_runner(out_dtype(tokens, channels, heads, True)) == (want if tensor_cores else "f32")
        assert event_loop_runner(out_dtype(tokens, channels, heads, False)) == "f32"
