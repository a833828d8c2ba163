"""Tokens of a study's text, for the `--dry-run` estimate (runner/text_size.py, selection_size.py):
counted by the study's own tokenizer (its base model's) when that is on this machine, else guessed.

The guess, ~CHARS_PER_TOKEN characters a token, holds for English under BPE or WordPiece and for no
script written without spaces: BERT-tiny's WordPiece and roberta-base's byte-level BPE both give
Chinese or Japanese one token a character or more, 4x the guess. So a script without spaces (and
Hangul) counts one token a character in the guess, and a tokenizer at hand replaces it: the texts of a file up to
SAMPLE_CHARS are each tokenized; past that, a sample spread over the file gives the tokens per
character the rest is scaled by (the mini's cs pool whole took 2.7 s, its sample 0.05 s).
"""
from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.scripts import UNSPACED_BLOCKS
from ..models import resolve_model

CHARS_PER_TOKEN = 4.0   # English text under BPE / WordPiece: the guess without a tokenizer
SAMPLE_CHARS = 200_000  # characters of a file tokenized; its other texts scaled by their tokens per character
HEAD_BYTES = 2**20      # of a plain corpus (GBs for a DAPT domain): its head is tokenized, its bytes scaled
# Scripts of a token a character or more under the tokenizers of the paper and the mini: those
# written without spaces between words (data/scripts.UNSPACED_BLOCKS, the word rule's: CJK ideographs
# and their extensions past U+FFFF, kana, Thai, Lao, Khmer, Myanmar, "々"), and these: Tibetan, and
# Hangul, whose syllables roberta-base's BPE spends bytes on and bert-tiny splits into jamo
# ("한국어 문장을 처리합니다", 13 characters: 28 tokens under bert-tiny). One list of the unspaced
# blocks: this one had its own, without CJK Extension B ("𠀀", 8 characters: 8 tokens, guessed 2).
TOKEN_A_CHARACTER_BLOCKS = (*UNSPACED_BLOCKS, (0x0F00, 0x0FFF), (0x1100, 0x11FF), (0x3130, 0x318F),
                            (0xAC00, 0xD7AF))
UNSPACED = re.compile("[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in TOKEN_A_CHARACTER_BLOCKS) + "]")


@dataclass(frozen=True)
class TokenCounter:
    model: str | None   # whose tokenizer counts; None: the character guess
    source: str         # for the printout: how tokens are counted

    def tokens(self, texts: list[str]) -> np.ndarray:
        """Tokens of each text (no special tokens): tokenized up to SAMPLE_CHARS characters in
        all, past that a spread sample tokenized and the rest scaled by its tokens per character."""
        chars = np.array([len(text) for text in texts], dtype=np.int64)
        if self.model is None or not len(texts):
            return np.array([_guess(text) for text in texts], dtype=np.int64)
        if chars.sum() <= SAMPLE_CHARS:
            return _tokenized(self.model, texts)
        picked = np.unique(np.linspace(0, len(texts) - 1, max(1, int(len(texts) * SAMPLE_CHARS / chars.sum()))
                                       ).astype(np.int64))
        sampled = _tokenized(self.model, [texts[i] for i in picked])
        counts = np.ceil(chars * (sampled.sum() / max(chars[picked].sum(), 1))).astype(np.int64)
        counts[picked] = sampled
        return counts

    def file_tokens(self, path: Path) -> float:
        """Tokens of a plain text file, from its size: its head's tokens per byte (a script of
        several bytes a character, UTF-8's Chinese 3, is counted by its characters this way)."""
        size = path.stat().st_size
        with open(path, "rb") as file:
            head = file.read(HEAD_BYTES).decode("utf-8", errors="ignore")
        if not head:
            return 0.0
        tokens = (_tokenized(self.model, head.splitlines()).sum() if self.model is not None
                  else _guess(head))
        return float(tokens) * size / len(head.encode())


GUESS = TokenCounter(None, f"guessed at ~{CHARS_PER_TOKEN:g} characters a token (a token a character of "
                           "Chinese, Japanese, Korean or Thai)")


def _guess(text: str) -> int:
    """~CHARS_PER_TOKEN characters a token, and a token a character of a script without spaces."""
    unspaced = len(UNSPACED.findall(text))
    return math.ceil((len(text) - unspaced) / CHARS_PER_TOKEN) + unspaced


def _tokenized(model: str, texts: list[str]) -> np.ndarray:
    tokenizer = _tokenizer(model, _hub())
    ids = tokenizer(texts, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False,
                    verbose=False)["input_ids"]   # verbose: no warning for a text past the model's length
    return np.array([len(each) for each in ids], dtype=np.int64)


def _hub() -> tuple[str | None, str | None]:
    """Where a hub id's files are looked up: a process (a test) that moves the cache loads again."""
    return os.environ.get("HF_HUB_CACHE"), os.environ.get("HF_HOME")


@functools.lru_cache(maxsize=4)
def _tokenizer(model: str, _where: tuple[str | None, str | None]):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model(model), local_files_only=True)


def token_counter(model: str) -> TokenCounter:
    """The counter of a suite's base model: its tokenizer when it is on this machine (a bundled model,
    a folder, a hub id in the Hugging Face cache; never downloaded for an estimate), else the guess."""
    return _token_counter(model, _hub())


@functools.lru_cache(maxsize=4)
def _token_counter(model: str, where: tuple[str | None, str | None]) -> TokenCounter:
    try:
        _tokenizer(model, where)
    except Exception as e:   # noqa: BLE001 -- whatever keeps it from loading, an estimate goes on with the guess
        why = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        return TokenCounter(None, f"{GUESS.source}: the tokenizer of {model} is not on this machine ({why})")
    return TokenCounter(model, f"counted by {model}'s tokenizer (a spread sample of a file past "
                               f"{SAMPLE_CHARS:,} characters, the rest at its tokens per character)")


