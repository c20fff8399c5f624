"""The page's CLIP tokenizer against transformers' CLIPTokenizerFast, both built from the shipped CLIP vocabulary."""

from __future__ import annotations

import json
import random
import sys
import unicodedata

import pytest
from transformers import CLIPTokenizerFast

from doppler.convert.clip_vocab import VOCAB_SIZE, write_clip_tokenizer_files
from doppler.inference.diffusion.tokenizer import BOS_TOKEN, EOS_TOKEN, MERGES_HEADER, ClipTokenizer

MAX_LENGTH = 77  # SD 1.5's text encoder sequence length
SD15_PAD, SD2_PAD = EOS_TOKEN, "!"

CORPUS = [
    # plain English and SD-style prompts, weights syntax left as text
    "a photo of a cat",
    "A photograph of an astronaut riding a horse on Mars, highly detailed, 8k",
    "(masterpiece:1.2), best quality, [blurry], ((ultra-detailed)), {extra}, <lora:foo:0.8>",
    "portrait of a woman, by Greg Rutkowski and Alphonse Mucha, trending on ArtStation",
    "cinematic lighting | volumetric fog || dof -- no text",
    # punctuation runs, numbers (one piece per digit), contractions, upper case
    "wow!!! ... ?!?! --- *** ### $$$ @@@ ~~~ ^^^ ``` \"quoted\" 'single'",
    "1234567890 3.14159 1,000,000 2024-01-01 12:30pm 0x1F 1e-5 -42",
    "it's don't they're we've I'm you'll he'd IT'S DON'T 's 't 're rock'n'roll ''s !'s",
    "HELLO WORLD ThIs Is MiXeD CaSe",
    # accented Latin (precomposed and combining), other scripts
    "café naïve résumé Ångström façade São Paulo Dvořák Łódź straße ẞ",
    "cafe\u0301 na\u0308ive A\u030angstro\u0308m",
    "Москва ПРИВЕТ мир Ёлка",
    "Αθήνα ΟΔΟΣ ΣΟΦΙΑ φιλοσοφία",
    "مرحبا بالعالم ٣ ١٢٣",
    "שלום עולם",
    "नमस्ते दुनिया हिन्दी",
    "สวัสดีชาวโลก",
    "猫がいる 東京タワー ひらがな カタカナ ｶﾀｶﾅ",
    "一只可爱的猫 水墨画",
    "안녕하세요 세계 한글",
    # emoji, ZWJ sequences, skin tones, flags, keycaps, variation selectors
    "😀 🐱 🔥🔥🔥 👍🏽 ❤️ ☀︎",
    "👨‍👩‍👧‍👦 👩🏽‍💻 🏳️‍🌈",
    "🇺🇸🇯🇵🇩🇪 1️⃣ #️⃣",
    # combining marks, full-width characters, other \p{N}
    "Z\u0335\u0321a\u0336l\u0337g\u0338o e\u0301\u0302\u0303",
    "ＡＢＣ　ｆｕｌｌ－ｗｉｄｔｈ　１２３！",
    "Ⅻ ½ ² ³ ٣ ⅷ ① ㊿ 𝟘 ₇ ¼",
    # whitespace
    "tabs\tand\nnewlines\r\nand   multiple    spaces\u00a0nbsp\u2003em\u3000ideographic",
    "\x1cfile\x1dgroup\x1erecord\x1funit\x85nel\u2028line\u2029para\x0bvt\x0cff",
    # the literal special tokens in text, whole, in other case and in pieces
    "<|startoftext|>a cat<|endoftext|>",
    "x<|endoftext|>y <|ENDOFTEXT|>! !<|endoftext|> <|startoftext <|endoftext|>>",
    "a<|endoftext|><|endoftext|><|startoftext|>b",
    # very long prompts (> 77 tokens), empty and whitespace-only
    "a very long prompt " * 30,
    ", ".join(f"word{i}" for i in range(60)),
    "",
    "   \t\n  ",
]


@pytest.fixture(scope="module")
def tokenizer_files(tmp_path_factory):
    return write_clip_tokenizer_files(tmp_path_factory.mktemp("clip_tokenizer"))


def _ours(tokenizer_files, max_length: int = MAX_LENGTH, pad_token: str = SD15_PAD) -> ClipTokenizer:
    vocab_path, merges_path = tokenizer_files
    return ClipTokenizer(vocab_path.read_text(encoding="utf-8"), merges_path.read_text(encoding="utf-8"),
                         max_length=max_length, pad_token=pad_token)


@pytest.fixture(scope="module", params=[SD15_PAD, SD2_PAD], ids=["pad_eos", "pad_bang"])
def tokenizer_pair(tokenizer_files, request) -> tuple[ClipTokenizer, CLIPTokenizerFast]:
    """(ours, transformers' fast tokenizer) from the same vocab.json + merges.txt and pad token."""
    reference = CLIPTokenizerFast.from_pretrained(tokenizer_files[0].parent, pad_token=request.param)
    return _ours(tokenizer_files, pad_token=request.param), reference


def _reference_ids(reference: CLIPTokenizerFast, prompt: str) -> list[int]:
    return reference(prompt, padding="max_length", max_length=MAX_LENGTH, truncation=True).input_ids


@pytest.fixture(scope="module")
def chars_by_category() -> dict[str, list[str]]:
    """Every code point assigned in this interpreter's Unicode version, by general category (private use and
    surrogates left out: the first is one category, the second cannot be UTF-8 encoded)."""
    by_category: dict[str, list[str]] = {}
    for code_point in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code_point))
        if category not in ("Cn", "Co", "Cs"):
            by_category.setdefault(category, []).append(chr(code_point))
    return by_category


@pytest.mark.parametrize("prompt", CORPUS, ids=range(len(CORPUS)))
def test_corpus_ids_match_fast_tokenizer(tokenizer_pair, prompt):
    ours, reference = tokenizer_pair
    ids = ours.encode(prompt)
    assert len(ids) == MAX_LENGTH
    assert ids == _reference_ids(reference, prompt)


def test_random_unicode_strings_match_fast_tokenizer(tokenizer_pair, chars_by_category):
    ours, reference = tokenizer_pair
    ascii_chars = [chr(c) for c in range(0x20, 0x7F)] * 20  # weighted so contractions and words occur
    fragments = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'", BOS_TOKEN, EOS_TOKEN, "<|", "|>", "!", " ", "\u200d"]
    rng = random.Random(20260127)
    prompts = []
    for _ in range(300):
        parts = []
        for _ in range(rng.randrange(0, 60)):
            pool = rng.choice(["ascii", "fragment", "category"])
            if pool == "ascii":
                parts.append(rng.choice(ascii_chars))
            elif pool == "fragment":
                parts.append(rng.choice(fragments))
            else:
                parts.append(rng.choice(chars_by_category[rng.choice(sorted(chars_by_category))]))
        prompts.append("".join(parts))
    mismatches = [p for p in prompts if ours.encode(p) != _reference_ids(reference, p)]
    assert not mismatches, f"{len(mismatches)} of {len(prompts)} differ, e.g. {mismatches[:3]!r}"


def test_every_assigned_code_point_tokenizes_as_fast_tokenizer(tokenizer_files, chars_by_category):
    """Each character probed as "cc!c ": its class (letter, number, whitespace, other), its NFC and lower-casing
    and its bytes' BPE all show in the tokens."""
    ours = _ours(tokenizer_files)
    backend = CLIPTokenizerFast.from_pretrained(tokenizer_files[0].parent).backend_tokenizer
    chars = sorted(c for chars in chars_by_category.values() for c in chars)
    chunk = 1000
    probes = ["".join(c + c + "!" + c + " " for c in chars[i : i + chunk]) for i in range(0, len(chars), chunk)]
    references = backend.encode_batch(probes, add_special_tokens=False)
    for probe, reference in zip(probes, references):
        assert ours.tokenize(probe) == reference.tokens, f"differs in {probe[:40]!r}..."


def test_written_vocabulary_has_clip_ids(tokenizer_files):
    vocab_path, merges_path = tokenizer_files
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    merges = merges_path.read_text(encoding="utf-8").splitlines()
    assert len(vocab) == VOCAB_SIZE and sorted(vocab.values()) == list(range(VOCAB_SIZE))
    assert merges[0] == MERGES_HEADER and len(merges) == 1 + 48894
    assert merges[1] == "i n" and vocab["in"] == 512 and merges[-1] == "jeky ll</w>" and vocab["jekyll</w>"] == 49405
    known = {"!": 0, "~": 93, "¡": 94, "Ā": 188, "!</w>": 256, "a</w>": 320, "photo</w>": 1125, "of</w>": 539,
             "cat</w>": 2368, BOS_TOKEN: 49406, EOS_TOKEN: 49407}
    assert {token: vocab[token] for token in known} == known


def test_known_prompt_ids(tokenizer_files):
    ours = _ours(tokenizer_files)
    assert ours.encode("a photo of a cat") == [49406, 320, 1125, 539, 320, 2368] + [49407] * (MAX_LENGTH - 6)
    assert ours.tokenize("A Photo!!") == ["a</w>", "photo</w>", "!!</w>"]


def test_truncation_keeps_eos_last(tokenizer_files):
    ours = _ours(tokenizer_files, max_length=8, pad_token=SD2_PAD)
    assert ours.encode("cat " * 20) == [49406] + [2368] * 6 + [49407]
    assert ours.encode("cat") == [49406, 2368, 49407, 0, 0, 0, 0, 0]


def test_bad_inputs_name_the_problem(tokenizer_files):
    vocab_path, merges_path = tokenizer_files
    vocab_text, merges_text = vocab_path.read_text(encoding="utf-8"), merges_path.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="pad_token '<pad>' is not in vocab.json"):
        ClipTokenizer(vocab_text, merges_text, max_length=MAX_LENGTH, pad_token="<pad>")
    with pytest.raises(ValueError, match="max_length 1 leaves no room"):
        ClipTokenizer(vocab_text, merges_text, max_length=1)
    with pytest.raises(ValueError, match="merges.txt line 2 'i n x'"):
        ClipTokenizer(vocab_text, merges_text.replace("i n\n", "i n x\n", 1), max_length=MAX_LENGTH)
    with pytest.raises(ValueError, match="lacks the byte symbol"):
        ClipTokenizer(json.dumps({"a": 0}), "", max_length=MAX_LENGTH)
