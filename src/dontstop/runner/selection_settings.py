"""What a kNN / RAND stage asks its selection to be made with, and how a made one differs from it:
read by the check of a finished selection before its stage is built (job_checks) and by the reason a
finished run is stale (finished.py: a run fine-tuned on a selection made otherwise)."""
from __future__ import annotations

import dataclasses
from typing import Any

from ..records import SelectRecord
from ..suites import Suite
from .plan import Stage, scaled_k

# What a record lacking a field was made with (an older record): SelectRecord's defaults
RECORD_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SelectRecord)
                   if f.default is not dataclasses.MISSING}


def selection_asked(stage: Stage, suite: Suite) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """A selection stage's task text and pool paths, its embedding settings (select_corpus's
    keywords the suite gives), and its method, k (the condition's k x the suite's k_scale) and seed."""
    embedding = dict(stage.selection)
    queries_path, pool, method = embedding.pop("queries"), embedding.pop("pool"), embedding.pop("method")
    k = scaled_k(embedding.pop("k"), embedding.pop("k_scale", 1.0))   # at least 1: the plan refuses less
    return queries_path, pool, embedding, {"method": method, "k": k, "seed": suite.pretrain_seed}


def selection_differences(recorded: dict[str, Any], stage: Stage, suite: Suite) -> list[str]:
    """Each setting that a selection's record (select_record.json, or metrics.json's copy of it)
    holds otherwise than its stage asks now, as `k 5, asked 15`; a field the record lacks is its
    default (what a record older than the field was made with)."""
    recorded = {**RECORD_DEFAULTS, **recorded}
    _, _, embedding, asked = selection_asked(stage, suite)
    return [f"{key} {recorded[key]!r}, asked {value!r}" for key, value in {**embedding, **asked}.items()
            if recorded.get(key) is not None and recorded[key] != value]
