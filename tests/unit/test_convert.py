"""doppler convert on the tiny fixture (tests/fixtures/make_fixtures.py): a diffusers folder and the same weights as an
original single file give the same model; tensors are the source's (f32 exactly, f16 as cast); shards are aligned;
--random is deterministic; every bad input is refused naming the thing, and leaves nothing behind."""

import json
import shutil
import struct

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from converted import read_converted
from doppler.cli import main
from doppler.convert.clip_vocab import clip_vocab_and_merges
from doppler.convert.presets import PRESETS, TINY
from doppler.convert.safetensors_file import SafetensorsFile
from doppler.convert.sources import open_source
from doppler.convert.tensors import COMPONENTS, expected_tensors
from doppler.convert.writer import TENSOR_ALIGNMENT, WORD_BYTES, _ShardWriter, write_model
from doppler.errors import ConvertError
from doppler.manifest import file_problems, load_manifest

WEIGHTS = {"text_encoder": "text_encoder/model.safetensors", "unet": "unet/diffusion_pytorch_model.safetensors",
           "vae": "vae/diffusion_pytorch_model.safetensors"}
TEXT_MODEL = "text_model."


def convert(src, out, dtype="f32", **options):
    source = open_source(src, PRESETS["tiny"])
    return write_model(source, out, dtype=dtype, model_id="tiny", name="Tiny", **options)


@pytest.fixture(scope="session")
def folder(tiny_sd):
    return tiny_sd / "diffusers"


@pytest.fixture(scope="session")
def single_file(tiny_sd):
    return tiny_sd / "tiny-sd15.safetensors"


@pytest.fixture(scope="session")
def converted(tmp_path_factory, folder, single_file):
    """Conversions of the fixture: folder (f32, f16) and single file (f32)."""
    out = tmp_path_factory.mktemp("converted")
    return {
        "folder_f32": convert(folder, out / "folder_f32"),
        "folder_f16": convert(folder, out / "folder_f16", dtype="f16"),
        "single_f32": convert(single_file, out / "single_f32"),
    }


def source_tensors(folder) -> dict[str, dict[str, np.ndarray]]:
    """The fixture's diffusers tensors by component, under diffusers' `text_model.` names."""
    tensors = {component: load_file(folder / path) for component, path in WEIGHTS.items()}
    tensors["text_encoder"] = {key if key.startswith(TEXT_MODEL) else TEXT_MODEL + key: value
                               for key, value in tensors["text_encoder"].items()}
    return tensors


def manifest_json(result):
    return json.loads((result.folder / "manifest.json").read_text())


def test_folder_and_single_file_give_the_same_model(converted):
    from_folder, from_file = manifest_json(converted["folder_f32"]), manifest_json(converted["single_f32"])
    folder_scheduler = from_folder["inference"].pop("schedulerConfig")
    file_scheduler = from_file["inference"].pop("schedulerConfig")
    # Identical tensor tables and shard hashes: the same bytes at the same places.
    assert from_folder == from_file
    # The single file gets SD 1.5's scheduler config; the fixture folder saved that same config (diffusers adds keys).
    assert file_scheduler.items() <= folder_scheduler.items()
    assert (converted["folder_f32"].folder / "tokenizer/vocab.json").read_bytes() == \
        (converted["single_f32"].folder / "tokenizer/vocab.json").read_bytes()


def test_converted_tensors_equal_the_source(converted, folder):
    source = source_tensors(folder)
    for key, dtype in (("folder_f32", np.float32), ("folder_f16", np.float16)):
        tensors = read_converted(converted[key].folder)
        for component in COMPONENTS:
            expected = expected_tensors(component, TINY.architecture(component))
            assert {name: value.shape for name, value in tensors[component].items()} == expected
            for name, value in tensors[component].items():
                want = source[component][name].astype(dtype)
                assert value.dtype == dtype and np.array_equal(value.view(np.uint8), want.view(np.uint8)), name


def test_manifest_records_the_model(converted, folder):
    manifest = converted["folder_f16"].manifest
    assert manifest.components.unet.architecture == TINY.unet
    assert manifest.components.vae.architecture == TINY.vae
    assert manifest.components.text_encoder.architecture == TINY.text_encoder
    assert manifest.inference.diffusion.quantization.weight_dtype == "f16"
    assert (manifest.inference.diffusion.latent.width, manifest.inference.diffusion.latent.height) == (64, 64)
    scheduler = json.loads((folder / "scheduler/scheduler_config.json").read_text())
    assert manifest.inference.scheduler_config == scheduler
    assert (manifest.tokenizer.max_length, manifest.tokenizer.pad_token) == (77, "<|endoftext|>")


def test_tokenizer_files_come_from_tokenizer_json(converted):
    """The fixture's tokenizer folder has only tokenizer.json (transformers >= 5): its BPE tables are written out."""
    vocab, merges = clip_vocab_and_merges()
    out = converted["folder_f32"].folder / "tokenizer"
    assert json.loads((out / "vocab.json").read_text()) == vocab
    assert (out / "merges.txt").read_text().splitlines()[1:] == merges


def test_vocab_and_merges_files_are_copied(tmp_path, folder):
    src = copy_folder(folder, tmp_path)
    (src / "tokenizer/vocab.json").write_text('{"<|startoftext|>": 49406, "<|endoftext|>": 49407, "a</w>": 320}')
    (src / "tokenizer/merges.txt").write_text("#version: 0.2\na b\n")
    out = convert(src, tmp_path / "out").folder
    for name in ("vocab.json", "merges.txt"):
        assert (out / "tokenizer" / name).read_bytes() == (src / "tokenizer" / name).read_bytes()


def test_shards_are_aligned_and_a_big_tensor_gets_its_own(tmp_path, folder):
    result = convert(folder, tmp_path / "out", dtype="f16", shard_mib=0.25)
    manifest = result.manifest
    assert not list(file_problems(manifest, result.folder))
    placed = {}  # shard -> [(offset, bytes, name)]
    for key, part in manifest.components.present().items():
        for t in part.tensors:
            assert t.offset % TENSOR_ALIGNMENT == 0, t.name
            assert manifest.shards[t.shard].path.startswith(f"shards/{key}-"), t.name
            placed.setdefault(t.shard, []).append((t.offset, t.bytes, t.name))
    limit = int(0.25 * 1024 * 1024)
    for index, shard in enumerate(manifest.shards):
        assert shard.size % WORD_BYTES == 0
        tensors = sorted(placed[index])
        data = bytearray((result.folder / shard.path).read_bytes())
        if len(tensors) > 1:
            assert tensors[-1][0] + tensors[-1][1] <= limit
        for offset, size, _ in tensors:
            data[offset:offset + size] = bytes(size)
        assert not any(data), f"{shard.path}: nonzero bytes between tensors"
    token_embedding = next(t for t in manifest.components.text_encoder.tensors if "token_embedding" in t.name)
    assert token_embedding.bytes > limit and placed[token_embedding.shard] == [(0, token_embedding.bytes,
                                                                                token_embedding.name)]
    assert len({t.shard for t in manifest.components.unet.tensors}) > 1


def test_shard_writer_packing(tmp_path):
    """An odd f16 tensor (6 bytes) still ends in a whole word; a tensor over the limit gets a shard of its own."""
    (tmp_path / "shards").mkdir()
    shards = []
    writer = _ShardWriter(tmp_path, "unet", 1024, shards)
    placed = [writer.add(bytes([1]) * size) for size in (6, 10, 2000, 8)]
    writer.close()
    assert placed == [(0, 0), (0, 256), (1, 0), (2, 0)]
    assert [shard["size"] for shard in shards] == [268, 2000, 8]
    assert (tmp_path / "shards/unet-000.bin").read_bytes() == bytes([1]) * 6 + bytes(250) + bytes([1]) * 10 + bytes(2)


def test_cli_convert_and_validate(tmp_path, folder, capsys):
    out = tmp_path / "model"
    assert main(["convert", str(folder), str(out), "--dtype", "f16", "--shard-mib", "1"]) == 0
    printed = capsys.readouterr().out
    assert "ignored 76: VAE encoder and quant_conv" in printed and "wrote " in printed
    assert main(["validate-manifest", "--files", str(out / "manifest.json")]) == 0
    assert load_manifest(out / "manifest.json").id == "model"


def test_random_is_deterministic(tmp_path, converted):
    def shards(seed, name):
        assert main(["convert", "--random", "tiny", "--seed", str(seed), str(tmp_path / name)]) == 0
        return [s.sha256 for s in load_manifest(tmp_path / name / "manifest.json").shards]

    first, again, other = shards(7, "a"), shards(7, "b"), shards(8, "c")
    assert first == again
    assert not set(first) & set(other)
    random_tensors = read_converted(tmp_path / "a")
    real_tensors = read_converted(converted["folder_f16"].folder)
    for component in COMPONENTS:
        assert {k: v.shape for k, v in random_tensors[component].items()} == \
            {k: v.shape for k, v in real_tensors[component].items()}
    norm = random_tensors["unet"]["conv_norm_out.weight"].astype(np.float32)
    conv = random_tensors["unet"]["conv_in.weight"].astype(np.float32)
    assert abs(norm.mean() - 1) < 0.05 and abs(conv.std() * np.sqrt(4 * 9) - 1) < 0.1


def test_single_file_ignores_what_real_files_carry(converted):
    ignored = {key for keys in converted["single_f32"].ignored.values() for key in keys}
    assert {"model_ema.decay", "model_ema.num_updates", "model_ema.diffusion_modelout2bias", "betas",
            "alphas_cumprod", "cond_stage_model.transformer.text_model.embeddings.position_ids",
            "first_stage_model.quant_conv.weight", "first_stage_model.encoder.conv_in.weight"} <= ignored


def test_single_file_without_text_model_level(tmp_path, single_file, converted):
    """Old single files (and transformers >= 5) name CLIP tensors without `text_model.`."""
    prefix = "cond_stage_model.transformer.text_model."
    tensors = {key.replace(prefix, "cond_stage_model.transformer."): value
               for key, value in load_file(single_file).items()}
    save_file(tensors, tmp_path / "old.safetensors")
    result = convert(tmp_path / "old.safetensors", tmp_path / "out")
    assert result.manifest.shards == converted["single_f32"].manifest.shards


def test_bf16_and_f16_sources_are_widened_exactly(tmp_path):
    values = np.array([1.0, -2.5, 0.0078125, 2.0**18], dtype=np.float32)  # bf16-exact
    bf16 = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    f16 = values[:3].astype("<f2").tobytes()
    header = json.dumps({"a": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F16", "shape": [3], "data_offsets": [8, 14]}}).encode()
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bf16 + f16)
    weights = SafetensorsFile(path)
    assert np.array_equal(weights.read("a"), values.reshape(2, 2))
    assert np.array_equal(weights.read("b"), values[:3])


def test_fp16_variant_is_used_when_alone_and_ignored_otherwise(tmp_path, folder):
    src = copy_folder(folder, tmp_path)
    unet = src / WEIGHTS["unet"]
    half = {key: value.astype(np.float16) for key, value in load_file(unet).items()}
    save_file(half, unet.with_name("diffusion_pytorch_model.fp16.safetensors"))
    result = convert(src, tmp_path / "both")
    assert result.ignored["weight variants other than the one converted"] == [
        "unet/diffusion_pytorch_model.fp16.safetensors"]
    unet.unlink()
    tensors = read_converted(convert(src, tmp_path / "fp16_only").folder, ("unet",))["unet"]
    assert all(np.array_equal(tensors[name], value.astype(np.float32)) for name, value in half.items())


# --- bad inputs: each refused with a message naming the thing; nothing is written -------------------------------------


def copy_folder(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / "src")


def rewrite(path, change):
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, path)


def refused(src, tmp_path, *expected):
    out = tmp_path / "out"
    with pytest.raises(ConvertError) as caught:
        convert(src, out)
    message = str(caught.value)
    for text in expected:
        assert text in message
    assert not out.exists() and not list(tmp_path.glob(".out.*"))
    return message


def test_pickled_checkpoints_are_refused(tmp_path):
    for suffix in (".ckpt", ".bin", ".pt", ".pth"):
        path = tmp_path / f"model{suffix}"
        path.write_bytes(b"\x80\x04not read")
        refused(path, tmp_path, f"{path}: a pickled checkpoint can run arbitrary code", "weights_only=True",
                "model.safetensors")


def test_pickled_folder_weights_are_refused(tmp_path, folder):
    src = copy_folder(folder, tmp_path)
    (src / WEIGHTS["unet"]).rename(src / "unet/diffusion_pytorch_model.bin")
    refused(src, tmp_path, f"{src / 'unet'}: only pickled weights (diffusion_pytorch_model.bin)",
            "safe_serialization=True")


@pytest.mark.parametrize("component, change, expected", [
    ("unet", lambda t: t.pop("conv_out.bias"), "missing tensor conv_out.bias [4]"),
    ("unet", lambda t: t.update(extra_layer=np.ones(3, np.float32)), "unknown tensor extra_layer (F32 [3])"),
    ("vae", lambda t: t.update({"decoder.conv_in.weight": np.ones((64, 4, 3, 1), np.float32)}),
     "tensor decoder.conv_in.weight has shape [64, 4, 3, 1]; expected [64, 4, 3, 3]"),
    ("text_encoder", lambda t: t.update({"encoder.layers.0.mlp.fc1.bias": np.ones(37, np.int32)}),
     "tensor encoder.layers.0.mlp.fc1.bias is I32; expected a float tensor"),
])
def test_bad_folder_tensors_are_named(tmp_path, folder, component, change, expected):
    src = copy_folder(folder, tmp_path)
    rewrite(src / WEIGHTS[component], change)
    refused(src, tmp_path, f"{src / component}", expected)


def test_every_problem_is_listed_at_once(tmp_path, folder):
    src = copy_folder(folder, tmp_path)
    rewrite(src / WEIGHTS["unet"], lambda t: (t.pop("conv_in.bias"), t.pop("conv_in.weight")))
    (src / "vae/config.json").unlink()
    message = refused(src, tmp_path, "missing tensor conv_in.bias", "missing tensor conv_in.weight",
                      f"{src / 'vae/config.json'}: missing; expected the vae's config.json")
    assert len(message.splitlines()) == 3


def test_unsupported_config_values_are_refused(tmp_path, folder):
    src = copy_folder(folder, tmp_path)
    config = json.loads((src / "unet/config.json").read_text())
    (src / "unet/config.json").write_text(json.dumps({**config, "upcast_attention": True,
                                                      "down_block_types": ["CrossAttnDownBlock2D", "Nope"]}))
    refused(src, tmp_path, "upcast_attention is true; only SD 1.x's false is supported",
            'down_block_types[1]: got "Nope"')


def test_missing_scheduler_and_tokenizer_are_named(tmp_path, folder):
    src = copy_folder(folder, tmp_path)
    shutil.rmtree(src / "scheduler")
    (src / "tokenizer/tokenizer.json").unlink()
    refused(src, tmp_path, f"{src / 'scheduler/scheduler_config.json'}: missing",
            f"{src / 'tokenizer'}: no vocab.json + merges.txt and no tokenizer.json")


def test_scheduler_keys_left_out_get_diffusers_defaults(tmp_path, folder):
    src = copy_folder(folder, tmp_path)
    path = src / "scheduler/scheduler_config.json"
    config = json.loads(path.read_text())
    del config["prediction_type"], config["num_train_timesteps"]
    path.write_text(json.dumps(config))
    scheduler = convert(src, tmp_path / "out").manifest.inference.scheduler_config
    assert (scheduler["prediction_type"], scheduler["num_train_timesteps"]) == ("epsilon", 1000)


def test_not_a_diffusers_folder(tmp_path, folder):
    src = copy_folder(folder, tmp_path)
    (src / "model_index.json").unlink()
    refused(src, tmp_path, "no model_index.json; expected a diffusers pipeline folder")


def test_bad_single_file_tensors_are_named(tmp_path, single_file):
    tensors = load_file(single_file)
    del tensors["model.diffusion_model.out.2.bias"]
    tensors["control_model.zero_convs.0.0.weight"] = np.ones((2, 2), np.float32)
    tensors["first_stage_model.decoder.mid.attn_1.q.weight"] = np.ones((64, 64, 3, 3), np.float32)
    save_file(tensors, tmp_path / "bad.safetensors")
    refused(tmp_path / "bad.safetensors", tmp_path, "missing tensor model.diffusion_model.out.2.bias [4]",
            "unknown tensor control_model.zero_convs.0.0.weight (F32 [2, 2])",
            "first_stage_model.decoder.mid.attn_1.q.weight has shape [64, 64, 3, 3]; expected [64, 64] or "
            "[64, 64, 1, 1]")


def test_single_file_of_another_architecture_is_refused(tmp_path, single_file):
    """The tiny file read as SD 1.5 (the default preset): shapes and missing levels are named, not guessed."""
    with pytest.raises(ConvertError) as caught:
        write_model(open_source(single_file, PRESETS["sd15"]), tmp_path / "out", dtype="f16", model_id="x", name="x")
    assert "tensor model.diffusion_model.input_blocks.0.0.weight has shape [32, 4, 3, 3]; expected [320, 4, 3, 3]" \
        in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_values_that_do_not_fit_leave_nothing(tmp_path, folder):
    src = copy_folder(folder, tmp_path)
    rewrite(src / WEIGHTS["unet"], lambda t: t["conv_out.bias"].__setitem__(0, 1e5))
    rewrite(src / WEIGHTS["vae"], lambda t: t["decoder.conv_out.bias"].__setitem__(1, np.nan))
    out = tmp_path / "out"
    with pytest.raises(ConvertError) as caught:
        convert(src, out, dtype="f16")
    assert str(caught.value).splitlines() == [
        "unet tensor conv_out.bias: has values beyond f16's range (|x| > 65504); convert with --dtype f32",
        "vae tensor decoder.conv_out.bias: has NaN or infinite values; the source checkpoint is damaged"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_existing_output_needs_force(tmp_path, folder, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old").write_text("x")
    assert main(["convert", str(folder), str(out)]) == 1
    assert "already exists; choose another folder, remove it, or pass --force" in capsys.readouterr().err
    assert main(["convert", str(folder), str(out), "--force"]) == 0
    assert not (out / "old").exists() and (out / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
