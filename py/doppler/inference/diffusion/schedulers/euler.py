"""Euler (Karras et al. 2022, "Elucidating the Design Space...", Algorithm 2 without churn), as diffusers'
EulerDiscreteScheduler.

Variance-exploding notation: the sampler's x is the DDPM latent times sqrt(1 + sigma^2), so x = x0 + sigma eps,
and the UNet sees x / sqrt(sigma^2 + 1). One Euler step of the probability-flow ODE dx/dsigma = (x - x0) / sigma:
    x0     = x - sigma eps
    x_next = x + (sigma_next - sigma) (x - x0) / sigma
(v-prediction: x0 = x / (sigma^2 + 1) - sigma v / sqrt(sigma^2 + 1)). init_noise_sigma is sigma_max, or
sqrt(sigma_max^2 + 1) under leading spacing (diffusers' convention).
sigma_N = 0, so the last step returns x0. Karras sigmas (use_karras_sigmas) respace sigma by eq. 5, rho = 7.
"""

import math
from dataclasses import dataclass

from .base import Scheduler, SchedulerConfig, StepCoefficients, option, pinned
from .schedule import (
    f32, karras_sigmas, np_interp_table, np_linspace, spaced_timesteps, timesteps_for_sigmas, train_sigmas,
)


@dataclass(frozen=True)
class EulerConfig(SchedulerConfig):
    interpolation_type: str = pinned("linear")
    use_karras_sigmas: bool = False
    use_exponential_sigmas: bool = pinned(False)
    use_beta_sigmas: bool = pinned(False)
    sigma_min: object = pinned(None)
    sigma_max: object = pinned(None)
    timestep_spacing: str = option("linspace", ("leading", "trailing", "linspace"))
    timestep_type: str = pinned("discrete")
    steps_offset: int = 0
    final_sigmas_type: str = pinned("zero")


def ve_x0_coefficients(prediction_type: str, sigma: float) -> tuple[float, float]:
    """(x0_from_x, x0_from_model) for the variance-exploding x = x0 + sigma eps."""
    if prediction_type == "epsilon":
        return 1.0, -sigma
    return 1.0 / (sigma * sigma + 1), -sigma / math.sqrt(sigma * sigma + 1)


def euler_move(x0_coefficients: tuple[float, float], sigma: float, sigma_to: float) -> tuple[float, float]:
    """(next_from_x, next_from_model) of x + (sigma_to - sigma) (x - x0) / sigma, x0 given by its coefficients."""
    x0_x, x0_m = x0_coefficients
    ratio = (sigma_to - sigma) / sigma
    return 1.0 + ratio * (1.0 - x0_x), -ratio * x0_m


class EulerScheduler(Scheduler):
    config_class = EulerConfig
    name = "euler"

    def _set_timesteps(self, num_inference_steps):
        c = self.config
        T = c.num_train_timesteps
        if c.timestep_spacing == "linspace":  # not rounded here, unlike DDIM's
            timesteps = [f32(v) for v in reversed(np_linspace(0, T - 1, num_inference_steps))]
        else:
            timesteps = [float(t) for t in spaced_timesteps(c.timestep_spacing, T, num_inference_steps, c.steps_offset)]
        table = train_sigmas(self.alphas_cumprod)
        sigmas = [np_interp_table(t, table) for t in timesteps]
        if self.karras:
            sigmas = karras_sigmas(sigmas[-1], sigmas[0], num_inference_steps)
            timesteps = [f32(t) for t in timesteps_for_sigmas(sigmas, table)]
        self.timesteps = timesteps
        self.sigmas = [f32(s) for s in sigmas] + [0.0]
        top = max(self.sigmas)
        self.init_noise_sigma = top if c.timestep_spacing in ("linspace", "trailing") else math.sqrt(top * top + 1)

    @property
    def karras(self) -> bool:
        return self.config.use_karras_sigmas

    def model_input_scale(self, step_index):
        self._check(step_index)
        sigma = self.sigmas[step_index]
        return 1.0 / math.sqrt(sigma * sigma + 1)

    def _coefficients(self, i):
        x0 = ve_x0_coefficients(self.config.prediction_type, self.sigmas[i])
        next_x, next_m = euler_move(x0, self.sigmas[i], self.sigmas[i + 1])
        return StepCoefficients(x0_from_x=x0[0], x0_from_model=x0[1], next_from_x=next_x, next_from_model=next_m)
