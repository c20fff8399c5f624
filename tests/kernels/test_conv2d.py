"""NHWC convolutions (wgsl/conv2d.wgsl, wgsl/conv2d_f16.wgsl, wgsl/conv2d_subgroup_matrix.wgsl,
wgsl/conv2d_narrow.wgsl, wgsl/conv2d_depthwise.wgsl) and the weights' layout
change (wgsl/conv2d_weight_layout.wgsl) against float64 numpy. Operands hold W in PyTorch's [Cout, Cin, KH, KW], as
the references take it; conv2d gets it channels last."""

import numpy as np
import pytest

from kernel_case import error_of, run_op
from reference import assert_close, rng
from reference import conv2d as ref

STORED = {"f32": np.float32, "f16": np.float16}
PATH = {"f32": "f32", "f16": "f16w"}  # weight storage -> tolerance path (f32 math)


def operands(seed, x_shape, cout, kernel, out_hw, weight_dtype=np.float32, act_dtype=np.float32, depthwise=False):
    """x ~ N(0, 1) NHWC, W [Cout, Cin, k, k] (or [C, 1, k, k]) scaled so outputs are ~ N(0, 1), b, r and out."""
    r = rng(seed)
    b, _, _, cin = x_shape
    w_shape = (cin, 1, kernel, kernel) if depthwise else (cout, cin, kernel, kernel)
    out_shape = (b, *out_hw, cout)
    return {
        "x": r.standard_normal(x_shape).astype(act_dtype),
        "w": (r.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(weight_dtype),
        "b": r.standard_normal(cout).astype(weight_dtype),
        "r": r.standard_normal(out_shape).astype(act_dtype),
        "out": np.zeros(out_shape, act_dtype),
    }


def channels_last(a):
    """The operands with w as conv2d reads it: [Cout, KH, KW, Cin]."""
    return {**a, "w": np.ascontiguousarray(a["w"].transpose(0, 2, 3, 1))}


def conv(runner, a, call_args, path, call="conv2d", reference=ref.conv2d, **ref_kwargs):
    """Run `call` on x, w, out and `call_args`; compare with `reference` on x, w and `ref_kwargs`."""
    got = run_op(runner, "conv2d", f"{call}(gpu, x, w, out{call_args})", channels_last(a) if call == "conv2d" else a)
    assert_close(got, reference(a["x"], a["w"], **ref_kwargs), path)


@pytest.mark.parametrize("stored", ["f32", "f16"])
def test_3x3_ragged_shapes_with_bias(gpu_run, stored):
    # 7x9 image, Cin=5, Cout=12: neither pixels, channels nor K = 45 fill a tile.
    a = operands(1, (1, 7, 9, 5), 12, 3, (7, 9), STORED[stored])
    conv(gpu_run, a, ", bias=b, padding=1", PATH[stored], bias=a["b"], padding=1)


@pytest.mark.parametrize("x_shape,cout", [((1, 7, 9, 5), 12), ((2, 4, 4, 96), 72)], ids=["whole-k", "split-k"])
def test_f32_bias_beside_f16_weights(native_run, x_shape, cout):
    # A bias made at run time (a resnet's conv1 takes its time projection plus its own bias so: UNet.time_table)
    # beside stored f16 weights, in the GEMM's epilogue or in gemm_reduce's.
    a = operands(23, x_shape, cout, 3, x_shape[1:3], np.float16)
    a["b"] = a["b"].astype(np.float32)
    conv(native_run, a, ", bias=b, residual=r, padding=1", "f16w", bias=a["b"], residual=a["r"], padding=1)


def test_upsample_2x_fused_with_residual(gpu_run):
    # Upsample2D: nearest 2x then conv3x3 padding 1, here with a residual.
    a = operands(2, (1, 4, 5, 8), 6, 3, (8, 10))
    conv(gpu_run, a, ", bias=b, residual=r, padding=1, upsample_to=(8, 10)",
         "f32", bias=a["b"], residual=a["r"], padding=1, upsample_to=(8, 10))


@pytest.mark.parametrize("stored", ["f32", "f16"])
def test_downsample_stride_2_at_reduced_sd_shape(native_run, stored):
    # Downsample2D: conv3x3 stride 2 padding 1, 2 x 8x8 x 32 -> 4x4 x 64.
    a = operands(3, (2, 8, 8, 32), 64, 3, (4, 4), STORED[stored])
    conv(native_run, a, ", bias=b, stride=2, padding=1", PATH[stored], bias=a["b"], stride=2, padding=1)


def test_stride_2_on_odd_sizes_without_bias(native_run):
    a = operands(4, (1, 9, 7, 6), 10, 3, (5, 4))
    conv(native_run, a, ", stride=2, padding=1", "f32", stride=2, padding=1)


@pytest.mark.parametrize("stored", ["f32", "f16"])
def test_1x1_with_bias_and_residual(native_run, stored):
    # The resnet shortcut: conv1x1 over 2 x 8x8 x 64 -> 32 plus the residual.
    a = operands(5, (2, 8, 8, 64), 32, 1, (8, 8), STORED[stored])
    conv(native_run, a, ", bias=b, residual=r", PATH[stored], bias=a["b"], residual=a["r"])


def test_resnet_conv_with_skip_at_reduced_sd_shape(native_run):
    # conv2 of a resnet block: 2 x 8x8 x 64 -> 64, 3x3 padding 1, f16 weights, + skip.
    a = operands(6, (2, 8, 8, 64), 64, 3, (8, 8), np.float16)
    conv(native_run, a, ", bias=b, residual=r, padding=1", "f16w", bias=a["b"], residual=a["r"], padding=1)


def test_upsample_to_an_odd_target_size(native_run):
    # Odd latents: the up block upsamples to the skip's size (9x11 from 5x6), not 2x.
    a = operands(7, (2, 5, 6, 12), 8, 3, (9, 11), np.float16)
    conv(native_run, a, ", bias=b, padding=1, upsample_to=(9, 11)",
         "f16w", bias=a["b"], padding=1, upsample_to=(9, 11))


def test_accumulates_in_place_when_residual_is_out(native_run):
    a = operands(8, (1, 6, 5, 7), 9, 3, (6, 5))
    del a["r"]
    a["out"] = rng(9).standard_normal(a["out"].shape).astype(np.float32)
    got = run_op(native_run, "conv2d", "conv2d(gpu, x, w, out, bias=b, residual=out, padding=1)", channels_last(a),
                 poison=False)
    assert_close(got, ref.conv2d(a["x"], a["w"], a["b"], a["out"], padding=1), "f32")


@pytest.mark.parametrize("stored", ["f32", "f16"])
def test_few_outputs_with_bias_and_residual(gpu_run, stored):
    # conv_out to RGB (wgsl/conv2d_narrow.wgsl): 2 x 7x9 x 8 -> 3, 3x3 padding 1.
    a = operands(21, (2, 7, 9, 8), 3, 3, (7, 9), STORED[stored])
    conv(gpu_run, a, ", bias=b, residual=r, padding=1", PATH[stored], bias=a["b"], residual=a["r"], padding=1)


def test_few_outputs_upsampled_strided_and_in_place(native_run):
    a = operands(22, (1, 4, 5, 12), 4, 3, (9, 11), np.float16)
    conv(native_run, a, ", bias=b, padding=1, upsample_to=(9, 11)", "f16w", bias=a["b"], padding=1,
         upsample_to=(9, 11))
    a = operands(23, (1, 9, 7, 16), 1, 3, (5, 4))
    conv(native_run, a, ", stride=2, padding=1", "f32", stride=2, padding=1)
    a = operands(24, (1, 6, 5, 4), 2, 3, (6, 5))
    a["out"] = rng(25).standard_normal(a["out"].shape).astype(np.float32)
    got = run_op(native_run, "conv2d", "conv2d(gpu, x, w, out, bias=b, residual=out, padding=1)", channels_last(a),
                 poison=False)
    assert_close(got, ref.conv2d(a["x"], a["w"], a["b"], a["out"], padding=1), "f32")


def test_few_outputs_take_the_narrow_kernel(native_run):
    # Up to 4 outputs over channels in quads, W within 16 KiB: direct; Cin 6 or 5 outputs: the implicit GEMM.
    ran = native_run("""
from doppler.ops import conv2d
kernels = []
for cin, cout in ((8, 3), (6, 3), (8, 5)):
    x = gpu.tensor((1, 4, 4, cin), "f32", "x"); w = gpu.tensor((cout, 3, 3, cin), "f16", "w")
    out = gpu.tensor((1, 4, 4, cout), "f32", "out")
    before = dict(gpu.stats.dispatches)
    await conv2d.conv2d(gpu, x, w, out, padding=1)
    await gpu.sync()
    kernels.append([k.split("{")[0] for k, n in gpu.stats.dispatches.items() if n > before.get(k, 0)])
    gpu.free(x, w, out)
kernels
""")
    assert ran == [["conv2d_narrow.wgsl:main"], ["conv2d.wgsl:main"], ["conv2d.wgsl:main"]]


@pytest.mark.parametrize("tiles", ["GemmTiles(128, 128, 32, 8, 8)", "GemmTiles(32, 64, 8, 4, 8)",
                                   "GemmTiles(64, 64, 32, 4, 4)"])
def test_other_tiles(native_run, tiles):
    a = operands(10, (2, 9, 10, 40), 70, 3, (9, 10), np.float16)
    conv(native_run, a, f", bias=b, residual=r, padding=1, tiles=conv2d.{tiles}",
         "f16w", bias=a["b"], residual=a["r"], padding=1)


@pytest.mark.parametrize("stored", ["f32", "f16"])
def test_split_k_at_the_bottom_of_the_unet(gpu_run, stored):
    # 2 x 4x4 pixels, Cin 96: one tile, K = 864 in 6 splits; bias and residual added after the splits' sum.
    a = operands(19, (2, 4, 4, 96), 72, 3, (4, 4), STORED[stored])
    conv(gpu_run, a, ", bias=b, residual=r, padding=1", PATH[stored], bias=a["b"], residual=a["r"], padding=1)


TENSOR_CORES = "conv2d.GemmTiles(64, 128, 16, 8, 8, tensor_cores=True)"


@pytest.mark.parametrize("tiles", [TENSOR_CORES, "conv2d.GemmTiles(64, 64, 16, 8, 4, tensor_cores=True)"])
def test_tensor_cores(tensor_core_run, tiles):
    # 2 x 9x10 pixels, Cin 40 -> Cout 70 (ragged tiles) with residual, in 32 x 64 or 32 x 32 subgroup blocks; then
    # Cin 5 (element-wise K) upsampled 2x.
    a = operands(40, (2, 9, 10, 40), 70, 3, (9, 10), np.float16)
    conv(tensor_core_run, a, f", bias=b, residual=r, padding=1, tiles={tiles}",
         "f16", bias=a["b"], residual=a["r"], padding=1)
    a = operands(41, (1, 4, 5, 5), 12, 3, (8, 10))
    conv(tensor_core_run, a, f", bias=b, padding=1, upsample_to=(8, 10), tiles={TENSOR_CORES}",
         "f16", bias=a["b"], padding=1, upsample_to=(8, 10))


def test_tensor_cores_take_f16_x(tensor_core_run):
    # x as its producer wrote it in f16 (conv2d_subgroup_matrix_f16_input.wgsl), out f32; Cin 5 loads element-wise.
    for seed, x_shape, cout in ((43, (2, 9, 10, 40), 70), (44, (1, 6, 5, 5), 12)):
        a = operands(seed, x_shape, cout, 3, x_shape[1:3], np.float16)
        a["x"] = a["x"].astype(np.float16)
        conv(tensor_core_run, a, f", bias=b, residual=r, padding=1, tiles={TENSOR_CORES}", "f16", bias=a["b"],
             residual=a["r"], padding=1)


def test_tensor_cores_default_tiles_whole_matrices(tensor_core_run):
    # 2 x 16x20 pixels (640 rows, two 256-row tiles) -> Cout 96: edges cut no 16 x 16 matrix, so the sums go straight
    # to out and the tile is read back for the bias and the residual.
    a = operands(42, (2, 16, 20, 8), 96, 3, (16, 20), np.float16)  # K = 72: too short to split
    conv(tensor_core_run, a, ", bias=b, residual=r, padding=1", "f16", bias=a["b"], residual=a["r"], padding=1)


def test_row_tiles_wrap_past_65535_workgroups(native_run):
    # 1025 x 1024 pixels in tiles of 16: 65600 row tiles, wrapped into z.
    a = operands(11, (1, 1025, 1024, 1), 2, 1, (1025, 1024))
    conv(native_run, a, ", bias=b, tiles=conv2d.GemmTiles(16, 16, 4, 4, 4)", "f32", bias=a["b"])


def test_f16_math(native_f16_run):
    a = operands(12, (1, 7, 9, 5), 12, 3, (7, 9), np.float16, np.float16)
    conv(native_f16_run, a, ", bias=b, residual=r, padding=1", "f16", bias=a["b"], residual=a["r"], padding=1)
    a = operands(13, (2, 4, 5, 32), 24, 3, (8, 10), np.float16, np.float16)
    conv(native_f16_run, a, ", bias=b, padding=1, upsample_to=(8, 10)",
         "f16", bias=a["b"], padding=1, upsample_to=(8, 10))
    a = operands(14, (2, 8, 8, 32), 64, 3, (4, 4), np.float16, np.float16)
    conv(native_f16_run, a, ", stride=2, padding=1", "f16", stride=2, padding=1)


@pytest.mark.parametrize("stored,shape", [("f32", (12, 5, 3, 3)), ("f16", (12, 5, 3, 3)), ("f16", (3, 7, 3, 1))])
def test_channels_last_weight_moves_every_element(gpu_run, stored, shape):
    # f16 packs two per word; (3, 7, 3, 1) has an odd count, so the last word holds one half.
    r = rng(18)
    w = r.standard_normal(shape).astype(STORED[stored])
    cout, cin, kh, kw = shape
    got = run_op(gpu_run, "conv2d", "channels_last_weight(gpu, w, out)",
                 {"w": w, "out": np.zeros((cout, kh, kw, cin), w.dtype)})
    np.testing.assert_array_equal(got, w.transpose(0, 2, 3, 1).astype(np.float64))


def test_depthwise_with_bias(gpu_run):
    a = operands(15, (2, 7, 9, 6), 6, 3, (7, 9), depthwise=True)
    conv(gpu_run, a, ", bias=b, padding=1", "f32",
         "depthwise_conv2d", ref.depthwise_conv2d, bias=a["b"], padding=1)


def test_depthwise_stride_2_f16_weights_residual(native_run):
    a = operands(16, (2, 9, 8, 10), 10, 3, (5, 4), np.float16, depthwise=True)
    conv(native_run, a, ", bias=b, residual=r, stride=2, padding=1",
         "f16w", "depthwise_conv2d", ref.depthwise_conv2d, bias=a["b"], residual=a["r"], stride=2, padding=1)


BAD_CALLS = {
    "conv2d(gpu, x, w, out)": "out (1, 6, 6, 4) must be (1, 4, 4, 4)",
    "conv2d(gpu, x, w_t, out, padding=1)": "weight (4, 3, 3, 5) must be [Cout, KH, KW, 3]",
    "channels_last_weight(gpu, w, w)": "src w shares its buffer with out",
    "channels_last_weight(gpu, w, w_t)": "dst (4, 3, 3, 5) f32 must be (4, 3, 3, 3) f32",
    "conv2d(gpu, x, w, x, padding=1)": "out (1, 6, 6, 3) must be (1, 6, 6, 4)",
    "conv2d(gpu, x, w, out, padding=1, upsample_to=(12,))": "upsample_to (12,) must be (height, width)",
    "conv2d(gpu, x, w, out, stride=0)": "stride 0 must be >= 1",
    "conv2d(gpu, x16, w3, out16, padding=1)": "weights and bias must be one of f16",
    "conv2d(gpu, x, w3, x, padding=1)": "x x shares its buffer with out",
    "depthwise_conv2d(gpu, x, w, out, padding=1)": "weight (4, 3, 3, 3) must be [3, 1, KH, KW]",
    "depthwise_conv2d(gpu, x16, w16, out16, padding=1)": "depthwise convolution runs f32 math",
}
TENSORS = {"x": ((1, 6, 6, 3), "f32"), "x16": ((1, 6, 6, 3), "f16"), "w": ((4, 3, 3, 3), "f32"),
           "w_t": ((4, 3, 3, 5), "f32"), "w3": ((3, 3, 3, 3), "f32"), "w16": ((3, 1, 3, 3), "f16"),
           "out": ((1, 6, 6, 4), "f32"), "out16": ((1, 6, 6, 3), "f16")}


@pytest.mark.parametrize("call,message", BAD_CALLS.items(), ids=list(BAD_CALLS))
def test_bad_calls_name_the_problem(native_run, call, message):
    got = error_of(native_run, "conv2d", call, TENSORS)
    assert got is not None and message in got, got


@pytest.mark.parametrize("upsample_to", [None, (8, 10), (9, 11)])
@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 1), (1, 0)])
def test_reference_matches_torch(upsample_to, stride, padding):
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    a = operands(17, (2, 4, 5, 3), 6, 3, (1, 1), np.float64, np.float64)
    x = torch.tensor(a["x"], dtype=torch.float64).permute(0, 3, 1, 2)
    if upsample_to is not None:
        x = f.interpolate(x, size=upsample_to, mode="nearest")
    want = f.conv2d(x, torch.tensor(a["w"]), torch.tensor(a["b"]), stride, padding).permute(0, 2, 3, 1).numpy()
    got = ref.conv2d(a["x"], a["w"], a["b"], stride=stride, padding=padding, upsample_to=upsample_to)
    np.testing.assert_allclose(got, want, atol=1e-12)
    w = torch.tensor(a["w"][:3, :1])  # depthwise: [C, 1, KH, KW]
    want = f.conv2d(torch.tensor(a["x"]).permute(0, 3, 1, 2), w, None, stride, padding, groups=3)
    got = ref.depthwise_conv2d(a["x"], a["w"][:3, :1], stride=stride, padding=padding)
    np.testing.assert_allclose(got, want.permute(0, 2, 3, 1).numpy(), atol=1e-12)
