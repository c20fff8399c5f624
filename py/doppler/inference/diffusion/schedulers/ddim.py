"""DDIM (Song et al. 2021, "Denoising Diffusion Implicit Models"), as diffusers' DDIMScheduler.

With a_t = alpha_bar_t and the previous timestep t' = t - T // N (diffusers' rule for every spacing; a_t' is
final_alpha_cumprod below t' = 0), eq. 12:
    x0     = (x - sqrt(1 - a_t) eps) / sqrt(a_t)
    s_t    = eta * sqrt((1 - a_t') / (1 - a_t) * (1 - a_t / a_t'))
    x_next = sqrt(a_t') x0 + sqrt(1 - a_t' - s_t^2) eps + s_t noise
eta = 0 is deterministic DDIM, eta = 1 is DDPM. For v-prediction x0 = sqrt(a_t) x - sqrt(1 - a_t) v and
eps = sqrt(a_t) v + sqrt(1 - a_t) x. Sample clipping and thresholding are not supported (not linear).
"""

import math
from dataclasses import dataclass

from .base import Scheduler, SchedulerConfig, StepCoefficients, option, pinned, vp_x0_coefficients
from .schedule import spaced_timesteps


@dataclass(frozen=True)
class DDIMConfig(SchedulerConfig):
    clip_sample: bool = option(True, (False,))
    set_alpha_to_one: bool = True
    steps_offset: int = 0
    thresholding: bool = pinned(False)
    dynamic_thresholding_ratio: float = 0.995
    clip_sample_range: float = 1.0
    sample_max_value: float = 1.0
    timestep_spacing: str = option("leading", ("leading", "trailing", "linspace"))


class DDIMScheduler(Scheduler):
    config_class = DDIMConfig
    name = "ddim"

    def __init__(self, config, eta: float = 0.0):
        super().__init__(config)
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"ddim scheduler: eta must be in [0, 1] (0 = DDIM, 1 = DDPM), got {eta!r}")
        self.eta = eta
        self.final_alpha_cumprod = 1.0 if self.config.set_alpha_to_one else self.alphas_cumprod[0]

    def _set_timesteps(self, num_inference_steps):
        c = self.config
        T = c.num_train_timesteps
        self.timesteps = spaced_timesteps(c.timestep_spacing, T, num_inference_steps, c.steps_offset)
        self.stride = T // num_inference_steps

    def _coefficients(self, i):
        t = self.timesteps[i]
        a = self.alphas_cumprod[t]
        a_prev = self.alphas_cumprod[t - self.stride] if t - self.stride >= 0 else self.final_alpha_cumprod
        x0_x, x0_m = vp_x0_coefficients(self.config.prediction_type, math.sqrt(a), math.sqrt(1 - a))
        eps_x, eps_m = (0.0, 1.0) if self.config.prediction_type == "epsilon" else (math.sqrt(1 - a), math.sqrt(a))
        std = self.eta * math.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
        direction = math.sqrt(max(1 - a_prev - std * std, 0.0))  # exactly 0 at eta = 1 up to rounding
        return StepCoefficients(
            x0_from_x=x0_x, x0_from_model=x0_m,
            next_from_x=direction * eps_x, next_from_model=direction * eps_m,
            next_from_x0=math.sqrt(a_prev), next_from_noise=std,
        )
