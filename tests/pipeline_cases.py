"""The tiny fixture's pipeline cases (tests/fixtures/make_fixtures.py) as requests of the page's form, and PSNR
against diffusers' images; shared by the native pipeline tests and the browser end-to-end tests."""

import json

import numpy as np

# fixture case -> our scheduler type
CASES = {"ddim_eta0": "ddim", "ddim_eta05": "ddim", "euler": "euler", "euler_a": "euler_a",
         "dpmpp_2m_karras": "dpmpp_2m", "lcm": "lcm"}
MIN_PSNR_DB = 35.0


def request_for(reference, case: str) -> dict:
    config = json.loads(str(reference[f"pipeline_{case}_config"]))
    size = int(reference["pipeline_size"])
    return {"prompt": str(reference["pipeline_prompt"]), "negativePrompt": str(reference["pipeline_negative_prompt"]),
            "seed": int(reference["pipeline_seed"]), "steps": int(reference["pipeline_steps"]),
            "guidance": float(reference["pipeline_guidance"]), "scheduler": CASES[case],
            "eta": float(config.get("eta", 0.0)), "width": size, "height": size}


def psnr(rgba: bytes, reference, case: str) -> float:
    """PSNR in dB of our RGBA8 image against diffusers' image of that case (alpha must be opaque)."""
    size = int(reference["pipeline_size"])
    got = np.frombuffer(rgba, np.uint8).reshape(size, size, 4)
    assert (got[..., 3] == 255).all(), "alpha must be 255"
    want = np.round(reference[f"pipeline_{case}_image"][0] * 255)
    mse = np.mean((got[..., :3].astype(np.float64) - want) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
