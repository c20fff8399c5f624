"""Config: defaults, merge order (defaults < manifest < runtime), and the error for each kind of bad value."""

import dataclasses
import typing

import pytest

from doppler.config import ConfigError, DiffusionConfig, ManifestDiffusion, merge_diffusion_config, parse, to_json
from doppler.config.diffusion import Limits
from doppler.config.schema import schema_fields

RUNTIME = "runtime.inference.diffusion"
MANIFEST = "manifest.inference.diffusion"


def manifest_section(data: dict) -> ManifestDiffusion:
    return parse(ManifestDiffusion, data, MANIFEST)


def test_empty_runtime_over_default_manifest_gives_schema_defaults():
    config = merge_diffusion_config(ManifestDiffusion(), {})
    assert config == DiffusionConfig()
    assert config.scheduler.type == "ddim"
    assert (config.latent.width, config.latent.height) == (512, 512)
    assert config.memory_budget_bytes == 4 * 1024**3
    assert config.seed is None


def test_merge_order_defaults_then_manifest_then_runtime():
    manifest = manifest_section({"scheduler": {"numSteps": 30, "guidanceScale": 5.0}, "latent": {"width": 768}})
    config = merge_diffusion_config(manifest, {"scheduler": {"numSteps": 12}, "seed": 7})
    assert config.scheduler.num_steps == 12  # runtime beats manifest
    assert config.scheduler.guidance_scale == 5.0  # manifest beats default; runtime's sibling key left it alone
    assert config.latent.width == 768
    assert config.latent.height == 512  # schema default
    assert config.scheduler.eta == 0.0
    assert config.seed == 7


def test_merge_does_not_touch_its_inputs():
    manifest = manifest_section({"scheduler": {"numSteps": 30}})
    runtime = {"scheduler": {"type": "euler"}}
    merge_diffusion_config(manifest, runtime)
    assert runtime == {"scheduler": {"type": "euler"}}
    assert manifest.scheduler.num_steps == 30


def test_parsed_config_is_frozen_and_round_trips():
    config = merge_diffusion_config(ManifestDiffusion(), {"latent": {"width": 640}, "negativePrompt": "blurry"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 3
    assert parse(DiffusionConfig, to_json(config), RUNTIME) == config
    assert to_json(config)["negativePrompt"] == "blurry"


@pytest.mark.parametrize("runtime, path, expected", [
    ({"scheduler": {"type": "pndm"}}, "scheduler.type",
     'got "pndm"; expected one of "ddim", "euler", "euler_a", "dpmpp_2m", "lcm"'),
    ({"scheduler": {"numSteps": 0}}, "scheduler.numSteps", "got 0; expected an integer in [1, 1000]"),
    ({"scheduler": {"numSteps": 2.5}}, "scheduler.numSteps", "got 2.5; expected an integer in [1, 1000]"),
    ({"scheduler": {"numSteps": True}}, "scheduler.numSteps", "got true; expected an integer"),
    ({"scheduler": {"guidanceScale": "high"}}, "scheduler.guidanceScale",
     'got "high"; expected a number in [0.0, 100.0]'),
    ({"scheduler": {"eta": 1.5}}, "scheduler.eta", "got 1.5; expected a number in [0.0, 1.0]"),
    ({"latent": {"width": 100}}, "latent.width", "got 100; expected an integer in [8, 8192], a multiple of 8"),
    ({"latent": {"dtype": "bf16"}}, "latent.dtype", 'expected one of "f32", "f16"'),
    ({"seed": -1}, "seed", "got -1; expected an integer in [0, 9007199254740991] or null"),
    ({"memoryBudgetBytes": 1024}, "memoryBudgetBytes", "got 1024; expected an integer in [67108864,"),
    ({"decode": {"tiling": {"overlap": 512}}}, "decode.tiling.overlap", "got 512; expected less than tileSize (512)"),
    ({"swapper": {"strategy": "lru"}}, "swapper.strategy", 'expected one of "on_demand", "preload"'),
    ({"scheduler": 3}, "scheduler", "got 3; expected an object"),
    ({"scheduler": {"steps": 20}}, "scheduler.steps", "unknown key; known keys: type, numSteps, guidanceScale, eta"),
    ({"limits": {}}, "limits", "unknown key; known keys: scheduler, latent, textEncoder,"),
])
def test_bad_runtime_value_names_path_value_and_allowed(runtime, path, expected):
    with pytest.raises(ConfigError) as caught:
        merge_diffusion_config(ManifestDiffusion(), runtime)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{RUNTIME}.{path}: ")
    assert expected in problem


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        merge_diffusion_config(ManifestDiffusion(), {"scheduler": {"numSteps": 0, "eta": 2.0}, "seed": "x"})
    paths = [problem.split(":")[0] for problem in caught.value.problems]
    assert paths == [f"{RUNTIME}.scheduler.numSteps", f"{RUNTIME}.scheduler.eta", f"{RUNTIME}.seed"]
    assert str(caught.value).count("\n") == 2


def test_runtime_must_be_an_object():
    with pytest.raises(ConfigError, match=rf"^{RUNTIME}: got list; expected an object$"):
        merge_diffusion_config(ManifestDiffusion(), [])


LIMITED = {"limits": {"allowedSchedulers": ["ddim", "euler"], "minSize": 256, "maxSize": 768, "sizeMultiple": 64},
           "quantization": {"weightDtype": "f16"}}


@pytest.mark.parametrize("runtime, path, expected", [
    ({"scheduler": {"type": "lcm"}}, "scheduler.type",
     f'got "lcm"; this model allows "ddim", "euler" ({MANIFEST}.limits.allowedSchedulers)'),
    ({"latent": {"width": 1024}}, "latent.width",
     f"got 1024; this model allows multiples of 64 in [256, 768] ({MANIFEST}.limits)"),
    ({"latent": {"height": 200}}, "latent.height", "got 200; this model allows multiples of 64 in [256, 768]"),
    ({"latent": {"height": 520}}, "latent.height", "got 520; this model allows multiples of 64"),
    ({"quantization": {"weightDtype": "int8"}}, "quantization.weightDtype",
     'got "int8"; this model stores f16 weights and nothing is cast at load: use "auto" or "f16"'),
])
def test_manifest_limits_bound_runtime(runtime, path, expected):
    manifest = manifest_section({**LIMITED, "latent": {"width": 512, "height": 512}})
    with pytest.raises(ConfigError) as caught:
        merge_diffusion_config(manifest, runtime)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{RUNTIME}.{path}: ")
    assert expected in problem


def test_runtime_within_limits_passes():
    manifest = manifest_section({**LIMITED, "latent": {"width": 512, "height": 512}})
    config = merge_diffusion_config(manifest, {"scheduler": {"type": "euler"}, "latent": {"width": 768},
                                               "quantization": {"weightDtype": "auto"}})
    assert (config.scheduler.type, config.latent.width, config.latent.height) == ("euler", 768, 512)


def test_manifest_values_are_held_to_its_own_limits():
    with pytest.raises(ConfigError) as caught:
        manifest_section({"limits": {"maxSize": 256}, "scheduler": {"type": "lcm"}})
    assert caught.value.problems == (f"{MANIFEST}.latent.width: got 512; this model allows multiples of 8 in "
                                     f"[64, 256] ({MANIFEST}.limits)",
                                     f"{MANIFEST}.latent.height: got 512; this model allows multiples of 8 in "
                                     f"[64, 256] ({MANIFEST}.limits)")


def test_limits_min_above_max():
    with pytest.raises(ConfigError, match=rf"^{MANIFEST}\.limits\.minSize: got 1024; expected <= maxSize \(512\)$"):
        manifest_section({"limits": {"minSize": 1024, "maxSize": 512}, "latent": {"width": 512, "height": 512}})


def test_allowed_schedulers_are_checked_item_by_item():
    with pytest.raises(ConfigError, match=rf'^{MANIFEST}\.limits\.allowedSchedulers\[1\]: got "pndm"; expected one of'):
        manifest_section({"limits": {"allowedSchedulers": ["ddim", "pndm"]}})
    with pytest.raises(ConfigError, match=r"allowedSchedulers: got 0 items; expected an array of .* \(at least 1\)"):
        manifest_section({"limits": {"allowedSchedulers": []}})


def _leaf_fields(cls):
    for f, key, tp in schema_fields(cls):
        if dataclasses.is_dataclass(tp):
            yield from _leaf_fields(tp)
        else:
            yield cls, f, key, tp


@pytest.mark.parametrize("root", [DiffusionConfig, ManifestDiffusion])
def test_every_setting_has_default_description_and_bounds(root):
    free_text = {"negative_prompt"}
    for cls, f, key, tp in _leaf_fields(root):
        where = f"{cls.__name__}.{f.name}"
        assert f.default is not dataclasses.MISSING, where
        assert f.metadata["doc"].strip(), where
        scalar = next(t for t in (typing.get_args(tp) or (tp,)) if t is not type(None))
        scalar = typing.get_args(scalar)[0] if typing.get_origin(scalar) is tuple else scalar
        if scalar in (int, float):
            assert {"minimum", "maximum"} <= set(f.metadata), where
        elif scalar is str and f.name not in free_text:
            assert "choices" in f.metadata, where


def test_limits_default_allows_every_scheduler():
    assert Limits().allowed_schedulers == ("ddim", "euler", "euler_a", "dpmpp_2m", "lcm")
