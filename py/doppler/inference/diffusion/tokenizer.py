"""CLIP byte-level BPE tokenizer, standard library only (it runs in the page under Pyodide).

Gives the ids of transformers' CLIPTokenizerFast (the tokenizers-backed one diffusers uses for SD 1.5):

1. The special tokens (BOS, EOS, pad) are cut out of the raw text verbatim; each becomes its own id.
2. Each segment between them is normalized: NFC, then lower-cased one character at a time (tokenizers'
   Lowercase maps each char alone, so a final capital sigma becomes "σ" where str.lower() gives "ς").
   The fast tokenizer also collapses whitespace runs to " "; step 3 drops whitespace, so that needs no code here.
3. Pre-tokenize with CLIP's pattern, taking at each position the first alternative that matches:
       <|startoftext|> | <|endoftext|> | 's | 't | 're | 've | 'm | 'll | 'd | \\p{L}+ | \\p{N} | [^\\s\\p{L}\\p{N}]+
   Whitespace between the pieces is dropped; each digit is a piece of its own. The fast tokenizer's ByteLevel
   step then applies GPT-2's pattern to each piece, which splits only the special-token literals (into "<|",
   name, "|>").
4. Each piece's UTF-8 bytes become byte-to-unicode symbols, the last one suffixed with "</w>"; BPE then merges
   the adjacent pair of lowest merge rank (leftmost among equals) until no adjacent pair is a merge.
5. ids = [BOS] + piece ids[:max_length - 2] + [EOS], padded to max_length with the pad id.

Character classes follow Oniguruma (the regex engine of tokenizers) in its Unicode mode: \\p{L} is general category
L*, \\p{N} is N*, \\s is U+0009..U+000D, U+0085 and categories Zs, Zl, Zp (not str.isspace(), which adds
U+001C..U+001F). Categories come from `unicodedata`, whose Unicode version is the interpreter's: 14.0 on CPython
3.11, 16.0 on Pyodide's 3.14. tokenizers 0.23 already knows 16.0, so on CPython 3.11 only the code points first
assigned in 15.0..16.0 (unassigned there, so "other" here) can give other ids; every code point assigned in 14.0
matches (tests/unit/test_tokenizer.py checks them all).
"""

from __future__ import annotations

import json
import re
import unicodedata

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
END_OF_WORD = "</w>"
MERGES_HEADER = "#version: 0.2"

# The alternatives of CLIP's pattern that are fixed strings; they come before the character classes.
_SPECIAL_LITERALS = (BOS_TOKEN, EOS_TOKEN)
_LITERALS_RE = re.compile("|".join(re.escape(lit) for lit in (*_SPECIAL_LITERALS, "'s", "'t", "'re", "'ve", "'m",
                                                               "'ll", "'d")))
_SPACE_CONTROLS = frozenset("\t\n\v\f\r\x85")
_SPACE_CATEGORIES = frozenset(("Zs", "Zl", "Zp"))
_LETTER, _NUMBER, _SPACE, _OTHER = "letter", "number", "space", "other"
_NOT_A_MERGE = float("inf")


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table, in CLIP's order.

    The printable Latin-1 bytes map to themselves and come first; the other 68 bytes follow in byte order, mapped
    to U+0100 onward. CLIP's vocabulary ids 0..255 are this table's values in this order.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + n) for n, b in enumerate(others)}}


def _char_kind(char: str) -> str:
    category = unicodedata.category(char)
    if category[0] == "L":
        return _LETTER
    if category[0] == "N":
        return _NUMBER
    if char in _SPACE_CONTROLS or category in _SPACE_CATEGORIES:
        return _SPACE
    return _OTHER


def _normalize(text: str) -> str:
    return "".join(char.lower() for char in unicodedata.normalize("NFC", text))


def _pre_tokenize(text: str) -> list[str]:
    """CLIP's pattern over normalized text, as a left-to-right scanner (see the module docstring, step 3)."""
    pieces, i = [], 0
    while i < len(text):
        literal = _LITERALS_RE.match(text, i)
        kind, end = _char_kind(text[i]), i + 1
        if literal is not None:
            end = literal.end()
            # ByteLevel splits a special token again into "<|", name, "|>" (docstring, step 3); the literal
            # changes only where the next piece starts.
            piece = literal.group()
            pieces += [piece[:2], piece[2:-2], piece[-2:]] if piece in _SPECIAL_LITERALS else [piece]
        elif kind != _SPACE:
            if kind != _NUMBER:
                while end < len(text) and _char_kind(text[end]) == kind:
                    end += 1
            pieces.append(text[i:end])
        i = end
    return pieces


class ClipTokenizer:
    """Prompt -> CLIP token ids, from the `vocab.json` and `merges.txt` texts of a diffusers `tokenizer/` folder.

    `max_length` is the text encoder's sequence length (77 for SD 1.5). `pad_token` fills the ids after EOS:
    SD 1.5 pads with "<|endoftext|>", SD 2 with "!". Like the fast tokenizer, the pad token found verbatim in a
    prompt is a special token too (so under SD 2 each "!" is its own id).
    """

    def __init__(self, vocab_json: str, merges_txt: str, *, max_length: int, pad_token: str = EOS_TOKEN,
                 bos_token: str = BOS_TOKEN, eos_token: str = EOS_TOKEN):
        self._vocab: dict[str, int] = json.loads(vocab_json)
        self._tokens = {i: token for token, i in self._vocab.items()}
        self._ranks = _parse_merges(merges_txt, self._vocab)
        self._byte_symbols = byte_to_unicode()
        for symbol in self._byte_symbols.values():
            for token in (symbol, symbol + END_OF_WORD):
                if token not in self._vocab:
                    raise ValueError(f"vocab.json lacks the byte symbol {token!r}; it is not a CLIP byte-level "
                                     "vocabulary (write one with doppler.convert.clip_vocab)")
        special = {"bos_token": bos_token, "eos_token": eos_token, "pad_token": pad_token}
        for name, token in special.items():
            if token not in self._vocab:
                raise ValueError(f"{name} {token!r} is not in vocab.json; pass a token of the vocabulary")
        if max_length < 2:
            raise ValueError(f"max_length {max_length} leaves no room for BOS and EOS; pass the text encoder's "
                             "sequence length (77 for SD 1.5)")
        self.max_length = max_length
        self.bos_id, self.eos_id, self.pad_id = (self._vocab[t] for t in (bos_token, eos_token, pad_token))
        # Leftmost-longest, as tokenizers matches its added tokens: longer alternatives first.
        self._special_re = re.compile("|".join(re.escape(t) for t in sorted(set(special.values()), key=len,
                                                                              reverse=True)))
        self._piece_cache: dict[str, list[int]] = {}

    def encode(self, text: str) -> list[int]:
        """[BOS] + ids + [EOS], truncated (EOS kept last) and padded with the pad id to exactly max_length."""
        ids = [self.bos_id, *self._text_ids(text)[: self.max_length - 2], self.eos_id]
        return ids + [self.pad_id] * (self.max_length - len(ids))

    def tokenize(self, text: str) -> list[str]:
        """The token strings of `text`, without BOS/EOS, truncation or padding (for debugging)."""
        return [self._tokens[i] for i in self._text_ids(text)]

    def _text_ids(self, text: str) -> list[int]:
        ids, start = [], 0
        for match in self._special_re.finditer(text):
            ids += self._segment_ids(text[start:match.start()])
            ids.append(self._vocab[match.group()])
            start = match.end()
        return ids + self._segment_ids(text[start:])

    def _segment_ids(self, segment: str) -> list[int]:
        return [i for piece in _pre_tokenize(_normalize(segment)) for i in self._piece_ids(piece)]

    def _piece_ids(self, piece: str) -> list[int]:
        ids = self._piece_cache.get(piece)
        if ids is None:
            symbols = [self._byte_symbols[b] for b in piece.encode("utf-8")]
            symbols[-1] += END_OF_WORD
            while len(symbols) > 1:
                rank, i = min((self._ranks.get(pair, _NOT_A_MERGE), i)
                              for i, pair in enumerate(zip(symbols, symbols[1:])))
                if rank == _NOT_A_MERGE:
                    break
                symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
            ids = self._piece_cache[piece] = [self._vocab[s] for s in symbols]
        return ids


def _parse_merges(merges_txt: str, vocab: dict[str, int]) -> dict[tuple[str, str], int]:
    """merges.txt -> {(left, right): rank}; the `#version` header and blank lines are skipped, as tokenizers does."""
    lines = [(number, line) for number, line in enumerate(merges_txt.splitlines(), start=1)
             if line and not (number == 1 and line.startswith("#version"))]
    ranks = {}
    for rank, (number, line) in enumerate(lines):
        pair = tuple(line.split(" "))
        if len(pair) != 2 or "".join(pair) not in vocab:
            raise ValueError(f"merges.txt line {number} {line!r} is not 'left right' with left+right in "
                             "vocab.json; are vocab.json and merges.txt from the same tokenizer?")
        ranks[pair] = rank
    return ranks
