"""Fine-tune a classifier for one (task, starting checkpoint, seed); write metrics.json.
`run_finetune` is what `dontstop finetune` (finetune/cli.py) and the runner call.

Table 14 of the paper plus the official repo's optimizer: lr 2e-5, batch 16, dropout 0.1,
10 epochs (low-resource) or 3 (high-resource), patience 3 on the dev metric; AdamW with
betas (0.9, 0.98), eps 1e-6, weight decay 0.1 except biases and LayerNorm, gradient-norm
clip 1; constant lr for 10-epoch profiles, 6% warm-up then linear decay for 3-epoch ones.
The best-dev weights are kept in memory (never written to disk: the mini suite runs
hundreds of these) and scored on test. Batches are padded per batch and grouped by
length, so a task of short sentences never pays for 512 tokens.
"""
from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm
from transformers import DataCollatorWithPadding, get_scheduler

from .. import wandb_log
from .classifier import SequenceClassifier, encode, load_classifier, predict
from ..data.formats import Example, label_set, load_split, task_dir
from ..data.task_checks import one_label_cut
from ..fileio import UserError, atomic_write_json, check_writable_dir, sha256_file
from ..models import check_sequence_length, sequence_limit
from .metrics import classification_scores
from ..recipes import FinetuneRecipe
from .resolve import check_device, resolve_recipe
from ..provenance import git_commit, software_versions
from ..records import METRICS_FILE, RUN_CONFIG_FILE, MetricsRecord
from ..tasks import SPLITS, Task, get_task

ADAM_BETAS = (0.9, 0.98)
ADAM_EPS = 1e-6
GROUP_BATCHES = 8   # batches per length-sorted group: small enough that batches still mix


@dataclass
class TaskData:
    splits: dict[str, list[Example]]  # train (maybe cut to max_train_examples), dev, test
    labels: list[str]                 # label id = position in this list
    paths: dict[str, Path]


@dataclass
class BestEpoch:
    epoch: int
    dev: dict[str, float]
    state: dict[str, torch.Tensor]    # a copy of the weights, in memory


def run_finetune(recipe: FinetuneRecipe, out_dir: str | Path, *, task: Task | None = None,
                 condition: str | None = None, lineage: str = "base",
                 pretraining: Sequence[dict[str, Any]] = (), wandb: bool = False,
                 reuse_finished: bool = False, from_released: bool = False) -> MetricsRecord:
    """`dontstop finetune ...` and the runner: train, keep the best dev epoch, score it on test.

    `task` comes from the suite (`Suite.task`, with its data folder); without it, the built-in
    registry's task of recipe.suite (ad-hoc tools). Writes config.json before
    training and metrics.json (docs/CONTRACTS.md) atomically, last. A finished run is
    returned as is when `reuse_finished`, else refused. `wandb`: a W&B run in the group
    `<task>/<condition>` whose input artifact is the starting checkpoint (wandb_log).
    """
    out_dir = Path(out_dir)
    check_writable_dir(out_dir)
    metrics_path = out_dir / METRICS_FILE
    if metrics_path.exists():
        if reuse_finished:
            return MetricsRecord.read(metrics_path)
        raise UserError(f"{metrics_path}: run already finished; keep it (--skip-finished) "
                        "or choose another --out")
    task = task or get_task(recipe.suite, recipe.task)
    recipe = resolve_recipe(recipe, task)
    check_device(recipe.device)   # here, not in resolve_recipe: `status` on a login node resolves GPU runs
    data = load_task_data(recipe, task)
    started = time.time()
    timings = {}   # seconds of each phase: what `bench/gpu_paper.py`'s real-path row reads
    with seeded(recipe.seed), timed(timings, "load_s"):   # before config.json: a model that fails writes nothing
        model, tokenizer = load_classifier(recipe.model, len(data.labels), recipe.dropout, recipe.seed)
        model.to(recipe.device)
    check_sequence_length(recipe.max_length, sequence_limit(model.encoder.config), recipe.model,   # roberta-base's
                          "fine-tuning recipe", recipe.pad_to_multiple_of)   # tokenizer sets none: it crashed mid-run
    atomic_write_json(out_dir / RUN_CONFIG_FILE, asdict(recipe))
    cell = f"{task.key}/{condition or 'adhoc'}"   # W&B group: the grouped view is mean ± std over seeds
    run = wandb_log.start_run(wandb, group=cell, job_type="finetune", name=f"{cell}/seed_{recipe.seed}",
                              config={**asdict(recipe), "condition": condition, "lineage": lineage,
                                      "published": from_released},
                              tags=[recipe.suite, task.key, condition or "adhoc"], input_model=recipe.model)
    with timed(timings, "tokenize_s"):
        label_index = {label: i for i, label in enumerate(data.labels)}
        features = {split: encode(tokenizer, examples, label_index, recipe.max_length)
                    for split, examples in data.splits.items()}
        collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=recipe.pad_to_multiple_of,
                                           return_tensors="pt")
    with seeded(recipe.seed):   # again: the dropout stream starts from the seed, whatever loading drew
        best, dev_curve = train(model, features, collator, recipe, task.metric, run, timings)
        model.load_state_dict(best.state)
        with timed(timings, "eval_s"):
            test = evaluate(model, features["test"], collator, recipe)
    metrics = MetricsRecord(
        suite=recipe.suite, task=task.key, condition=condition, seed=recipe.seed,
        model=recipe.model, lineage=lineage, metric=task.metric,
        dev=best.dev, test=test, dev_metric=best.dev[task.metric],
        test_metric=test[task.metric], best_epoch=best.epoch, epochs_run=len(dev_curve),
        dev_curve=dev_curve, train_examples=len(features["train"]),
        wall_time_s=round(time.time() - started, 3), config=asdict(recipe),
        versions=software_versions(), git_commit=git_commit(),
        data_sha256={split: sha256_file(path) for split, path in data.paths.items()},
        pretraining=list(pretraining), published=from_released,
        timings={name: round(seconds, 3) for name, seconds in timings.items()})
    metrics.write(out_dir)   # the record first: W&B is a view of it
    wandb_log.finish(run, {**{f"test/{name}": value for name, value in test.items()},
                           "test_metric": metrics.test_metric, "dev_metric": metrics.dev_metric,
                           "best_epoch": best.epoch, "epochs_run": len(dev_curve)})
    return metrics


def load_task_data(recipe: FinetuneRecipe, task: Task) -> TaskData:
    """The three splits (in task.data, else <data_dir>/<suite>/tasks/<key>); dev and test labels
    must occur in the (whole) training split."""
    directory = Path(task.data) if task.data else task_dir(recipe.data_dir, recipe.suite, task.key)
    paths = {split: directory / f"{split}.jsonl" for split in SPLITS}
    train = load_split(paths["train"], task.labels)
    labels = label_set(task, train, paths["train"])
    splits = {"train": train[:recipe.max_train_examples],
              "dev": load_split(paths["dev"], labels), "test": load_split(paths["test"], labels)}
    if problem := one_label_cut(train, recipe.max_train_examples, paths["train"]):
        raise UserError(problem.error_line)
    return TaskData(splits, labels, paths)


def length_grouped_batches(lengths: Sequence[int], batch_size: int,
                           generator: torch.Generator) -> list[list[int]]:
    """One epoch of batches covering every index once, similar lengths together.

    Shuffle, sort each group of GROUP_BATCHES batches by length, cut it into batches and
    shuffle the batches: little padding, yet a new batch composition every epoch.
    """
    order = torch.randperm(len(lengths), generator=generator).tolist()
    group_size = batch_size * GROUP_BATCHES
    batches = []
    for start in range(0, len(order), group_size):
        group = sorted(order[start:start + group_size], key=lengths.__getitem__)
        batches += [group[i:i + batch_size] for i in range(0, len(group), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def train(model: SequenceClassifier, features: dict[str, list[dict]], collator,
          recipe: FinetuneRecipe, metric: str, run, timings: dict[str, float] | None = None
          ) -> tuple[BestEpoch, list[float]]:
    """Epochs until the profile's count or `patience` epochs without a better dev metric;
    `timings` gets the seconds spent in training steps (train_s) and on dev (eval_s)."""
    timings = {} if timings is None else timings
    train_set = features["train"]
    steps_per_epoch = math.ceil(len(train_set) / recipe.batch_size)
    optimizer = build_optimizer(model, recipe)
    total_steps = steps_per_epoch * recipe.epochs
    scheduler = get_scheduler(recipe.schedule, optimizer, num_training_steps=total_steps,
                              num_warmup_steps=round(recipe.warmup_ratio * total_steps))
    generator = torch.Generator().manual_seed(recipe.seed)
    lengths = [len(f["input_ids"]) for f in train_set]
    best, dev_curve = None, []
    progress = tqdm(total=total_steps, desc="finetune", unit="step",
                    leave=False, disable=None)
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        losses = []
        with timed(timings, "train_s"):
            for indices in length_grouped_batches(lengths, recipe.batch_size, generator):
                batch = collator([train_set[i] for i in indices])
                losses.append(train_step(model, batch, optimizer, recipe))
                if not math.isfinite(losses[-1]):   # a diverged run must not look finished
                    progress.close()
                    raise UserError(f"{recipe.task} seed {recipe.seed}: fine-tuning diverged: loss {losses[-1]} "
                                    f"at step {progress.n + 1} (recipe lr {recipe.lr:g}); no metrics.json written")
                scheduler.step()
                progress.update()
        loss = sum(losses) / len(losses)
        with timed(timings, "eval_s"):
            dev = evaluate(model, features["dev"], collator, recipe)
        dev_curve.append(dev[metric])
        if best is None or dev[metric] > best.dev[metric]:
            best = BestEpoch(epoch, dev, {k: v.detach().clone() for k, v in model.state_dict().items()})
        progress.set_postfix({"loss": f"{loss:.3f}", f"dev {metric}": f"{dev[metric]:.3f}"})
        if run is not None:
            run.log({"epoch": epoch, "train/loss": loss, **{f"dev/{name}": v for name, v in dev.items()}})
        if epoch - best.epoch >= recipe.patience:
            break
    progress.close()
    return best, dev_curve


def build_optimizer(model: torch.nn.Module, recipe: FinetuneRecipe) -> torch.optim.AdamW:
    # Biases and LayerNorm weights are the 1-D parameters; the repo does not decay them.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": recipe.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    # fused: one kernel for all parameters; on CPU ~10x faster than the per-tensor loop
    return torch.optim.AdamW(groups, lr=recipe.lr, betas=ADAM_BETAS, eps=ADAM_EPS, fused=True)


def train_step(model: SequenceClassifier, batch: dict[str, torch.Tensor],
               optimizer: torch.optim.Optimizer, recipe: FinetuneRecipe) -> float:
    batch = {k: v.to(recipe.device) for k, v in batch.items()}
    with autocast(recipe):
        logits = model(batch["input_ids"], batch["attention_mask"])
        loss = F.cross_entropy(logits.float(), batch["labels"])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def evaluate(model: SequenceClassifier, split: list[dict], collator,
             recipe: FinetuneRecipe) -> dict[str, float]:
    with autocast(recipe):
        return classification_scores(*predict(model, split, collator, recipe.eval_batch_size, recipe.device))


def autocast(recipe: FinetuneRecipe):
    """bf16 autocast when the resolved recipe asks for it (the weights stay fp32), else a no-op."""
    return torch.autocast(device_type=recipe.device.split(":")[0], dtype=torch.bfloat16,
                          enabled=recipe.precision == "bf16")


@contextlib.contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Add the seconds spent inside the block to timings[name] (train_step reads the loss back,
    so on a GPU the clock stops after the work, not after its launch)."""
    began = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - began


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed every generator and ask torch for deterministic kernels; restore torch's setting after."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
