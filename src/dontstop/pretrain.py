"""Continued masked-LM pretraining (DAPT, TAPT): a checkpoint and corpora in, a checkpoint out.

    dontstop pretrain --model bundled:bert-tiny --corpus data/mini/corpora/cs.txt --out ckpt/dapt-cs --steps 300
    dontstop pretrain --recipe tapt --model roberta-base --corpus train.jsonl --out ckpt/tapt
    accelerate launch -m dontstop pretrain --recipe dapt ...       # several GPUs (bf16 + SDPA on GPU)

The output directory holds a `save_pretrained` model and tokenizer plus pretrain_record.json
(docs/CONTRACTS.md), written last. The corpus is streamed, never held in memory: tokenized
once into a token file on disk and read back as full sequences of max_length
(mlm.PackedSequences); up to `heldout_documents` documents (at most 10%) are held out to
measure the MLM loss before and after. A killed run resumes from its latest state in <out>/resume/
when the same command is run again: the data order and masks are pure functions of (seed,
epoch, step), and accelerate restores the weights, optimizer, scheduler and RNG states.
"""
from __future__ import annotations

import dataclasses
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from tqdm import tqdm

from .data import iter_corpus, text_key
from .fileio import UserError, atomic_write_json, read_json, sha256_file
from .provenance import git_commit, software_versions
from .mlm import (BatchSchedule, MaskedOnlyMLM, PackedSequences, heldout_mlm_loss, mask_tokens,
                  write_token_stream)
from . import wandb_log

RECORD = "pretrain_record.json"
TOKENS = "tokens.bin"       # the tokenized training documents, in <out>/resume/ until finished
HELDOUT_FRACTION_CAP = 0.1  # never hold out more than 10% of a (small, TAPT) corpus

# Paper Table 13; the remaining fields keep their (shared) dataclass defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "dapt": {"max_steps": 12500, "batch_size": 2048, "lr": 5e-4},  # ~one pass over 8B tokens
    "tapt": {"epochs": 100, "batch_size": 256, "lr": 1e-4},
}


@dataclass
class PretrainRecipe:
    base_model: str
    corpora: list[str]
    output_dir: str
    max_steps: int | None = None       # exactly one of max_steps and epochs
    epochs: int | None = None
    batch_size: int = 256               # sequences per optimizer step, over all processes
    per_device_batch_size: int = 32     # sequences per forward pass; the rest is accumulation
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    mask_prob: float = 0.15
    max_length: int = 512               # tokens per sequence, special tokens included
    heldout_documents: int = 200        # held out from training to score MLM loss before/after
    checkpoint_every: int = 500         # optimizer steps between resumable states
    seed: int = 0


def check_recipe(recipe: PretrainRecipe, num_processes: int = 1) -> None:
    """One-line UserErrors for every mistake that can be seen before loading anything."""
    if (recipe.max_steps is None) == (recipe.epochs is None):
        raise UserError("pretrain recipe: give exactly one of max_steps (--steps) and epochs (--epochs)")
    if (recipe.max_steps or recipe.epochs) < 1:
        raise UserError("pretrain recipe: max_steps/epochs must be at least 1")
    per_step = recipe.per_device_batch_size * num_processes
    if recipe.per_device_batch_size < 1 or recipe.batch_size % per_step:
        raise UserError(f"pretrain recipe: batch_size {recipe.batch_size} is not a multiple of "
                        f"per_device_batch_size {recipe.per_device_batch_size} x {num_processes} process(es)")
    if not 0 < recipe.mask_prob < 1 or not 0 <= recipe.warmup_ratio < 1 or recipe.lr <= 0:
        raise UserError("pretrain recipe: need 0 < mask_prob < 1, 0 <= warmup_ratio < 1 and lr > 0")
    if recipe.max_length < 8 or recipe.checkpoint_every < 1:
        raise UserError("pretrain recipe: need max_length >= 8 and checkpoint_every >= 1")
    if not recipe.corpora:
        raise UserError("pretrain recipe: no corpus given")
    for path in map(Path, recipe.corpora):
        if not path.is_file() or path.stat().st_size == 0:
            raise UserError(f"{path}: corpus file {'is empty' if path.is_file() else 'not found'}")
    output_dir = Path(recipe.output_dir)
    if (output_dir / RECORD).exists():
        raise UserError(f"{output_dir}: already holds a finished checkpoint; choose another --out")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not (output_dir / "resume").is_dir():
        raise UserError(f"{output_dir}: not empty and not an unfinished pretraining run; choose another --out")


@dataclass
class Corpus:
    """The recipe's corpora after deduplication and the leakage guard. Documents are streamed
    from the files whenever needed, never held in memory; the kept documents at
    `heldout_positions` are held out from training."""
    paths: list[str]
    exclude_keys: set[bytes] | None
    documents: int                  # kept documents, training and held-out
    excluded: int                   # documents dropped because they match task dev/test text
    heldout_positions: frozenset[int]

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


def scan_corpus(recipe: PretrainRecipe, exclude_keys: set[bytes] | None) -> Corpus:
    """One streamed pass counts the documents; then a seeded choice of the held-out ones."""
    documents, excluded = 0, 0
    for text in iter_corpus(recipe.corpora, dedup=True):
        if exclude_keys and text_key(text) in exclude_keys:
            excluded += 1
        else:
            documents += 1
    if not documents:
        raise UserError(f"{', '.join(recipe.corpora)}: no documents left to pretrain on "
                        f"({excluded} excluded as task dev/test text)")
    count = min(recipe.heldout_documents, int(documents * HELDOUT_FRACTION_CAP))
    positions = frozenset(random.Random(recipe.seed).sample(range(documents), count))
    return Corpus(list(recipe.corpora), exclude_keys, documents, excluded, positions)


def run_pretraining(recipe: PretrainRecipe, *, wandb: bool = False, exclude_keys: set[bytes] | None = None,
                    name: str | None = None, group: str | None = None) -> dict[str, Any]:
    """`dontstop pretrain ...`: continued MLM pretraining; returns the written record.

    `exclude_keys` (data.text_key digests of task dev/test text) are dropped from the corpus
    here, at run time, whatever the corpus file holds; the record counts them.
    """
    from accelerate import PartialState

    check_recipe(recipe, PartialState().num_processes)
    run = PretrainRun(recipe, exclude_keys, name or Path(recipe.output_dir).name)
    logger = wandb_log.start_run(wandb and run.accelerator.is_main_process, group=group or run.name,
                                 job_type="pretrain", name=run.name, config=_jsonable(recipe),
                                 directory=recipe.output_dir)
    run.train(logger)
    record = run.finish()
    wandb_log.finish(logger, {key: record[key] for key in ("heldout_loss_before", "heldout_loss_after")})
    return record


class PretrainRun:
    """One pretraining: model, data, optimizer and progress, resumed from <out>/resume/ if there."""

    def __init__(self, recipe: PretrainRecipe, exclude_keys: set[bytes] | None, name: str):
        from accelerate import Accelerator
        from accelerate.utils import set_seed
        from transformers import AutoModelForMaskedLM, AutoTokenizer, get_linear_schedule_with_warmup

        from .models import load_pretrained, resolve_model

        self.began, self.recipe, self.name = time.time(), recipe, name
        self.output_dir, self.resume_dir = Path(recipe.output_dir), Path(recipe.output_dir) / "resume"
        self.accelerator = Accelerator(mixed_precision="bf16" if torch.cuda.is_available() else "no",
                                       gradient_accumulation_steps=self._micro_batches_per_step())
        set_seed(recipe.seed)  # a model without a trained MLM head (bundled:minilm) starts the same
        self.tokenizer = AutoTokenizer.from_pretrained(resolve_model(recipe.base_model))
        if self.tokenizer.mask_token is None:
            raise UserError(f"{recipe.base_model}: tokenizer has no mask token; not a masked-LM model")
        self.model = load_pretrained(AutoModelForMaskedLM, recipe.base_model, attn_implementation="sdpa")
        self.corpus = scan_corpus(recipe, exclude_keys)
        self.heldout = self.corpus.heldout_documents()
        with self.accelerator.main_process_first():             # the main process tokenizes
            self.stream = self._token_stream()
        self.sequences = PackedSequences(self.tokenizer, self.resume_dir / TOKENS, recipe.max_length)
        self.schedule = BatchSchedule(recipe, len(self.sequences), self.accelerator.process_index,
                                      self.accelerator.num_processes)
        # fused: one kernel for all parameters, ~7x faster than the per-tensor loop on CPU
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=recipe.lr, betas=tuple(recipe.betas),
                                      eps=recipe.eps, weight_decay=recipe.weight_decay, fused=True)
        total = self.schedule.total_steps
        self.scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(recipe.warmup_ratio * total), total)
        self.trainer, self.optimizer = self.accelerator.prepare(MaskedOnlyMLM(self.model), optimizer)
        self.accelerator.register_for_checkpointing(self.scheduler)  # stepped by us, once per step
        self.progress = self._resume_or_start()
        self.wall_before = self.progress["wall_time_s"]  # of earlier, interrupted invocations

    def _micro_batches_per_step(self) -> int:
        from accelerate import PartialState

        return self.recipe.batch_size // (self.recipe.per_device_batch_size * PartialState().num_processes)

    def _token_stream(self) -> dict[str, Any]:
        """The training documents as one token file in <out>/resume/ (kept for a resumed run),
        and its counts; written once, by the first process to get here."""
        description = {"recipe": _jsonable(self.recipe), "documents": self.corpus.documents,
                       "excluded": self.corpus.excluded, "tokenizer": self.tokenizer.name_or_path}
        meta_path = self.resume_dir / f"{TOKENS}.json"
        if meta_path.exists() and (self.resume_dir / TOKENS).exists():
            meta = read_json(meta_path)
            if meta["description"] == description:
                return meta["counts"]
        self.resume_dir.mkdir(parents=True, exist_ok=True)      # also marks the output dir as ours
        counts = write_token_stream(self.tokenizer, self.corpus.training_documents(), self.resume_dir / TOKENS,
                                    total=self.corpus.documents - len(self.heldout),
                                    show_progress=self.accelerator.is_main_process)
        atomic_write_json(meta_path, {"description": description, "counts": counts})
        return counts

    def heldout_loss(self) -> float | None:
        if not self.heldout:
            return None
        return heldout_mlm_loss(self.model, self.tokenizer, self.heldout, self.recipe.max_length,
                                self.recipe.seed)

    def _resume_or_start(self) -> dict[str, Any]:
        """The progress of the latest saved state (after loading it), or a fresh start."""
        states = sorted(self.resume_dir.glob("step-*"))
        if states:
            progress = read_json(states[-1] / "progress.json")
            if progress["recipe"] != _jsonable(self.recipe):
                raise UserError(f"{states[-1]}: an unfinished run with another recipe; choose another --out")
            self.accelerator.load_state(str(states[-1]))
            return {**progress, "resumed_from_step": progress["step"]}
        return {"step": 0, "resumed_from_step": 0, "loss": None, "tokens": 0, "train_time_s": 0.0,
                "wall_time_s": 0.0, "heldout_loss_before": self.heldout_loss(),
                "recipe": _jsonable(self.recipe)}

    def train(self, logger) -> None:
        progress, total = self.progress, self.schedule.total_steps
        bar = tqdm(total=total, initial=progress["step"], desc=f"pretrain {self.name}",
                   disable=not self.accelerator.is_main_process)
        self.trainer.train()
        while progress["step"] < total:
            started = time.time()
            loss, tokens = self._step(self.schedule.micro_batches(progress["step"]))
            progress.update(step=progress["step"] + 1, loss=loss, tokens=progress["tokens"] + tokens,
                            train_time_s=progress["train_time_s"] + time.time() - started,
                            wall_time_s=self.wall_before + time.time() - self.began)
            rate = progress["tokens"] / progress["train_time_s"]
            bar.update()
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{rate:,.0f}")
            if logger:
                logger.log({"train/loss": loss, "train/lr": self.scheduler.get_last_lr()[0],
                            "train/tokens_per_s": rate}, step=progress["step"])
            if progress["step"] % self.recipe.checkpoint_every == 0 and progress["step"] < total:
                self._save_resume_state()
        bar.close()

    def _step(self, micro_batches) -> tuple[float, int]:
        """One optimizer step over this process's micro-batches: (mean loss of all processes, tokens)."""
        accelerator, losses, tokens = self.accelerator, [], 0
        for indices, generator in micro_batches:
            input_ids, attention_mask = self.sequences.batch(indices)
            input_ids, labels = mask_tokens(self.tokenizer, input_ids, generator, self.recipe.mask_prob)
            with accelerator.accumulate(self.trainer):          # all-reduce only on the last one
                loss = self.trainer(input_ids.to(accelerator.device),
                                    attention_mask.to(accelerator.device), labels.to(accelerator.device))
                accelerator.backward(loss)                      # divides by the accumulation steps
            losses.append(loss.detach())
            tokens += int(attention_mask.sum())
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad()
        mean_loss = accelerator.reduce(torch.stack(losses).mean(), reduction="mean")
        all_tokens = accelerator.reduce(torch.tensor(tokens, device=accelerator.device), reduction="sum")
        return float(mean_loss), int(all_tokens)

    def _save_resume_state(self) -> None:
        """Write the state under a temporary name, then rename: a kill never leaves half a state."""
        final = self.resume_dir / f"step-{self.progress['step']:09d}"
        temporary = self.resume_dir / f".tmp-{final.name}"
        self.accelerator.save_state(str(temporary))
        if self.accelerator.is_main_process:
            atomic_write_json(temporary / "progress.json", self.progress)
            temporary.rename(final)
            for older in sorted(self.resume_dir.glob("step-*"))[:-1]:
                shutil.rmtree(older)
        self.accelerator.wait_for_everyone()

    def finish(self) -> dict[str, Any]:
        """Save model, tokenizer and, last, the record (its presence means "finished")."""
        heldout_after = self.heldout_loss()
        self.progress["wall_time_s"] = self.wall_before + time.time() - self.began
        record = _record(self.recipe, self.name, self.schedule, self.corpus, self.stream, self.progress,
                         heldout_after)
        if self.accelerator.is_main_process:
            self.accelerator.unwrap_model(self.trainer).mlm_model.save_pretrained(self.output_dir)
            self.tokenizer.save_pretrained(self.output_dir)
            atomic_write_json(self.output_dir / RECORD, record)
            shutil.rmtree(self.resume_dir)  # our own resume states, useless once finished
        self.accelerator.wait_for_everyone()
        return record


def _record(recipe, name, schedule: BatchSchedule, corpus: Corpus, stream: dict[str, int], progress,
            heldout_after) -> dict:
    return {
        "name": name, "base_model": recipe.base_model, "corpus_files": list(recipe.corpora),
        "corpus_sha256": {path: sha256_file(path) for path in recipe.corpora},
        "recipe": _jsonable(recipe), "steps": progress["step"], "resumed_from_step": progress["resumed_from_step"],
        "epochs": progress["step"] / schedule.steps_per_epoch,
        "sequences": progress["step"] * recipe.batch_size, "tokens": progress["tokens"],
        "documents": stream["documents"], "heldout_documents": len(corpus.heldout_positions),
        "excluded_documents": corpus.excluded, "bytes": stream["bytes"],
        "wall_time_s": progress["wall_time_s"],
        "tokens_per_s": progress["tokens"] / max(progress["train_time_s"], 1e-9),
        "final_train_loss": progress["loss"],
        "heldout_loss_before": progress["heldout_loss_before"], "heldout_loss_after": heldout_after,
        "versions": software_versions(), "git_commit": git_commit(),
    }


def _jsonable(recipe: PretrainRecipe) -> dict[str, Any]:
    return {**dataclasses.asdict(recipe), "betas": list(recipe.betas)}


def register(subparsers) -> None:
    parser = subparsers.add_parser("pretrain", help="continued masked-LM pretraining (DAPT / TAPT)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="bundled:bert-tiny, a checkpoint directory or a hub id")
    parser.add_argument("--corpus", required=True, nargs="+", help=".txt (one document a line) or .jsonl (text)")
    parser.add_argument("--out", required=True, help="output checkpoint directory (must be new or unfinished)")
    parser.add_argument("--recipe", choices=sorted(PRESETS), help="paper Table 13 preset; flags override it")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, dest="max_steps", help="optimizer steps (DAPT style)")
    length.add_argument("--epochs", type=int, help="passes over the corpus (TAPT style)")
    parser.add_argument("--batch-size", type=int, help="sequences per optimizer step, all processes")
    parser.add_argument("--per-device-batch-size", type=int, help="sequences per forward pass")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--max-length", type=int, help="tokens per sequence")
    parser.add_argument("--heldout-documents", type=int, help="documents held out for the MLM loss")
    parser.add_argument("--checkpoint-every", type=int, help="optimizer steps between resumable states")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--exclude-heldout-of", nargs="+", default=[], metavar="TASK_DIR",
                        help="drop corpus documents equal to these tasks' dev/test text")
    parser.add_argument("--no-wandb", action="store_true", help="do not log to Weights & Biases")
    parser.set_defaults(func=_main)


def recipe_from_args(args) -> PretrainRecipe:
    """The --recipe preset (if any) with every given flag on top of it."""
    overrides = {field.name: getattr(args, field.name) for field in dataclasses.fields(PretrainRecipe)
                 if getattr(args, field.name, None) is not None}
    preset = dict(PRESETS.get(args.recipe, {}))
    if "max_steps" in overrides or "epochs" in overrides:  # a length flag replaces the preset's
        for length in ("max_steps", "epochs"):
            preset.pop(length, None)
    return PretrainRecipe(**{**preset, **overrides, "base_model": args.model,
                             "corpora": args.corpus, "output_dir": args.out})


def _main(args) -> int:
    from .data import heldout_keys

    record = run_pretraining(recipe_from_args(args), wandb=not args.no_wandb and wandb_log.configured(),
                             exclude_keys=heldout_keys(args.exclude_heldout_of))
    losses = " -> ".join("n/a" if loss is None else f"{loss:.3f}"
                         for loss in (record["heldout_loss_before"], record["heldout_loss_after"]))
    print(f"pretrained {record['steps']} steps, {record['tokens']:,} tokens at {record['tokens_per_s']:,.0f} "
          f"tokens/s; held-out MLM loss {losses}; saved {args.out}")
    return 0
