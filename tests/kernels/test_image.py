import numpy as np
import pytest

from doppler.ops.image import SD15_LATENT_RGB
from reference import image as ref, rng

SOURCE = """
from doppler.ops import image
src = gpu.tensor(in_shape, "f32", "src")
gpu.upload(src, x)
out = gpu.tensor(out_shape, "u32", "pixels")
gpu.upload(out, poison)
if op == "to_rgba8":
    await image.to_rgba8(gpu, src, out)
else:
    await image.preview(gpu, src, out, image.SD15_LATENT_RGB, bias)
result = await gpu.read(out)
gpu.free(src, out)
result
"""


def run(gpu_run, op, x, out_shape, bias=(0.0, 0.0, 0.0)):
    header = f"op, in_shape, out_shape, bias = {op!r}, {x.shape}, {out_shape}, {tuple(bias)}\n"
    poison = np.full(out_shape, 0x5A5A5A5A, np.uint32)  # alpha 0x5A: never a written pixel
    got = gpu_run(header + SOURCE, x=x.astype(np.float32).tobytes(), poison=poison.tobytes())
    return np.frombuffer(got, np.uint8).reshape(*out_shape, 4)


def half_way_values():
    """Inputs x in [-1, 1] whose (x * 0.5 + 0.5) * 255 is exactly k + 0.5 in f32: the round-half-to-even cases."""
    v = np.float32((np.arange(255) + 0.5) / 255)
    candidates = np.concatenate([np.nextafter(v, np.float32(0)), v, np.nextafter(v, np.float32(1))])
    x = (candidates * np.float32(2) - np.float32(1)).astype(np.float32)
    scaled = (x * np.float32(0.5) + np.float32(0.5)) * np.float32(255)
    return x[scaled == np.floor(scaled) + np.float32(0.5)]


def test_to_rgba8_equals_diffusers_postprocess(gpu_run):
    ties = half_way_values()
    assert ties.size > 10
    x = rng(15).uniform(-1.3, 1.3, (2, 9, 11, 3)).astype(np.float32)  # past [-1, 1] too: clamped
    x.reshape(-1)[: ties.size] = ties
    got = run(gpu_run, "to_rgba8", x, (2, 9, 11))
    np.testing.assert_array_equal(got, ref.diffusers_rgba8(x))


@pytest.mark.parametrize("upscale", [1, 3])
def test_preview_matches_the_linear_map(gpu_run, upscale):
    latents = rng(16).standard_normal((1, 5, 7, 4)).astype(np.float32) * 1.5
    bias = (0.05, -0.1, 0.02)
    got = run(gpu_run, "preview", latents, (1, 5 * upscale, 7 * upscale), bias)
    want = ref.preview(latents, SD15_LATENT_RGB, bias, upscale)
    assert (got[..., 3] == 255).all()
    assert np.abs(got[..., :3] - want).max() <= 0.5 + 1e-3  # round to nearest, f32 vs float64
