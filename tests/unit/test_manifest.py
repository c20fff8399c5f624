"""Manifest: the tiny example parses; each check names the JSON path, the value and the fix; CLI glue."""

import json

import pytest

from doppler.cli import main
from doppler.config import ConfigError
from doppler.manifest import component_bytes, load_manifest, parse_manifest, summary


def problems_of(data) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        parse_manifest(data)
    return caught.value.problems


def test_tiny_manifest_parses(tiny_manifest):
    manifest = parse_manifest(tiny_manifest)
    assert manifest.model_type == "diffusion"
    assert manifest.components.unet.architecture.block_out_channels == (32, 64)
    assert manifest.components.text_encoder.architecture.projection_dim is None
    assert manifest.components.unet.tensors[2].quantization.scales_tensor.endswith("weight_scales")
    assert manifest.inference.diffusion.scheduler.num_steps == 2
    assert manifest.inference.diffusion.limits.max_size == 256
    assert manifest.inference.scheduler_config["beta_schedule"] == "scaled_linear"
    assert manifest.components.safety_checker is None


def test_component_bytes_sum_each_tensor_table(tiny_manifest):
    expected = {key: sum(t["bytes"] for t in part["tensors"]) for key, part in tiny_manifest["components"].items()}
    assert component_bytes(parse_manifest(tiny_manifest)) == expected == {"text_encoder": 69184, "unet": 14080,
                                                                          "vae": 6416}


def test_summary_lists_components(tiny_manifest):
    text = summary(parse_manifest(tiny_manifest))
    assert text.splitlines()[0] == "tiny-sd-test (diffusion, 'Tiny SD (test fixture)'): 3 shards, 90688 bytes"
    assert "  unet: 5 tensors, 14080 bytes" in text


def unet_tensor(i):
    return lambda m: m["components"]["unet"]["tensors"][i]


U = "manifest.components.unet"


@pytest.mark.parametrize("change, expected", [
    (lambda m: unet_tensor(0)(m).update(bytes=5),
     f"{U}.tensors[0].bytes: got 5; expected 2304 = prod([32, 4, 3, 3]) * 2 (f16)"),
    (lambda m: unet_tensor(1)(m).update(shard=3),
     f"{U}.tensors[1].shard: got 3; expected an index into shards (0 to 2)"),
    (lambda m: unet_tensor(4)(m).update(offset=12288),
     f"{U}.tensors[4].offset: got offset 12288 + bytes 2304 = 14592; expected <= shards[1].size (14336): "
     "a tensor lies whole inside one shard"),
    (lambda m: unet_tensor(4)(m).update(offset=1000),
     f"{U}.tensors[4].offset: got 1000; expected a multiple of 256 (WebGPU binds storage at 256-byte offsets)"),
    (lambda m: unet_tensor(1)(m).update(offset=2048),
     f"{U}.tensors[1].offset: got 2048; overlaps conv_in.weight ({U}.tensors[0]), which spans [0, 2304) of "
     "shards[1]"),
    (lambda m: unet_tensor(1)(m).update(name="conv_in.weight"),
     f'{U}.tensors[1].name: got "conv_in.weight"; already the name of tensors[0]: names are unique within a '
     "component"),
    (lambda m: unet_tensor(0)(m).update(dtype="bf16"),
     f'{U}.tensors[0].dtype: got "bf16"; expected one of "f32", "f16", "int8"'),
    (lambda m: unet_tensor(0)(m).update(shape=[32, 0, 3]),
     f"{U}.tensors[0].shape[1]: got 0; expected an integer >= 1"),
    (lambda m: unet_tensor(2)(m).pop("quantization"),
     f"{U}.tensors[2].quantization: missing; int8 tensors need {{scheme, scalesTensor, axis}}"),
    (lambda m: unet_tensor(0)(m).update(quantization=unet_tensor(2)(m)["quantization"]),
     f"{U}.tensors[0].quantization: got an object; only int8 tensors are quantized (this one is f16)"),
    (lambda m: unet_tensor(2)(m)["quantization"].update(axis=4),
     f"{U}.tensors[2].quantization.axis: got 4; expected < 4 (the tensor's number of axes)"),
    (lambda m: unet_tensor(2)(m)["quantization"].update(axis=2),
     f"{U}.tensors[2].quantization.scalesTensor: down_blocks.0.resnets.0.conv1.weight_scales is f32 [32]; "
     "expected 3 f32 or f16 scales (one for each index of axis 2)"),
    (lambda m: unet_tensor(2)(m)["quantization"].update(scalesTensor="nope"),
     f'{U}.tensors[2].quantization.scalesTensor: got "nope"; expected the name of a tensor of this component'),
    (lambda m: m["shards"][0].update(sha256="AB" * 32),
     f'manifest.shards[0].sha256: got "{"AB" * 32}"; expected '
     "a string matching ^[0-9a-f]{64}$ (SHA-256 of the file, 64 lowercase hex digits)"),
    (lambda m: m["shards"][0].update(url="https://example.com/te.bin"),
     "manifest.shards[0].path: got both of path and url; expected exactly one"),
    (lambda m: m["shards"][0].update(path="../te.bin"),
     'manifest.shards[0].path: got "../te.bin"; expected a string matching'),
    (lambda m: m["components"].pop("vae"), "manifest.components.vae: missing; required (diffusers AutoencoderKL)"),
    (lambda m: m["components"].update(controlnet={}),
     "manifest.components.controlnet: unknown key; known keys: text_encoder, unet, vae, clip_projection, "
     "safety_checker"),
    (lambda m: m["components"]["unet"]["architecture"].pop("cross_attention_dim"),
     f"{U}.architecture.cross_attention_dim: missing; required (width of the text embeddings the cross-attention "
     "reads)"),
    (lambda m: m["components"]["unet"]["architecture"].update(up_block_types=["UpBlock2D"]),
     f"{U}.architecture.up_block_types: got 1 entries; expected one per block_out_channels entry (2)"),
    (lambda m: m["components"]["unet"]["architecture"].update(block_out_channels=[32, 48]),
     f"{U}.architecture.block_out_channels[1]: got 48; expected a multiple of norm_num_groups (32)"),
    (lambda m: m["components"]["text_encoder"]["architecture"].update(num_attention_heads=5),
     "manifest.components.text_encoder.architecture.hidden_size: got 32; expected a multiple of "
     "num_attention_heads (5)"),
    (lambda m: m["components"]["vae"]["architecture"].update(scaling_factor=0),
     "manifest.components.vae.architecture.scaling_factor: got 0; expected a number > 0.0"),
    (lambda m: m["components"]["vae"]["architecture"].update(latent_channels=8),
     "manifest.inference.diffusion.latent.channels: latent channels disagree (components.unet.architecture."
     "in_channels = 4, components.vae.architecture.latent_channels = 8, inference.diffusion.latent.channels = 4)"),
    (lambda m: m["tokenizer"].update(maxLength=78),
     "manifest.tokenizer.maxLength: got 78; expected <= the text encoder's max_position_embeddings (77)"),
    (lambda m: m["tokenizer"].update(padToken=-1), "manifest.tokenizer.padToken: got -1; expected an integer >= 0 "
                                                   "or a string"),
    (lambda m: m["inference"]["schedulerConfig"].pop("prediction_type"),
     "manifest.inference.schedulerConfig.prediction_type: missing; required"),
    (lambda m: m["inference"]["diffusion"]["latent"].update(width=512),
     "manifest.inference.diffusion.latent.width: got 512; this model allows multiples of 8 in [32, 256]"),
    (lambda m: m.update(modelType="llm"), 'manifest.modelType: got "llm"; expected one of "diffusion"'),
    (lambda m: m.update(id="Tiny SD"), 'manifest.id: got "Tiny SD"; expected a string matching'),
])
def test_each_problem_names_path_value_and_fix(tiny_manifest, change, expected):
    change(tiny_manifest)
    (problem,) = problems_of(tiny_manifest)
    assert problem.startswith(expected)


def test_problems_across_tables_are_reported_together(tiny_manifest):
    tensors = tiny_manifest["components"]["vae"]["tensors"]
    tensors[0]["shard"] = 9
    tensors[3]["name"] = tensors[2]["name"]
    assert [p.split(":")[0] for p in problems_of(tiny_manifest)] == [
        "manifest.components.vae.tensors[3].name", "manifest.components.vae.tensors[0].shard"]


def test_same_tensor_name_in_two_components_is_fine(tiny_manifest):
    vae = tiny_manifest["components"]["vae"]["tensors"]
    vae[2]["name"] = "conv_in.weight"  # the UNet has one too: names are per component
    parse_manifest(tiny_manifest)


SAFETY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
          "image_size": 224, "patch_size": 14, "num_channels": 3, "hidden_act": "quick_gelu",
          "layer_norm_eps": 1e-5, "projection_dim": 32}


def extra_shard(manifest, size) -> int:
    manifest["shards"].append({"path": "shards/extra.bin", "size": size, "sha256": "0" * 64})
    return len(manifest["shards"]) - 1


def test_optional_components(tiny_manifest):
    shard = extra_shard(tiny_manifest, 64 * 32 * 2 + 32 * 64 * 4)
    tiny_manifest["components"]["safety_checker"] = {
        "architecture": SAFETY,
        "tensors": [{"name": "visual_projection.weight", "shape": [32, 64], "dtype": "f32", "shard": shard,
                     "offset": 4096, "bytes": 8192}]}
    tiny_manifest["components"]["clip_projection"] = {
        "architecture": {"in_features": 32, "out_features": 64, "bias": False},
        "tensors": [{"name": "text_projection.weight", "shape": [64, 32], "dtype": "f16", "shard": shard,
                     "offset": 0, "bytes": 4096}]}
    manifest = parse_manifest(tiny_manifest)
    assert manifest.components.safety_checker.enabled is False
    assert list(component_bytes(manifest)) == ["text_encoder", "unet", "vae", "clip_projection", "safety_checker"]
    assert component_bytes(manifest)["safety_checker"] == 8192
    assert "  safety_checker: 1 tensors, 8192 bytes (disabled)" in summary(manifest)


def test_a_tensor_range_may_not_cross_components(tiny_manifest):
    # The VAE's first tensor moved into the text encoder's shard, over its first tensor.
    tiny_manifest["components"]["vae"]["tensors"][0].update(shard=0, offset=0)
    (problem,) = problems_of(tiny_manifest)
    assert "overlaps" in problem and "shards[0]" in problem


def test_load_manifest_reports_unreadable_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{")
    with pytest.raises(ConfigError, match=rf"^{path}: cannot read a JSON manifest: Expecting property name"):
        load_manifest(path)


def test_cli_validate_manifest_ok(tiny_manifest_path, capsys):
    assert main(["validate-manifest", str(tiny_manifest_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK tiny-sd-test (diffusion")
    assert "vae: 4 tensors, 6416 bytes" in out


def test_cli_validate_manifest_prints_every_problem(tiny_manifest, tmp_path, capsys):
    tiny_manifest["shards"][1]["sha256"] = "x"
    tiny_manifest["components"]["unet"]["tensors"][0]["bytes"] = 1
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(tiny_manifest))
    assert main(["validate-manifest", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in err] == ["manifest.components.unet.tensors[0].bytes",
                                                     "manifest.shards[1].sha256"]
