"""CLIP BPE vocabulary files from the shipped `bpe_simple_vocab_16e6.txt.gz` (OpenAI CLIP, via open_clip).

Writes the `vocab.json` + `merges.txt` pair of a diffusers `tokenizer/` folder, as OpenAI CLIP's SimpleTokenizer
builds them and as `openai/clip-vit-large-patch14` ships them:

    ids 0..255       the 256 byte symbols (GPT-2 byte-to-unicode table)
    ids 256..511     the same symbols with the end-of-word suffix `</w>`
    ids 512..49405   the joined pair of each merge, in merge-rank order (48894 merges)
    ids 49406/49407  `<|startoftext|>`, `<|endoftext|>`
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

from doppler.inference.diffusion.tokenizer import (
    BOS_TOKEN,
    END_OF_WORD,
    EOS_TOKEN,
    MERGES_HEADER,
    byte_to_unicode,
)

# SimpleTokenizer keeps merges[1 : 49152 - 256 - 2 + 1]: line 0 is a header, and the vocabulary is capped at 49152
# entries less the 256 byte symbols and the two special tokens (the suffixed byte symbols fill that room).
MERGE_LINES = slice(1, 49152 - 256 - 2 + 1)
VOCAB_SIZE = 49408


def shipped_bpe_path() -> Path:
    """The CLIP BPE merges list that ships inside the package."""
    return Path(str(resources.files("doppler.convert") / "data" / "bpe_simple_vocab_16e6.txt.gz"))


def clip_vocab_and_merges(bpe_gz: Path | None = None) -> tuple[dict[str, int], list[str]]:
    """The CLIP token -> id table and the merge lines ("a b"), in rank order."""
    lines = gzip.open(bpe_gz or shipped_bpe_path()).read().decode("utf-8").split("\n")[MERGE_LINES]
    merges = [tuple(line.split()) for line in lines]
    symbols = list(byte_to_unicode().values())
    tokens = symbols + [s + END_OF_WORD for s in symbols] + ["".join(m) for m in merges] + [BOS_TOKEN, EOS_TOKEN]
    vocab = {token: i for i, token in enumerate(tokens)}
    if len(vocab) != VOCAB_SIZE:
        raise ValueError(f"{bpe_gz or shipped_bpe_path()}: built {len(vocab)} CLIP tokens, expected {VOCAB_SIZE}; "
                         "is this OpenAI CLIP's bpe_simple_vocab_16e6.txt.gz?")
    return vocab, [" ".join(m) for m in merges]


def write_clip_tokenizer_files(out_dir: Path, bpe_gz: Path | None = None) -> tuple[Path, Path]:
    """Write CLIP's `vocab.json` and `merges.txt` into `out_dir`; return their paths."""
    return write_bpe_files(out_dir, *clip_vocab_and_merges(bpe_gz))


def write_bpe_files(out_dir: Path, vocab: dict[str, int], merges: list[str]) -> tuple[Path, Path]:
    """Write `vocab.json` and `merges.txt` (merge lines "a b", after its `#version: 0.2` header) into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab_path, merges_path = out_dir / "vocab.json", out_dir / "merges.txt"
    vocab_path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_path.write_text("\n".join([MERGES_HEADER, *merges]) + "\n", encoding="utf-8")
    return vocab_path, merges_path
