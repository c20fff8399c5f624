"""The training noise schedule, and the numpy/torch-exact helpers the schedulers build their tables with.

Notation (DDPM, Ho et al. 2020): beta_t for t = 0..T-1, alpha_bar_t = prod_{s<=t} (1 - beta_s), and
x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps. The same noise level in the variance-exploding form
x_t / sqrt(alpha_bar_t) = x_0 + sigma_t eps (Karras et al. 2022, "EDM") is
sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t).

diffusers builds these tables in float32 torch and numpy, so its values carry float32 rounding (about 1e-6 after
the 1000-term cumprod). `f32` reproduces that arithmetic: the betas and alpha_bar bit for bit; the sigmas to
within one float32 ulp, because torch's float32 sqrt (and numpy's float32 log) are not correctly rounded.
The helpers named np_*/torch_* mirror the numpy and torch functions diffusers calls, rounding included.
"""

import math
import struct

# Karras et al. 2022, eq. 5: the rho that spaces the sampling sigmas ("7.0 is the value used in the paper").
KARRAS_RHO = 7.0
# diffusers' _sigma_to_t clamps sigma before its log, so sigma = 0 maps to the lowest timestep.
SIGMA_TO_T_FLOOR = 1e-10


def f32(x: float) -> float:
    """x rounded to the nearest float32 (ties to even), as a Python float."""
    return struct.unpack("f", struct.pack("f", x))[0]


def torch_linspace_f32(start: float, end: float, steps: int) -> list[float]:
    """torch.linspace(start, end, steps, dtype=float32) on CPU: the first half counts up from start, the second
    half down from end, each value one fused multiply-add in float32 (GCC contracts `start + step * i` in torch's
    AVX2 build). `step * i` is exact in double, so a double sum rounded to float32 is that fma."""
    start, end = f32(start), f32(end)
    if steps == 1:
        return [start]
    step = f32(f32(end - start) / (steps - 1))
    half = steps // 2
    return [f32(start + step * i) if i < half else f32(end - step * (steps - 1 - i)) for i in range(steps)]


def alphas_cumprod(beta_schedule: str, beta_start: float, beta_end: float, num_train_timesteps: int) -> list[float]:
    """alpha_bar_t for t = 0..T-1 as diffusers has it: float32 betas, float32 1 - beta, a cumprod that accumulates
    in double and stores float32."""
    if beta_schedule == "linear":
        betas = torch_linspace_f32(beta_start, beta_end, num_train_timesteps)
    else:  # scaled_linear: linear in sqrt(beta), the schedule Stable Diffusion was trained with
        betas = [f32(b * b) for b in torch_linspace_f32(beta_start**0.5, beta_end**0.5, num_train_timesteps)]
    product, out = 1.0, []
    for beta in betas:
        product *= f32(1.0 - beta)
        out.append(f32(product))
    return out


def train_sigmas(alpha_bars: list[float]) -> list[float]:
    """sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t) in float32, t = 0..T-1 (ascending)."""
    return [f32(math.sqrt(f32(f32(1.0 - a) / a))) for a in alpha_bars]


def np_linspace(start: float, stop: float, num: int, endpoint: bool = True) -> list[float]:
    """numpy.linspace in float64: start + i * step, with the last value set to stop when endpoint is true."""
    div = num - 1 if endpoint else num
    if div <= 0:
        return [float(start)] * num
    step = (stop - start) / div
    values = [i * step + start for i in range(num)]
    if endpoint:
        values[-1] = float(stop)
    return values


def np_arange(start: float, stop: float, step: float) -> list[float]:
    """numpy.arange with a float step: ceil((stop - start) / step) values start + i * delta, where delta is
    (start + step) - start as numpy's fill computes it."""
    length = max(math.ceil((stop - start) / step), 0)
    delta = (start + step) - start
    return [start + i * delta for i in range(length)]


def np_interp_table(x: float, table: list[float]) -> float:
    """numpy.interp(x, arange(len(table)), table)."""
    last = len(table) - 1
    if x <= 0:
        return table[0]
    if x >= last:
        return table[last]
    j = math.floor(x)
    if x == j:
        return table[j]
    return (table[j + 1] - table[j]) * (x - j) + table[j]


def sigma_to_t(sigma: float, log_sigmas: list[float]) -> float:
    """diffusers' _sigma_to_t: the fractional timestep whose log sigma interpolates linearly to log(sigma)."""
    log_sigma = math.log(max(sigma, SIGMA_TO_T_FLOOR))
    at_or_below = [j for j, ls in enumerate(log_sigmas) if log_sigma - ls >= 0]
    low = min(at_or_below[-1] if at_or_below else 0, len(log_sigmas) - 2)
    lo, hi = log_sigmas[low], log_sigmas[low + 1]
    w = min(max((lo - log_sigma) / (lo - hi), 0.0), 1.0)
    return (1 - w) * low + w * (low + 1)


def timesteps_for_sigmas(sigmas: list[float], train_sigma_table: list[float]) -> list[float]:
    """The fractional timesteps of these sigmas, against the float32 log of the training sigmas (as diffusers)."""
    log_sigmas = [f32(math.log(s)) for s in train_sigma_table]
    return [sigma_to_t(s, log_sigmas) for s in sigmas]


def karras_sigmas(sigma_min: float, sigma_max: float, num: int) -> list[float]:
    """Karras et al. 2022, eq. 5: sigma_i = (max^(1/rho) + i/(N-1) (min^(1/rho) - max^(1/rho)))^rho, descending."""
    min_inv_rho = sigma_min ** (1 / KARRAS_RHO)
    max_inv_rho = sigma_max ** (1 / KARRAS_RHO)
    return [(max_inv_rho + r * (min_inv_rho - max_inv_rho)) ** KARRAS_RHO for r in np_linspace(0, 1, num)]


def spaced_timesteps(spacing: str, num_train_timesteps: int, num: int, steps_offset: int) -> list[int]:
    """The descending integer timesteps of DDIM's set_timesteps (Lin et al. 2023, table 2, names the spacings)."""
    T = num_train_timesteps
    if spacing == "linspace":
        return [round(v) for v in reversed(np_linspace(0, T - 1, num))]
    if spacing == "leading":
        return [i * (T // num) + steps_offset for i in reversed(range(num))]
    return [round(v) - 1 for v in np_arange(T, 0, -T / num)]  # trailing
