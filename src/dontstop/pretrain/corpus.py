"""The pretraining corpus of a recipe: deduplicated, leakage-guarded, streamed, with a
seeded held-out set for the MLM loss before and after (Tables 1 and 9).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import AbstractSet, Iterator

from ..data.formats import iter_corpus, text_key
from ..fileio import UserError
from ..recipes import PretrainRecipe

HELDOUT_FRACTION_CAP = 0.1  # never hold out more than 10% of a (small, TAPT) corpus


@dataclass
class Corpus:
    """The recipe's corpora after deduplication and the leakage guard. Documents are streamed
    from the files whenever needed, never held in memory; the kept documents at
    `heldout_positions` are held out from training."""
    paths: list[str]
    exclude_keys: AbstractSet[bytes] | None
    documents: int                  # kept documents, training and held-out
    excluded_keys: frozenset[bytes]   # of the documents dropped because they match task dev/test text
    heldout_positions: frozenset[int]

    @property
    def excluded(self) -> int:     # documents, each once (deduplicated first)
        return len(self.excluded_keys)

    def _kept(self) -> Iterator[str]:
        return iter_corpus(self.paths, dedup=True, exclude=self.exclude_keys)

    def training_documents(self) -> Iterator[str]:
        return (text for position, text in enumerate(self._kept()) if position not in self.heldout_positions)

    def heldout_documents(self) -> list[str]:
        heldout = []
        for position, text in enumerate(self._kept()):
            if len(heldout) == len(self.heldout_positions):
                break
            if position in self.heldout_positions:
                heldout.append(text)
        return heldout


def scan_corpus(recipe: PretrainRecipe, exclude_keys: AbstractSet[bytes] | None) -> Corpus:
    """One streamed pass counts the documents; then a seeded choice of the held-out ones."""
    documents, excluded = 0, set()
    for text in iter_corpus(recipe.corpora, dedup=True):
        key = text_key(text)
        if exclude_keys and key in exclude_keys:
            excluded.add(key)
        else:
            documents += 1
    if not documents:
        raise UserError(f"{', '.join(recipe.corpora)}: no documents left to pretrain on "
                        f"({len(excluded)} excluded as task dev/test text)")
    count = min(recipe.heldout_documents, int(documents * HELDOUT_FRACTION_CAP))
    positions = frozenset(random.Random(recipe.seed).sample(range(documents), count))
    return Corpus(list(recipe.corpora), exclude_keys, documents, frozenset(excluded), positions)
