"""DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2), as diffusers' DPMSolverMultistepScheduler with
algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint".

Variance-preserving x = alpha_t x0 + sigma_t eps with alpha_t = 1 / sqrt(1 + s_t^2), sigma_t = s_t alpha_t for the
schedule's sigma s_t, and half log-SNR lambda_t = log(alpha_t / sigma_t) = -log(s_t). From step s0 (previous step s1) to t:
    x0 = (x - sigma_s0 eps) / alpha_s0                    (v-prediction: x0 = alpha_s0 x - sigma_s0 v)
    h = lambda_t - lambda_s0,  r0 = (lambda_s0 - lambda_s1) / h
    x_next = (sigma_t / sigma_s0) x - alpha_t (e^-h - 1) (x0 + (x0 - x0_prev) / (2 r0))
The first step (no history) and the last (s_N = 0, diffusers' final_sigmas_type "zero") are first order, i.e. the
x0_prev term dropped; the last one returns x0.
"""

import math
from dataclasses import dataclass

from .base import Scheduler, SchedulerConfig, StepCoefficients, option, pinned, vp_x0_coefficients
from .schedule import f32, karras_sigmas, np_interp_table, spaced_timesteps, timesteps_for_sigmas, train_sigmas


@dataclass(frozen=True)
class DPMSolverConfig(SchedulerConfig):
    solver_order: int = pinned(2)
    thresholding: bool = pinned(False)
    dynamic_thresholding_ratio: float = 0.995
    sample_max_value: float = 1.0
    algorithm_type: str = pinned("dpmsolver++")
    solver_type: str = pinned("midpoint")
    lower_order_final: bool = True  # no effect at order 2 with a zero final sigma
    euler_at_final: bool = False  # likewise
    use_karras_sigmas: bool = False
    use_exponential_sigmas: bool = pinned(False)
    use_beta_sigmas: bool = pinned(False)
    use_lu_lambdas: bool = pinned(False)
    use_flow_sigmas: bool = pinned(False)
    flow_shift: float = 1.0
    final_sigmas_type: str = pinned("zero")
    lambda_min_clipped: float = option(-math.inf, (-math.inf,))
    variance_type: object = pinned(None)
    timestep_spacing: str = option("linspace", ("leading", "trailing", "linspace"))
    steps_offset: int = 0
    use_dynamic_shifting: bool = pinned(False)
    time_shift_type: str = "exponential"


def _alpha_sigma(s: float) -> tuple[float, float]:
    alpha = 1.0 / math.sqrt(s * s + 1)
    return alpha, s * alpha


class DPMSolverPlusPlus2MScheduler(Scheduler):
    config_class = DPMSolverConfig
    name = "dpmpp_2m"

    def _set_timesteps(self, num_inference_steps):
        c = self.config
        T = c.num_train_timesteps
        if c.timestep_spacing == "trailing":
            timesteps = spaced_timesteps("trailing", T, num_inference_steps, c.steps_offset)
        else:  # N + 1 points with the final t = 0 dropped
            timesteps = spaced_timesteps(c.timestep_spacing, T, num_inference_steps + 1, c.steps_offset)[:-1]
        table = train_sigmas(self.alphas_cumprod)
        if c.use_karras_sigmas:
            sigmas = karras_sigmas(table[0], table[-1], num_inference_steps)
            timesteps = [round(t) for t in timesteps_for_sigmas(sigmas, table)]
        else:
            sigmas = [np_interp_table(t, table) for t in timesteps]
        self.timesteps = timesteps
        self.sigmas = [f32(s) for s in sigmas] + [0.0]

    def _coefficients(self, i):
        s_t, s_s0 = self.sigmas[i + 1], self.sigmas[i]
        alpha_s0, sigma_s0 = _alpha_sigma(s_s0)
        x0_x, x0_m = vp_x0_coefficients(self.config.prediction_type, alpha_s0, sigma_s0)
        if s_t == 0.0:  # lambda_t = +inf: e^-h = 0 and x_next = x0
            return StepCoefficients(x0_from_x=x0_x, x0_from_model=x0_m, next_from_x0=1.0)
        alpha_t, sigma_t = _alpha_sigma(s_t)
        h = math.log(s_s0 / s_t)  # lambda = log(alpha / sigma) = -log(s)
        gain = -alpha_t * math.expm1(-h)  # the weight of x0 in a first-order step
        history = 0.0
        if i > 0:
            r0 = math.log(self.sigmas[i - 1] / s_s0) / h
            history = gain / (2 * r0)
        return StepCoefficients(
            x0_from_x=x0_x, x0_from_model=x0_m,
            next_from_x=sigma_t / sigma_s0, next_from_x0=gain + history, next_from_x0_prev=-history,
        )
