"""Vocabulary overlap between domains, like the paper's Figure 2.

    dontstop analyze vocab --suite mini
    dontstop analyze vocab pt.txt news.txt --names PT News --top 10000 --sample-docs 50000

The vocabulary of a domain is the `top` most frequent unigrams of an equal-size random sample
of its documents (words tied at the cut: the one met first in that sample, `top_words`); the
overlap of two domains is |top_a & top_b| / top * 100. Each corpus is
streamed once through a seeded reservoir, so a corpus larger than memory costs only the memory
of its sample.

Words are found the same way in every language and script (`words`): the text is put in Unicode's
NFC form (an accent or a Hangul syllable stored decomposed, as macOS saves it, is the same word),
full-width ASCII becomes ASCII ("ＧＰＴ" is "gpt"), Arabic and Hebrew vowel points, tatweel,
joiners and soft hyphens are dropped and presentation forms and halfwidth katakana read as their
letters ("كَتَبَ", "كـتـب" and "ﻛﺘﺐ" are "كتب"), Persian and Urdu's yeh, kaf and heh read as Arabic's
(which a text holds depends on the keyboard it was typed on: "کتاب" is "كتاب"; data/scripts.word_form),
and the text is lowercased;
in scripts that separate words with spaces (Latin, Cyrillic, Greek, Hangul, Arabic, Devanagari,
...) a word is a run of two or more letters, combining marks included (Unicode categories L and
M: "don't" -> "don", "gpt-2" -> "gpt", "한국어는" is one word); in scripts written without spaces
between words (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar) every letter is a word of its
own, as BERT's tokenizer splits CJK characters (then a top list holds characters, and a note says
so: `letter_notes`). Digits, punctuation and symbols are never part
of a word. sklearn's English stop-word list is then removed from every corpus alike: it holds
only English words, so other languages keep their function words, but for those spelt as English
ones (Spanish "de", "con", "un", "no", "me"; French "de", "on", "un"; German "in", "an", "am",
"so"), which it removes too: alike in every corpus, so an overlap counts the same words on each side.
"""
from __future__ import annotations

import functools
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from tqdm import tqdm

from ..data.formats import iter_corpus
from ..data.scripts import letter_classes, word_form
from ..fileio import UserError, atomic_output, atomic_write_json

OUTPUT_FILES = ("vocab_overlap.csv", "vocab_overlap.json", "vocab_overlap.png", "vocab_overlap.pdf")


@dataclass
class VocabOverlap:
    matrix: pd.DataFrame                  # percent; the corpora as rows and as columns
    top_requested: int
    top_used: int                         # smaller than requested when a sample is too small
    sample_docs_requested: int
    documents: dict[str, int]             # documents sampled per corpus (equal for all)
    distinct_words: dict[str, int]        # non-stop-word types in each sample
    notes: list[str] = field(default_factory=list)


def vocab_overlap(corpora: dict[str, str | Path], top: int = 10000, sample_docs: int = 10000,
                  seed: int = 0) -> pd.DataFrame:
    """The overlap matrix in percent (corpus names as index and columns)."""
    return measure_overlap(corpora, top, sample_docs, seed).matrix


def measure_overlap(corpora: dict[str, str | Path], top: int, sample_docs: int,
                    seed: int) -> VocabOverlap:
    """Sample, count and compare every corpus; the notes say where sizes had to shrink."""
    samples = {name: sample_corpus(path, sample_docs, seed, name) for name, path in corpora.items()}
    samples, notes = equalize(samples, seed)
    counts = {name: word_counts(documents) for name, documents in samples.items()}
    top_used = min([top] + [len(c) for c in counts.values()])
    smallest = min(counts, key=lambda name: len(counts[name]))
    if top_used == 0:
        raise UserError(f"{corpora[smallest]}: no words outside the stop-word list in its sample")
    if top_used < top:
        notes.append(f"'{smallest}' has only {top_used} distinct words in its sample: "
                     f"every top list has {top_used} words, not {top}")
    notes += letter_notes(counts)
    vocabularies = {name: top_words(c, top_used) for name, c in counts.items()}
    return VocabOverlap(overlap_matrix(vocabularies, top_used), top, top_used, sample_docs,
                        {name: len(docs) for name, docs in samples.items()},
                        {name: len(c) for name, c in counts.items()}, notes)


def sample_corpus(path: str | Path, size: int, seed: int, name: str = "") -> list[str]:
    """A seeded uniform sample of `size` documents from one pass over the corpus."""
    documents = tqdm(iter_corpus([path]), desc=f"sampling {name or path}", unit=" docs",
                     mininterval=5)
    sample = reservoir_sample(documents, size, random.Random(seed))
    if not sample:
        raise UserError(f"{path}: corpus has no documents")
    return sample


def check_corpora_open(corpora: dict[str, str | Path]) -> None:
    """Each corpus opens as one before any is sampled: there, of the right kind and format, UTF-8 in
    its first lines (a gzip file's first bytes are not) and holding a document. A gzip or empty
    second file was found once the first had been sampled, a pass over it (minutes on a DAPT corpus);
    a bad byte deep in a file is still found by the pass that samples it."""
    for path in corpora.values():
        if next(iter_corpus([path], dedup=False), None) is None:
            raise UserError(f"{path}: corpus has no documents")


def reservoir_sample(items: Iterable[str], size: int, rng: random.Random) -> list[str]:
    """Algorithm R: after n items, each of them is in the sample with probability size / n."""
    sample: list[str] = []
    for seen, item in enumerate(items):
        if seen < size:
            sample.append(item)
            continue
        slot = rng.randrange(seen + 1)
        if slot < size:
            sample[slot] = item
    return sample


def equalize(samples: dict[str, list[str]], seed: int) -> tuple[dict[str, list[str]], list[str]]:
    """Cut every sample to the size of the smallest, so no domain counts more text."""
    size = min(len(docs) for docs in samples.values())
    notes = []
    if any(len(docs) != size for docs in samples.values()):
        smallest = min(samples, key=lambda name: len(samples[name]))
        notes.append(f"'{smallest}' has only {size} documents: every sample has {size}")
    rng = random.Random(seed)
    return {name: rng.sample(docs, size) if len(docs) > size else docs
            for name, docs in samples.items()}, notes


@functools.cache
def word_pattern() -> re.Pattern:
    """One letter of an unspaced script, or a run of 2+ letters and marks of the others."""
    classes = letter_classes()
    return re.compile(f"[{classes.unspaced}]|[{classes.spaced}][{classes.spaced}{classes.marks}]+")


def words(text: str) -> list[str]:
    """The words of a text, in order, the same way for every language (see the module docstring)."""
    return word_pattern().findall(word_form(text))


def word_counts(documents: Iterable[str]) -> Counter:
    counts: Counter = Counter()
    for document in documents:
        counts.update(w for w in words(document) if w not in ENGLISH_STOP_WORDS)
    return counts


# Above this share of a corpus's counted words being single letters (of Han, kana, Thai...: every
# other word has two letters or more), its top list is a list of letters, and the overlap says so.
LETTER_SHARE = 0.5


def letter_notes(counts: dict[str, Counter]) -> list[str]:
    """One note naming the corpora written mostly in a script without spaces between words: there a
    "word" is a letter, a top list holds the corpus's most used characters (a few thousand at most
    in Chinese or Japanese), and an overlap compares character inventories, which domains of one
    language share far more than words; such numbers compare with each other, not with English ones."""
    shares = {name: sum(n for word, n in c.items() if len(word) == 1) / sum(c.values())
              for name, c in counts.items() if c}
    lettered = [f"'{name}' ({share:.0%})" for name, share in shares.items() if share > LETTER_SHARE]
    if not lettered:
        return []
    return [f"{', '.join(lettered)}: most words are single letters of a script without spaces between "
            "words (Chinese, Japanese, Thai): top lists of characters, whose overlap compares character "
            "inventories, not words (compare it within the study, not with English corpora)"]


def top_words(counts: Counter, size: int) -> set[str]:
    """The `size` most frequent words; ties at the cut go to the word seen first in the corpus's
    sample (`counts` keeps that order; a stable sort), an order of its own documents.

    Not alphabetically: an order shared by every corpus gave all of them the same tied words
    (on the mini corpora some 40% of a top list is tied at a count of 1 or 2), and every overlap
    came out high, by 0.1-1.1 points against the mean over random tie-breaks; in a corpus's own
    order a tie is broken independently of the other corpora, and a corpus still overlaps a copy
    of itself by 100%.
    """
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    return {word for word, _ in ranked[:size]}


def overlap_matrix(vocabularies: dict[str, set[str]], size: int) -> pd.DataFrame:
    names = list(vocabularies)
    rows = [[100.0 * len(vocabularies[a] & vocabularies[b]) / size for b in names] for a in names]
    return pd.DataFrame(rows, index=pd.Index(names, name="corpus"), columns=names)


def write_outputs(result: VocabOverlap, corpora: dict[str, str | Path], seed: int,
                  wall_time_s: float, out_dir: Path) -> None:
    """vocab_overlap.csv (percent), .json (how it was measured), .png and .pdf (the heatmap)."""
    with atomic_output(out_dir / "vocab_overlap.csv") as f:
        result.matrix.to_csv(f, float_format="%.2f")
    atomic_write_json(out_dir / "vocab_overlap.json", {
        "corpora": {name: str(path) for name, path in corpora.items()}, "seed": seed,
        "top_requested": result.top_requested, "top_used": result.top_used,
        "sample_docs_requested": result.sample_docs_requested, "documents": result.documents,
        "distinct_words": result.distinct_words, "notes": result.notes,
        "overlap_percent": result.matrix.round(2).to_dict(orient="index"),
        "wall_time_s": round(wall_time_s, 1)})
    plot_heatmap(result.matrix, result.top_used, out_dir / "vocab_overlap")


def plot_heatmap(matrix: pd.DataFrame, top_used: int, stem: Path) -> None:
    """Figure 2's heatmap as <stem>.png and <stem>.pdf."""
    import seaborn as sns
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    side = 1.5 + 1.1 * len(matrix)  # inches: room for one annotated cell per corpus
    figure = Figure(figsize=(side + 1.2, side))
    axes = figure.subplots()
    sns.heatmap(matrix, annot=True, fmt=".1f", cmap="Blues", vmin=0, vmax=100, square=True,
                linewidths=0.5, cbar_kws={"label": "overlap (%)"}, ax=axes)
    axes.set(xlabel="", ylabel="", title=f"Vocabulary overlap (%), top {top_used:,} words")
    axes.tick_params(axis="y", rotation=0)
    figure.tight_layout()
    for suffix, metadata in (("png", {"Software": None}), ("pdf", {"CreationDate": None})):
        with atomic_output(stem.with_suffix(f".{suffix}"), "wb") as f:
            figure.savefig(f, format=suffix, dpi=150, metadata=metadata)


def run(corpora: dict[str, str | Path], top: int, sample_docs: int, seed: int,
        out_dir: Path) -> VocabOverlap:
    """Measure, print and write everything; the caller has checked that out_dir may be written."""
    started = time.time()
    result = measure_overlap(corpora, top, sample_docs, seed)
    write_outputs(result, corpora, seed, time.time() - started, out_dir)
    for note in result.notes:
        print(f"note: {note}")
    print(f"vocabulary overlap (%) of the top {result.top_used} words, "
          f"{next(iter(result.documents.values()))} documents per corpus:")
    print(result.matrix.round(1).to_string())
    print(f"wrote {', '.join(str(out_dir / name) for name in OUTPUT_FILES)}")
    return result
