"""Time estimates for `--dry-run`, from measured throughput, each figure saying where it comes from.

Pretraining throughput (tokens/s) is the median of the `pretrain_record.json` files already
in the cache (this machine's own); else, for a suite with `estimate_bench` (the paper suite),
the newest GPU row of that benchmark file (bench/gpu_paper.py's "dapt vs stock", our step as the
trainer runs it on a GPU); else the suite's `estimate_tokens_per_s`. Fine-tuning time is the
median wall time of finished runs; else the bench's "finetune real path" row (training tokens per
second of a whole `dontstop finetune` epoch, evaluation included); else a guess from the
pretraining rate: a classifier's training step costs per token the masked-LM step's share that is
not its head (classifier_cost_share, from the model's shape: 0.40 for BERT-tiny, whose vocabulary
projection outweighs its 2 layers; 0.93 for roberta-base), and evaluation is forward passes only.
Every epoch counts (no early stop), over the examples the recipe trains on (`max_train_examples`),
each cut at its `max_length`. Tokens are counted by the suite's base model's tokenizer when it is
on this machine, else guessed from characters (runner/token_count.py). A task file not downloaded
yet counts as its registry size of examples, each a full max_length sequence: a guess, flagged
'?', and no bound for pretraining, where a longer text fills more sequences (a fine-tuning run cuts
each at max_length: it reads at most those tokens). A stage of one-document sequences
(`pack_documents: false`, the paper's TAPT) counts its documents for the steps and the padding of
its micro-batches (each as wide as its longest sequence) for the compute. A kNN or RAND stage
counts the candidates it is expected to select (runner/selection_size.py), and its selection's
corpus once made.
"""
from __future__ import annotations

import functools
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..conditions import EXPERIMENTS_DIR
from ..fileio import UserError, read_json
from ..models import model_config
from ..recipes import PretrainRecipe
from ..suites import Suite, checkpoints_dir
from ..records import METRICS_FILE, PRETRAIN_RECORD_FILE
from .jobs import Job
from .plan import RunPlan, Stage, scaled_k
from .selection_size import drawn_candidates, selected_corpus
from .token_count import TokenCounter, token_counter
from .text_size import (document_sequences, document_tokens, example_tokens, expected_longest, file_documents,
                        text_tokens, trained_share)

FORWARD_SPEEDUP = 3.0   # a training step (forward + backward) ~ 3 forward passes of compute
REPO = EXPERIMENTS_DIR.parent


class MissingInput(Exception):
    """A training file that is not there yet and has no registry size: its cost is unknown."""


@dataclass(frozen=True)
class Rate:
    value: float          # tokens per second
    source: str           # where it was measured, for the printout


def _recorded(paths, field: str) -> list[float]:
    """`field` of each record that holds it as a positive number: a damaged record (a stage's this
    plan may not even use) is no estimate, and no traceback; its own job or status says what is wrong."""
    found = []
    for path in paths:
        try:
            record = read_json(path)
        except UserError:
            continue
        value = record.get(field) if isinstance(record, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf:
            found.append(value)
    return found


def bench_rates(path: Path) -> dict[str, Rate]:
    """The newest GPU rates in a bench/gpu_paper.py results file: "pretrain" and "finetune".

    Pretraining: the "dapt vs stock" row (our step, compiled as on a GPU), else the older
    "dapt" row. Fine-tuning: the "finetune real path" row (training tokens over its epoch's
    seconds, evaluation included), else the older "finetune fp32" row (16 x 512 steps in fp32:
    slower than the bf16 a GPU runs, but training steps alone, so not a bound, and said so)."""
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [row for row in rows if row.get("device") == "cuda"]
    newest = {row["row"]: row for row in sorted(rows, key=lambda row: row.get("date", ""))}
    where = lambda row: f"{row['device_name']}, {row['date'][:10]}, {path.relative_to(REPO)} {row['row']!r}"  # noqa: E731
    rates = {}
    for name in ("dapt", "dapt vs stock"):           # the newer kind of row wins
        if name in newest:
            rates["pretrain"] = Rate(newest[name]["tokens_per_s"], where(newest[name]))
    if "finetune fp32" in newest:
        row = newest["finetune fp32"]
        # not a bound (issue 20): slower than the bf16 a GPU runs, but of training steps alone, and a real
        # epoch also scores dev and pays per-batch costs, which took one past its step rate there
        rates["finetune"] = Rate(row["tokens_per_s"], where(row) + ", fp32 16 x 512 training steps alone: "
                                 "evaluation and a real run's per-batch costs left out, so not a bound")
    if "finetune real path" in newest:
        row = newest["finetune real path"]
        rates["finetune"] = Rate(row["train_tokens"] / row["epoch_s"], where(row))
    return rates


def classifier_cost_share(config, mask_prob: float) -> float | None:
    """A fine-tuning step's compute per token as a share of our masked-LM step's, from the model's
    shape in multiply-adds per token (forward and backward scale both alike). Both run the encoder,
    per layer 4 H^2 (attention's projections) + 2 H I (feed-forward); the MLM step adds its head on
    the masked positions only (mask_prob of them: the H^2 transform and the H V vocabulary
    projection), which a classifier does not run (its head sees one position a sequence).
    None for a config without these fields."""
    try:
        hidden, layers = config.hidden_size, config.num_hidden_layers
        inner, vocabulary = config.intermediate_size, config.vocab_size
    except AttributeError:
        return None
    encoder = layers * (4 * hidden * hidden + 2 * hidden * inner)
    return encoder / (encoder + mask_prob * (hidden * hidden + hidden * vocabulary))


def suite_classifier_share(suite: Suite) -> float | None:
    """classifier_cost_share of the suite's base model at its TAPT recipe's masking, if its config
    is on this machine (never downloaded for an estimate); None otherwise."""
    try:
        config = model_config(suite.base_model, local_files_only=True)
    except (UserError, OSError, ValueError):
        return None
    return classifier_cost_share(config, suite.recipes.get("tapt", {}).get("mask_prob", PretrainRecipe.mask_prob))


@dataclass(frozen=True)
class Estimator:
    """Measured speeds for one suite, read from its cache, results and bench file once."""
    suite: Suite
    pretrain: Rate
    finetune: Rate | None             # training tokens/s of a whole run; None: use finetune_run_s or a guess
    finetune_run_s: float | None      # median wall time of a finished run; None: none yet
    finetune_share: float | None = None   # guess: a classifier token's cost in MLM tokens; None: 1

    @property
    def tokens_per_s(self) -> float:
        return self.pretrain.value

    @functools.cached_property
    def counter(self) -> TokenCounter:
        """How text is counted: the suite's tokenizer, else the guess; loaded when first asked (a
        dry run of finished stages and runs counts no text)."""
        return token_counter(self.suite.base_model)

    @property
    def counted(self) -> bool:
        """Whether any text was counted, so the printout says how."""
        return "counter" in self.__dict__   # where cached_property keeps its value

    @classmethod
    def for_suite(cls, suite: Suite) -> "Estimator":
        records = checkpoints_dir(suite).glob(f"*/{PRETRAIN_RECORD_FILE}")
        rates = _recorded(records, "tokens_per_s")
        times = _recorded(Path(suite.results_dir, suite.name).glob(f"*/*/seed_*/{METRICS_FILE}"), "wall_time_s")
        bench = bench_rates(REPO / suite.estimate_bench) if suite.estimate_bench else {}
        if rates:
            pretrain = Rate(statistics.median(rates), f"this cache's {len(rates)} pretraining record(s)")
        else:
            pretrain = bench.get("pretrain") or Rate(suite.estimate_tokens_per_s, "the suite's estimate_tokens_per_s")
        run_s = statistics.median(times) if times else None
        guess = run_s is None and bench.get("finetune") is None
        return cls(suite, pretrain, bench.get("finetune"), run_s, suite_classifier_share(suite) if guess else None)

    def file_tokens(self, path: str, max_length: int) -> tuple[float, bool]:
        """(tokens, exact) of a training file: of its text, or, for a task split not downloaded
        yet, one max_length sequence per example of the registry's size."""
        path_ = Path(path)
        if path_.is_file():
            return text_tokens(path_, self.counter), True
        suite = self.suite
        task = next((t for t in suite.task_table.values() if suite.task_dir(t.key) == path_.parent), None)
        if task is None or not task.sizes:
            raise MissingInput(path)
        split = path_.stem if path_.stem in ("train", "dev", "test") else "train"
        return task.sizes[("train", "dev", "test").index(split)] * max_length, False

    def split_tokens(self, path: Path, max_length: int, max_examples: int | None = None) -> tuple[float, bool]:
        """(tokens, exact) a fine-tuning run reads of one task split per pass: its first
        `max_examples` examples, each with its [CLS] and [SEP] and cut at max_length, as the trainer
        encodes them and as bench/gpu_finetune.py's "finetune real path" row counts its tokens (the
        mean text, then cut, counted ACL-Sections' paragraphs, median 79 tokens, all at 64)."""
        if not path.is_file():
            tokens, exact = self.file_tokens(str(path), max_length)   # registry size x max_length
            return (min(tokens, max_examples * max_length) if max_examples else tokens), exact
        tokens = example_tokens(str(path), self.counter)[:max_examples or None]
        return float(np.minimum(tokens + 2, max_length).sum()), True

    def stage_seconds(self, stage: Stage) -> tuple[float, int, int, bool]:
        """(seconds, tokens, optimizer steps, exact) for building one stage; tokens count the
        padding a batch of one-document sequences carries, which costs as much as text. The
        documents pretraining holds out (recipes.heldout_documents, at most 10%) are not trained on."""
        recipe = stage.recipe
        max_length = recipe.get("max_length", 512)
        tokens_per_step = recipe.get("batch_size", 256) * max_length
        exact = True
        if recipe.get("max_steps"):
            steps = recipe["max_steps"]
        else:
            paths, drawn, exact = self.stage_texts(stage, max_length)
            documents = [file_documents(path, self.counter) if Path(path).is_file() else None for path in paths]
            kept = trained_share(None if None in documents else sum(documents) + len(drawn), recipe)
            if not recipe.get("pack_documents", PretrainRecipe.pack_documents):
                parts = [self.file_sequences(path, max_length) for path in paths]
                lengths = np.concatenate([lengths for lengths, _ in parts] + [document_sequences(drawn, max_length)])
                exact = exact and all(part_exact for _, part_exact in parts)
                batch = recipe.get("batch_size", PretrainRecipe.batch_size)
                steps = recipe.get("epochs", 1) * math.ceil(len(lengths) * kept / batch)
                width = expected_longest(lengths, recipe.get("per_device_batch_size", PretrainRecipe.per_device_batch_size))
                tokens_per_step = batch * width
            else:
                sizes = [self.file_tokens(path, max_length) for path in paths]
                # each document ends in a separator, each sequence is [CLS] + max_length - 2 + [SEP]
                # (pretrain/sequences.py; left out, the mini's 500NN was 99 steps where it ran 103)
                separators = sum(count or 0 for count in documents) + len(drawn)
                corpus_tokens = (sum(size for size, _ in sizes) + drawn.sum() + separators) * kept
                exact = exact and all(size_exact for _, size_exact in sizes)
                steps = recipe.get("epochs", 1) * math.ceil(corpus_tokens / (tokens_per_step // max_length
                                                                             * (max_length - 2)))
        tokens = steps * tokens_per_step
        return tokens / self.pretrain.value, int(tokens), int(steps), exact

    def stage_texts(self, stage: Stage, max_length: int) -> tuple[list[str], np.ndarray, bool]:
        """(files, tokens of each selected candidate not in a file yet, exact) a stage trains on. A
        selection stage's own corpus once made; before, the task texts it writes first and the
        candidates its queries are expected to draw (runner/selection_size.py); a pool not there
        yet, k candidates per query, each of a query's size (exact False)."""
        if not stage.selection:
            return list(stage.corpora), np.zeros(0, dtype=np.int64), True
        if (made := selected_corpus(stage)) is not None:
            return [*stage.corpora, str(made)], np.zeros(0, dtype=np.int64), True
        selection = stage.selection
        texts = [*stage.corpora, selection["queries"]]
        queries, exact = self.file_sequences(selection["queries"], max_length, unit=selection["query_unit"])
        # one query a sentence (or text), however many sequences it fills; not there yet: one a sequence
        count = len(document_tokens(selection["queries"], selection["query_unit"], self.counter)) if exact \
            else len(queries)
        if Path(selection["pool"]).is_file():
            return texts, drawn_candidates(stage, count, self.counter), exact
        per_query = scaled_k(selection["k"], selection.get("k_scale", 1.0))
        return texts, np.resize(queries, per_query * count), False

    def file_sequences(self, path: str, max_length: int, unit: str = "text") -> tuple[np.ndarray, bool]:
        """(tokens of each one-document sequence, exact) of one file (`unit` "sentence": of each of
        its sentences): a document longer than max_length fills several; a task file not downloaded
        yet, its registry size of full ones."""
        if Path(path).is_file():
            return document_sequences(document_tokens(path, unit, self.counter), max_length), True
        return np.full(int(self.file_tokens(path, max_length)[0] // max_length), max_length), False

    def finetune_seconds(self, plan: RunPlan) -> tuple[float, bool]:
        """(seconds, exact) of one fine-tuning run, every epoch run (no early stop): mostly high, and no
        bound, as the rate it is priced at is measured, not a floor."""
        if self.finetune_run_s is not None:
            return self.finetune_run_s, True
        recipe, splits = self.suite.finetune, self.suite.task_dir(plan.task.key)
        max_length, epochs = recipe.get("max_length", 512), recipe.get("epochs") or plan.task.epochs
        train, exact = self.split_tokens(splits / "train.jsonl", max_length, recipe.get("max_train_examples"))
        if self.finetune is not None:   # a whole measured `dontstop finetune` epoch, evaluation included
            return epochs * train / self.finetune.value, exact
        (dev, exact_dev), (test, exact_test) = (self.split_tokens(splits / f"{split}.jsonl", max_length)
                                                for split in ("dev", "test"))
        # each epoch trains, then scores dev; test is scored once, by the best epoch's model
        passes = epochs * (train + dev / FORWARD_SPEEDUP) + test / FORWARD_SPEEDUP
        return passes * (self.finetune_share or 1.0) / self.pretrain.value, exact and exact_dev and exact_test


def wall_seconds(jobs: list[Job], seconds: dict[Path, float], workers: int) -> float:
    """How long the jobs to do take on `workers` workers that each take the first job in list order
    whose needs are done, as runner/jobs.work does: a list schedule of each job's estimated
    `seconds`, keyed by its done file (a job without an entry is finished, or costs nothing here)."""
    todo = [job for job in jobs if job.done_file in seconds]
    ends: dict[Path, float] = {}   # done file -> when it is written
    unwritten = {job.done_file for job in todo}
    free = [0.0] * max(1, workers)   # when each worker is free next
    while todo:
        worker = min(range(len(free)), key=free.__getitem__)
        now = free[worker]
        ready = next((job for job in todo if all(ends.get(need, math.inf) <= now if need in unwritten else True
                                                 for need in job.needs)), None)
        if ready is None:   # every job left waits on one still running: idle until the next one ends
            later = [end for end in ends.values() if end > now]
            if not later:
                break
            free[worker] = min(later)
            continue
        todo.remove(ready)
        ends[ready.done_file] = free[worker] = now + seconds[ready.done_file]
    return max(ends.values(), default=0.0)
