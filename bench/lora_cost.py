"""python bench/lora_cost.py [--device cpu|cuda] [--smoke --results PATH] [--steps N] [--threads T] [--count-paper-shape]

What a LoRA pretraining stage costs and saves against the full stage, measured in one run
(ratios compare rows of the same run): trainable parameters and checkpoint size (what the
stage's checkpoint stores: the weights file and its config; the tokenizer and record, the
same for both, are in folder_mb; sizes in MiB), tokens/s and peak memory (MiB) of training.
Each side runs in a fresh process, so its peak memory is its own.

--device cpu (default): the mini suite's model (bundled:bert-tiny) through the real trainer
(pretrain.trainer.run_pretraining) on the mini CS corpus, with the mini suite's dapt and
dapt_lora recipes cut to --steps (default 30) optimizer steps, one CPU thread (a runner worker's);
peak memory is the process's peak resident set. Row in bench/results/lora_cost.jsonl.

--device cuda: the roberta-base shape with RANDOM weights and random token ids (as
bench/gpu_paper.py: no download), our DAPT optimizer step (PretrainRun._step: bf16, SDPA, the
masked-only loss, fused AdamW over the trainable parameters) at micro-batch 32 x 512 tokens,
8 micro-batches a step, 1 warm-up and --steps (default 3) timed steps; peak memory is
torch.cuda.max_memory_allocated. Appends the row "dapt lora vs full" to bench/results/gpu_paper.jsonl.
With --smoke it runs the same code on the CPU with gpu_paper's tiny shape (2 layers, hidden 64,
64 tokens), written only to --results: the check that the GPU path works, with no GPU figure.

--count-paper-shape: no timing, on the CPU: the roberta-base shape's parameters, the default
adapter's trainable parameters and its checkpoint size (the LoRA side's model, saved as a stage
saves it). Row "lora roberta-base shape (counted)" in bench/results/lora_cost.jsonl.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import torch

from common import DATA_DIR, RESULTS_DIR, checked_smoke, ensure_mini_data, peak_memory_mb, record, run_isolated, stamp
from gpu_common import PAPER_DAPT_LR, PAPER_DAPT_STEPS, ROBERTA_BASE, SMOKE_SHAPE, RobertaIds, random_weight_model
from gpu_dapt import BenchRun, RandomSequences
from dontstop.recipes import PretrainRecipe

WEIGHTS = {"model.safetensors": "config.json", "adapter_model.safetensors": "adapter_config.json"}
PAPER_MICRO_BATCH, PAPER_ACCUMULATION, PAPER_SEQ = 32, 8, 512   # 131K tokens per timed step


def checkpoint_figures(folder: Path) -> dict:
    """Parameters in the checkpoint's weights file (a LoRA stage stores exactly what it trained;
    a full stage all of it, tied weights once), MiB (2**20 bytes) of that file and its config, MiB of
    the folder."""
    from safetensors import safe_open

    weights = next(folder / name for name in WEIGHTS if (folder / name).is_file())
    with safe_open(str(weights), "pt") as f:
        parameters = sum(math.prod(f.get_slice(key).get_shape()) for key in f.keys())
    stored = weights.stat().st_size + (folder / WEIGHTS[weights.name]).stat().st_size
    return {"trainable_params": parameters, "checkpoint_mb": round(stored / 2**20, 3),
            "folder_mb": round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20, 3)}


class LoraBenchRun(BenchRun):
    """gpu_dapt's BenchRun (our `_step` over a random-weight model and random ids, as the
    trainer sets it up), with the model wrapped by peft for the LoRA side (the default adapter)
    and the optimizer over the trainable parameters, as PretrainRun does."""

    def __init__(self, device: str, shape: dict, seq: int, micro_batch: int, accumulation: int, steps: int,
                 lora: bool):
        from accelerate import Accelerator
        from transformers import AutoModelForMaskedLM, get_linear_schedule_with_warmup

        from dontstop.pretrain.adapter import trainable_parameters, wrap_for_training
        from dontstop.pretrain.mlm import BatchSchedule, MaskedOnlyMLM

        self.recipe = PretrainRecipe(base_model="random:roberta-base-shaped", corpora=[], output_dir="unused",
                                     max_steps=PAPER_DAPT_STEPS, lr=PAPER_DAPT_LR, max_length=seq,
                                     batch_size=micro_batch * accumulation, per_device_batch_size=micro_batch,
                                     adapter={} if lora else None)   # {}: AdapterRecipe's defaults
        self.accelerator = Accelerator(mixed_precision="bf16" if device == "cuda" else "no", cpu=device == "cpu",
                                       gradient_accumulation_steps=accumulation)
        self.tokenizer = RobertaIds(shape["vocab_size"])
        self.model = random_weight_model(AutoModelForMaskedLM, SimpleNamespace(shape=shape, device=device))
        self.peft_model = wrap_for_training(self.model, self.recipe)
        self.sequences = RandomSequences(seq, shape["vocab_size"])
        self.schedule = BatchSchedule(self.recipe, self.recipe.batch_size * (steps + 1), process=0, processes=1)
        optimizer = torch.optim.AdamW(trainable_parameters(self.model), lr=self.recipe.lr,
                                      betas=tuple(self.recipe.betas), eps=self.recipe.eps,
                                      weight_decay=self.recipe.weight_decay, fused=True)
        warmup = math.ceil(self.recipe.warmup_ratio * PAPER_DAPT_STEPS)
        self.scheduler = get_linear_schedule_with_warmup(optimizer, warmup, PAPER_DAPT_STEPS)
        self.trainer, self.optimizer = self.accelerator.prepare(MaskedOnlyMLM(self.model), optimizer)
        self.trainer.train()

    def save(self, folder: Path) -> Path:
        """The stage's checkpoint as the trainer writes it (pretrain.adapter.save_model)."""
        from dontstop.pretrain.adapter import save_model

        save_model(self.model, self.peft_model, replace(self.recipe, base_model="roberta-base", output_dir=str(folder)))
        return folder


def mini_side(lora: bool, steps: int, threads: int, data_dir: str, smoke: bool) -> dict:
    """One side on the CPU mini model, in its own process: the real trainer, the suite's recipe."""
    from dontstop.suites import load_suite
    from dontstop.pretrain.trainer import run_pretraining
    from dontstop.stage_identity import stage_recipe

    torch.set_num_threads(threads)
    recipe = stage_recipe(load_suite("mini"), "dapt_lora" if lora else "dapt")
    recipe.update(max_steps=steps, heldout_documents=0, checkpoint_every=steps + 1)
    if smoke:
        recipe.update(batch_size=4, per_device_batch_size=4, max_length=32)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "checkpoint"
        pretrain = run_pretraining(PretrainRecipe(**{**recipe, "base_model": "bundled:bert-tiny", "output_dir": str(out),
                                                     "corpora": [str(Path(data_dir) / "mini" / "corpora" / "cs.txt")]}))
        return {"tokens_per_s": round(pretrain.tokens_per_s, 1), "peak_memory_mb": round(peak_memory_mb("cpu"), 1),
                **checkpoint_figures(out), "steps": pretrain.steps, "tokens": pretrain.tokens,
                "recipe": {key: recipe.get(key) for key in ("lr", "batch_size", "max_length", "adapter")}}


def paper_side(lora: bool, steps: int, smoke: bool) -> dict:
    """One side on the roberta-base shape (random weights), in its own process: our optimizer
    step as bench/gpu_paper.py times it; the LoRA side with AdapterRecipe's defaults."""
    device = "cpu" if smoke else "cuda"
    shape, seq = (SMOKE_SHAPE, 64) if smoke else (ROBERTA_BASE, PAPER_SEQ)
    micro_batch, accumulation = (4, 2) if smoke else (PAPER_MICRO_BATCH, PAPER_ACCUMULATION)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    run = LoraBenchRun(device, shape, seq, micro_batch, accumulation, steps, lora)
    stream = run.micro_batch_stream(0, steps + 1)                 # the trainer's input pipeline
    run.timed_step(stream.next_step()[:1])                        # warm-up: kernels, allocator
    seconds, tokens = 0.0, 0
    for _ in range(steps):
        step_seconds, _, step_tokens = run.timed_step(stream.next_step())
        seconds, tokens = seconds + step_seconds, tokens + step_tokens
    peak = peak_memory_mb(device)
    with tempfile.TemporaryDirectory() as scratch:
        figures = checkpoint_figures(run.save(Path(scratch) / "checkpoint"))
    trainable = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
    assert trainable == figures["trainable_params"], "the checkpoint stores what was trained"
    return {"tokens_per_s": round(tokens / seconds, 1), "peak_memory_mb": round(peak, 1), **figures,
            "steps": steps, "tokens": tokens, "micro_batch": micro_batch, "accumulation": accumulation, "seq": seq}


def count_paper_shape() -> dict:
    """The default adapter on the roberta-base shape, counted and saved on the CPU: no timing."""
    run = LoraBenchRun("cpu", ROBERTA_BASE, 8, 1, 1, 1, lora=True)
    with tempfile.TemporaryDirectory() as scratch:
        figures = checkpoint_figures(run.save(Path(scratch) / "checkpoint"))
    # the model's own weights are the frozen ones: peft adds the adapters and a trained copy of
    # each module it saves whole (the head's transform) beside the frozen original
    parameters = sum(p.numel() for p in run.model.parameters() if not p.requires_grad)
    return {"row": "lora roberta-base shape (counted)", **figures, "full_params": parameters,
            "trainable_fraction": round(figures["trainable_params"] / parameters, 5)}


def compare(full: dict, lora: dict) -> dict:
    """The LoRA side's figures, the full side's as full_*, and the ratios LoRA / full."""
    return {"row": "dapt lora vs full", **lora, **{f"full_{key}": value for key, value in full.items()},
            "trainable_fraction": round(lora["trainable_params"] / full["trainable_params"], 5),
            "checkpoint_ratio": round(lora["checkpoint_mb"] / full["checkpoint_mb"], 5),
            "tokens_per_s_ratio": round(lora["tokens_per_s"] / full["tokens_per_s"], 3),
            "peak_memory_ratio": round(lora["peak_memory_mb"] / full["peak_memory_mb"], 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cpu: the mini model through the trainer; cuda: the roberta-base shape")
    parser.add_argument("--smoke", action="store_true", help="seconds on the CPU: a plumbing check")
    parser.add_argument("--steps", type=int, help="timed optimizer steps (cpu 30, cuda 3, smoke 3)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (--device cpu)")
    parser.add_argument("--data-dir", default=str(DATA_DIR), help="holds mini/corpora/cs.txt (--device cpu)")
    parser.add_argument("--results", help="JSON lines file to append to (required with --smoke)")
    parser.add_argument("--count-paper-shape", action="store_true",
                        help="no timing: the default adapter's size on the roberta-base shape, on the CPU")
    args = parser.parse_args(argv)
    if args.count_paper_shape:
        record(Path(args.results) if args.results else RESULTS_DIR / "lora_cost.jsonl",
               {**run_isolated(count_paper_shape), "model": "roberta-base shape, random weights", "device": "cpu",
                **stamp(time.strftime("%Y%m%d-%H%M%S"), {"count_paper_shape": True})})
        return 0
    checked_smoke(parser, args)
    if args.device == "cuda" and not args.smoke and not torch.cuda.is_available():
        print("no CUDA device; run --device cuda --smoke for the same code on the CPU", file=sys.stderr)
        return 2
    if args.device == "cpu" and args.data_dir == str(DATA_DIR):
        ensure_mini_data()
    steps = args.steps or (3 if args.smoke or args.device == "cuda" else 30)
    if args.device == "cpu":
        sides = [run_isolated(mini_side, lora, steps, args.threads, args.data_dir, args.smoke) for lora in (False, True)]
        default = RESULTS_DIR / "lora_cost.jsonl"
    else:
        sides = [run_isolated(paper_side, lora, steps, args.smoke) for lora in (False, True)]
        default = RESULTS_DIR / "gpu_paper.jsonl"
    row = compare(*sides)
    model = "bundled:bert-tiny" if args.device == "cpu" else "roberta-base shape, random weights"
    device_name = torch.cuda.get_device_name() if args.device == "cuda" and not args.smoke else "cpu"
    record(Path(args.results) if args.results else default,
           {**row, "model": model, "device": "cpu" if args.smoke else args.device, "device_name": device_name,
            **stamp(time.strftime("%Y%m%d-%H%M%S"), {"steps": steps, "threads": args.threads, "smoke": args.smoke})})
    return 0


if __name__ == "__main__":
    sys.exit(main())
