"""python bench/finetune_padding.py [--task aclsum-sections] [--epochs 1] [--threads N] [--smoke]

Fine-tuning throughput of our classifier loop (dontstop.finetune.trainer: every batch padded to its
longest member, batches grouped by length) against padding every example to 512 tokens,
with the same classifier, tokenizer, optimizer (finetune.build_optimizer), train step
(finetune.train_step), batch size, seed and examples. A middle row pads per batch but
keeps random batches, to show what each lever brings.

Default task: the mini suite's aclsum-sections (ACL paper paragraphs; 27 to 135 tokens from
the 5th to the 95th percentile), bundled:bert-tiny, batch 16. The schedule is left out: the
task's profile uses a constant learning rate. Each row runs in a fresh process; speedup =
examples/s over the pad-to-512 row of the same run. Rows are printed and appended to
bench/results/finetune_padding.jsonl.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from transformers import DataCollatorWithPadding

from common import DATA_DIR, RESULTS_DIR, ensure_mini_data, peak_memory_mb, record, run_isolated, stamp, step_figures
from dontstop.finetune.classifier import encode, load_classifier
from dontstop.recipes import FinetuneRecipe
from dontstop.finetune.trainer import (build_optimizer, length_grouped_batches, load_task_data,
                               resolve_recipe, seeded, train_step)
from dontstop.tasks import get_task


@dataclass(frozen=True)
class Padding:
    name: str
    pad_to_max: bool     # every example padded to max_length, as a fixed-shape pipeline does
    length_grouped: bool


ROWS = (
    Padding("baseline: pad every example to 512", pad_to_max=True, length_grouped=False),
    Padding("dynamic padding, random batches", pad_to_max=False, length_grouped=False),
    Padding("ours: dynamic padding + length grouping", pad_to_max=False, length_grouped=True),
)


def padding_collator(tokenizer, pad_to_max: bool, max_length: int) -> DataCollatorWithPadding:
    if pad_to_max:
        return DataCollatorWithPadding(tokenizer, padding="max_length", max_length=max_length)
    return DataCollatorWithPadding(tokenizer)  # pads to the longest member of each batch


def epoch_batches(lengths: list[int], batch_size: int, generator: torch.Generator,
                  length_grouped: bool) -> list[list[int]]:
    if length_grouped:
        return length_grouped_batches(lengths, batch_size, generator)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def epoch_row(recipe: FinetuneRecipe, padding: Padding, threads: int | None) -> dict:
    """Train `recipe.epochs` epochs with `padding`; time every step (collate, forward, backward, update)."""
    if threads:
        torch.set_num_threads(threads)
    task = get_task(recipe.suite, recipe.task)
    recipe = resolve_recipe(recipe, task)
    data = load_task_data(recipe, task)
    step_seconds, losses, padded_tokens = [], [], 0
    with seeded(recipe.seed):
        model, tokenizer = load_classifier(recipe.model, len(data.labels), recipe.dropout)
        model.to(recipe.device).train()
        label_index = {label: i for i, label in enumerate(data.labels)}
        features = encode(tokenizer, data.splits["train"], label_index, recipe.max_length)
        max_length = min(recipe.max_length, tokenizer.model_max_length)  # encode's cut
        collator = padding_collator(tokenizer, padding.pad_to_max, max_length)
        optimizer = build_optimizer(model, recipe)
        generator = torch.Generator().manual_seed(recipe.seed)
        lengths = [len(f["input_ids"]) for f in features]
        for _ in range(recipe.epochs):
            for indices in epoch_batches(lengths, recipe.batch_size, generator, padding.length_grouped):
                began = time.perf_counter()
                batch = collator([features[i] for i in indices])
                losses.append(train_step(model, batch, optimizer, recipe))
                step_seconds.append(time.perf_counter() - began)
                padded_tokens += batch["input_ids"].numel()
    examples = recipe.epochs * len(features)
    return {"row": padding.name, "device": recipe.device, **step_figures(step_seconds, examples, unit="examples"),
            "epoch_s": round(sum(step_seconds) / recipe.epochs, 3),
            "tokens_per_example": round(padded_tokens / examples, 1),
            "real_tokens_per_example": round(sum(lengths) / len(lengths), 1),
            "mean_loss": round(sum(losses) / len(losses), 4),
            "peak_memory_mb": round(peak_memory_mb(recipe.device), 1), "torch_threads": torch.get_num_threads()}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="aclsum-sections")
    parser.add_argument("--suite", default="mini")
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    parser.add_argument("--model", default="bundled:bert-tiny")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=512, help="the baseline pads to this")
    parser.add_argument("--threads", type=int, help="torch threads per row (default: torch's)")
    parser.add_argument("--results", default=str(RESULTS_DIR / "finetune_padding.jsonl"))
    parser.add_argument("--smoke", action="store_true",
                        help="32 examples cut at 64 tokens, in one process: a plumbing check")
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    if Path(args.data_dir) == DATA_DIR and args.suite == "mini":
        ensure_mini_data()
    recipe = FinetuneRecipe(model=args.model, task=args.task, suite=args.suite, data_dir=args.data_dir,
                            epochs=args.epochs, batch_size=args.batch_size, max_length=args.max_length)
    if args.smoke:
        recipe = replace(recipe, max_train_examples=32, max_length=64)
    run_id = time.strftime("%Y%m%d-%H%M%S")
    rows = []
    for padding in ROWS:
        # --smoke checks the plumbing in-process: a fresh process costs seconds of imports
        rows.append(epoch_row(recipe, padding, args.threads) if args.smoke
                    else run_isolated(epoch_row, recipe, padding, args.threads))
        print(f"{padding.name}: {rows[-1]['examples_per_s']:,.1f} examples/s", flush=True)
    baseline = rows[0]
    for row in rows:
        speedups = {"speedup": round(row["examples_per_s"] / baseline["examples_per_s"], 2),
                    "speedup_median": round(row["examples_per_s_median"] / baseline["examples_per_s_median"], 2)}
        record(Path(args.results), {**row, **speedups, **stamp(run_id, asdict(recipe))})


if __name__ == "__main__":
    main()
