"""Noise (vs its numpy twin), UNet input, guidance, the scheduler update, and the time/guidance embeddings (vs
diffusers' own functions), on both backends."""

from dataclasses import fields

import numpy as np
import pytest

from doppler.convert.noise import gaussian
from doppler.gpu.uniforms import pack
from doppler.ops.sampling import GUIDANCE_EMBEDDING_SCALE, SamplerStep, guidance_frequencies, timestep_frequencies
from gpu_runner import binding_limited
from reference import POISON, assert_close, rng, sampling as ref

SEED = (1 << 40) + 12345  # both key words in use

NOISE_SOURCE = """
from doppler.ops import sampling
out = gpu.tensor((count,), "f32", "noise")
gpu.upload(out, poison)
""" + binding_limited("""
await sampling.noise(gpu, out, seed, stream, scale)
""") + """
result = await gpu.read(out)
gpu.free(out)
[result, dispatched]
"""


def run_noise(gpu_run, count, seed, stream, scale=1.0, max_binding=0):
    header = f"count, seed, stream, scale, max_binding = {count}, {seed}, {stream}, {scale}, {max_binding}\n"
    got, dispatches = gpu_run(header + NOISE_SOURCE, poison=np.full(count, POISON, np.float32).tobytes())
    return np.frombuffer(got, np.float32), dispatches


@pytest.mark.parametrize("stream", [0, 7])
def test_noise_equals_the_numpy_twin(gpu_run, stream):
    got, _ = run_noise(gpu_run, 20_003, SEED, stream)  # not a whole number of blocks
    diff = np.abs(got - gaussian(SEED, stream, 20_003))
    assert diff.max() <= 1e-5, f"max |gpu - twin| = {diff.max():.3g} at {diff.argmax()}"


def test_noise_scale_and_parts(gpu_run):
    count = 20_001  # 80 KB in 16 KiB parts: 5 dispatches, each starting on a block boundary
    got, dispatches = run_noise(gpu_run, count, 3, 1, scale=14.6, max_binding=16384)
    assert dispatches == 5
    want = np.float32(14.6) * gaussian(3, 1, count)
    assert np.abs(got - want).max() <= 14.6 * 1e-5


def test_noise_is_standard_normal_and_streams_differ(native_gpu, event_loop_runner):
    from gpu_runner import run_native

    def draw(stream):
        got, _ = event_loop_runner(run_native(
            native_gpu, f"count, seed, stream, scale, max_binding = 100000, 9, {stream}, 1.0, 0\n" + NOISE_SOURCE,
            poison=np.full(100_000, POISON, np.float32).tobytes()))
        return np.frombuffer(got, np.float32).astype(np.float64)

    z0, z1 = draw(0), draw(1)
    assert np.abs(z1 - gaussian(9, 1, 100_000)).max() <= 1e-5
    for z in (z0, z1):
        assert abs(z.mean()) < 0.015 and abs(z.std() - 1.0) < 0.01  # ~5 standard errors
        assert abs(np.mean(z**4) - 3.0) < 0.1  # Gaussian kurtosis
        for lane in range(4):
            assert abs(z[lane::4].std() - 1.0) < 0.02
    assert abs(np.corrcoef(z0, z1)[0, 1]) < 0.015


LATENT_SOURCE = """
from doppler.ops import sampling
def tensor(shape, data, label):
    t = gpu.tensor(shape, "f32", label)
    gpu.upload(t, data)
    return t
p = sampling.params_tensor(gpu, "step")
gpu.upload(p, params)
x_t, m_t, x0_t = tensor(shape, x, "x"), tensor(m_shape, m, "m"), tensor(shape, x0_prev, "x0")
g_t, in_t = tensor(shape, poison, "guided"), tensor((2, *shape[1:]), poison + poison, "unet_in")
await sampling.model_input(gpu, x_t, in_t, p)
if len(m) != len(x):
    await sampling.guidance(gpu, m_t, g_t, p)
await sampling.step(gpu, x_t, m_t, x0_t, p)
result = [await gpu.read(t) for t in (in_t, g_t, x_t, x0_t)]
gpu.free(p, x_t, m_t, x0_t, g_t, in_t)
result
"""

COEFFICIENTS = dict(x0_from_x=1.3, x0_from_model=-0.7, next_from_x=0.4, next_from_model=0.2, next_from_x0=0.9,
                    next_from_x0_prev=-0.35, next_from_noise=0.37)


@pytest.mark.parametrize("guided", [False, True], ids=["single", "cfg"])
@pytest.mark.parametrize("noise_coefficient", [0.37, 0.0], ids=["noise", "no_noise"])
def test_step_matches_numpy(gpu_run, guided, noise_coefficient):
    shape = (1, 5, 7, 4)  # NHWC latents
    r = rng(13)
    x, x0_prev = (r.standard_normal(shape, dtype=np.float32) for _ in range(2))
    m = r.standard_normal(((2 if guided else 1) * shape[0], *shape[1:]), dtype=np.float32)
    c = {**COEFFICIENTS, "next_from_noise": noise_coefficient}
    params = SamplerStep(model_input_scale=0.81, guidance_scale=7.5, seed_lo=SEED & 0xFFFFFFFF, seed_hi=SEED >> 32,
                         noise_stream=4, **c)
    poison = np.full(shape, POISON, np.float32)
    unet_in, guided_out, x_next, x0 = gpu_run(
        f"shape, m_shape = {shape}, {m.shape}\n" + LATENT_SOURCE,
        params=pack(params), x=x.tobytes(), m=m.tobytes(), x0_prev=x0_prev.tobytes(), poison=poison.tobytes())
    unet_in = np.frombuffer(unet_in, np.float32).reshape((2, *shape[1:]))
    assert_close(unet_in, 0.81 * np.concatenate([x, x]).astype(np.float64), "f32", "model_input")
    eps = ref.guidance(m, 7.5) if guided else m
    if guided:
        assert_close(np.frombuffer(guided_out, np.float32).reshape(shape), eps, "f32", "guidance")
    want_next, want_x0 = ref.step(x, eps, x0_prev, gaussian(SEED, 4, x.size).reshape(shape), c)
    assert_close(np.frombuffer(x0, np.float32).reshape(shape), want_x0, "f32", "x0")
    assert_close(np.frombuffer(x_next, np.float32).reshape(shape), want_next, "f32", "x_next")


def test_a_recorded_step_replays_with_new_coefficients(native_gpu, event_loop_runner):
    """The plan reads its scalars from the params tensor: rewriting it changes the replayed step."""
    from gpu_runner import run_native

    n = 64
    x = rng(14).standard_normal(n, dtype=np.float32)
    first = SamplerStep(x0_from_x=1.0, next_from_x0=2.0)
    second = SamplerStep(x0_from_x=1.0, next_from_x=1.0, next_from_x0_prev=1.0, next_from_noise=0.5, seed_lo=5,
                         noise_stream=2)
    got = event_loop_runner(run_native(native_gpu, """
from doppler.ops import sampling
p = sampling.params_tensor(gpu, "step")
x_t, m_t, x0_t = (gpu.tensor((64,), "f32", name) for name in ("x", "m", "x0"))
for t in (x_t, m_t, x0_t):
    gpu.upload(t, x)
with gpu.record("denoise") as plan:
    await sampling.step(gpu, x_t, m_t, x0_t, p)
out = []
for params in (first, second):
    gpu.upload(p, params)
    plan.replay()
    out.append(await gpu.read(x_t))
plan.destroy()
gpu.free(p, x_t, m_t, x0_t)
out
""", x=x.tobytes(), first=pack(first), second=pack(second)))
    after_first = np.frombuffer(got[0], np.float32)
    np.testing.assert_allclose(after_first, 2.0 * x, rtol=1e-6)  # x0 = x, x_next = 2 x0
    want = 2.0 * x.astype(np.float64) + x + 0.5 * gaussian(5, 2, n)  # x0_prev = the first step's x0 = x
    assert_close(np.frombuffer(got[1], np.float32), want, "f32")


EMBED_SOURCE = """
import struct
from doppler.ops import sampling
v = gpu.tensor((len(values) // 4,), "f32", "t")
gpu.upload(v, values)
freqs = sampling.guidance_frequencies(dim) if guidance else sampling.timestep_frequencies(dim, shift)
f = gpu.tensor((dim // 2,), "f32", "freqs")
gpu.upload(f, freqs)
out = gpu.tensor((rows, dim), "f32", "emb")
result = []
for index in range(v.numel):
    gpu.upload(out, poison)
    scale = sampling.GUIDANCE_EMBEDDING_SCALE if guidance else 1.0
    await sampling.time_embedding(gpu, v, f, out, flip, scale, index)
    result.append(await gpu.read(out))
gpu.free(v, f, out)
result
"""


def run_embedding(gpu_run, values, dim, rows, flip, shift, guidance):
    header = f"dim, rows, flip, shift, guidance = {dim}, {rows}, {flip}, {shift}, {guidance}\n"
    got = gpu_run(header + EMBED_SOURCE, values=np.asarray(values, np.float32).tobytes(),
                  poison=np.full((rows, dim), POISON, np.float32).tobytes())
    return [np.frombuffer(g, np.float32).reshape(rows, dim) for g in got]


@pytest.mark.parametrize("dim,flip,shift", [(320, True, 0), (33, False, 1)], ids=["sd15", "odd"])
def test_time_embedding_equals_diffusers(gpu_run, dim, flip, shift):
    import torch
    from diffusers.models.embeddings import get_timestep_embedding

    timesteps = [0.0, 1.0, 47.5, 500.0, 981.2734, 999.0]
    got = run_embedding(gpu_run, timesteps, dim, 2, flip, shift, guidance=False)
    freqs = timestep_frequencies(dim, shift)
    for t, emb in zip(timesteps, got):
        exact = ref.sinusoidal(t, 1.0, freqs, dim, flip)
        assert np.abs(emb - exact).max() < 1e-6, f"t = {t}: sin/cos off by {np.abs(emb - exact).max():.3g}"
        want = get_timestep_embedding(torch.tensor([t, t]), dim, flip, shift).numpy()
        assert_close(emb, want, "f32", f"t = {t}")
        # torch's f32 exp may round a frequency one ulp apart from ours: the argument then moves by t ulps
        bound = 1e-6 + t * 2.0**-23
        assert np.abs(emb - want).max() <= bound, f"t = {t}: max diff {np.abs(emb - want).max():.3g} > {bound:.3g}"


PER_ROW_SOURCE = """
from doppler.errors import GpuError
from doppler.ops import sampling
v = gpu.tensor((len(values) // 4,), "f32", "timesteps")
gpu.upload(v, values)
f = gpu.tensor((160,), "f32", "freqs")
gpu.upload(f, sampling.timestep_frequencies(320, 0))
out = gpu.tensor((v.numel - 1, 320), "f32", "emb")
gpu.upload(out, poison)
await sampling.time_embedding(gpu, v, f, out, True, index=1, per_row=True)
try:
    await sampling.time_embedding(gpu, v, f, out, True, index=2, per_row=True)
    error = None
except GpuError as e:
    error = str(e)
result = [await gpu.read(out), error]
gpu.free(v, f, out)
result
"""


def test_time_embedding_of_a_schedule_a_row_each(gpu_run):
    """per_row: row r embeds timesteps[index + r] (a schedule's, made once an image: UNet.time_table)."""
    timesteps = [999.0, 981.2734, 500.0, 47.5, 1.0, 0.0]
    got, error = gpu_run(PER_ROW_SOURCE, values=np.asarray(timesteps, np.float32).tobytes(),
                         poison=np.full((5, 320), POISON, np.float32).tobytes())
    got = np.frombuffer(got, np.float32).reshape(5, 320)
    freqs = timestep_frequencies(320, 0)
    for t, emb in zip(timesteps[1:], got):
        exact = ref.sinusoidal(t, 1.0, freqs, 320, True)
        assert np.abs(emb - exact).max() < 1e-6, f"t = {t}: sin/cos off by {np.abs(emb - exact).max():.3g}"
    assert error == "time_embedding: index 6 is outside timesteps (6,) (5 rows from 2, a value a row)"


def test_guidance_embedding_equals_the_lcm_pipeline(gpu_run):
    import torch
    from diffusers import LatentConsistencyModelPipeline

    scales = [1.0, 2.5, 8.5, 15.0]
    got = run_embedding(gpu_run, [g - 1 for g in scales], 256, 1, False, 0, guidance=True)
    freqs = guidance_frequencies(256)
    for g, emb in zip(scales, got):
        exact = ref.sinusoidal(g - 1, GUIDANCE_EMBEDDING_SCALE, freqs, 256, False)
        assert np.abs(emb - exact).max() < 1e-6, f"guidance {g}: sin/cos off by {np.abs(emb - exact).max():.3g}"
        want = LatentConsistencyModelPipeline.get_guidance_scale_embedding(None, torch.tensor([g - 1]), 256).numpy()
        # arguments reach 14000: a frequency one ulp apart from torch's moves them by 14000 ulps
        bound = 1e-6 + (g - 1) * GUIDANCE_EMBEDDING_SCALE * 2.0**-23
        assert np.abs(emb - want).max() <= bound, f"guidance {g}: max diff {np.abs(emb - want).max():.3g}"


def test_frequencies_are_torchs_f32_values():
    import torch

    half = 160
    exponent = -np.log(10000) * torch.arange(0, half, dtype=torch.float32) / half
    np.testing.assert_array_max_ulp(np.array(timestep_frequencies(320, 0), np.float32),
                                    torch.exp(exponent).numpy(), maxulp=1)
    step = torch.log(torch.tensor(10000.0)) / 127
    np.testing.assert_array_max_ulp(np.array(guidance_frequencies(256), np.float32),
                                    torch.exp(torch.arange(128, dtype=torch.float32) * -step).numpy(), maxulp=1)


def test_sampler_step_mirrors_the_schedulers_coefficients():
    schedulers = pytest.importorskip("doppler.inference.diffusion.schedulers.base",
                                     reason="the schedulers branch is not merged here")
    names = {f.name for f in fields(SamplerStep)}
    assert {f.name for f in fields(schedulers.StepCoefficients)} <= names


def test_bad_seed_and_small_params_are_refused(gpu_run):
    got = gpu_run("""
from doppler.errors import GpuError
from doppler.ops import sampling
x, small = gpu.tensor((8,), "f32", "latents"), gpu.tensor((4,), "u32", "scalars")
messages = []
for call in (lambda: sampling.noise(gpu, x, -1, 0), lambda: sampling.step(gpu, x, x, x, small)):
    try:
        await call()
    except GpuError as e:
        messages.append(str(e))
gpu.free(x, small)
messages
""")
    assert len(got) == 2
    assert "seed must be an integer in [0, 2^64)" in got[0]
    assert "scalars (16 bytes) cannot hold a SamplerStep" in got[1]
