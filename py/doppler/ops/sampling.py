"""The sampler's latent arithmetic (`wgsl/sampling.wgsl`): seeded noise, the UNet's input, classifier-free guidance,
the scheduler update, and the sinusoidal time and guidance embeddings.

Per-step scalars live in one small storage tensor holding a packed `SamplerStep` (write it with
`gpu.upload(params, pack(SamplerStep(...)))` before each step), so a recorded plan replays every step unchanged.
Its coefficient fields mirror `StepCoefficients` of the schedulers. Noise spec: see the kernel's header and the
numpy twin `doppler.convert.noise.gaussian(seed, stream, count)`; stream 0 is the initial latents, stream k + 1
the fresh noise of step k.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from typing import ClassVar

from ..errors import GpuError
from ..gpu.uniforms import f32, pack, to_f32, u32
from .checks import require_dtype, require_one_binding, require_shape
from .grid import linear_groups

WORKGROUP = 256
LANES = 4  # normals per Philox block: noise and step run one thread per block
MAX_PERIOD = 10000.0  # diffusers' max_period of the sinusoidal embeddings
SEED_LIMIT = 2**64  # the Philox key holds the seed's two 32-bit words
STREAM_LIMIT = 2**32  # the stream is one counter word
GUIDANCE_EMBEDDING_SCALE = 1000.0  # the LCM pipeline embeds w * 1000, w = guidance_scale - 1


@dataclass(frozen=True)
class SamplerStep:
    """One step's scalars, read by model_input, guidance and step from a storage tensor."""

    WGSL_NAME: ClassVar[str] = "SamplerStep"
    model_input_scale: float = f32(1.0)
    guidance_scale: float = f32(1.0)
    x0_from_x: float = f32()
    x0_from_model: float = f32()
    next_from_x: float = f32()
    next_from_model: float = f32()
    next_from_x0: float = f32()
    next_from_x0_prev: float = f32()
    next_from_noise: float = f32()
    seed_lo: int = u32()
    seed_hi: int = u32()
    noise_stream: int = u32()


@dataclass(frozen=True)
class Latents:
    WGSL_NAME: ClassVar[str] = "Latents"
    n: int = u32()
    copies: int = u32(1)


@dataclass(frozen=True)
class Noise:
    WGSL_NAME: ClassVar[str] = "Noise"
    n: int = u32()
    first_block: int = u32()
    seed_lo: int = u32()
    seed_hi: int = u32()
    stream: int = u32()
    scale: float = f32(1.0)


@dataclass(frozen=True)
class TimeEmbedding:
    WGSL_NAME: ClassVar[str] = "TimeEmbedding"
    n: int = u32()
    dim: int = u32(2)
    half: int = u32(1)
    index: int = u32()
    scale: float = f32(1.0)
    flip: int = u32()
    per_row: int = u32()  # 1: row r embeds values[index + r]; 0: every row values[index]


def seed_words(seed: int) -> tuple[int, int]:
    """The Philox key (seed & 0xffffffff, seed >> 32) of a seed in [0, 2^64)."""
    if not (isinstance(seed, int) and 0 <= seed < SEED_LIMIT):
        raise GpuError(f"noise seed must be an integer in [0, 2^64), got {seed!r}")
    return seed & 0xFFFFFFFF, seed >> 32


def params_tensor(gpu, label: str):
    """A storage tensor for one packed SamplerStep: `gpu.upload(params, pack(SamplerStep(...)))` per step."""
    return gpu.tensor((len(pack(SamplerStep())) // 4,), "u32", label)


def _require_params(op: str, params) -> None:
    if params.nbytes < len(pack(SamplerStep())):
        raise GpuError(f"{op}: {params.label} ({params.nbytes} bytes) cannot hold a SamplerStep: make it with "
                       f"sampling.params_tensor")


def _groups(threads: int):
    return linear_groups(threads, WORKGROUP)


async def noise(gpu, out, seed: int, stream: int, scale: float = 1.0) -> None:
    """out = scale * N(0, 1) noise of (seed, stream), element j = lane j % 4 of Philox block j / 4 (flat order)."""
    require_dtype("noise", out, "f32")
    lo, hi = seed_words(seed)
    if not (isinstance(stream, int) and 0 <= stream < STREAM_LIMIT):
        raise GpuError(f"noise stream must be an integer in [0, 2^32), got {stream!r}")
    kernel = await gpu.kernel("sampling", "noise", {"WG": WORKGROUP})
    for view, first, n in out.reshaped((out.numel,)).row_parts(gpu.max_binding):
        # parts of f32 rows start at multiples of 64 elements, so on block boundaries
        uniform = Noise(n, first // LANES, lo, hi, stream, scale)
        gpu.dispatch(kernel, [None, None, view, None], _groups(-(-n // LANES)), pack(uniform))


def _copies(op: str, small, big) -> int:
    if big.numel % small.numel or big.shape[1:] != small.shape[1:]:
        raise GpuError(f"{op}: {big.label} {big.shape} is not a stack of {small.label} {small.shape} along axis 0")
    return big.numel // small.numel


async def model_input(gpu, x, out, params) -> None:
    """out = model_input_scale * x, stacked copies times along axis 0 (out (copies * B, ...), x (B, ...))."""
    _require_params("model_input", params)
    copies = _copies("model_input", x, out)
    require_one_binding(gpu, "model_input", x, out)
    kernel = await gpu.kernel("sampling", "model_input", {"WG": WORKGROUP})
    gpu.dispatch(kernel, [params, x, out, None], _groups(x.numel), pack(Latents(x.numel, copies)))


async def guidance(gpu, stacked, out, params) -> None:
    """out = uncond + guidance_scale * (text - uncond) for stacked = [uncond, text] along axis 0."""
    _require_params("guidance", params)
    if _copies("guidance", out, stacked) != 2:
        raise GpuError(f"guidance: {stacked.label} {stacked.shape} must stack [uncond, text] of {out.shape}")
    require_one_binding(gpu, "guidance", stacked, out)
    kernel = await gpu.kernel("sampling", "guidance", {"WG": WORKGROUP})
    gpu.dispatch(kernel, [params, stacked, out, None], _groups(out.numel), pack(Latents(out.numel)))


async def step(gpu, x, model_output, x0, params) -> None:
    """The scheduler update in place: x <- x_next, x0 <- this step's x0 (it held the previous step's). model_output
    is x's shape, or [uncond, text] stacked along axis 0, which the kernel combines by classifier-free guidance."""
    for t in (x, model_output, x0):
        require_dtype("step", t, "f32")
    _require_params("step", params)
    require_shape("step", x0, x.shape)
    guided = _copies("step", x, model_output) == 2
    if not guided:
        require_shape("step", model_output, x.shape)
    require_one_binding(gpu, "step", x, model_output, x0)
    kernel = await gpu.kernel("sampling", "step", {"WG": WORKGROUP, "GUIDED": int(guided)})
    gpu.dispatch(kernel, [params, model_output, x, x0], _groups(-(-x.numel // LANES)), pack(Latents(x.numel)))


async def time_embedding(gpu, values, frequencies, out, flip_sin_to_cos: bool, scale: float = 1.0,
                         index: int = 0, per_row: bool = False) -> None:
    """out (rows, dim) = the sinusoidal embedding of a = scale * values[index] on every row (`per_row`: of
    values[index + r] on row r): [sin(a f), cos(a f)] ([cos, sin] when flip_sin_to_cos), a zero column last when dim
    is odd. frequencies: f32 (dim // 2,) from `timestep_frequencies` or `guidance_frequencies`. values may be the
    step's own small f32 tensor, or a schedule's timesteps."""
    rows, dim = out.shape
    half = dim // 2
    require_dtype("time_embedding", out, "f32")
    require_dtype("time_embedding", values, "f32")
    require_shape("time_embedding", frequencies, (half,))
    last = index + (rows - 1 if per_row else 0)
    if not 0 <= index <= last < values.numel:
        raise GpuError(f"time_embedding: index {last} is outside {values.label} {values.shape}"
                       + (f" ({rows} rows from {index}, a value a row)" if per_row else ""))
    kernel = await gpu.kernel("sampling", "time_embedding", {"WG": WORKGROUP})
    uniform = TimeEmbedding(out.numel, dim, half, index, scale, int(flip_sin_to_cos), int(per_row))
    gpu.dispatch(kernel, [None, values, out, frequencies], _groups(out.numel), pack(uniform))


def timestep_frequencies(dim: int, downscale_freq_shift: float, max_period: float = MAX_PERIOD) -> array:
    """f32 frequencies of diffusers' get_timestep_embedding, rounded as its f32 torch ops round them:
    exp((-ln(max_period) * i) / (dim // 2 - downscale_freq_shift)). SD 1.5's UNet: dim 320, shift 0."""
    half = dim // 2
    neg_log = to_f32(-math.log(max_period))
    return array("f", [to_f32(math.exp(to_f32(to_f32(neg_log * i) / (half - downscale_freq_shift))))
                       for i in range(half)])


def guidance_frequencies(dim: int, max_period: float = MAX_PERIOD) -> array:
    """f32 frequencies of the LCM pipeline's get_guidance_scale_embedding: exp(i * -(ln(max_period) / (half - 1))).
    Its embedding is time_embedding(values = [guidance - 1], scale=GUIDANCE_EMBEDDING_SCALE,
    flip_sin_to_cos=False), dim = the UNet's time_cond_proj_dim (256 for LCM-distilled SD 1.5)."""
    half = dim // 2
    step = to_f32(to_f32(math.log(max_period)) / (half - 1))
    return array("f", [to_f32(math.exp(to_f32(i * -step))) for i in range(half)])
