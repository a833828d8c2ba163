"""Rough time estimates for `--dry-run`, from this machine's measured throughput.

Pretraining throughput (tokens/s) is the median of the `pretrain_record.json` files already
in the cache, else the suite's `estimate_tokens_per_s`; fine-tuning time is the median wall
time of finished runs, else a tokens-based guess. Text is ~4 characters per token (English
BPE / WordPiece), which is all an estimate needs.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from ..experiment import Suite
from ..fileio import read_json
from .plan import RunPlan, Stage

CHARS_PER_TOKEN = 4.0
FINETUNE_PASSES = 3.0   # forward + backward ~ 3 forward passes of compute


@dataclass(frozen=True)
class Estimator:
    """This machine's measured speeds for one suite, read from its cache and results once."""
    suite: Suite
    tokens_per_s: float               # pretraining
    finetune_run_s: float | None      # median wall time of a finished run; None: none yet

    @classmethod
    def for_suite(cls, suite: Suite) -> "Estimator":
        records = Path(suite.cache_dir, suite.name, "checkpoints").glob("*/pretrain_record.json")
        rates = [rate for rate in (read_json(p).get("tokens_per_s") for p in records) if rate]
        finished = Path(suite.results_dir, suite.name).glob("*/*/seed_*/metrics.json")
        times = [t for t in (read_json(p).get("wall_time_s") for p in finished) if t]
        return cls(suite, statistics.median(rates) if rates else suite.estimate_tokens_per_s,
                   statistics.median(times) if times else None)

    def stage_seconds(self, stage: Stage) -> tuple[float, int, int]:
        """(seconds, tokens, optimizer steps) for building one stage."""
        recipe = stage.recipe
        tokens_per_step = recipe.get("batch_size", 256) * recipe.get("max_length", 512)
        if recipe.get("max_steps"):
            steps = recipe["max_steps"]
        else:
            corpus_tokens = sum(Path(p).stat().st_size for p in stage.corpora) / CHARS_PER_TOKEN
            if stage.selection:  # k documents per query (each ~ a query's size), at most the pool
                queries_bytes = Path(stage.selection["queries"]).stat().st_size
                pool_bytes = Path(stage.selection["pool"]).stat().st_size
                corpus_tokens += min(stage.selection["k"] * queries_bytes, pool_bytes) / CHARS_PER_TOKEN
            steps = recipe.get("epochs", 1) * math.ceil(corpus_tokens / tokens_per_step)
        tokens = steps * tokens_per_step
        return tokens / self.tokens_per_s, int(tokens), int(steps)

    def finetune_seconds(self, plan: RunPlan) -> float:
        if self.finetune_run_s is not None:
            return self.finetune_run_s
        suite = self.suite
        train_bytes = Path(suite.data_dir, suite.name, "tasks", plan.task.key, "train.jsonl").stat().st_size
        epochs = suite.finetune.get("epochs") or plan.task.epochs
        return FINETUNE_PASSES * epochs * train_bytes / CHARS_PER_TOKEN / self.tokens_per_s
