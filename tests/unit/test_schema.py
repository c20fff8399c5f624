"""JSON Schema generated from the dataclasses: valid draft 2020-12, accepts what parse accepts, rejects what the
schema can express, and is what `doppler schema` prints."""

import copy
import json
from dataclasses import dataclass

import jsonschema
import pytest

from doppler.cli import main
from doppler.config import ConfigError, DiffusionConfig, ManifestDiffusion, json_schema, parse, to_json
from doppler.config.schema import setting
from doppler.manifest import Manifest

VALIDATOR = jsonschema.Draft202012Validator


@pytest.fixture(scope="module")
def config_schema():
    schema = json_schema(DiffusionConfig, "runtime.inference.diffusion")
    VALIDATOR.check_schema(schema)
    return schema


@pytest.fixture(scope="module")
def manifest_schema():
    schema = json_schema(Manifest, "manifest")
    VALIDATOR.check_schema(schema)
    return schema


def test_config_schema_carries_defaults_descriptions_and_bounds(config_schema):
    props = config_schema["properties"]
    assert props["memoryBudgetBytes"]["default"] == 4 * 1024**3
    assert props["seed"]["anyOf"] == [{"type": "integer", "minimum": 0, "maximum": 2**53 - 1}, {"type": "null"}]
    scheduler = config_schema["$defs"]["Scheduler"]
    assert scheduler["properties"]["type"]["enum"] == ["ddim", "euler", "euler_a", "dpmpp_2m", "lcm"]
    assert scheduler["properties"]["numSteps"] | {"description": ""} == {
        "type": "integer", "minimum": 1, "maximum": 1000, "default": 25, "description": ""}
    assert config_schema["$defs"]["Latent"]["properties"]["width"]["multipleOf"] == 8
    assert scheduler["additionalProperties"] is False
    assert "required" not in config_schema  # every setting has a default


def test_defaults_and_example_documents_validate(config_schema, manifest_schema, tiny_manifest):
    VALIDATOR(config_schema).validate(to_json(DiffusionConfig()))
    VALIDATOR(config_schema).validate({"scheduler": {"type": "euler_a"}, "seed": 3, "latent": {"width": 768}})
    VALIDATOR(manifest_schema).validate(tiny_manifest)
    VALIDATOR(manifest_schema).validate(to_json(parse(Manifest, tiny_manifest, "manifest")))


@pytest.mark.parametrize("runtime", [
    {"scheduler": {"type": "pndm"}},
    {"scheduler": {"numSteps": 0}},
    {"scheduler": {"numSteps": 2.5}},
    {"latent": {"width": 100}},
    {"seed": -1},
    {"negativePrompt": None},
    {"scheduler": {"steps": 20}},
    {"decode": {"tiling": {"enabled": "yes"}}},
])
def test_schema_and_parse_reject_the_same_bad_config(config_schema, runtime):
    with pytest.raises(ConfigError):
        parse(DiffusionConfig, runtime, "runtime.inference.diffusion")
    assert not VALIDATOR(config_schema).is_valid(runtime)


def set_path(doc, path, value):
    *parents, last = path
    for key in parents:
        doc = doc[key]
    if value is KeyError:
        del doc[last]
    else:
        doc[last] = value


@pytest.mark.parametrize("path, value", [
    (("shards", 0, "sha256"), "ABC"),
    (("shards", 0, "path"), "../up.bin"),
    (("shards", 0, "path"), "/abs.bin"),
    (("components", "unet"), KeyError),
    (("components", "unet", "tensors", 0, "dtype"), "bf16"),
    (("components", "unet", "architecture", "time_cond_proj_dim"), 0),
    (("components", "text_encoder", "architecture", "vocab"), 10),
    (("inference", "schedulerConfig", "beta_end"), KeyError),
    (("inference", "diffusion", "limits", "allowedSchedulers"), []),
    (("modelType", ), "llm"),
])
def test_schema_and_parse_reject_the_same_bad_manifest(manifest_schema, tiny_manifest, path, value):
    bad = copy.deepcopy(tiny_manifest)
    set_path(bad, path, value)
    with pytest.raises(ConfigError):
        parse(Manifest, bad, "manifest")
    assert not VALIDATOR(manifest_schema).is_valid(bad)


def test_nested_classes_share_one_def(manifest_schema):
    defs = manifest_schema["$defs"]
    assert manifest_schema["properties"]["shards"]["items"] == {"$ref": "#/$defs/Shard"}
    assert "TensorEntry" in defs and "ManifestDiffusion" in defs and "Quantization" in defs
    assert defs["ManifestDiffusion"]["properties"]["limits"]["$ref"] == "#/$defs/Limits"
    assert defs["TensorEntry"]["required"] == ["name", "shape", "dtype", "shard", "offset", "bytes"]
    assert defs["Inference"]["properties"]["schedulerConfig"]["required"][0] == "num_train_timesteps"


def _part_class():
    @dataclass(frozen=True)
    class Part:
        x: int = setting(0, doc="x")

    return Part


PartA, PartB = _part_class(), _part_class()  # two classes, one name


@dataclass(frozen=True)
class Whole:
    a: PartA = setting(doc="a")
    b: PartB = setting(doc="b")


def test_two_classes_of_one_name_are_refused():
    with pytest.raises(TypeError, match=r"two classes named Part \(test_schema, test_schema\); rename one"):
        json_schema(Whole, "whole")


@pytest.mark.parametrize("document, cls", [("config", DiffusionConfig), ("manifest", Manifest)])
def test_cli_schema_prints_the_generated_schema(capsys, document, cls):
    assert main(["schema", document]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["$defs"] == json_schema(cls, "")["$defs"]
    assert printed["properties"] == json_schema(cls, "")["properties"]


def test_manifest_diffusion_section_has_runtime_keys_plus_limits():
    runtime = set(json_schema(DiffusionConfig, "")["properties"])
    manifest = set(json_schema(ManifestDiffusion, "")["properties"])
    assert manifest - runtime == {"limits"} and runtime <= manifest
