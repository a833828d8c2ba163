"""Whether a study's base model reads its tasks' language: a note before any work when the
model's tokenizer turns a share of a task's text into unknown tokens, or strips the accents and
marks the text carries (a study of its own tasks; the built-in suites are English).

Both went unsaid: a Spanish study that kept the template's `bundled:bert-tiny` (uncased English)
trained on "ano" for "año", a Russian one on "русскии", Japanese lost its dakuten (で -> て), and
Korean became unknown tokens and jamo. A note, not an error: a model may be chosen so on purpose.
"""
from __future__ import annotations

import functools
import unicodedata
from itertools import islice
from typing import Iterator

import regex

from ..data.formats import iter_corpus
from ..data.scripts import letter_classes
from ..fileio import UserError
from ..models import load_pretrained
from ..suites import Suite

SAMPLE = 200            # training texts read per task: enough for a share, well under a second
UNKNOWN_SHARE = 0.02    # of a task's tokens; English with emoji stays far below, Korean on bert-tiny: 7%


def print_language_notes(suite: Suite, task_keys: list[str] | None) -> None:
    for note in language_notes(suite, task_keys):
        print(note, flush=True)


def language_notes(suite: Suite, task_keys: list[str] | None = None) -> list[str]:
    """The notes for the study's tasks (none for a built-in suite, or a model that does not load:
    the model checks report that in their own line)."""
    if not suite.own_tasks:
        return []
    from transformers import AutoTokenizer

    try:
        tokenizer = load_pretrained(AutoTokenizer, suite.base_model)
    except UserError:
        return []
    notes = []
    for key in task_keys or suite.tasks:
        # the first texts alone, streamed: check_study_data has parsed and checked the whole split
        texts = list(islice(iter_corpus([suite.task_dir(key) / "train.jsonl"], dedup=False), SAMPLE))
        notes += [f"note: task '{key}' (its first {len(texts)} training texts), base_model {suite.base_model}: {line}"
                  for line in (_unknown(tokenizer, texts), _stripped(tokenizer, texts)) if line]
    return notes


def _unknown(tokenizer, texts: list[str]) -> str | None:
    if tokenizer.unk_token_id is None or not texts:
        return None
    # verbose=False: counting tokens, not feeding a model (no "indexing errors" warning for a long text)
    ids = [i for row in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"] for i in row]
    share = sum(i == tokenizer.unk_token_id for i in ids) / max(len(ids), 1)
    if share <= UNKNOWN_SHARE:
        return None
    unknown = next((word for word in _pieces(texts)
                    if tokenizer.unk_token_id in tokenizer(word, add_special_tokens=False)["input_ids"]), "")
    return (f"{share:.0%} of its tokens are unknown to the tokenizer ({tokenizer.unk_token}; first in "
            f"'{unknown}'): its vocabulary does not cover this text's language or script; a model of the "
            "language as base_model reads it")


def _stripped(tokenizer, texts: list[str]) -> str | None:
    """The first word whose accents or marks (Unicode category Mn, once decomposed) the tokenizer's
    normalizer removes, as `word -> what the model sees`."""
    normalizer = getattr(getattr(tokenizer, "backend_tokenizer", None), "normalizer", None)
    if normalizer is None:   # a slow tokenizer: nothing to ask
        return None
    for word in _pieces(texts):
        seen = normalizer.normalize_str(word)
        if _marks(word) and not _marks(seen):
            return (f"its tokenizer strips accents and marks ('{word}' -> '{seen}'): "
                    "the model never sees them; where they matter, a model that keeps them (a cased one) "
                    "as base_model reads them")
    return None


def _pieces(texts: list[str]) -> Iterator[str]:
    """What a note quotes, in order: the texts' space-separated words, but each letter of a script
    without spaces (with its combining marks) alone: a Japanese sentence is one "word" between
    spaces, and a note quoted the whole sentence, where the letter it meant was 'で' or '財'."""
    for word in (word for text in texts for word in text.split()):
        yield from _unspaced_or_not().findall(word)


@functools.cache
def _unspaced_or_not() -> regex.Pattern:
    unspaced = letter_classes().unspaced
    return regex.compile(rf"[{unspaced}]\p{{M}}*|[^{unspaced}]+")


def _marks(text: str) -> int:
    return sum(unicodedata.category(c) == "Mn" for c in unicodedata.normalize("NFD", text))
