"""Rough time estimates for `--dry-run`, from this machine's measured throughput.

Pretraining throughput (tokens/s) is the median of the `pretrain_record.json` files already
in the cache, else the suite's `estimate_tokens_per_s` (for the paper suite: measured on a
GPU by bench/gpu_paper.py); fine-tuning time is the median wall time of finished runs, else
a tokens-based guess. Text is ~4 characters per token (English BPE / WordPiece), which is all
an estimate needs. A task file not downloaded yet counts as its registry size of examples,
each a full max_length sequence: an upper bound, flagged as such.
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


class MissingInput(Exception):
    """A training file that is not there yet and has no registry size: its cost is unknown."""
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

    def file_tokens(self, path: str, max_length: int) -> tuple[float, bool]:
        """(tokens, exact) of a training file: from its size, or, for a task split not
        downloaded yet, one max_length sequence per example of the registry's size."""
        path_ = Path(path)
        if path_.is_file():
            return path_.stat().st_size / CHARS_PER_TOKEN, True
        suite = self.suite
        task = next((t for t in suite.task_table.values() if suite.task_dir(t.key) == path_.parent), None)
        if task is None or not task.sizes:
            raise MissingInput(path)
        split = path_.stem if path_.stem in ("train", "dev", "test") else "train"
        return task.sizes[("train", "dev", "test").index(split)] * max_length, False

    def stage_seconds(self, stage: Stage) -> tuple[float, int, int, bool]:
        """(seconds, tokens, optimizer steps, exact) for building one stage."""
        recipe = stage.recipe
        max_length = recipe.get("max_length", 512)
        tokens_per_step = recipe.get("batch_size", 256) * max_length
        exact = True
        if recipe.get("max_steps"):
            steps = recipe["max_steps"]
        else:
            sizes = [self.file_tokens(p, max_length) for p in stage.corpora]
            corpus_tokens, exact = sum(s for s, _ in sizes), all(e for _, e in sizes)
            if stage.selection:  # k documents per query (each ~ a query's size), at most the pool
                queries, exact_q = self.file_tokens(stage.selection["queries"], max_length)
                pool = Path(stage.selection["pool"])
                pool_tokens = pool.stat().st_size / CHARS_PER_TOKEN if pool.is_file() else math.inf
                corpus_tokens += min(stage.selection["k"] * queries, pool_tokens)
                exact = exact and exact_q and pool.is_file()
            steps = recipe.get("epochs", 1) * math.ceil(corpus_tokens / tokens_per_step)
        tokens = steps * tokens_per_step
        return tokens / self.tokens_per_s, int(tokens), int(steps), exact

    def finetune_seconds(self, plan: RunPlan) -> tuple[float, bool]:
        """(seconds, exact) of one fine-tuning run."""
        if self.finetune_run_s is not None:
            return self.finetune_run_s, True
        suite = self.suite
        train = suite.task_dir(plan.task.key) / "train.jsonl"
        tokens, exact = self.file_tokens(str(train), suite.finetune.get("max_length", 512))
        epochs = suite.finetune.get("epochs") or plan.task.epochs
        return FINETUNE_PASSES * epochs * tokens / self.tokens_per_s, exact
