"""Winograd F(2x2, 3x3) and F(4x4, 3x3) convolutions (wgsl/winograd_input.wgsl, wgsl/winograd_output.wgsl and the
GEMMs between) with their weights transformed on the GPU (wgsl/winograd_weights.wgsl), against the float64 direct
convolution; the weight and input transforms alone against numpy."""

import numpy as np
import pytest

from kernel_case import error_of, run_op
from reference import F16_ULP, TOLERANCES, assert_close, rng
from reference import conv2d as ref
from reference import winograd as winograd_ref
from test_conv2d import PATH, STORED, operands


def channels_last(a):
    """The operands with w [Cout, 3, 3, Cin], as winograd_weight reads it (a["w"] is PyTorch's, as the references)."""
    return {**a, "w": np.ascontiguousarray(a["w"].transpose(0, 2, 3, 1))}


TILES = [2, 4]


def winograd(runner, a, call_args, path, tile, **ref_kwargs):
    """winograd_weight(w) into u for F(tile x tile, 3x3), then conv3x3_winograd on x, u, out and `call_args`; compare
    with the direct convolution (padding 1) on x, w and `ref_kwargs`."""
    cout, cin = a["w"].shape[:2]
    arrays = {**channels_last(a), "u": np.zeros(winograd_ref.weight_shape(cout, cin, tile), a["w"].dtype)}
    call = f"winograd_weight(gpu, w, u); await winograd.conv3x3_winograd(gpu, x, u, out{call_args})"
    got = run_op(runner, "winograd", call, arrays)
    assert_close(got, ref.conv2d(a["x"], a["w"], padding=1, **ref_kwargs), path)


@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("stored", ["f32", "f16"])
def test_ragged_shapes_with_bias(gpu_run, stored, tile):
    # 7x9 image, Cin 5, Cout 12: partial tiles at the bottom and right, channels not in quads.
    a = operands(1, (1, 7, 9, 5), 12, 3, (7, 9), STORED[stored])
    winograd(gpu_run, a, ", bias=b", PATH[stored], tile, bias=a["b"])


@pytest.mark.parametrize("tile", TILES)
def test_tensor_cores(tensor_core_run, tile):
    # The GEMMs on tensor cores (64 x 128 tiles over 2 x 5x5 or 3x3 tiles, Cout 70), with bias and residual.
    a = operands(20, (2, 9, 10, 40), 70, 3, (9, 10), np.float16)
    winograd(tensor_core_run, a, ", bias=b, residual=r, tiles=winograd.GemmTiles(64, 128, 16, 8, 8, tensor_cores=True)",
             "f16", tile, bias=a["b"], residual=a["r"])


@pytest.mark.parametrize("tile", TILES)
def test_f32_bias_beside_f16_weights(native_run, tile):
    # A bias made at run time (UNet.time_table) beside f16 weights: the output transform reads it as f32 words.
    a = operands(24, (2, 8, 8, 32), 24, 3, (8, 8), np.float16)
    a["b"] = a["b"].astype(np.float32)
    winograd(native_run, a, ", bias=b, residual=r", "f16w", tile, bias=a["b"], residual=a["r"])


@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("stored", ["f32", "f16"])
def test_batch_with_bias_and_residual(native_run, stored, tile):
    a = operands(2, (2, 8, 8, 32), 24, 3, (8, 8), STORED[stored])
    winograd(native_run, a, ", bias=b, residual=r", PATH[stored], tile, bias=a["b"], residual=a["r"])


@pytest.mark.parametrize("tile", TILES)
def test_upsample_2x_fused(native_run, tile):
    a = operands(3, (1, 4, 5, 8), 6, 3, (8, 10))
    winograd(native_run, a, ", bias=b, residual=r, upsample_to=(8, 10)", "f32", tile, bias=a["b"], residual=a["r"],
             upsample_to=(8, 10))


@pytest.mark.parametrize("tile", TILES)
def test_upsample_to_an_odd_target_size(native_run, tile):
    # Odd latents: the up block upsamples to the skip's size (9x11 from 5x6), not 2x.
    a = operands(4, (2, 5, 6, 12), 8, 3, (9, 11), np.float16)
    winograd(native_run, a, ", bias=b, upsample_to=(9, 11)", "f16w", tile, bias=a["b"], upsample_to=(9, 11))


@pytest.mark.parametrize("tile", TILES)
def test_accumulates_in_place_when_residual_is_out(native_run, tile):
    a = operands(5, (1, 6, 5, 7), 9, 3, (6, 5))
    a["out"] = rng(6).standard_normal(a["out"].shape).astype(np.float32)
    cout, cin = a["w"].shape[:2]
    arrays = {**channels_last(a), "u": np.zeros(winograd_ref.weight_shape(cout, cin, tile), np.float32)}
    got = run_op(native_run, "winograd", "winograd_weight(gpu, w, u); await winograd.conv3x3_winograd("
                 "gpu, x, u, out, bias=b, residual=out)", arrays, poison=False)
    assert_close(got, ref.conv2d(a["x"], a["w"], a["b"], a["out"], padding=1), "f32")


@pytest.mark.parametrize("tile,chunk", [(2, 20), (4, 5)])
@pytest.mark.parametrize("stored", ["f32", "f16"])
def test_chunks_of_tiles(native_run, stored, tile, chunk):
    # 2 x 13x11 pixels = 84 tiles of 2x2 (7 x 6 each), scratch for 20 tiles of 40 channels, rounded down to whole
    # GEMM row tiles of 16: 6 chunks, the last of 4 tiles; or 24 tiles of 4x4 (4 x 3 each), scratch for 5 (fewer
    # than a GEMM row tile: not rounded), 5 chunks, the last of 4.
    a = operands(7, (2, 13, 11, 40), 36, 3, (13, 11), STORED[stored])
    scratch = chunk * winograd_ref.side(tile) ** 2 * 40 * 4
    winograd(native_run, a, f", bias=b, residual=r, tiles=winograd.GemmTiles(16, 32, 8, 4, 4), "
             f"scratch_bytes={scratch}", PATH[stored], tile, bias=a["b"], residual=a["r"])


@pytest.mark.parametrize("tile", TILES)
def test_one_pixel_image(native_run, tile):
    a = operands(8, (1, 1, 1, 4), 4, 3, (1, 1))
    winograd(native_run, a, "", "f32", tile)


def f16_error(matrices, tile: int, seed: int) -> float:
    """Relative L2 error of a 12x12 x 64 -> 16 convolution by F(tile x tile, 3x3) with `matrices` (B^T, G, A^T), V
    and U rounded to f16 and summed exactly (as the tensor cores' f32 sums nearly do), against the exact result.
    The input is SiLU of normal values, as a resnet conv sees after GroupNorm."""
    b_t, g, a_t = matrices
    side = tile + 2
    r = rng(seed)
    x = r.standard_normal((12, 12, 64))
    x = x / (1 + np.exp(-x))
    w = r.standard_normal((16, 64, 3, 3)) / np.sqrt(9 * 64)
    padded = np.pad(x, ((1, side), (1, side), (0, 0)))
    u = np.einsum("ia,ocab,jb->ijoc", g, w, g)
    exact, rounded = np.zeros((12, 12, 16)), np.zeros((12, 12, 16))
    for ty in range(0, 12, tile):
        for tx in range(0, 12, tile):
            v = np.einsum("ir,rsc,js->ijc", b_t, padded[ty:ty + side, tx:tx + side], b_t)
            for out, vv, uu in ((exact, v, u), (rounded, v.astype(np.float16), u.astype(np.float16))):
                m = np.einsum("ijc,ijoc->ijo", vv.astype(np.float64), uu.astype(np.float64))
                out[ty:ty + tile, tx:tx + tile] = np.einsum("ai,ijo,bj->abo", a_t, m, a_t)
    return np.linalg.norm(rounded - exact) / np.linalg.norm(exact)


@pytest.mark.parametrize("seed", [0, 1])
def test_f4_points_keep_f16_error_small(seed):
    # F(4x4) at 0, 1, -1, 2, -1/2 (wgsl/lib/winograd_matrices.wgsl): about 4x F(2x2)'s f16 error and two thirds of
    # the usual points 0, +-1, +-2's, well inside the tensor cores' f16 tolerance.
    f2, f4 = (f16_error(winograd_ref.MATRICES[tile], tile, seed) for tile in TILES)
    usual = f16_error(winograd_ref.toom_cook([0.0, 1.0, -1.0, 2.0, -2.0], 4), 4, seed)
    assert f4 < 0.8 * usual and f4 < 5 * f2 and f4 < TOLERANCES["f16"] / 4, (f2, f4, usual)


INPUT_TRANSFORM = """
from doppler.gpu.uniforms import pack
from doppler.ops import grid, winograd
x = gpu.tensor({x_shape}, 'f32', 'x'); gpu.upload(x, x_bytes)
v = gpu.tensor({v_shape}, 'f16', 'v'); gpu.upload(v, poison_bytes)
kernel = await gpu.kernel('winograd_input_f16', 'main', {{'WG': 64, 'VEC': {vec}, 'TILE': {tile}}})
b, h, w, cin = {x_shape}
gpu.dispatch(kernel, [x, v], grid.linear_groups({tiles} * -(-cin // 2), 64),
             pack(winograd.Winograd(h, w, cin, h, w, 1, -(-h // {tile}), -(-w // {tile}), 0, {tiles})))
result = await gpu.read(v)
gpu.free(x, v)
result
"""


@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("channels", [8, 5])
def test_input_transform_to_f16(native_f16_run, channels, tile):
    # V for tensor cores (wgsl/winograd_input_f16.wgsl): B^T d B summed in f32, rounded to f16 once. Partial tiles at
    # the bottom and right; 5 channels store element by element.
    x = rng(10).standard_normal((2, 5, 7, channels)).astype(np.float32)
    want = winograd_ref.input_transform(x, tile)
    source = INPUT_TRANSFORM.format(x_shape=x.shape, v_shape=want.shape, tiles=want.shape[1], vec=channels % 2 == 0,
                                    tile=tile)
    got = native_f16_run(source, x_bytes=x.tobytes(), poison_bytes=np.full(want.shape, np.nan, np.float16).tobytes())
    got = np.frombuffer(got, np.float16)[:want.size].reshape(want.shape).astype(np.float64)
    # F(2x2): a sum of up to four f32 inputs, exact to f32, then one rounding: within half an f16 ulp (and f16's
    # subnormals). F(4x4)'s fractions make the f32 sum inexact: it may round across a midpoint, a whole ulp.
    np.testing.assert_allclose(got, want, rtol=F16_ULP / 2 if tile == 2 else F16_ULP, atol=2.0 ** -24)


@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("stored,shape", [("f32", (12, 5, 3, 3)), ("f16", (12, 5, 3, 3)), ("f16", (3, 7, 3, 3))])
def test_weight_transform(gpu_run, stored, shape, tile):
    w = rng(9).standard_normal(shape).astype(STORED[stored])
    got = run_op(gpu_run, "winograd", "winograd_weight(gpu, w, out)",
                 {"w": np.ascontiguousarray(w.transpose(0, 2, 3, 1)),
                  "out": np.zeros(winograd_ref.weight_shape(*shape[:2], tile), w.dtype)})
    # f32 math, then (f16) one rounding: within half an f16 ulp of the exact value, or a whole one where the f32
    # sum lands across a rounding midpoint.
    np.testing.assert_allclose(got, winograd_ref.winograd_weight(w, tile), rtol=F16_ULP if stored == "f16" else 1e-6,
                               atol=1e-7)


BAD_CALLS = {
    "winograd_weight(gpu, w1, u)": "weight (4, 1, 1, 3) must be [Cout, 3, 3, Cin]",
    "winograd_weight(gpu, w, u16)": "dst (16, 4, 3) f16 must be (16, 4, 3) f32",
    "conv3x3_winograd(gpu, x, u_t, out)": "weight (16, 4, 5) must be (16, 'Cout', 3)",
    "conv3x3_winograd(gpu, x, u25, out)": "weight (25, 4, 3) must have 16 or 36 positions (F(2x2) or F(4x4))",
    "winograd_weight(gpu, w, u25)": "weight (25, 4, 3) must have 16 or 36 positions",
    "conv3x3_winograd(gpu, x, u, x)": "out (1, 6, 6, 3) must be (1, 6, 6, 4)",
    "conv3x3_winograd(gpu, x, u, out, upsample_to=(12, 12))": "out (1, 6, 6, 4) must be (1, 12, 12, 4)",
    "conv3x3_winograd(gpu, x, u, out, upsample_to=(12,))": "upsample_to (12,) must be (height, width)",
    "conv3x3_winograd(gpu, x, u, out, bias=x)": "bias (1, 6, 6, 3) must be (4,)",
    "conv3x3_winograd(gpu, x16, u16, out16)": "Winograd convolution runs f32 math",
    "conv3x3_winograd(gpu, x, u, out, bias=b16)": "bias is f16; with f32 activations weights and bias must be one of",
    "conv3x3_winograd(gpu, x, u3, x)": "x x shares its buffer with out",
}
TENSORS = {"x": ((1, 6, 6, 3), "f32"), "x16": ((1, 6, 6, 3), "f16"), "w": ((4, 3, 3, 3), "f32"),
           "w1": ((4, 1, 1, 3), "f32"), "u": ((16, 4, 3), "f32"), "u16": ((16, 4, 3), "f16"),
           "u_t": ((16, 4, 5), "f32"), "u25": ((25, 4, 3), "f32"), "u3": ((16, 3, 3), "f32"), "b": ((4,), "f32"),
           "b16": ((4,), "f16"), "out": ((1, 6, 6, 4), "f32"), "out16": ((1, 6, 6, 4), "f16")}


@pytest.mark.parametrize("call,message", BAD_CALLS.items(), ids=list(BAD_CALLS))
def test_bad_calls_name_the_problem(native_run, call, message):
    got = error_of(native_run, "winograd", call, TENSORS)
    assert got is not None and message in got, got
