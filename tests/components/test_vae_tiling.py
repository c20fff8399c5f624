"""Tiled VAE decode (native) against the untiled decode of the same weights: with a halo over the receptive field
it equals the untiled decode up to float rounding (the GroupNorms share the whole image's statistics), with a
smaller one it stays far above 35 dB; either way its peak memory is lower. Geometry and config:
tests/unit/test_tiling.py.

Tiles here are smaller than decode.tiling allows (64 pixels at least), so that lavapipe runs them in seconds:
the decoder takes any `Tiling`."""

import math

import numpy as np
import pytest
import torch

from conftest import TINY_VAE, architecture, upload_state_dict
from doppler.config.diffusion import Tiling
from doppler.manifest import architectures as arch

pytestmark = pytest.mark.native

MIN_PSNR_DB = 35.0
EXACT_PSNR_DB = 80.0  # float rounding only
# Narrow VAEs of two and three levels (upscale 2 and 4).
TWO_LEVELS = {**TINY_VAE, "block_out_channels": (8, 16), "norm_num_groups": 4}
THREE_LEVELS = {**TWO_LEVELS, "block_out_channels": (8, 16, 16), "up_block_types": ("UpDecoderBlock2D",) * 3}


def psnr(a, b) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(4.0 / mse)


def decoder_state(config: dict, seed: int) -> dict:
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    levels = len(config["block_out_channels"])
    ref = AutoencoderKL(**{k: v for k, v in config.items() if k not in ("scaling_factor", "sample_size")},
                        down_block_types=("DownEncoderBlock2D",) * levels).eval()
    return {k: v for k, v in ref.state_dict().items() if not k.startswith(("encoder.", "quant_conv."))}


def regional_latents(h: int, w: int, seed: int) -> np.ndarray:
    """Regions of different means and spreads, as real latents have, so that each tile's own statistics differ."""
    r = np.random.default_rng(seed)
    ramp = np.linspace(-1, 1, w)[None, None, :, None] * np.array([1.0, -0.5, 0.8, 0.3])
    spread = 0.4 + (np.arange(h) >= h // 3)[None, :, None, None]
    return (r.standard_normal((1, h, w, 4)) * spread + 2 * ramp).astype(np.float32)


def decode(run, config, state, z, tiling=None):
    """(image, peak pool bytes above the weights and latents during the decode)."""
    from doppler.inference.diffusion.vae import AutoencoderKLDecoder

    async def go(gpu):
        weights = upload_state_dict(gpu, state, "vae")
        model = AutoencoderKLDecoder(weights, architecture(arch.AutoencoderKL, config))
        await weights.apply_layouts(gpu)
        t = gpu.tensor(z.shape, "f32", "latents")
        gpu.upload(t, z.tobytes())
        gpu.pool.trim()
        base = gpu.pool.peak_bytes = gpu.pool.current_bytes
        out = await model(gpu, t, tiling)
        image = np.frombuffer(await gpu.read(out), np.float32).reshape(out.shape)
        peak = gpu.pool.peak_bytes - base
        gpu.free(t, out)
        weights.release(gpu)
        gpu.pool.trim()
        return image, peak

    return run(go)


# (VAE, latent h x w, tile and overlap in latent pixels, exact?): 2 x 2, 1 x 3 and 1 x 2 tiles over latents that
# their sizes do not divide. The two-level VAE tiles its level 1 (its whole maps are larger than a tile's): the
# tiled layers reach 0.5 + 4 * 0.5 + 0.5 = 3 latent pixels, the halo (half the overlap) is 3. The three-level VAE
# runs level 1 whole (its whole maps are smaller than a tile's at level 2) and tiles level 2, which reaches
# 0.25 + 4 * 0.25 + 0.25 = 1.5 latent pixels: a halo of 2 is exact, a halo of 1 is not.
CASES = {
    "two-levels-exact": ("two", (12, 14), (10, 6), True),
    "three-levels-exact": ("three", (8, 14), (8, 4), True),
    "three-levels-halo-under-receptive-field": ("three", (8, 14), (8, 2), False),
}
VAES = {"two": TWO_LEVELS, "three": THREE_LEVELS}


@pytest.fixture(scope="module")
def untiled(event_loop_runner, native_gpu):
    """(weights, latents, untiled image and peak) per VAE and latent size, decoded once."""
    done = {}

    def get(name, hw):
        if (name, hw) not in done:
            state, z = decoder_state(VAES[name], seed=4), regional_latents(*hw, seed=5)
            done[name, hw] = state, z, *decode(lambda fn: event_loop_runner(fn(native_gpu)), VAES[name], state, z)
        return done[name, hw]

    return get


@pytest.mark.parametrize("case", CASES)
def test_tiled_decode_matches_untiled_with_less_memory(run, untiled, case):
    name, (h, w), (tile, overlap), exact = CASES[case]
    config = VAES[name]
    upscale = 2 ** (len(config["block_out_channels"]) - 1)
    state, z, want, untiled_peak = untiled(name, (h, w))
    tiling = Tiling(enabled=True, tile_size=tile * upscale, overlap=overlap * upscale)
    image, peak = decode(run, config, state, z, tiling)
    assert image.shape == want.shape == (1, h * upscale, w * upscale, 3)
    db = psnr(image, want)
    print(f"{case}: PSNR {db:.1f} dB; peak {peak} bytes tiled, {untiled_peak} untiled")
    assert db >= (EXACT_PSNR_DB if exact else MIN_PSNR_DB)
    assert exact or db < EXACT_PSNR_DB, "a halo under the receptive field cannot be exact: is the overlap used?"
    assert peak < untiled_peak


def test_one_tile_is_the_untiled_decode(run):
    state, z = decoder_state(TWO_LEVELS, seed=6), regional_latents(6, 7, seed=7)
    want, _ = decode(run, TWO_LEVELS, state, z)
    image, _ = decode(run, TWO_LEVELS, state, z, Tiling(enabled=True, tile_size=16, overlap=8))
    assert np.array_equal(image, want)


def test_tiles_too_large_to_bind_are_named(run, native_gpu):
    """A tile whose maps exceed maxStorageBufferBindingSize is refused before any work, naming decode.tiling."""
    from doppler.config.schema import ConfigError

    state, z = decoder_state(TWO_LEVELS, seed=6), regional_latents(12, 14, seed=7)
    limits = native_gpu.caps.limits
    saved = limits["maxStorageBufferBindingSize"]
    limits["maxStorageBufferBindingSize"] = 16384  # 18 x 20-pixel tiles (shrunk from 20) of 16 channels
    try:
        with pytest.raises(ConfigError, match=r"^runtime\.inference\.diffusion\.decode\.tiling\.tileSize: got 20; "
                                              r"a tile's largest map takes 23040 bytes, over this GPU's "
                                              r"maxStorageBufferBindingSize \(16384\): use smaller tiles$"):
            decode(run, TWO_LEVELS, state, z, Tiling(enabled=True, tile_size=20, overlap=12))
    finally:
        limits["maxStorageBufferBindingSize"] = saved
