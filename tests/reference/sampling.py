"""float64 references for wgsl/sampling.wgsl (noise comes from its numpy twin, doppler.convert.noise)."""

import numpy as np


def guidance(stacked, scale):
    """[uncond, text] stacked on axis 0 -> uncond + scale * (text - uncond)."""
    uncond, text = np.split(np.asarray(stacked, np.float64), 2)
    return uncond + scale * (text - uncond)


def step(x, model_output, x0_prev, noise, c):
    """(x_next, x0) of StepCoefficients `c` (a dict of its fields)."""
    x, m, prev, z = (np.asarray(a, np.float64) for a in (x, model_output, x0_prev, noise))
    x0 = c["x0_from_x"] * x + c["x0_from_model"] * m
    x_next = (c["next_from_x"] * x + c["next_from_model"] * m + c["next_from_x0"] * x0
              + c["next_from_x0_prev"] * prev + c["next_from_noise"] * z)
    return x_next, x0


def sinusoidal(value, scale, freqs, dim, flip):
    """float64 sin/cos of the kernel's f32 arguments (value * scale) * freqs: [sin, cos] ([cos, sin] when flip),
    a zero column last when dim is odd."""
    freqs = np.asarray(freqs, np.float32)
    arg = (np.float32(np.float32(value) * np.float32(scale)) * freqs).astype(np.float64)
    halves = [np.cos(arg), np.sin(arg)] if flip else [np.sin(arg), np.cos(arg)]
    return np.concatenate(halves + [np.zeros(dim % 2)])
