"""The five schedulers against diffusers' classes: the whole denoise loop run side by side in float64 on a fake
model, with diffusers fed the same per-step noise, comparing timesteps, sigmas, UNet inputs and every x_next."""

import dataclasses
import inspect
import math

import numpy as np
import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    LCMScheduler,
)
from diffusers.schedulers import scheduling_euler_ancestral_discrete, scheduling_lcm

from doppler.inference.diffusion.schedulers import SCHEDULERS, SchedulerConfigError, StepCoefficients, make_scheduler
from reference.schedulers import run_loop

# Stable Diffusion 1.5's scheduler_config.json (a PNDM config: keys the other classes do not take are ignored).
SD15 = {
    "_class_name": "PNDMScheduler",
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "trained_betas": None,
    "clip_sample": False,
}
DIFFUSERS = {
    "ddim": DDIMScheduler,
    "euler": EulerDiscreteScheduler,
    "euler_a": EulerAncestralDiscreteScheduler,
    "dpmpp_2m": DPMSolverMultistepScheduler,
    "lcm": LCMScheduler,
}
# Error bounds in float64. Latents: max|ours - diffusers| / max|diffusers| per step. Sigmas: elementwise relative;
# float32 in both and equal up to a float32 ulp (2^-23 relative at worst), since torch's float32 sqrt is not
# correctly rounded (see schedule.py). Euler's Karras timesteps interpolate float32 log sigmas, so that ulp,
# divided by the log-sigma gap between training timesteps, lands in them (absolute, in timestep units), on top
# of their own float32 rounding (relative).
LATENT_TOL = 1e-6
SIGMA_TOL = 2.5e-7
FRACTIONAL_TIMESTEP_TOL = (1e-5, 2.5e-7)
SHAPE = (1, 4, 8, 8)

CASES = [
    ("ddim", {}, 20, 0.0),
    ("ddim", {}, 25, 0.0),
    ("ddim", {"timestep_spacing": "trailing"}, 25, 0.0),
    ("ddim", {"timestep_spacing": "linspace"}, 20, 0.0),
    ("ddim", {"prediction_type": "v_prediction", "timestep_spacing": "trailing"}, 25, 0.0),
    ("ddim", {}, 20, 1.0),
    ("ddim", {"set_alpha_to_one": True}, 25, 0.5),
    ("euler", {}, 25, 0.0),
    ("euler", {"timestep_spacing": "leading"}, 20, 0.0),
    ("euler", {"timestep_spacing": "trailing"}, 25, 0.0),
    ("euler", {"prediction_type": "v_prediction"}, 25, 0.0),
    ("euler", {"use_karras_sigmas": True}, 25, 0.0),
    ("euler", {"use_karras_sigmas": True, "timestep_spacing": "leading"}, 20, 0.0),
    ("euler_a", {}, 25, 0.0),
    ("euler_a", {"timestep_spacing": "leading"}, 20, 0.0),
    ("euler_a", {"timestep_spacing": "trailing", "prediction_type": "v_prediction"}, 25, 0.0),
    ("dpmpp_2m", {}, 20, 0.0),
    ("dpmpp_2m", {}, 25, 0.0),
    ("dpmpp_2m", {"timestep_spacing": "leading"}, 25, 0.0),
    ("dpmpp_2m", {"timestep_spacing": "trailing"}, 20, 0.0),
    ("dpmpp_2m", {"use_karras_sigmas": True}, 25, 0.0),
    ("dpmpp_2m", {"use_karras_sigmas": True, "prediction_type": "v_prediction"}, 20, 0.0),
    ("dpmpp_2m", {"prediction_type": "v_prediction"}, 8, 0.0),
    ("ddim", {}, 1, 0.3),
    ("euler_a", {}, 2, 0.0),
    ("dpmpp_2m", {"timestep_spacing": "trailing"}, 2, 0.0),
    ("lcm", None, 4, 0.0),  # LCMScheduler's own defaults
    ("lcm", {"original_inference_steps": 50}, 1, 0.0),
    ("lcm", {"original_inference_steps": 50}, 4, 0.0),
    ("lcm", {"original_inference_steps": 50}, 8, 0.0),
    ("lcm", {"prediction_type": "v_prediction"}, 4, 0.0),
]


def case_id(case):
    kind, overrides, steps, eta = case
    extra = "lcm-defaults" if overrides is None else ",".join(f"{k}={v}" for k, v in overrides.items()) or "sd15"
    return f"{kind}-{extra}-{steps}steps" + (f"-eta{eta}" if eta else "")


def config_for(overrides):
    return {} if overrides is None else {**SD15, **overrides}


class FakeUNet:
    """A deterministic stand-in for the UNet that depends on both x and t: tanh(W x + time terms)."""

    def __init__(self, seed=1):
        rng = np.random.default_rng(seed)
        self.mix = rng.normal(size=(4, 4)) * 0.6
        self.bias = rng.normal(size=(4, 1, 1))

    def __call__(self, x_in, t):
        t = float(t)
        time_terms = self.bias * math.cos(t / 150) + 0.3 * math.sin(t / 70)
        return np.tanh(np.einsum("cd,bdhw->bchw", self.mix, x_in) + time_terms)


def x0_of(kind, out, scheduler):
    """The x0 diffusers computed in this step (for LCM the boundary-scaled `denoised`, for DPM++ its history)."""
    if kind == "lcm":
        return out.denoised
    if kind == "dpmpp_2m":
        return scheduler.model_outputs[-1]
    return out.pred_original_sample


def diffusers_loop(kind, config, steps, eta, initial_noise, model, step_noise, monkeypatch):
    """diffusers' pipeline loop, with its noise draws replaced by step_noise(i)."""
    scheduler = DIFFUSERS[kind].from_config(config, **({"algorithm_type": "dpmsolver++", "solver_order": 2}
                                                       if kind == "dpmpp_2m" else {}))
    scheduler.set_timesteps(steps)
    step = {"i": 0}

    def fake_randn(shape, generator=None, device=None, dtype=None, layout=None):
        return torch.from_numpy(step_noise(step["i"])).to(dtype)

    for module in (scheduling_euler_ancestral_discrete, scheduling_lcm):
        monkeypatch.setattr(module, "randn_tensor", fake_randn)
    x = torch.from_numpy(initial_noise) * scheduler.init_noise_sigma
    records = []
    for i, t in enumerate(scheduler.timesteps):
        step["i"] = i
        x_in = scheduler.scale_model_input(x, t)
        model_output = torch.from_numpy(model(x_in.numpy(), t.item()))
        kwargs = {"eta": eta, "variance_noise": torch.from_numpy(step_noise(i))} if kind == "ddim" and eta else {}
        out = scheduler.step(model_output, t, x, **kwargs)
        x = out.prev_sample
        records.append({"t": t.item(), "model_input": x_in.numpy(), "x0": x0_of(kind, out, scheduler).numpy(),
                        "x_next": x.numpy()})
    return scheduler, records


def fractional_timesteps(kind, config):
    """Euler's Karras timesteps are fractional and not bit-exact (see FRACTIONAL_TIMESTEP_TOL); all others are."""
    return kind == "euler" and config.get("use_karras_sigmas", False)


def elementwise_rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.where(b == 0, 1.0, np.abs(b))
    return float(np.max(np.abs(a - b) / scale))


def rel_err(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(np.max(np.abs(np.asarray(b))), 1e-30))


def compare(case, monkeypatch, ours=None):
    """Mismatches between our loop and diffusers' for one case (empty if they agree), first ones first."""
    kind, overrides, steps, eta = case
    config = config_for(overrides)
    ours = ours or make_scheduler(kind, config, eta=eta)
    rng = np.random.default_rng(0)
    initial = rng.normal(size=SHAPE)
    noises = [rng.normal(size=SHAPE) for _ in range(steps)]
    model = FakeUNet()
    theirs, ref = diffusers_loop(kind, config, steps, eta, initial, model, noises.__getitem__, monkeypatch)
    got = run_loop(ours, steps, initial, model, noises.__getitem__)
    problems = []
    want_t = theirs.timesteps.tolist()
    if fractional_timesteps(kind, config):
        atol, rtol = FRACTIONAL_TIMESTEP_TOL
        if len(ours.timesteps) != len(want_t) or not np.allclose(ours.timesteps, want_t, rtol=rtol, atol=atol):
            problems.append(f"timesteps: got {ours.timesteps}, want {want_t}")
    elif ours.timesteps != want_t:
        problems.append(f"timesteps: got {ours.timesteps}, want {want_t}")
    if (ours.sigmas is None) != (kind in ("ddim", "lcm")):
        problems.append(f"sigmas: got {ours.sigmas}")
    elif ours.sigmas is not None and not elementwise_rel_err(ours.sigmas, theirs.sigmas.tolist()) <= SIGMA_TOL:
        problems.append(f"sigmas: got {ours.sigmas}, want {theirs.sigmas.tolist()}")
    for i, (g, r) in enumerate(zip(got, ref)):
        for key in ("model_input", "x0", "x_next"):
            err = rel_err(g[key], r[key])
            if not err <= LATENT_TOL:
                problems.append(f"step {i} (t={r['t']}): {key} relative error {err:.3g} > {LATENT_TOL:g}")
    if len(got) != len(ref):
        problems.append(f"ran {len(got)} steps, diffusers ran {len(ref)}")
    return problems


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_loop_matches_diffusers(case, monkeypatch):
    problems = compare(case, monkeypatch)
    assert not problems, "\n".join(problems[:10])


# --- the comparison can fail: each coefficient, the UNet input scale and the timestep, slightly off ---

COEFFICIENT_FIELDS = [f.name for f in dataclasses.fields(StepCoefficients)]
SKEW = 1e-4
SANITY_CASES = [
    ("ddim", {"prediction_type": "v_prediction"}, 8, 0.5),
    ("euler", {"use_karras_sigmas": True, "prediction_type": "v_prediction"}, 8, 0.0),
    ("euler_a", {}, 8, 0.0),
    ("dpmpp_2m", {"use_karras_sigmas": True}, 8, 0.0),
    ("lcm", {"original_inference_steps": 50}, 4, 0.0),
]


class Skewed:
    """Our scheduler with one thing off: a StepCoefficients field or the input scale by a relative SKEW, or the
    UNet's timestep by one."""

    def __init__(self, inner, target):
        self.inner, self.target = inner, target

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def step_coefficients(self, i):
        c = self.inner.step_coefficients(i)
        if self.target in COEFFICIENT_FIELDS:
            c = dataclasses.replace(c, **{self.target: getattr(c, self.target) * (1 + SKEW)})
        return c

    def needs_noise(self, i):
        return self.step_coefficients(i).next_from_noise != 0.0

    def model_input_scale(self, i):
        return self.inner.model_input_scale(i) * (1 + SKEW if self.target == "model_input_scale" else 1)

    def model_timestep(self, i):
        return self.inner.model_timestep(i) + (1 if self.target == "model_timestep" else 0)


@pytest.mark.parametrize("case", SANITY_CASES, ids=[case_id(c) for c in SANITY_CASES])
def test_comparison_catches_any_wrong_coefficient(case, monkeypatch):
    kind, overrides, steps, eta = case
    assert not compare(case, monkeypatch)
    probe = make_scheduler(kind, config_for(overrides), eta=eta)
    probe.set_timesteps(steps)
    used = [f for f in COEFFICIENT_FIELDS if any(getattr(probe.step_coefficients(i), f) for i in range(steps))]
    assert {"x0_from_x", "x0_from_model"} <= set(used)
    for target in used + ["model_input_scale", "model_timestep"]:
        skewed = Skewed(make_scheduler(kind, config_for(overrides), eta=eta), target)
        assert compare(case, monkeypatch, ours=skewed), f"{kind}: a wrong {target} went unnoticed"


# --- tables, config handling, interface ---


@pytest.mark.parametrize("schedule", [("linear", 0.0001, 0.02), ("scaled_linear", 0.00085, 0.012),
                                      ("linear", 0.00085, 0.012), ("scaled_linear", 0.0001, 0.03)])
def test_alphas_cumprod_bit_exact(schedule):
    beta_schedule, beta_start, beta_end = schedule
    config = {"beta_schedule": beta_schedule, "beta_start": beta_start, "beta_end": beta_end, "clip_sample": False}
    ours = make_scheduler("ddim", config).alphas_cumprod
    theirs = DDIMScheduler.from_config(config).alphas_cumprod.tolist()
    assert ours == theirs, f"first differing t: {next(t for t, (a, b) in enumerate(zip(ours, theirs)) if a != b)}"


@pytest.mark.parametrize("kind", list(SCHEDULERS))
def test_config_keys_and_defaults_are_diffusers(kind):
    params = inspect.signature(DIFFUSERS[kind].__init__).parameters
    ours = {f.name: f.default for f in dataclasses.fields(SCHEDULERS[kind].config_class)}
    theirs = {name: p.default for name, p in params.items() if name != "self"}
    assert ours == theirs


@pytest.mark.parametrize("kind, override, key", [
    ("ddim", {"clip_sample": True}, "clip_sample"),
    ("lcm", {"clip_sample": True}, "clip_sample"),
    ("ddim", {"beta_schedule": "squaredcos_cap_v2"}, "beta_schedule"),
    ("ddim", {"thresholding": True}, "thresholding"),
    ("euler", {"prediction_type": "sample"}, "prediction_type"),
    ("euler", {"use_exponential_sigmas": True}, "use_exponential_sigmas"),
    ("euler_a", {"timestep_spacing": "uniform"}, "timestep_spacing"),
    ("dpmpp_2m", {"algorithm_type": "sde-dpmsolver++"}, "algorithm_type"),
    ("dpmpp_2m", {"solver_order": 3}, "solver_order"),
    ("dpmpp_2m", {"final_sigmas_type": "sigma_min"}, "final_sigmas_type"),
    ("ddim", {"num_train_timesteps": "1000"}, "num_train_timesteps"),
    ("ddim", {"set_alpha_to_one": 0}, "set_alpha_to_one"),
    ("lcm", {"beta_start": -0.1}, "beta_start"),
])
def test_unsupported_config_value_names_key(kind, override, key):
    with pytest.raises(SchedulerConfigError, match=key):
        make_scheduler(kind, {**SD15, **override})


def test_ddim_requires_clip_sample_off():
    """diffusers' DDIM clips x0 unless the config says otherwise; clipping is not a linear update."""
    config = {k: v for k, v in SD15.items() if k != "clip_sample"}
    with pytest.raises(SchedulerConfigError, match="'clip_sample' is True; supported: False"):
        make_scheduler("ddim", config)


def test_factory_errors():
    with pytest.raises(SchedulerConfigError, match="unknown scheduler 'pndm'.*ddim, euler, euler_a, dpmpp_2m, lcm"):
        make_scheduler("pndm", SD15)
    with pytest.raises(SchedulerConfigError, match="eta applies only to the ddim"):
        make_scheduler("euler", SD15, eta=0.5)
    with pytest.raises(ValueError, match="eta must be in"):
        make_scheduler("ddim", SD15, eta=1.5)


def test_step_errors():
    scheduler = make_scheduler("euler", SD15)
    with pytest.raises(RuntimeError, match="set_timesteps"):
        scheduler.step_coefficients(0)
    with pytest.raises(ValueError, match="num_inference_steps"):
        scheduler.set_timesteps(0)
    scheduler.set_timesteps(10)
    with pytest.raises(IndexError, match="step_index 10"):
        scheduler.model_timestep(10)
    with pytest.raises(ValueError, match="original_inference_steps"):
        make_scheduler("lcm", SD15).set_timesteps(51)


@pytest.mark.parametrize("kind, eta, noisy", [
    ("ddim", 0.0, "none"), ("ddim", 0.5, "all"), ("euler", 0.0, "none"), ("euler_a", 0.0, "all but last"),
    ("dpmpp_2m", 0.0, "none"), ("lcm", 0.0, "all but last"),
])
def test_needs_noise(kind, eta, noisy):
    scheduler = make_scheduler(kind, SD15, eta=eta)
    scheduler.set_timesteps(6)
    want = {"none": [False] * 6, "all": [True] * 6, "all but last": [True] * 5 + [False]}[noisy]
    assert [scheduler.needs_noise(i) for i in range(6)] == want
