"""numpy (float64) application of Doppler's StepCoefficients: what the scheduler-update kernel computes."""

import numpy as np


def apply_step(c, x: np.ndarray, model_output: np.ndarray, x0_prev: np.ndarray, noise: np.ndarray):
    """One scheduler update; returns (x0, x_next) as the kernel writes them."""
    x0 = c.x0_from_x * x + c.x0_from_model * model_output
    x_next = (
        c.next_from_x * x
        + c.next_from_model * model_output
        + c.next_from_x0 * x0
        + c.next_from_x0_prev * x0_prev
        + c.next_from_noise * noise
    )
    return x0, x_next


def run_loop(scheduler, num_inference_steps: int, initial_noise: np.ndarray, model, step_noise) -> list[dict]:
    """The denoise loop as the pipeline drives it: per step the UNet input and timestep, then the update.
    model(x_in, t) -> model_output; step_noise(i) -> this step's unit Gaussian noise (drawn only if needed)."""
    scheduler.set_timesteps(num_inference_steps)
    x = initial_noise * scheduler.init_noise_sigma
    x0_prev = np.zeros_like(x)
    records = []
    for i in range(len(scheduler.timesteps)):
        x_in = scheduler.model_input_scale(i) * x
        t = scheduler.model_timestep(i)
        noise = step_noise(i) if scheduler.needs_noise(i) else np.zeros_like(x)
        x0_prev, x = apply_step(scheduler.step_coefficients(i), x, model(x_in, t), x0_prev, noise)
        records.append({"t": t, "model_input": x_in, "x0": x0_prev, "x_next": x})
    return records
