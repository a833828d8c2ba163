"""The sentences of a text, in any script: what kNN-TAPT and RAND-TAPT select from a pool (the
paper's candidates were domain sentences, a pool's lines are often paragraphs or documents).

    split_sentences("It works! Dr. Smith agrees, e.g. here.")  # ['It works!', 'Dr.', 'Smith agrees, e.g. here.']
    pool_candidates(line_text, "sentence" | "line")            # a pool line's candidates
    task_queries(task_texts, "sentence" | "text")              # what a selection searches with

A sentence ends at Unicode's sentence-terminal punctuation (. ! ? 。 ！ ？ । ؟ ። ...) with any
closing brackets or quotes after it, then
- at the whitespace after it, unless the next letter is lower case ("e.g. the", "et al. (2019)
  show": Unicode's rule SB8 in UAX #29); an abbreviation before a capital ("Dr. Smith") is cut;
- right after a full-width terminal ("。", "！"): Chinese and Japanese put no space between
  sentences.
Text without terminal punctuation (Thai, headlines, a list) stays one sentence.
"""
from __future__ import annotations

import regex

from .formats import text_key

POOL_UNITS = ("sentence", "line")   # what one selection candidate is: a sentence of a pool line, or the line
DEFAULT_POOL_UNIT = "sentence"      # the paper's
QUERY_UNITS = ("sentence", "text")  # what one query is: a sentence of a task text, or the whole text
DEFAULT_QUERY_UNIT = "sentence"     # the paper's: "for each task sentence", its k nearest candidates

_TERMINAL = r"\p{Sentence_Terminal}[\p{Pe}\p{Pf}\"']*"
_WIDE_TERMINAL = r"[\p{Sentence_Terminal}&&[\p{East_Asian_Width=W}\p{East_Asian_Width=F}]][\p{Pe}\p{Pf}]*"
_BOUNDARY = regex.compile(
    rf"(?<={_TERMINAL})\s+(?![^\p{{L}}]*\p{{Ll}})"                                # ". Next"
    rf"|(?<={_WIDE_TERMINAL})(?=[^\s\p{{Sentence_Terminal}}\p{{Pe}}\p{{Pf}}])",  # "。次"
    regex.VERSION1)


def split_sentences(text: str) -> list[str]:
    """The text's sentences, stripped, in order; none of them blank."""
    return [sentence.strip() for sentence in _BOUNDARY.split(text) if sentence.strip()]


def pool_candidates(text: str, unit: str) -> list[str]:
    """What one pool line offers the selection: its sentences, or the line itself."""
    if unit not in POOL_UNITS:
        raise ValueError(f"unknown pool unit {unit!r}; known: {', '.join(POOL_UNITS)}")
    return split_sentences(text) if unit == "sentence" else [text.strip()]


def task_queries(task_texts: list[str], unit: str) -> list[str]:
    """What a kNN or RAND selection searches with: every sentence of the task texts, or each text
    whole; exact copies (data.text_key) once, first occurrence kept, in order."""
    if unit not in QUERY_UNITS:
        raise ValueError(f"unknown query unit {unit!r}; known: {', '.join(QUERY_UNITS)}")
    pieces = (piece for text in task_texts
              for piece in (split_sentences(text) if unit == "sentence" else [text]))
    unique: dict[bytes, str] = {}
    for piece in pieces:
        unique.setdefault(text_key(piece), piece)
    return list(unique.values())
