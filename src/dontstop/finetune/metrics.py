"""Classification scores, as fractions in [0, 1].

The paper reports micro-F1 for ChemProt and RCT and macro-F1 for every other task
(`Task.metric`); we record all three numbers so a table can show any of them.
For single-label classification micro-F1 equals accuracy. Macro-F1 averages over the
labels that occur in the gold or the predicted labels (scikit-learn's convention).
"""
from __future__ import annotations

from typing import Sequence

from sklearn.metrics import accuracy_score, f1_score


def classification_scores(gold: Sequence[int], predicted: Sequence[int]) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": float(f1_score(gold, predicted, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(gold, predicted, average="micro", zero_division=0)),
    }
