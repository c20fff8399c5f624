"""Latent Consistency Model multistep sampling (Luo et al. 2023, "Latent Consistency Models", Algorithm 3), as
diffusers' LCMScheduler.

With a_t = alpha_bar_t, the consistency function's boundary scalings (Song et al. 2023, "Consistency Models",
with sigma_data = 0.5 and the timestep scaled by timestep_scaling) c_skip = sigma_data^2 / ((s t)^2 + sigma_data^2)
and c_out = s t / sqrt((s t)^2 + sigma_data^2):
    x0        = (x - sqrt(1 - a_t) eps) / sqrt(a_t)        (v-prediction: x0 = sqrt(a_t) x - sqrt(1 - a_t) v)
    denoised  = c_out x0 + c_skip x
    x_next    = sqrt(a_t') denoised + sqrt(1 - a_t') noise  (t' the next timestep; the last step returns denoised)
The kernel's x0 here is `denoised`. Timesteps: N evenly skipped from the distillation schedule of
original_inference_steps timesteps k i - 1 (k = T // original_inference_steps, i = 1..original_inference_steps).
"""

import math
from dataclasses import dataclass

from .base import Scheduler, SchedulerConfig, StepCoefficients, option, pinned, vp_x0_coefficients
from .schedule import np_linspace

# The data standard deviation in the consistency-model boundary condition; diffusers fixes it at 0.5.
SIGMA_DATA = 0.5


@dataclass(frozen=True)
class LCMConfig(SchedulerConfig):
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: str = option("scaled_linear", ("linear", "scaled_linear"))
    original_inference_steps: int = 50
    clip_sample: bool = option(False, (False,))
    clip_sample_range: float = 1.0
    set_alpha_to_one: bool = True  # no effect: LCM's previous timestep is never below 0
    steps_offset: int = 0  # no effect on LCM's timesteps
    thresholding: bool = pinned(False)
    dynamic_thresholding_ratio: float = 0.995
    sample_max_value: float = 1.0
    timestep_spacing: str = "leading"  # no effect on LCM's timesteps
    timestep_scaling: float = 10.0


class LCMScheduler(Scheduler):
    config_class = LCMConfig
    name = "lcm"

    def _set_timesteps(self, num_inference_steps):
        c = self.config
        original = c.original_inference_steps
        if not 1 <= original <= c.num_train_timesteps:
            raise ValueError(
                f"lcm scheduler: original_inference_steps must be in 1..{c.num_train_timesteps}, got {original}"
            )
        if num_inference_steps > original:
            raise ValueError(f"lcm scheduler: num_inference_steps ({num_inference_steps}) cannot exceed "
                             f"original_inference_steps ({original}): the timesteps are a subset of that schedule")
        k = c.num_train_timesteps // original
        origin = [i * k - 1 for i in range(original, 0, -1)]
        self.timesteps = [origin[math.floor(j)] for j in np_linspace(0, original, num_inference_steps, endpoint=False)]

    def _coefficients(self, i):
        t = self.timesteps[i]
        last = i == len(self.timesteps) - 1
        a = self.alphas_cumprod[t]
        scaled_t = t * self.config.timestep_scaling
        c_skip = SIGMA_DATA**2 / (scaled_t**2 + SIGMA_DATA**2)
        c_out = scaled_t / math.sqrt(scaled_t**2 + SIGMA_DATA**2)
        x0_x, x0_m = vp_x0_coefficients(self.config.prediction_type, math.sqrt(a), math.sqrt(1 - a))
        if last:
            keep, fresh = 1.0, 0.0
        else:
            a_next = self.alphas_cumprod[self.timesteps[i + 1]]
            keep, fresh = math.sqrt(a_next), math.sqrt(1 - a_next)
        return StepCoefficients(
            x0_from_x=c_out * x0_x + c_skip, x0_from_model=c_out * x0_m, next_from_x0=keep, next_from_noise=fresh
        )
