"""Euler ancestral (Karras et al. 2022's Euler step plus the ancestral noise of k-diffusion's sample_euler_ancestral,
eta = 1), as diffusers' EulerAncestralDiscreteScheduler.

Same variance-exploding x = x0 + sigma eps as euler.py. Going from sigma to sigma_next, split the target noise
into a deterministic part sigma_down and fresh noise sigma_up:
    sigma_up   = sqrt(sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2),  sigma_down = sqrt(sigma_next^2 - sigma_up^2)
    x_next     = x + (sigma_down - sigma) (x - x0) / sigma + sigma_up noise
sigma_N = 0 gives sigma_up = 0 at the last step, which returns x0. No Karras sigmas here (diffusers has none).
"""

import math
from dataclasses import dataclass

from .base import SchedulerConfig, StepCoefficients, option
from .euler import EulerScheduler, euler_move, ve_x0_coefficients


@dataclass(frozen=True)
class EulerAncestralConfig(SchedulerConfig):
    timestep_spacing: str = option("linspace", ("leading", "trailing", "linspace"))
    steps_offset: int = 0


class EulerAncestralScheduler(EulerScheduler):
    config_class = EulerAncestralConfig
    name = "euler_a"
    karras = False

    def _coefficients(self, i):
        sigma, sigma_to = self.sigmas[i], self.sigmas[i + 1]
        sigma_up = math.sqrt(sigma_to**2 * (sigma**2 - sigma_to**2) / sigma**2)
        sigma_down = math.sqrt(sigma_to**2 - sigma_up**2)
        x0 = ve_x0_coefficients(self.config.prediction_type, sigma)
        next_x, next_m = euler_move(x0, sigma, sigma_down)
        return StepCoefficients(
            x0_from_x=x0[0], x0_from_model=x0[1], next_from_x=next_x, next_from_model=next_m, next_from_noise=sigma_up
        )
