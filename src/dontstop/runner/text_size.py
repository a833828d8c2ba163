"""How many tokens a training file holds, for the `--dry-run` estimate (runner/estimate.py), as
a TokenCounter counts them (runner/token_count.py: the study's tokenizer when it is on this
machine, else guessed from characters: at ~4 characters a token, the mini's 500NN, its selection
made, was 114 steps where it ran 103; by bert-tiny's tokenizer and a separator a document, 105)."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..data.formats import iter_corpus
from ..data.sentences import task_queries
from ..pretrain.corpus import HELDOUT_FRACTION_CAP
from ..recipes import PretrainRecipe
from .token_count import GUESS, TokenCounter

READ_BYTES_MAX = 64 * 2**20   # a plain text corpus larger than this is not read to count its documents


def text_tokens(path: Path, counter: TokenCounter = GUESS) -> float:
    """Tokens of a training file's text: of a jsonl file's texts, not its keys, ids and labels
    (counted, they made the dry run's mini TAPT steps up to 1.7x those run); of a plain corpus, from
    its size in bytes at its head's tokens per byte (a DAPT corpus of GBs is not read for an estimate)."""
    if path.suffix == ".jsonl":
        return float(document_tokens(str(path), counter=counter).sum())
    return counter.file_tokens(path)


def document_tokens(path: str, unit: str = "text", counter: TokenCounter = GUESS) -> np.ndarray:
    """Tokens of each document of a corpus file, exact duplicates dropped as training drops them;
    with unit "sentence", of each distinct sentence of them (a selection's queries,
    data/sentences.task_queries). Read once per file, version, unit and counter."""
    status = Path(path).stat()   # a file rewritten within one clock tick keeps its mtime: its size too
    return _document_tokens(str(path), (status.st_mtime_ns, status.st_size), unit, counter)


@functools.lru_cache(maxsize=32)
def _document_tokens(path: str, _version: tuple[int, int], unit: str, counter: TokenCounter) -> np.ndarray:
    texts = iter_corpus([path])
    if unit != "text":
        texts = task_queries(list(texts), unit)
    return counter.tokens(list(texts))


def example_tokens(path: str, counter: TokenCounter = GUESS) -> np.ndarray:
    """Tokens of each text of a task split in file order, repeats included: fine-tuning reads every
    line (training drops a repeated text, fine-tuning does not)."""
    status = Path(path).stat()
    return _example_tokens(str(path), (status.st_mtime_ns, status.st_size), counter)


@functools.lru_cache(maxsize=32)
def _example_tokens(path: str, _version: tuple[int, int], counter: TokenCounter) -> np.ndarray:
    return counter.tokens(list(iter_corpus([path], dedup=False)))


def document_sequences(tokens: np.ndarray, max_length: int) -> np.ndarray:
    """Tokens of each sequence (special tokens included) when every document starts its own and a
    longer one goes on in the next: full max_length sequences, then the document's remainder."""
    body = max_length - 2
    full = tokens // body
    rest = tokens - full * body
    return np.concatenate([np.full(int(full.sum()), max_length), rest[rest > 0] + 2])


def expected_longest(lengths: np.ndarray, batch: int) -> float:
    """The expected longest of `batch` sequences drawn at random from `lengths`: the width a
    micro-batch padded to its longest has (P(longest <= w) = F(w) ** batch)."""
    values, counts = np.unique(lengths, return_counts=True)
    at_most = np.cumsum(counts) / len(lengths)
    return float(np.sum(values * np.diff(at_most ** batch, prepend=0.0)))


def file_documents(path: str | Path, counter: TokenCounter = GUESS) -> int | None:
    """Documents of a corpus file, exact duplicates once, as training counts them; None for a plain
    text file too large to read for an estimate (a DAPT corpus of GBs), whose held-out share is nil."""
    if Path(path).suffix != ".jsonl" and Path(path).stat().st_size > READ_BYTES_MAX:
        return None
    return len(document_tokens(str(path), counter=counter))   # the counter whose counts are read already


def trained_share(documents: int | None, recipe: dict) -> float:
    """The share of a stage's documents it trains on: all but those held out for the MLM loss
    (pretrain/corpus.scan_corpus: heldout_documents, at most HELDOUT_FRACTION_CAP of them; 50 of the
    mini's 500 TAPT texts); of a corpus too large to count (None), all."""
    if not documents:
        return 1.0
    heldout = min(recipe.get("heldout_documents", PretrainRecipe.heldout_documents),
                  int(documents * HELDOUT_FRACTION_CAP))
    return 1.0 - heldout / documents


def count_lines(path: Path) -> int:
    """Non-blank lines of a file: examples of a jsonl split, documents of a pool."""
    with open(path, "rb") as lines:
        return sum(1 for line in lines if line.strip())
