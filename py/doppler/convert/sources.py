"""What a conversion reads: a diffusers folder or an original single-file checkpoint, checked whole before anything
is written.

Each source gives, per component, the architecture numbers and one loader per expected tensor (by diffusers
name), plus the scheduler config and tokenizer. Every problem is collected and reported at once: a missing
tensor names its key and shape, an unknown tensor its file and key, a shape mismatch both shapes. Keys the app does
not need but real checkpoints carry (EMA copies, schedule buffers, position ids, the VAE encoder) are listed as
ignored, by reason.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from doppler.errors import ConvertError

from .clip_vocab import write_bpe_files, write_clip_tokenizer_files
from .configs import component_architecture, read_json, scheduler_config, tokenizer_settings
from .presets import Preset, TokenizerDefaults
from .safetensors_file import FLOAT_DTYPES, SafetensorsFile
from .tensors import COMPONENTS, LDM_PREFIX, params

Loader = Callable[[], np.ndarray]  # the tensor as float32, in its diffusers shape

PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth")
SAFETENSORS = ".safetensors"
# diffusers weight file names: BASE[-00001-of-00002][.VARIANT].safetensors; the variant-free files are the weights,
# else the fp16 variant.
WEIGHT_FILE = re.compile(r"^[^.]+?(?:-\d+-of-\d+)?(?:\.(?P<variant>[^.]+))?\.safetensors$")
FP16_VARIANT = "fp16"
TOKENIZER_FILES = ("vocab.json", "merges.txt")
# transformers >= 5 saves only this one file: the same BPE vocabulary and merges inside.
TOKENIZER_JSON = "tokenizer.json"
# The diffusers pipeline folders a decode-only text-to-image app does not read.
UNUSED_FOLDERS = ("safety_checker", "feature_extractor")

PICKLE_HINT = (
    "a pickled checkpoint can run arbitrary code when loaded, so doppler does not read it. Convert it to "
    ".safetensors first, in an environment you trust: python -c \"import torch, safetensors.torch as st; "
    "sd = torch.load('{path}', map_location='cpu', weights_only=True); sd = sd.get('state_dict', sd); "
    "st.save_file({{k: v.contiguous().clone() for k, v in sd.items() if isinstance(v, torch.Tensor)}}, "
    "'{stem}.safetensors')\"")
FOLDER_PICKLE_HINT = (
    "pickled weights can run arbitrary code when loaded, so doppler does not read them. Re-save the model with "
    "safetensors in an environment you trust: python -c \"from diffusers import StableDiffusionPipeline as P; "
    "P.from_pretrained('{src}', use_safetensors=False).save_pretrained('{src}-safetensors', "
    "safe_serialization=True)\"")


@dataclass(frozen=True)
class IgnoreRule:
    """Keys a real checkpoint carries that the app does not need, and why."""

    why: str
    names: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()

    def matches(self, key: str) -> bool:
        return key in self.names or key.startswith(self.prefixes) or key.endswith(self.suffixes)


POSITION_IDS = "position ids (the constant 0..n-1, not a weight)"
VAE_ENCODER = "VAE encoder and quant_conv (image -> latent; text-to-image only decodes)"
LOGIT_SCALE = "CLIP logit scale (image-text matching only)"
FOLDER_IGNORED = {
    "text_encoder": (IgnoreRule(POSITION_IDS, names=("text_model.embeddings.position_ids",)),
                     IgnoreRule(LOGIT_SCALE, suffixes=("logit_scale",))),
    "unet": (),
    "vae": (IgnoreRule(VAE_ENCODER, prefixes=("encoder.", "quant_conv.")),),
}
# The noise-schedule buffers of CompVis' LatentDiffusion (the scheduler config defines the schedule here).
SCHEDULE_BUFFERS = (
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
    "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
)
SINGLE_FILE_IGNORED = (
    IgnoreRule("EMA copies and counters (the non-EMA weights are converted)", prefixes=("model_ema.",)),
    IgnoreRule("training noise-schedule buffers (the scheduler config defines the schedule)", names=SCHEDULE_BUFFERS),
    IgnoreRule(POSITION_IDS, names=("cond_stage_model.transformer.text_model.embeddings.position_ids",)),
    IgnoreRule(VAE_ENCODER, prefixes=("first_stage_model.encoder.", "first_stage_model.quant_conv.")),
    IgnoreRule(LOGIT_SCALE, suffixes=("logit_scale",)),
)
# CLIPTextModel's keys below `text_model.`: transformers >= 5 saves them without that level, as some old single
# files do (A1111 maps those the same way); the manifest keeps diffusers' `text_model.` names.
TEXT_MODEL = "text_model."
TEXT_MODEL_PARTS = ("embeddings.", "encoder.", "final_layer_norm.")
SINGLE_FILE_TEXT_PREFIX = LDM_PREFIX["text_encoder"]


@dataclass(frozen=True)
class TokenizerSource:
    """How to write the tokenizer's vocab.json and merges.txt into a folder, and its settings."""

    write: Callable[[Path], object]
    settings: TokenizerDefaults


@dataclass(frozen=True)
class Source:
    """Everything a conversion writes, checked: architectures, tensor loaders, scheduler config, tokenizer."""

    architectures: dict[str, object]
    loaders: dict[str, dict[str, Loader]]  # component -> diffusers name -> loader
    scheduler_config: dict
    tokenizer: TokenizerSource
    ignored: dict[str, list[str]] = field(default_factory=dict)  # reason -> keys or paths


def open_source(src: Path, preset: Preset, scheduler_file: Path | None = None,
                tokenizer_folder: Path | None = None) -> Source:
    """Check `src` (a diffusers folder or a single-file .safetensors) and describe what converting it writes.

    `preset` supplies what a single file lacks; `scheduler_file` / `tokenizer_folder` replace the source's own.
    ConvertError lists every problem.
    """
    src = Path(src)
    if src.suffix.lower() in PICKLE_SUFFIXES:
        raise ConvertError([f"{src}: {PICKLE_HINT.format(path=src, stem=src.with_suffix(''))}"])
    if src.is_dir():
        return _diffusers_folder(src, preset, scheduler_file, tokenizer_folder)
    if src.is_file() and src.suffix.lower() == SAFETENSORS:
        return _single_file(src, preset, scheduler_file, tokenizer_folder)
    if src.exists():
        raise ConvertError([f"{src}: expected a diffusers folder (with model_index.json) or a single-file "
                            f".safetensors checkpoint"])
    raise ConvertError([f"{src}: no such file or folder"])


def _diffusers_folder(src: Path, preset: Preset, scheduler_file, tokenizer_folder) -> Source:
    problems: list[str] = []
    if not (src / "model_index.json").is_file():
        raise ConvertError([f"{src}: no model_index.json; expected a diffusers pipeline folder (model_index.json, "
                            "unet/, vae/, text_encoder/, tokenizer/, scheduler/)"])
    ignored: dict[str, list[str]] = {}
    architectures, loaders = {}, {}
    for component in COMPONENTS:
        folder = src / component
        if not folder.is_dir():
            problems.append(f"{folder}: missing; a diffusers pipeline folder has unet/, vae/ and text_encoder/")
            continue
        architecture = component_architecture(component, folder / "config.json", problems)
        found = _folder_tensors(folder, src, component, ignored, problems)
        if architecture is None or found is None:
            continue
        architectures[component] = architecture
        component_params = params(component, architecture)
        loaders[component] = _claim(component_params, found, False, f"{folder} (from its config.json)", problems)
        expected = {p.name for p in component_params}
        for key, (weights, file_key) in found.items():
            if key not in expected and not _ignore(key, f"{component}/{file_key}", FOLDER_IGNORED[component], ignored):
                info = weights.tensors[file_key]
                problems.append(f"{weights.path}: unknown tensor {file_key} ({info.dtype} {list(info.shape)}); not a "
                                f"{component} tensor of this architecture ({folder / 'config.json'})")
    for name in UNUSED_FOLDERS:
        if (src / name).is_dir():
            ignored.setdefault("pipeline parts a decode-only text-to-image app does not run", []).append(name + "/")
    scheduler = scheduler_config(scheduler_file or src / "scheduler" / "scheduler_config.json", problems)
    tokenizer = None
    if "text_encoder" in architectures:
        tokenizer = _tokenizer_folder(tokenizer_folder or src / "tokenizer", architectures["text_encoder"], preset,
                                      problems)
    if problems:
        raise ConvertError(problems)
    return Source(architectures, loaders, scheduler, tokenizer, ignored)


def _folder_tensors(folder: Path, src: Path, component: str, ignored, problems):
    """{diffusers key: (file, key in file)} over a component folder's weight files; None (with problems) if it has
    none."""
    by_variant: dict[str | None, list[Path]] = {}
    for path in sorted(folder.glob("*" + SAFETENSORS)):
        match = WEIGHT_FILE.match(path.name)
        by_variant.setdefault(match["variant"] if match else path.name, []).append(path)
    chosen_variant = None if None in by_variant else FP16_VARIANT
    files = by_variant.pop(chosen_variant, [])
    for paths in by_variant.values():
        ignored.setdefault("weight variants other than the one converted", []).extend(
            str(p.relative_to(src)) for p in paths)
    if not files:
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            problems.append(f"{folder}: only pickled weights ({', '.join(pickles)}); "
                            f"{FOLDER_PICKLE_HINT.format(src=src)}")
        else:
            problems.append(f"{folder}: no .safetensors weights (expected diffusion_pytorch_model.safetensors or "
                            "model.safetensors, or their .fp16 variant)")
        return None
    found = {}
    for path in files:
        weights = SafetensorsFile(path)
        for file_key in weights.tensors:
            key = _with_text_model(file_key, "") if component == "text_encoder" else file_key
            if key in found:
                problems.append(f"{path}: tensor {file_key} is also in {found[key][0].path} (as {found[key][1]}); "
                                "expected each tensor once")
            found[key] = (weights, file_key)
    return found


def _tokenizer_folder(folder: Path, text_encoder, preset: Preset, problems) -> TokenizerSource | None:
    """The BPE files of `folder` (vocab.json + merges.txt copied, or taken from tokenizer.json) and settings."""
    if all((folder / name).is_file() for name in TOKENIZER_FILES):
        vocab = read_json(folder / TOKENIZER_FILES[0], problems, "a token -> id JSON object") or {}
        write = partial(_copy_files, folder, TOKENIZER_FILES)
    elif (folder / TOKENIZER_JSON).is_file():
        vocab, merges = _bpe_of_tokenizer_json(folder / TOKENIZER_JSON, problems)
        write = partial(write_bpe_files, vocab=vocab, merges=merges)
    else:
        problems.append(f"{folder}: no {' + '.join(TOKENIZER_FILES)} and no {TOKENIZER_JSON}; expected CLIP's BPE "
                        "tokenizer files (or pass --tokenizer FOLDER)")
        return None
    outside = [token for token, i in vocab.items() if not isinstance(i, int) or not 0 <= i < text_encoder.vocab_size]
    if outside:
        problems.append(f"{folder}: {len(outside)} tokens (e.g. {outside[0]!r}) have ids outside the text encoder's "
                        f"{text_encoder.vocab_size} embedding rows")
    settings = tokenizer_settings(folder, text_encoder.max_position_embeddings, preset.tokenizer, problems)
    for key in ("pad_token", "bos_token", "eos_token"):
        token = getattr(settings, key)
        if isinstance(token, str) and token not in vocab:
            problems.append(f"{folder}: {key} {token!r} is not in the vocabulary")
    return TokenizerSource(write, settings)


def _copy_files(folder: Path, names: tuple[str, ...], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(folder / name, out / name)


def _bpe_of_tokenizer_json(path: Path, problems) -> tuple[dict[str, int], list[str]]:
    """(vocab, merge lines "a b") of a tokenizers BPE model; its added tokens join the vocabulary."""
    data = read_json(path, problems, "a tokenizers tokenizer.json") or {}
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        problems.append(f"{path}: model type is {model.get('type')!r}; expected a BPE tokenizer (CLIP's)")
        return {}, []
    vocab = dict(model.get("vocab", {}))
    for token in data.get("added_tokens", ()):
        vocab.setdefault(token["content"], token["id"])
    merges = [merge if isinstance(merge, str) else " ".join(merge) for merge in model.get("merges", ())]
    return vocab, merges


def _single_file(path: Path, preset: Preset, scheduler_file, tokenizer_folder) -> Source:
    problems: list[str] = []
    weights = SafetensorsFile(path)
    found = {_with_text_model(key, SINGLE_FILE_TEXT_PREFIX): (weights, key) for key in weights.tensors}
    ignored: dict[str, list[str]] = {}
    loaders, claimed = {}, set()
    for component in COMPONENTS:
        component_params = params(component, preset.architecture(component))
        where = f"{path} (the {preset.name} preset's {component})"
        loaders[component] = _claim(component_params, found, True, where, problems)
        claimed.update(p.ldm for p in component_params)
    for key, (_, file_key) in found.items():
        if key not in claimed and not _ignore(key, file_key, SINGLE_FILE_IGNORED, ignored):
            info = weights.tensors[file_key]
            problems.append(f"{path}: unknown tensor {file_key} ({info.dtype} {list(info.shape)}); not a text encoder, "
                            f"UNet or VAE decoder tensor of the {preset.name} preset (--preset)")
    scheduler = (scheduler_config(scheduler_file, problems) if scheduler_file
                 else dict(preset.scheduler_config))
    text_encoder = preset.text_encoder
    tokenizer = (_tokenizer_folder(tokenizer_folder, text_encoder, preset, problems) if tokenizer_folder
                 else TokenizerSource(write_clip_tokenizer_files, preset.tokenizer))
    if problems:
        raise ConvertError(problems)
    architectures = {component: preset.architecture(component) for component in COMPONENTS}
    return Source(architectures, loaders, scheduler, tokenizer, ignored)


def _with_text_model(key: str, prefix: str) -> str:
    """`key` with the `text_model.` level after `prefix` where it was saved without it."""
    if not key.startswith(prefix) or not key[len(prefix):].startswith(TEXT_MODEL_PARTS):
        return key
    return prefix + TEXT_MODEL + key[len(prefix):]


def _ignore(key: str, shown: str, rules, ignored: dict[str, list[str]]) -> bool:
    """Whether a rule ignores `key`; if so, `shown` (where it was found) is listed under the rule's reason."""
    for rule in rules:
        if rule.matches(key):
            ignored.setdefault(rule.why, []).append(shown)
            return True
    return False


def _claim(component_params, found, single_file: bool, where: str, problems: list[str]) -> dict[str, Loader]:
    """A loader per expected tensor found with an accepted shape; a problem for each missing or misshapen one."""
    loaders = {}
    for p in component_params:
        key = p.ldm if single_file else p.name
        if key is None:
            problems.append(f"{where}: this architecture has {p.name}, which original single files do not carry; "
                            "convert a diffusers folder instead")
            continue
        if key not in found:
            problems.append(f"{where}: missing tensor {key} {list(p.ldm_shape if single_file else p.shape)}")
            continue
        weights, file_key = found[key]
        info = weights.tensors[file_key]
        accepted = (p.shape, p.ldm_shape) if single_file else (p.shape,)
        if info.shape not in accepted:
            expected = " or ".join(str(list(shape)) for shape in dict.fromkeys(accepted))
            problems.append(f"{weights.path}: tensor {file_key} has shape {list(info.shape)}; expected {expected} "
                            f"({where})")
        elif info.dtype not in FLOAT_DTYPES:
            problems.append(f"{weights.path}: tensor {file_key} is {info.dtype}; expected a float tensor "
                            f"({', '.join(FLOAT_DTYPES)})")
        else:
            loaders[p.name] = partial(_load, weights, file_key, p.shape)
    return loaders


def _load(weights: SafetensorsFile, key: str, shape: tuple[int, ...]) -> np.ndarray:
    return weights.read(key).reshape(shape)
