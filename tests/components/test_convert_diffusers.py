"""The converter against the reference classes: its expected tensors are diffusers'/transformers' own state dicts
(SD 1.5 and tiny), its single-file map is diffusers' `convert_ldm_*`, its config defaults are the classes'
defaults, and converted models (the fixture and --random) run in diffusers and reproduce the recorded outputs."""

import inspect
import json
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

from diffusers.loaders.single_file_utils import (  # noqa: E402
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
)
from safetensors.torch import load_file  # noqa: E402

from converted import read_converted  # noqa: E402
from doppler.config.parse import to_json  # noqa: E402
from doppler.convert.configs import CLASS_DEFAULTS  # noqa: E402
from doppler.convert.presets import PRESETS, TINY  # noqa: E402
from doppler.convert.random_model import random_source  # noqa: E402
from doppler.convert.sources import open_source  # noqa: E402
from doppler.convert.tensors import COMPONENTS, expected_tensors, params  # noqa: E402
from doppler.convert.writer import write_model  # noqa: E402
from fixtures.make_fixtures import reference_models, with_text_model  # noqa: E402

# What the decode-only app leaves out of diffusers' AutoencoderKL.
VAE_ENCODER = ("encoder.", "quant_conv.")
REFERENCE_CLASSES = {"text_encoder": transformers.CLIPTextConfig, "unet": diffusers.UNet2DConditionModel,
                     "vae": diffusers.AutoencoderKL}
# Float64 reference vs float32 weights and math.
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def needed(component: str, state: dict) -> dict:
    return {k: v for k, v in state.items() if not (component == "vae" and k.startswith(VAE_ENCODER))}


def shapes(state: dict) -> dict:
    return {k: tuple(v.shape) for k, v in state.items()}


# The presets, and tiny with the layers SD 1.x-family variants add: LCM's guidance embedding, linear transformer
# projections (SD 2's style), a CLIP text projection, a UNet head count per level.
VARIANTS = {
    **PRESETS,
    "tiny_variants": replace(
        TINY, unet=replace(TINY.unet, time_cond_proj_dim=16, use_linear_projection=True, attention_head_dim=(2, 4)),
        text_encoder=replace(TINY.text_encoder, projection_dim=24)),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_expected_tensors_are_the_reference_state_dicts(name):
    preset = VARIANTS[name]
    with torch.device("meta"):
        models = dict(zip(COMPONENTS, reference_models(preset)))
    if preset.text_encoder.projection_dim is not None:
        with torch.device("meta"):
            models["text_encoder"] = transformers.CLIPTextModelWithProjection(models["text_encoder"].config)
    states = {"text_encoder": with_text_model(models["text_encoder"].state_dict()),
              "unet": models["unet"].state_dict(), "vae": models["vae"].state_dict()}
    for component in COMPONENTS:
        assert expected_tensors(component, preset.architecture(component)) == \
            shapes(needed(component, states[component])), component


def test_class_defaults_are_the_reference_defaults():
    for component, defaults in CLASS_DEFAULTS.items():
        parameters = inspect.signature(REFERENCE_CLASSES[component].__init__).parameters
        actual = {key: parameters[key].default for key in defaults}
        assert json.loads(json.dumps(actual)) == defaults, component


def diffusers_ldm_conversion(checkpoint: dict, preset) -> dict:
    """diffusers' own single-file conversion of `checkpoint`, by component."""
    vae_config = {**to_json(preset.vae), "down_block_types": ["DownEncoderBlock2D"] * len(preset.vae.up_block_types)}
    return {
        "text_encoder": convert_ldm_clip_checkpoint(checkpoint),
        "unet": convert_ldm_unet_checkpoint(checkpoint, to_json(preset.unet)),
        "vae": convert_ldm_vae_checkpoint(checkpoint, vae_config),
    }


def test_single_file_map_is_diffusers_conversion_for_sd15():
    """Every LDM key of SD 1.5 lands where diffusers' convert_ldm_* puts it, with the diffusers shape."""
    checkpoint = {p.ldm: torch.empty(p.ldm_shape, device="meta")
                  for component in COMPONENTS for p in params(component, PRESETS["sd15"].architecture(component))}
    converted = diffusers_ldm_conversion(checkpoint, PRESETS["sd15"])
    for component in COMPONENTS:
        assert shapes(converted[component]) == expected_tensors(component, PRESETS["sd15"].architecture(component))


def test_single_file_conversion_equals_diffusers_conversion(tiny_sd, tmp_path):
    single_file = tiny_sd / "tiny-sd15.safetensors"
    ours = read_converted(write_model(open_source(single_file, TINY), tmp_path / "out", dtype="f32", model_id="t",
                                      name="t").folder)
    theirs = diffusers_ldm_conversion(load_file(single_file), TINY)
    theirs["text_encoder"].pop("text_model.embeddings.position_ids")
    for component in COMPONENTS:
        reference = needed(component, theirs[component])
        assert ours[component].keys() == reference.keys()
        for name, value in reference.items():
            assert np.array_equal(ours[component][name], value.numpy()), name


def load_models(tensors: dict, preset):
    """The reference classes holding the converted tensors, in float64."""
    models = dict(zip(COMPONENTS, reference_models(preset)))
    for component, model in models.items():
        own = model.state_dict().keys()
        state = {name if name in own else name.removeprefix("text_model."): torch.from_numpy(value.astype(np.float64))
                 for name, value in tensors[component].items()}
        missing, unexpected = model.double().load_state_dict(state, strict=False)
        assert not unexpected and all(name.startswith(VAE_ENCODER) for name in missing), (component, missing)
        model.eval()
    return models


def test_converted_fixture_reproduces_the_reference_outputs(tiny_sd, tmp_path):
    converted = write_model(open_source(tiny_sd / "tiny-sd15.safetensors", TINY), tmp_path / "out", dtype="f32",
                            model_id="t", name="t")
    models = load_models(read_converted(converted.folder), TINY)
    reference = np.load(tiny_sd / "reference.npz")
    with torch.no_grad():
        embeddings = models["text_encoder"](torch.from_numpy(reference["token_ids"])).last_hidden_state
        latents, context = torch.from_numpy(reference["unet_latents"]), torch.from_numpy(reference["unet_context"])
        noise = [models["unet"](latents, int(t), encoder_hidden_states=context).sample
                 for t in reference["unet_timesteps"]]
        decoded = models["vae"].decode(torch.from_numpy(reference["vae_latents"])).sample
    np.testing.assert_allclose(embeddings.numpy(), reference["text_embeddings"], **TOLERANCE)
    np.testing.assert_allclose(torch.stack(noise).numpy(), reference["unet_noise_pred"], **TOLERANCE)
    np.testing.assert_allclose(decoded.numpy(), reference["vae_decoded"], **TOLERANCE)


def test_random_tiny_model_runs_with_activations_of_order_one(tmp_path):
    """--random weights keep every stage's output finite and O(1) (the same scales hold at full size)."""
    result = write_model(random_source(TINY, 0), tmp_path / "out", dtype="f32", model_id="t", name="t")
    models = load_models(read_converted(result.folder), TINY)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, TINY.text_encoder.vocab_size, (2, 77), generator=generator)
    with torch.no_grad():
        embeddings = models["text_encoder"](ids).last_hidden_state
        noise = models["unet"](torch.randn((2, 4, 8, 8), generator=generator, dtype=torch.float64), 500,
                               encoder_hidden_states=embeddings).sample
        image = models["vae"].decode(torch.randn((1, 4, 8, 8), generator=generator, dtype=torch.float64)).sample
    for name, output in (("text", embeddings), ("unet", noise), ("vae", image)):
        assert torch.isfinite(output).all() and 0.1 < output.std() < 10, (name, output.std())
