"""Linear layers and batched matmul (wgsl/matmul.wgsl, wgsl/matmul_f16.wgsl, wgsl/matmul_subgroup_matrix.wgsl)
against float64 numpy."""

from pathlib import Path

import numpy as np
import pytest

from kernel_case import error_of, run_op
from reference import assert_close, rng
from reference import matmul as ref

ROOT = Path(__file__).resolve().parents[2]

STORED = {"f32": np.float32, "f16": np.float16}
PATH = {"f32": "f32", "f16": "f16w"}  # weight storage -> tolerance path (f32 math)


def operands(seed, m_shape, n, k, weight_dtype=np.float32, act_dtype=np.float32):
    """x (*m_shape, K) ~ N(0, 1), W [N, K] and b (N) scaled so outputs are ~ N(0, 1), residual and out (*m_shape, N)."""
    r = rng(seed)
    return {
        "x": r.standard_normal((*m_shape, k)).astype(act_dtype),
        "w": (r.standard_normal((n, k)) / np.sqrt(k)).astype(weight_dtype),
        "b": r.standard_normal(n).astype(weight_dtype),
        "r": r.standard_normal((*m_shape, n)).astype(act_dtype),
        "out": np.zeros((*m_shape, n), act_dtype),
    }


@pytest.mark.parametrize("stored", ["f32", "f16"])
def test_linear_ragged_shapes_with_bias(gpu_run, stored):
    # 77 tokens, K and N not multiples of the 64 x 64 x 16 tile.
    a = operands(1, (1, 77), 45, 40, STORED[stored])
    del a["r"]
    got = run_op(gpu_run, "matmul", "linear(gpu, x, w, out, bias=b)", a)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"]), PATH[stored])


@pytest.mark.parametrize("activation", ["gelu", "silu", "quick_gelu"])
def test_linear_fused_activation_then_residual(native_run, activation):
    a = operands(2, (2, 77), 45, 40, np.float16)
    got = run_op(native_run, "matmul", f"linear(gpu, x, w, out, bias=b, residual=r, activation={activation!r})", a)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"], a["r"], activation), "f16w")


def test_linear_accumulates_in_place_when_residual_is_out(gpu_run):
    a = operands(3, (5, 7), 9, 33)
    del a["b"], a["r"]
    a["out"] = rng(4).standard_normal((5, 7, 9)).astype(np.float32)  # out's prior contents are the residual
    got = run_op(gpu_run, "matmul", "linear(gpu, x, w, out, residual=out, activation='silu')", a, poison=False)
    assert_close(got, ref.linear(a["x"], a["w"], residual=a["out"], activation="silu"), "f32")


@pytest.mark.parametrize("stored", ["f32", "f16"])
def test_linear_at_reduced_sd_shapes(native_run, stored):
    # UNet feed-forward at 2 images of 8x8 latents with 320 channels (K=320 -> N=640), bias and GELU.
    a = operands(5, (2, 64), 640, 320, STORED[stored])
    del a["r"]
    got = run_op(native_run, "matmul", "linear(gpu, x, w, out, bias=b, activation='gelu')", a)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"], activation="gelu"), PATH[stored])


def test_split_k_choice():
    from doppler.ops.matmul import DEFAULT_TILES, SPLIT_K_INVOCATIONS, TENSOR_CORE_TILES, k_split

    enough = SPLIT_K_INVOCATIONS // DEFAULT_TILES.invocations
    assert k_split(DEFAULT_TILES, enough, 11520, "f32") == 11520  # enough tiles: whole K
    assert k_split(DEFAULT_TILES, 40, 11520, "f16") == 11520  # f16 math keeps the fused epilogue
    split = k_split(DEFAULT_TILES, 40, 11520, "f32")  # SD 1.5's 8x8 level: 40 tiles
    assert split % DEFAULT_TILES.tile_k == 0 and -(-11520 // split) == 13
    assert k_split(DEFAULT_TILES, 1, 100, "f32") == 100  # under 2 x MIN_SPLIT_STEPS steps: no split
    # Tensor-core tiles hold twice the invocations: the 16x16 level's 20 tiles of 128 x 256 split 13 ways, not 26.
    split = k_split(TENSOR_CORE_TILES, 20, 11520, "f32")
    assert split % TENSOR_CORE_TILES.tile_k == 0 and -(-11520 // split) == 13


def test_split_k_fills_whole_waves():
    from doppler.ops.matmul import SPLIT_PARTIALS_BYTES, WIDE_TILES, k_split

    def splits(tiles, k, outputs):
        return -(-k // k_split(WIDE_TILES, tiles, k, "f32", 396, outputs))

    # SD 1.5's 16x16 level, 2560 -> 1280 channels (CFG batch 2): 80 tiles of 64 x 128 over K = 23040. 7 splits (the
    # default) make 560 workgroups, two waves of 396 with the second 41% full; 9 make 720 (two waves, 91%) and each
    # takes 160 of the 1440 K steps, against 206.
    assert splits(80, 23040, 512 * 1280) == 9
    assert -(-23040 // k_split(WIDE_TILES, 80, 23040, "f32")) == 7  # wave unknown: about SPLIT_K_INVOCATIONS
    # The 8x8 level's 20 tiles over K = 11520: 19 splits are 380 workgroups, one wave (26 would take two)
    assert splits(20, 11520, 128 * 1280) == 19
    # The partial sums stay within SPLIT_PARTIALS_BYTES: 32x32 outputs of 1280 channels (320 tiles) split 6 ways
    # (1920 workgroups, 5 waves of 120 steps against 720 unsplit), not 16 (13 waves of 45 steps, 168 MB of sums)
    assert splits(320, 11520, 2048 * 1280) == 6
    assert splits(320, 11520, 2048 * 1280) * 2048 * 1280 * 4 <= SPLIT_PARTIALS_BYTES


def test_small_gemms_take_the_small_tiles(native_run):
    # 154 rows (the text encoder's 2 x 77 tokens), or 2 x 154 in a batch: 64 x 64 tiles even where the width would
    # take the wide ones.
    got = native_run("from doppler.ops import matmul\n"
                     "[matmul.default_tiles(gpu, 768, 'f32', rows=m, batch=b) "
                     "for m, b in ((None, 1), (321, 1), (161, 2), (320, 1), (154, 2), (77, 1))]")
    from doppler.ops.matmul import DEFAULT_TILES, WIDE_TILES
    assert got == [WIDE_TILES, WIDE_TILES, WIDE_TILES, DEFAULT_TILES, DEFAULT_TILES, DEFAULT_TILES]


def test_tensor_core_split_k_fills_whole_waves():
    from doppler.ops.matmul import TENSOR_CORE_TILES, k_split

    def splits(tiles, k, outputs, split_wave=132):
        return -(-k // k_split(TENSOR_CORE_TILES, tiles, k, "f32", 264, outputs, split_wave))

    # 80 tiles of 128 x 256 over K = 23040: about SPLIT_K_INVOCATIONS would take 4 splits, 320 workgroups, two waves
    # of the 264 an H100 runs; 3 make 240, one wave. Split dispatches run 132 at once there: 8 splits, 5 waves of
    # 180 steps, against 2 waves of 480.
    assert -(-23040 // k_split(TENSOR_CORE_TILES, 80, 23040, "f32")) == 4
    assert splits(80, 23040, 1024 * 1280, split_wave=0) == 3
    assert splits(80, 23040, 1024 * 1280) == 8
    # The 64x64 level's 320 -> 320 linears (128 tiles, 20 steps): whole, one wave; 2 splits would take two waves of
    # 132 and a reduce (an H100 ran them in 48 and 83 us). K = 5120 over the 16x16 level's 20 tiles: 6 splits, 120
    # workgroups, one wave.
    assert splits(128, 320, 8192 * 320) == 1
    assert splits(20, 5120, 512 * 1280) == 6
    # With a bias (or activation, or residual) the unsplit GEMM reads its output back to finish it, which the split
    # GEMM's reduce does anyway: the 16x16 level's 1280 -> 10240 feed-forward (160 tiles, 80 steps) splits 3 ways, and
    # the 64x64 level's 320 -> 320 linears 2
    assert k_split(TENSOR_CORE_TILES, 160, 1280, "f32", 264, 512 * 10240, 132) == 1280
    assert -(-1280 // k_split(TENSOR_CORE_TILES, 160, 1280, "f32", 264, 512 * 10240, 132, epilogue_pass=True)) == 3
    assert -(-320 // k_split(TENSOR_CORE_TILES, 128, 320, "f32", 264, 8192 * 320, 132, epilogue_pass=True)) == 2


def test_split_k_accumulates_in_place_four_columns_at_a_time(gpu_run):
    # N = 72 (a multiple of 4): the splits' sums are added up four columns at a time, here onto out's prior contents.
    a = operands(22, (2, 30), 72, 1001)
    del a["r"]
    a["out"] = rng(23).standard_normal((2, 30, 72)).astype(np.float32)
    got = run_op(gpu_run, "matmul", "linear(gpu, x, w, out, bias=b, residual=out, activation='gelu')", a,
                 poison=False)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"], residual=a["out"], activation="gelu"), "f32")


@pytest.mark.parametrize("stored", ["f32", "f16"])
def test_split_k_with_bias_activation_and_residual(gpu_run, stored):
    # 2 x 30 rows, N = 70: 2 tiles, so K = 1001 (ragged: K % 4 != 0 loads element-wise) runs in 8 splits of 128.
    a = operands(21, (2, 30), 70, 1001, STORED[stored])
    got = run_op(gpu_run, "matmul", "linear(gpu, x, w, out, bias=b, residual=r, activation='gelu')", a)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"], a["r"], "gelu"), PATH[stored])


def test_split_k_accumulates_in_place(native_run):
    a = operands(22, (3, 9), 20, 640)
    del a["b"], a["r"]
    a["out"] = rng(23).standard_normal((3, 9, 20)).astype(np.float32)
    got = run_op(native_run, "matmul", "linear(gpu, x, w, out, residual=out)", a, poison=False)
    assert_close(got, ref.linear(a["x"], a["w"], residual=a["out"]), "f32")


@pytest.mark.parametrize("tiles", ["GemmTiles(128, 64, 16, 8, 4)", "GemmTiles(128, 128, 32, 8, 8)",
                                   "GemmTiles(32, 64, 8, 4, 8)", "GemmTiles(64, 64, 32, 4, 4)"])
def test_linear_with_other_tiles(native_run, tiles):
    a = operands(6, (1, 150), 140, 72, np.float16)
    got = run_op(native_run, "matmul", f"linear(gpu, x, w, out, bias=b, residual=r, tiles=matmul.{tiles})", a)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"], a["r"]), "f16w")


def test_batched_matmul(gpu_run):
    r = rng(7)
    a = {"a": r.standard_normal((3, 33, 20)).astype(np.float32),
         "b": r.standard_normal((3, 17, 20)).astype(np.float32),
         "out": np.zeros((3, 33, 17), np.float32)}
    got = run_op(gpu_run, "matmul", "batched_matmul(gpu, a, b, out)", a)
    assert_close(got, ref.batched_matmul(a["a"], a["b"]), "f32")


@pytest.mark.parametrize("m,n,k", [(77, 45, 40), (64, 40, 1024)], ids=["ragged", "split-k"])
def test_batched_linear_of_one_x(gpu_run, m, n, k):
    # The query, key and value projections of one x: W (3, N, K) f16 side by side, x (M, K) shared, out (3, M, N);
    # K = 1024 over 3 small tiles splits K.
    r = rng(12)
    a = {"x": r.standard_normal((m, k)).astype(np.float32),
         "w": (r.standard_normal((3, n, k)) / np.sqrt(k)).astype(np.float16),
         "out": np.zeros((3, m, n), np.float32)}
    got = run_op(gpu_run, "matmul", "batched_linear(gpu, x, w, out)", a)
    assert_close(got, ref.batched_matmul(np.broadcast_to(a["x"], (3, m, k)), a["w"]), "f16w")


@pytest.mark.parametrize("splits", [1, 3])
def test_linear_splits_as_asked(native_gpu, native_run, splits):
    # K = 1024 over one 64 x 64 tile, which the ops would split 8 ways: whole (one dispatch), or in 3 splits of 22,
    # 22 and 20 steps (the GEMM, then gemm_reduce)
    a = operands(13, (50,), 60, 1024, np.float16)
    before = dict(native_gpu.stats.dispatches)
    got = run_op(native_run, "matmul", f"linear(gpu, x, w, out, bias=b, residual=r, splits={splits})", a)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"], a["r"]), "f16w")
    ran = sorted(k.split(":")[0] for k, n in native_gpu.stats.dispatches.items() if n > before.get(k, 0))
    assert ran == (["matmul.wgsl"] if splits == 1 else ["gemm_reduce.wgsl", "matmul.wgsl"])


@pytest.mark.parametrize("splits", [1, 3])
def test_f32_bias_beside_f16_weights(native_run, splits):
    # A bias made at run time (UNet.time_table: a time projection plus a conv's bias) beside stored f16 weights:
    # read as f32 words by the GEMM's epilogue (F16_BIAS false) or by gemm_reduce.
    a = operands(14, (50,), 60, 1024, np.float16)
    a["b"] = rng(15).standard_normal(60).astype(np.float32)
    got = run_op(native_run, "matmul", f"linear(gpu, x, w, out, bias=b, residual=r, splits={splits})", a)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"], a["r"]), "f16w")


def test_row_tiles_wrap_past_65535_workgroups(native_run):
    # 65537 batches of one row: as many row tiles, wrapped into z.
    r = rng(8)
    a = {"a": r.standard_normal((65537, 1, 4)).astype(np.float32),
         "b": r.standard_normal((65537, 3, 4)).astype(np.float32),
         "out": np.zeros((65537, 1, 3), np.float32)}
    got = run_op(native_run, "matmul", "batched_matmul(gpu, a, b, out, tiles=matmul.GemmTiles(16, 16, 4, 4, 4))", a)
    assert_close(got, ref.batched_matmul(a["a"], a["b"]), "f32")


def test_f16_math_linear(native_f16_run):
    a = operands(9, (2, 77), 45, 40, np.float16, np.float16)
    got = run_op(native_f16_run, "matmul", "linear(gpu, x, w, out, bias=b, residual=r, activation='gelu')", a)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"], a["r"], "gelu"), "f16")


def test_f16_math_at_reduced_sd_shape_and_batched(native_f16_run):
    a = operands(10, (2, 64), 640, 320, np.float16, np.float16)
    got = run_op(native_f16_run, "matmul", "linear(gpu, x, w, out, bias=b, activation='quick_gelu')", a)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"], activation="quick_gelu"), "f16")
    r = rng(11)
    b = {"a": r.standard_normal((2, 21, 36)).astype(np.float16),
         "b": r.standard_normal((2, 19, 36)).astype(np.float16),
         "out": np.zeros((2, 21, 19), np.float16)}
    got = run_op(native_f16_run, "matmul", "batched_matmul(gpu, a, b, out)", b)
    assert_close(got, ref.batched_matmul(b["a"], b["b"]), "f16")


BAD_CALLS = {
    "linear(gpu, x, w_t, out)": "x (1, 4, 8) and out (1, 4, 6) do not fit weight",
    "linear(gpu, x, w, out, bias=x)": "bias (1, 4, 8) must be (6,)",
    "linear(gpu, x, w, out, bias=b16)": "weights and bias must be one of f32, f16, both the same (or the bias f32)",
    "linear(gpu, x, w, out, activation='relu')": "unknown activation 'relu'",
    "linear(gpu, x, w, out, residual=w)": "residual (6, 8) must have out's shape",
    "linear(gpu, x16, w, out)": "out is f32 but x is f16",
    "linear(gpu, x, w8, x)": "x x shares its buffer with out",
}
TENSORS = {"x": ((1, 4, 8), "f32"), "x16": ((1, 4, 8), "f16"), "w": ((6, 8), "f32"), "w_t": ((8, 6), "f32"),
           "w8": ((8, 8), "f32"), "w16": ((6, 8), "f16"), "b": ((6,), "f32"), "b16": ((6,), "f16"),
           "out": ((1, 4, 6), "f32")}


@pytest.mark.parametrize("call,message", BAD_CALLS.items(), ids=list(BAD_CALLS))
def test_bad_calls_name_the_problem(native_run, call, message):
    got = error_of(native_run, "matmul", call, TENSORS)
    assert got is not None and message in got, got


def test_tiles_are_checked():
    from doppler.errors import GpuError
    from doppler.ops.matmul import GemmTiles

    with pytest.raises(GpuError, match="thread_m and thread_n must be one of"):
        GemmTiles(thread_m=2)
    with pytest.raises(GpuError, match="staging loads a tile.s 128 rows of tile_k in quads of 4"):
        GemmTiles(128, 128, 1, 8, 8)


def test_reference_activations_match_torch():
    torch = pytest.importorskip("torch")
    from transformers.activations import QuickGELUActivation

    v = np.linspace(-8, 8, 101)
    t = torch.tensor(v, dtype=torch.float64)
    assert np.allclose(ref.ACTIVATIONS["gelu"](v), torch.nn.functional.gelu(t).numpy(), atol=1e-12)
    assert np.allclose(ref.ACTIVATIONS["silu"](v), torch.nn.functional.silu(t).numpy(), atol=1e-12)
    assert np.allclose(ref.ACTIVATIONS["quick_gelu"](v), QuickGELUActivation()(t).numpy(), atol=1e-12)


TENSOR_CORES = "matmul.GemmTiles(64, 128, 16, 8, 8, tensor_cores=True)"
DEFAULT_TENSOR_CORES = "matmul.TENSOR_CORE_TILES"  # what larger GEMMs take by default (small ones: scalar tiles)


@pytest.mark.parametrize("tiles", [TENSOR_CORES, "matmul.GemmTiles(128, 128, 32, 8, 8, tensor_cores=True)",
                                   "matmul.GemmTiles(64, 64, 16, 8, 4, tensor_cores=True)"])
@pytest.mark.parametrize("stored", ["f32", "f16"])
def test_tensor_cores_ragged_with_bias_activation_and_residual(tensor_core_run, stored, tiles):
    # 2 x 77 tokens, N = 200 and K = 72: neither fills a 64 x 128 x 16 tile; x rounded to f16 on staging.
    a = operands(31, (2, 77), 200, 72, STORED[stored])
    got = run_op(tensor_core_run, "matmul", f"linear(gpu, x, w, out, bias=b, residual=r, activation='gelu', "
                 f"tiles={tiles})", a)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"], a["r"], "gelu"), "f16")


@pytest.mark.parametrize("splits", [1, 3])
def test_tensor_cores_take_f16_x(tensor_core_run, splits):
    # x as its producer wrote it in f16 (matmul_subgroup_matrix_f16_input.wgsl), out f32: ragged 64 x 128 tiles with
    # the epilogue fused, then K = 1001 (element-wise loads) in 3 splits.
    a = operands(39, (2, 77), 200, 72 if splits == 1 else 1001, np.float16)
    a["x"] = a["x"].astype(np.float16)
    got = run_op(tensor_core_run, "matmul", f"linear(gpu, x, w, out, bias=b, residual=r, activation='gelu', "
                 f"tiles={TENSOR_CORES}, splits={splits})", a)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"], a["r"], "gelu"), "f16")


@pytest.mark.parametrize("activation", ["none", "gelu"])
def test_tensor_cores_store_whole_matrices_then_finish_the_tile(tensor_core_run, activation):
    # 2 x 80 rows and N = 320: edges cut the 128 x 256 tiles but no 16 x 16 matrix, so the sums go straight to out
    # and the tile is read back for the bias, the activation and the residual.
    a = operands(35, (2, 80), 320, 72, np.float16)
    got = run_op(tensor_core_run, "matmul", f"linear(gpu, x, w, out, bias=b, residual=r, activation={activation!r}, "
                 f"tiles={DEFAULT_TENSOR_CORES})", a)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"], a["r"], activation), "f16")


def test_tensor_cores_in_place_residual(tensor_core_run):
    # Raw sums would overwrite out before the epilogue reads it: this GEMM takes the partial sums' path.
    a = operands(36, (2, 64), 128, 96, np.float16)
    del a["r"]
    a["out"] = rng(37).standard_normal((2, 64, 128)).astype(np.float32)
    got = run_op(tensor_core_run, "matmul", f"linear(gpu, x, w, out, bias=b, residual=out, activation='silu', "
                 f"tiles={DEFAULT_TENSOR_CORES})", a, poison=False)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"], residual=a["out"], activation="silu"), "f16")


def test_tensor_cores_split_k_and_odd_k(tensor_core_run):
    # 60 rows, N = 130: 2 tiles, so K = 1001 (K % 4 != 0: element-wise loads) runs split.
    a = operands(32, (60,), 130, 1001, np.float16)
    got = run_op(tensor_core_run, "matmul", f"linear(gpu, x, w, out, bias=b, residual=r, tiles={TENSOR_CORES})", a)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"], a["r"]), "f16")


def test_tensor_cores_split_k_whole_matrices(tensor_core_run):
    # 64 x 144 outputs in one default tile, K = 2048: split, each split's raw sums stored straight into its slice.
    a = operands(38, (64,), 144, 2048, np.float16)
    got = run_op(tensor_core_run, "matmul", f"linear(gpu, x, w, out, bias=b, residual=r, tiles={DEFAULT_TENSOR_CORES})",
                 a)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"], a["r"]), "f16")


@pytest.mark.parametrize("splits", [1, 3])
def test_tensor_cores_32_wide_blocks(tensor_core_run, splits):
    # Subgroups of 32 x 32 outputs (thread_n 4) in 128 x 128 tiles: 2 x 80 rows and N = 176 cut tiles but no 16 x 16
    # matrix, so whole matrices go straight to out (or to a split's slice) before the bias and residual.
    a = operands(39, (2, 80), 176, 200, np.float16)
    got = run_op(tensor_core_run, "matmul", f"linear(gpu, x, w, out, bias=b, residual=r, activation='silu', "
                 f"tiles=matmul.GemmTiles(128, 128, 16, 8, 4, tensor_cores=True), splits={splits})", a)
    assert_close(got, ref.linear(a["x"], a["w"], a["b"], a["r"], "silu"), "f16")


def test_tensor_cores_by_default_and_batched(tensor_core_run):
    # The default tiles on this device are the tensor cores' (but for GEMMs of few rows); batched_matmul (attention
    # by GEMMs) and batched_linear take them too.
    r = rng(33)
    arrays = {"a": r.standard_normal((3, 170, 40)).astype(np.float32),
              "b": r.standard_normal((3, 150, 40)).astype(np.float32), "out": np.zeros((3, 170, 150), np.float32)}
    got = run_op(tensor_core_run, "matmul", "batched_matmul(gpu, a, b, out)", arrays)
    assert_close(got, ref.batched_matmul(arrays["a"], arrays["b"]), "f16")
    # Projections of one x (x shared across the batch), unsplit and with K split.
    for m, n, k in ((77, 45, 40), (64, 40, 1024)):
        arrays = {"x": r.standard_normal((m, k)).astype(np.float32),
                  "w": (r.standard_normal((3, n, k)) / np.sqrt(k)).astype(np.float16),
                  "out": np.zeros((3, m, n), np.float32)}
        got = run_op(tensor_core_run, "matmul", f"batched_linear(gpu, x, w, out, tiles={DEFAULT_TENSOR_CORES})", arrays)
        assert_close(got, ref.batched_matmul(np.broadcast_to(arrays["x"], (3, m, k)), arrays["w"]), "f16")
    assert tensor_core_run("from doppler.ops import matmul\n"
                           "[matmul.default_tiles(gpu, 320, 'f32', rows=m).tensor_cores for m in (321, 320)] + "
                           "[matmul.gemm_input_dtype(gpu, m) for m in (321, 320)]") == [True, False, "f16", "f32"]


def test_tensor_core_tiles_are_refused_where_the_device_has_none(native_gpu, native_run):
    if "chromium-experimental-subgroup-matrix" in native_gpu.caps.features:
        pytest.skip("this native device has subgroup matrices")
    a = operands(34, (4,), 8, 8)
    message = error_of(native_run, "matmul", f"linear(gpu, x, w, out, tiles={TENSOR_CORES})",
                       {name: (v.shape, "f32") for name, v in a.items()})
    assert "needs the device feature 'chromium-experimental-subgroup-matrix'" in message


@pytest.mark.parametrize("tiles, message", [
    ((48, 64, 16, 8, 8), "whole blocks of 32 x 8 thread_n outputs"),
    ((64, 96, 16, 8, 8), "whole blocks of 32 x 8 thread_n outputs"),
    ((64, 128, 8, 8, 8), "and of 16 k"),
    ((64, 128, 16, 4, 8), "take thread_m = 8 and thread_n one of"),
])
def test_tensor_core_tiles_are_checked(tiles, message):
    from doppler.errors import GpuError
    from doppler.ops.matmul import GemmTiles

    with pytest.raises(GpuError, match=message):
        GemmTiles(*tiles, tensor_cores=True)


@pytest.mark.parametrize("n, rows, batch, kind, chosen", [
    (2560, 8192, 1, "linear", "TENSOR_CORE_NARROW_TILES"),  # ff.net.0.proj at 64x64: 2560 narrow tiles
    (1280, 128, 16, "winograd", "TENSOR_CORE_NARROW_TILES"),  # Winograd's 16 GEMMs at 16x16: 320 narrow tiles
    (320, 8192, 1, "linear", "TENSOR_CORE_NARROW_TILES"),  # the 64x64 level's linears: 320
    (320, 2048, 16, "winograd", "TENSOR_CORE_NARROW_TILES"),  # and Winograd's GEMMs there
    (256, 16384, 16, "winograd", "TENSOR_CORE_NARROW_TILES"),  # and at the VAE's 256x256 x 256
    (128, 65536, 16, "winograd", "TENSOR_CORE_TILES"),  # the VAE's 512x512 x 128, F(2x2): 128 x 128
    (128, 262144, 1, "linear", "TENSOR_CORE_TILES"),  # the VAE's 1x1 256 -> 128 at 512x512
    (1280, 512, 1, "linear", "TENSOR_CORE_TILES"),  # 80 narrow tiles would split K
    (640, 2048, 1, "linear", "TENSOR_CORE_TILES"),  # and 160
    (320, 8192, 1, "conv", "TENSOR_CORE_TILES"),  # convs never take the narrow tiles
    (768, 154, 1, "linear", "DEFAULT_TILES"),  # few rows: scalar tiles
    (320, 154, 2, "linear", "DEFAULT_TILES"),  # the cross-attention's keys and values: 2 x 154 rows
    (320, 128, 3, "linear", "TENSOR_CORE_TILES"),  # 384 rows
])
def test_tensor_core_tiles_by_kind_width_and_count(n, rows, batch, kind, chosen):
    from doppler.gpu.backend_dry import DryBackend
    from dry_gpu import PATHS

    from doppler.gpu.context import Gpu
    from doppler.ops import matmul

    of_kind = {"conv": kind == "conv", "rows": rows, "batch": batch}
    gpu = Gpu(DryBackend(PATHS["tensor-cores"]), ROOT / "wgsl")
    assert matmul.default_tiles(gpu, n, "f32", **of_kind) == getattr(matmul, chosen)
    scalar = Gpu(DryBackend(PATHS["default"]), ROOT / "wgsl")  # the same adapter without f16: no tensor cores
    assert not matmul.default_tiles(scalar, n, "f32", **of_kind).tensor_cores


@pytest.mark.parametrize("n, k, chosen", [
    (10240, 1280, "TENSOR_CORE_TILES"),  # the 8x8 level's ff.net.0 (GEGLU), 128 rows
    (1280, 5120, "TENSOR_CORE_TILES"),  # its ff.net.2
    (1280, 2560, "TENSOR_CORE_TILES"),  # up_blocks.0's 1x1 shortcuts
    (1280, 1280, "DEFAULT_TILES"),  # its attention's projections: a tie, scalar
    (3072, 768, "DEFAULT_TILES"),  # the text encoder's largest, 154 rows
])
def test_small_gemms_of_large_weights_take_tensor_cores(n, k, chosen):
    from doppler.gpu.backend_dry import DryBackend
    from dry_gpu import PATHS

    from doppler.gpu.context import Gpu
    from doppler.ops import matmul

    gpu = Gpu(DryBackend(PATHS["tensor-cores"]), ROOT / "wgsl")
    assert matmul.default_tiles(gpu, n, "f32", rows=128, k=k) == getattr(matmul, chosen)
    scalar = Gpu(DryBackend(PATHS["default"]), ROOT / "wgsl")
    assert matmul.default_tiles(scalar, n, "f32", rows=128, k=k) == matmul.DEFAULT_TILES


def test_split_k_tiles_pad_where_workgroup_memory_allows():
    from types import SimpleNamespace

    from doppler.ops.matmul import DEFAULT_TILES, SPLIT_K_PAD, TENSOR_CORE_TILES, split_k_tiles

    def gpu(limit):
        return SimpleNamespace(caps=SimpleNamespace(limits={"maxComputeWorkgroupStorageSize": limit}))

    assert split_k_tiles(gpu(48 << 10), TENSOR_CORE_TILES).pad == SPLIT_K_PAD  # 21 KiB fit
    assert split_k_tiles(gpu(16 << 10), TENSOR_CORE_TILES) == TENSOR_CORE_TILES  # 13 KiB do, 21 would not
    assert split_k_tiles(gpu(48 << 10), DEFAULT_TILES) == DEFAULT_TILES  # scalar tiles stage no padding


def test_tensor_core_pad_keeps_rows_whole():
    from doppler.errors import GpuError
    from doppler.ops.matmul import GemmTiles

    assert GemmTiles(128, 256, 16, 8, 8, True, 24).workgroup_bytes(2) == 40 * 384 * 2 + 1024
    with pytest.raises(GpuError, match="pad is a multiple of 8 halves"):
        GemmTiles(128, 256, 16, 8, 8, True, 4)
