"""Continued masked-LM pretraining (DAPT, TAPT): a checkpoint and corpora in, a checkpoint out.

    dontstop pretrain --model bundled:bert-tiny --corpus data/mini/corpora/cs.txt --out ckpt/dapt-cs --steps 300
    dontstop pretrain --recipe tapt --model roberta-base --corpus train.jsonl --out ckpt/tapt
    accelerate launch -m dontstop pretrain --recipe dapt ...       # several GPUs (bf16 + SDPA on GPU)

`run_pretraining` is what `dontstop pretrain` (pretrain/cli.py) and the runner call. The output directory holds a `save_pretrained` model and tokenizer plus pretrain_record.json
(docs/CONTRACTS.md), written last. The corpus is streamed, never held in memory: tokenized
once into a token file on disk and read back as full sequences of max_length, or one
document a sequence (`pack_documents: false`, the paper's TAPT; pretrain/sequences.py); up to
`heldout_documents` documents (at most 10%) are held out to measure the MLM loss before and after. A killed run resumes from its latest state in <out>/resume/
when the same command is run again: the data order and masks are pure functions of (seed,
epoch, step), and accelerate restores the weights, optimizer, scheduler and RNG states.
A loss that turns NaN or infinite stops the run with one line, nothing saved (pretrain/outcome.py).
"""
from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

import torch
from tqdm import tqdm

from .. import wandb_log
from ..data.encoding import utf8_problem
from ..data.leakage import LeakageGuard
from ..fileio import UserError, atomic_write_json, check_writable_dir, wrong_kind
from ..models import check_available, check_sequence_length, model_sequence_limit, weights_sha256
from ..recipes import PretrainRecipe, check_recipe as check_recipe_values
from ..records import PretrainRecord
from ..save_errors import written_or_os_error
from .adapter import adapter_recipe, base_weights, save_model, trainable_parameters, wrap_for_training
from .corpus import scan_corpus
from .mlm import BatchSchedule, MaskedOnlyMLM, heldout_mlm_loss
from .outcome import (check_finite, check_output_dir, check_resumable, device_name, finished_record,
                      load_saved_state, recipe_json)
from .pipeline import PREFETCH_MICRO_BATCHES, MicroBatch, MicroBatchStream
from .relocation import where_saved
from .sequences import saved_token_counts, token_description_file, training_sequences, write_token_stream
from .start_model import check_masked_lm

TOKENS = "tokens.bin"       # the tokenized training documents, in <out>/resume/ until finished
WANDB_SUMMARY = ("steps", "tokens", "tokens_per_s", "wall_time_s", "final_train_loss",
                 "heldout_loss_before", "heldout_loss_after", "excluded_documents", "processes", "device")


def check_recipe(recipe: PretrainRecipe, num_processes: int = 1) -> None:
    """One-line UserErrors for every mistake that can be seen before loading anything: values
    out of range (recipes.py, the table every caller shares), a model that is not there (a hub id
    offline and not cached), corpora missing, empty or not UTF-8, an output folder not ours."""
    check_recipe_values(recipe, "pretrain recipe", num_processes)
    if not recipe.corpora:
        raise UserError("pretrain recipe: no corpus given")
    adapter_recipe(recipe)   # a bad adapter section fails now (its target names: once the model is loaded)
    check_available(recipe.base_model)   # the tokenizer's own error was two lines naming no model, exit 1
    check_sequence_length(recipe.max_length, model_sequence_limit(recipe.base_model), recipe.base_model,
                          "pretrain recipe")   # from its config: the weights' loading bar came first
    for path in map(Path, recipe.corpora):
        if not path.is_file():   # a task folder given as a corpus was "corpus file not found", beside it
            raise UserError(f"{path}: {wrong_kind(path) or 'corpus file not found'}")
        if path.stat().st_size == 0:
            raise UserError(f"{path}: corpus file is empty")
        not_utf8 = utf8_problem(path)
        if not_utf8:
            raise UserError(str(not_utf8))
    output_dir = Path(recipe.output_dir)
    check_writable_dir(output_dir)
    check_output_dir(output_dir)


def run_pretraining(recipe: PretrainRecipe, *, wandb: bool = False, guard: LeakageGuard | None = None,
                    name: str | None = None, group: str | None = None,
                    wandb_config: dict[str, Any] | None = None) -> PretrainRecord:
    """`dontstop pretrain ...`: continued MLM pretraining; returns the written record.

    The documents of `guard.keys` (data.text_key digests of task dev/test text) are dropped from
    the corpus here, at run time, whatever the corpus file holds; the record keeps their keys and
    the files guarded (`guard.files`: path -> sha256). W&B (wandb_log):
    a run named after the output folder, in `group` (default "pretrain"), with `wandb_config`
    added to the recipe; its input is the base model's artifact, its output the checkpoint's.
    """
    check_recipe(recipe, process_state().num_processes)
    with torch_threads(recipe.threads):
        return _pretrain(recipe, guard or LeakageGuard(), name, wandb, group, wandb_config)


def _pretrain(recipe: PretrainRecipe, guard: LeakageGuard, name: str | None, wandb: bool,
              group: str | None, wandb_config: dict[str, Any] | None) -> PretrainRecord:
    run = PretrainRun(recipe, guard, name or Path(recipe.output_dir).name)
    logger = wandb_log.start_run(wandb and run.accelerator.is_main_process, group=group or "pretrain",
                                 job_type="pretrain", name=Path(recipe.output_dir).name,
                                 config={**recipe_json(recipe), "lineage": run.name, "processes": run.processes,
                                         "device": run.device, **(wandb_config or {})},
                                 input_model=recipe.base_model)
    run.train(logger)
    record = run.finish()
    if logger:
        summary = {key: getattr(record, key) for key in WANDB_SUMMARY}
        logger.log_model(recipe.output_dir, metadata={"lineage": record.name, **summary})
        logger.finish(summary)
    return record


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's CPU threads set to `threads` (None: unchanged), restored afterwards."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def process_state():
    """accelerate's process group, set up once per process (PartialState is a singleton: the first
    call decides). On CPUs (`accelerate launch` with ACCELERATE_USE_CPU=true, the tests' stand-in
    for several GPUs) it joins the group only when told `cpu=True`; without it every process of
    `--num_processes 2` would train alone and write the same folder."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


class PretrainRun:
    """One pretraining: model, data, optimizer and progress, resumed from <out>/resume/ if there."""

    def __init__(self, recipe: PretrainRecipe, guard: LeakageGuard, name: str):
        from accelerate import Accelerator
        from accelerate.utils import set_seed
        from transformers import AutoModelForMaskedLM, AutoTokenizer, get_linear_schedule_with_warmup

        from ..models import load_pretrained

        self.began, self.recipe, self.name = time.time(), recipe, name
        self.output_dir, self.resume_dir = Path(recipe.output_dir), Path(recipe.output_dir) / "resume"
        self.created_output = not self.output_dir.exists()
        check_resumable(self.resume_dir, recipe_json(recipe))
        # read through before any model loads: a CSV, a jsonl line without text stopped after the load
        self.guard, self.corpus = guard, scan_corpus(recipe, guard.keys)
        self.accelerator = Accelerator(mixed_precision="bf16" if torch.cuda.is_available() else "no",
                                       gradient_accumulation_steps=self._micro_batches_per_step())
        self.processes, self.device = self.accelerator.num_processes, device_name(self.accelerator.device)
        set_seed(recipe.seed)  # a model without a trained MLM head (bundled:minilm) starts the same
        self.tokenizer = load_pretrained(AutoTokenizer, recipe.base_model)   # refused if its vocabulary is gone
        check_masked_lm(recipe.base_model, self.tokenizer)   # a mask token, and an MLM head among its weights
        self.model = load_pretrained(AutoModelForMaskedLM, recipe.base_model, attn_implementation="sdpa")
        self.peft_model = wrap_for_training(self.model, recipe)  # LoRA in place; None: train every weight
        self.base_weights = base_weights(recipe) if self.peft_model else None   # as loaded: what LoRA trains on
        self.heldout = self.corpus.heldout_documents()
        with self.accelerator.main_process_first():             # the main process tokenizes
            self.stream = self._token_stream()
        on_gpu = self.accelerator.device.type == "cuda"
        self.sequences = training_sequences(self.tokenizer, self.resume_dir / TOKENS, recipe, on_gpu)
        self.schedule = BatchSchedule(recipe, len(self.sequences), self.accelerator.process_index,
                                      self.accelerator.num_processes)
        # fused: one kernel for all parameters, ~7x faster than the per-tensor loop on CPU
        optimizer = torch.optim.AdamW(trainable_parameters(self.model), lr=recipe.lr, betas=tuple(recipe.betas),
                                      eps=recipe.eps, weight_decay=recipe.weight_decay, fused=True)
        total = self.schedule.total_steps
        self.scheduler = get_linear_schedule_with_warmup(optimizer, self.schedule.warmup_steps, total)
        self.compiled = on_gpu if recipe.compile is None else recipe.compile
        self.trainer, self.optimizer = self.accelerator.prepare(MaskedOnlyMLM(self.model, self.compiled), optimizer)
        self.accelerator.register_for_checkpointing(self.scheduler)  # stepped by us, once per step
        self.progress = self._resume_or_start()
        self.wall_before = self.progress["wall_time_s"]  # of earlier, interrupted invocations

    def _micro_batches_per_step(self) -> int:
        return self.recipe.batch_size // (self.recipe.per_device_batch_size * process_state().num_processes)

    def _token_stream(self) -> dict[str, Any]:
        """The training documents as one token file in <out>/resume/ (kept for a resumed run),
        and its counts; written once, by the first process to get here."""
        description = {"recipe": recipe_json(self.recipe), "documents": self.corpus.documents,
                       "excluded": self.corpus.excluded, "tokenizer": self.tokenizer.name_or_path}
        counts = saved_token_counts(self.resume_dir / TOKENS, self.tokenizer, description, self.output_dir)
        if counts:
            return counts
        self.resume_dir.mkdir(parents=True, exist_ok=True)      # also marks the output dir as ours
        counts = write_token_stream(self.tokenizer, self.corpus.training_documents(), self.resume_dir / TOKENS,
                                    total=self.corpus.documents - len(self.heldout),
                                    show_progress=self.accelerator.is_main_process)
        atomic_write_json(token_description_file(self.resume_dir / TOKENS),
                          {"description": description, "counts": counts, **where_saved(self.output_dir)})
        return counts

    def heldout_loss(self) -> float | None:
        if not self.heldout:
            return None
        return heldout_mlm_loss(self.model, self.tokenizer, self.heldout, self.recipe.max_length,
                                self.recipe.seed)

    def _resume_or_start(self) -> dict[str, Any]:
        """The progress of the latest saved state (after loading it), or a fresh start."""
        states = sorted(self.resume_dir.glob("step-*"))
        if states:   # its recipe checked before the corpus was read
            progress = load_saved_state(self.accelerator, states[-1], self.schedule.total_steps)
            # its recipe as asked now: the same but for paths that moved with the folder
            return {**progress, "resumed_from_step": progress["step"], "recipe": recipe_json(self.recipe)}
        return {"step": 0, "resumed_from_step": 0, "loss": None, "tokens": 0, "train_time_s": 0.0,
                "wall_time_s": 0.0, "heldout_loss_before": self.heldout_loss(),
                "recipe": recipe_json(self.recipe)}

    def train(self, logger) -> None:
        progress, total = self.progress, self.schedule.total_steps
        with tqdm(total=total, initial=progress["step"], desc=f"pretrain {self.name}",
                  disable=not self.accelerator.is_main_process) as bar:   # closed before an error line
            self.trainer.train()
            for micro_batches in self.micro_batch_stream(progress["step"], total):
                started = time.time()
                loss, tokens = self._step(micro_batches)
                self._stop_if_diverged(loss, f"optimizer step {progress['step'] + 1}")
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

    def micro_batch_stream(self, start: int, end: int) -> MicroBatchStream:
        """This process's micro-batches of steps [start, end): on a GPU built ahead in pinned memory."""
        on_gpu = self.accelerator.device.type == "cuda"
        return MicroBatchStream(self.schedule, self.sequences, self.tokenizer, self.recipe.mask_prob, start, end,
                                depth=PREFETCH_MICRO_BATCHES if on_gpu else 0, pin=on_gpu)

    def _step(self, micro_batches: list[MicroBatch]) -> tuple[float, int]:
        """One optimizer step over this process's micro-batches: (mean loss of all processes, tokens)."""
        accelerator, losses, tokens = self.accelerator, [], 0
        for batch in micro_batches:
            torch.manual_seed(batch.dropout_seed)               # see pipeline.build_micro_batch
            batch = batch.to(accelerator.device)
            with accelerator.accumulate(self.trainer):          # all-reduce only on the last one
                loss = self.trainer(batch.input_ids, batch.attention_mask, batch.labels)
                accelerator.backward(loss)                      # divides by the accumulation steps
            losses.append(loss.detach())
            tokens += batch.tokens
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad()
        mean_loss = accelerator.reduce(torch.stack(losses).mean(), reduction="mean")
        all_tokens = accelerator.reduce(torch.tensor(tokens, device=accelerator.device), reduction="sum")
        return float(mean_loss), int(all_tokens)

    def _stop_if_diverged(self, loss: float | None, what: str) -> None:
        """One line and no finished record for a NaN or infinite loss; the resume states go too
        (a rerun of the same recipe diverges the same way: data and masks are seeded)."""
        try:
            check_finite(str(self.output_dir), what, loss, self.recipe.lr)
        except UserError:
            if self.accelerator.is_main_process:
                shutil.rmtree(self.resume_dir, ignore_errors=True)
                if self.created_output:
                    with contextlib.suppress(OSError):
                        self.output_dir.rmdir()   # only if empty
            raise

    def _save_resume_state(self) -> None:
        """Written under a temporary name, then renamed: a kill leaves no half state, a full disk none."""
        final = self.resume_dir / f"step-{self.progress['step']:09d}"
        temporary = self.resume_dir / f".tmp-{final.name}"
        with written_or_os_error(final, partial=temporary):
            self.accelerator.save_state(str(temporary))
        # save_state has no barrier at its end: each process writes its own random_states_<i>.pkl,
        # and the folder must not be renamed (made final) before the slowest has written its file.
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            atomic_write_json(temporary / "progress.json",
                              {**self.progress, **where_saved(self.resume_dir.parent)})
            temporary.rename(final)
            for older in sorted(self.resume_dir.glob("step-*"))[:-1]:
                shutil.rmtree(older)
        self.accelerator.wait_for_everyone()

    def finish(self) -> PretrainRecord:
        """Save model, tokenizer and, last, the record (its presence means "finished")."""
        heldout_after = self.heldout_loss()
        self._stop_if_diverged(heldout_after, "the held-out documents after training")
        self.progress["wall_time_s"] = self.wall_before + time.time() - self.began
        record = finished_record(self.recipe, recipe_json(self.recipe), self.name, self.schedule, self.corpus,
                                 self.stream, self.progress, heldout_after, self.processes, self.device,
                                 self.guard.files)
        if self.accelerator.is_main_process:
            save_model(self.accelerator.unwrap_model(self.trainer).mlm_model, self.peft_model, self.recipe)
            self.tokenizer.save_pretrained(self.output_dir)
            record.weights_sha256, record.base_weights_sha256 = weights_sha256(self.output_dir), self.base_weights
            record.write(self.output_dir)
            shutil.rmtree(self.resume_dir)  # our own resume states, useless once finished
        self.accelerator.wait_for_everyone()
        return record

