"""The five samplers, pure Python (they run in the page): make_scheduler(kind, config) from a diffusers config."""

from collections.abc import Mapping
from typing import Any

from .base import Scheduler, SchedulerConfigError, StepCoefficients
from .ddim import DDIMScheduler
from .dpmpp_2m import DPMSolverPlusPlus2MScheduler
from .euler import EulerScheduler
from .euler_ancestral import EulerAncestralScheduler
from .lcm import LCMScheduler

SCHEDULERS: dict[str, type[Scheduler]] = {
    cls.name: cls
    for cls in (DDIMScheduler, EulerScheduler, EulerAncestralScheduler, DPMSolverPlusPlus2MScheduler, LCMScheduler)
}

__all__ = ["SCHEDULERS", "Scheduler", "SchedulerConfigError", "StepCoefficients", "make_scheduler"]


def make_scheduler(kind: str, config: Mapping[str, Any], *, eta: float = 0.0) -> Scheduler:
    """A scheduler of this kind ("ddim", "euler", "euler_a", "dpmpp_2m", "lcm") from the model's diffusers scheduler
    config. eta is DDIM's stochasticity (0 = DDIM, 1 = DDPM); the other samplers take none."""
    if kind not in SCHEDULERS:
        raise SchedulerConfigError(f"unknown scheduler {kind!r}; choose one of: {', '.join(SCHEDULERS)}")
    if kind == "ddim":
        return DDIMScheduler(config, eta=eta)
    if eta != 0.0:
        raise SchedulerConfigError(f"eta applies only to the ddim scheduler, not {kind!r}; leave it at 0")
    return SCHEDULERS[kind](config)
