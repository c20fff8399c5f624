"""What every scheduler shares: its config read from a diffusers scheduler config, and the step it hands the GPU.

A scheduler computes timesteps, sigmas and, per step, the scalar coefficients of one linear update; the
scheduler-update kernel applies them elementwise on the GPU (StepCoefficients says how). Every supported update
is linear in (x, model_output, x0_prev, noise) with scalar coefficients: the model output (eps or v) and x map
to x0 linearly, and each sampler's next sample is a linear combination of x, x0, the previous x0 and noise.
"""

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from .schedule import alphas_cumprod

_ALLOWED = "allowed"


class SchedulerConfigError(ValueError):
    """A scheduler config value that diffusers accepts but Doppler does not implement, or that is malformed."""


def option(default: Any, allowed: tuple) -> Any:
    """A config field whose supported values are `allowed` (diffusers' default may be outside them: then the key
    must be given)."""
    return dataclasses.field(default=default, metadata={_ALLOWED: allowed})


def pinned(default: Any) -> Any:
    """A config field implemented only at its diffusers default."""
    return option(default, (default,))


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b  # 0 must not pass for False


def _fits(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


@dataclass(frozen=True)
class SchedulerConfig:
    """The keys of a diffusers scheduler config, with that class's defaults. Each scheduler subclasses it with
    exactly the __init__ parameters of its diffusers class (a test keeps them in step)."""

    num_train_timesteps: int = 1000
    beta_start: float = 0.0001
    beta_end: float = 0.02
    beta_schedule: str = option("linear", ("linear", "scaled_linear"))
    trained_betas: object = pinned(None)
    prediction_type: str = option("epsilon", ("epsilon", "v_prediction"))
    rescale_betas_zero_snr: bool = pinned(False)

    @classmethod
    def from_diffusers(cls, config: Mapping[str, Any], scheduler: str) -> Self:
        """Read a diffusers scheduler config (e.g. a model's scheduler_config.json). Keys this scheduler's diffusers
        class does not take are ignored, as diffusers' from_config ignores them."""
        values = {}
        for f in dataclasses.fields(cls):
            value = config.get(f.name, f.default)
            allowed = f.metadata.get(_ALLOWED)
            if allowed is not None and not any(_same(value, a) for a in allowed):
                raise SchedulerConfigError(
                    f"{scheduler} scheduler: config key {f.name!r} is {value!r}; supported: "
                    + ", ".join(repr(a) for a in allowed)
                )
            if allowed is None and not _fits(value, f.type):
                raise SchedulerConfigError(
                    f"{scheduler} scheduler: config key {f.name!r} must be a finite {f.type.__name__}, got {value!r}"
                )
            values[f.name] = value
        if values["num_train_timesteps"] < 1:
            raise SchedulerConfigError(f"{scheduler} scheduler: num_train_timesteps must be positive")
        if not (0 <= values["beta_start"] < 1 and 0 <= values["beta_end"] < 1):
            raise SchedulerConfigError(f"{scheduler} scheduler: beta_start and beta_end must be in [0, 1)")
        return cls(**values)


@dataclass(frozen=True)
class StepCoefficients:
    """One denoising step as scalars, applied elementwise by the scheduler-update kernel:

        x0     = x0_from_x * x + x0_from_model * model_output
        x_next = next_from_x * x + next_from_model * model_output + next_from_x0 * x0
                 + next_from_x0_prev * x0_prev + next_from_noise * noise

    x is the current latent (unscaled: model_input_scale is applied only to the UNet's input), model_output the
    UNet's prediction after classifier-free guidance (eps or v, per the config's prediction_type), x0_prev the x0
    the kernel wrote at the previous step (DPM++ 2M's history; its coefficient is 0 at step 0), and noise fresh
    unit Gaussian noise for this step (its coefficient is 0 where needs_noise is false). The kernel writes both
    x_next and x0; after the last step x_next is the final latent (what diffusers' pipeline decodes).
    """

    x0_from_x: float
    x0_from_model: float
    next_from_x: float = 0.0
    next_from_model: float = 0.0
    next_from_x0: float = 0.0
    next_from_x0_prev: float = 0.0
    next_from_noise: float = 0.0


def vp_x0_coefficients(prediction_type: str, alpha: float, sigma: float) -> tuple[float, float]:
    """(x0_from_x, x0_from_model) for x = alpha x0 + sigma eps (variance preserving, alpha^2 + sigma^2 = 1):
    eps-prediction x0 = (x - sigma eps) / alpha; v-prediction (v = alpha eps - sigma x0) x0 = alpha x - sigma v."""
    if prediction_type == "epsilon":
        return 1.0 / alpha, -sigma / alpha
    return alpha, -sigma


class Scheduler:
    """The interface the pipeline drives: set_timesteps once, then per step index i (0-based) the UNet gets
    model_input_scale(i) * x at model_timestep(i), and the kernel applies step_coefficients(i)."""

    config_class: ClassVar[type[SchedulerConfig]]
    name: ClassVar[str]
    # The factor on the initial unit Gaussian noise (read it after set_timesteps: the Euler samplers set it there).
    init_noise_sigma: float = 1.0

    def __init__(self, config: Mapping[str, Any]):
        self.config = self.config_class.from_diffusers(config, self.name)
        c = self.config
        self.alphas_cumprod = alphas_cumprod(c.beta_schedule, c.beta_start, c.beta_end, c.num_train_timesteps)
        self.timesteps: list[int] | list[float] = []
        self.sigmas: list[float] | None = None

    def set_timesteps(self, num_inference_steps: int) -> None:
        """Compute timesteps (and sigmas) for this many steps; len(timesteps) is the number of steps to run."""
        limit = self.config.num_train_timesteps
        if not (isinstance(num_inference_steps, int) and 1 <= num_inference_steps <= limit):
            raise ValueError(f"{self.name} scheduler: num_inference_steps must be an int in 1..{limit}, "
                             f"got {num_inference_steps!r}")
        self._set_timesteps(num_inference_steps)

    def model_input_scale(self, step_index: int) -> float:
        """diffusers' scale_model_input as a factor: the UNet's input is this times x."""
        self._check(step_index)
        return 1.0

    def model_timestep(self, step_index: int) -> int | float:
        """The timestep the UNet is conditioned on at this step."""
        self._check(step_index)
        return self.timesteps[step_index]

    def step_coefficients(self, step_index: int) -> StepCoefficients:
        self._check(step_index)
        return self._coefficients(step_index)

    def needs_noise(self, step_index: int) -> bool:
        """Whether this step's update reads fresh noise (so the GPU noise generator runs only then)."""
        return self.step_coefficients(step_index).next_from_noise != 0.0

    def _check(self, step_index: int) -> None:
        if not self.timesteps:
            raise RuntimeError(f"{self.name} scheduler: call set_timesteps before stepping")
        if not 0 <= step_index < len(self.timesteps):
            raise IndexError(f"{self.name} scheduler: step_index {step_index} is outside 0..{len(self.timesteps) - 1}")

    def _set_timesteps(self, num_inference_steps: int) -> None:
        raise NotImplementedError

    def _coefficients(self, step_index: int) -> StepCoefficients:
        raise NotImplementedError
