"""Where words begin and end, in any script: the one rule shared by the kNN bag-of-words embedder
(select/embed.py) and the vocabulary overlap (analysis/vocab.py).

Scripts written without spaces between words (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar)
give no word boundaries a regex can see: a Chinese sentence is one run of letters. There every
letter is a token of its own, as BERT's tokenizer splits CJK characters; in every other script a
word is a run of letters, combining marks included (a Devanagari vowel sign or an NFD accent is
not a word break: "मौसम", "café"). Both compare words in one form (`word_form`): NFC, full-width
ASCII as ASCII, lowercased, so a word stored decomposed (macOS, Hangul as jamo) or typed full-width
is the same word.

    letter_classes().unspaced      # a regex character-class body: letters of unspaced scripts
    letter_classes().spaced        # letters of every other script
    letter_classes().marks         # combining marks outside the unspaced scripts
"""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

# Blocks of scripts written without spaces between words: Thai and Lao, Myanmar, Khmer, kana,
# CJK ideographs (and their extensions and compatibility forms), halfwidth katakana.
UNSPACED_BLOCKS = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x3040, 0x30FF),
                   (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xFF66, 0xFF9F),
                   (0x20000, 0x3FFFF))
LAST_LETTER = 0x3FFFF   # no script has letters beyond the CJK extensions


@dataclass(frozen=True)
class LetterClasses:
    unspaced: str   # each a regex character-class body, to go inside [...]
    spaced: str
    marks: str


@functools.cache
def letter_classes() -> LetterClasses:
    """The three classes (Unicode categories L and M), built from unicodedata once per process."""
    unspaced_codes = bytearray(LAST_LETTER + 2)
    for low, high in UNSPACED_BLOCKS:
        unspaced_codes[low:high + 1] = b"\x01" * (high + 1 - low)
    classes: dict[str, list[str]] = {"unspaced": [], "spaced": [], "marks": []}
    runs: dict[str, int | None] = dict.fromkeys(classes)
    for code in range(LAST_LETTER + 2):
        category = unicodedata.category(chr(code))[0] if code <= LAST_LETTER else ""
        unspaced = unspaced_codes[code]
        kind = ("unspaced" if unspaced else "spaced") if category == "L" else (
            "marks" if category == "M" and not unspaced else None)
        for name, start in runs.items():   # close the runs this code point does not continue
            if start is not None and name != kind:
                classes[name].append(_range(start, code - 1))
                runs[name] = None
        if kind is not None and runs[kind] is None:
            runs[kind] = code
    return LetterClasses(*("".join(classes[name]) for name in ("unspaced", "spaced", "marks")))


def _range(first: int, last: int) -> str:
    return re.escape(chr(first)) + (f"-{re.escape(chr(last))}" if last > first else "")


# Full-width ASCII (U+FF01-U+FF5E: "ＧＰＴ", as Chinese and Japanese input methods type it) -> ASCII.
FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}


def word_form(text: str) -> str:
    """The text in the one form its words are compared in: NFC ("café" precomposed, whether it was
    stored so or with a combining accent), full-width ASCII as ASCII, lowercased."""
    return unicodedata.normalize("NFC", text).translate(FULL_WIDTH).lower()


@functools.cache
def bow_token_pattern() -> str:
    """scikit-learn's default token pattern (`\\b\\w\\w+\\b`: a run of 2+ letters, digits or
    underscores) made to see words in every script: a letter of an unspaced script is a token of
    its own and never part of a run, and combining marks continue a run. On text without
    either (English) it finds exactly the tokens of the default pattern."""
    classes = letter_classes()
    word = rf"[^\W{classes.unspaced}]"   # \w, less the letters of unspaced scripts
    return rf"[{classes.unspaced}]|{word}(?:{word}|[{classes.marks}])+"
