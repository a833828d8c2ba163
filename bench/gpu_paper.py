"""python bench/gpu_paper.py [--smoke [--compile] --results PATH] [--micro-batch 32] [--accumulation 64] [--steps 2] [--finetune-steps 30] [--mix-steps 261] [--finetune-precision auto] [--peak-tflops T]

Paper-scale speed of our two training steps on one GPU, as ratios against the stock Hugging Face
path measured in the same run, with no download (roberta-base's shape with RANDOM weights, random
ids or synthetic text). Three rows, appended as JSON lines to bench/results/gpu_paper.jsonl
(--results), the figures README.md and `--dry-run` cite:

- "dapt vs stock" (bench/gpu_dapt.py): our DAPT step (compiled, as on a GPU by default; and eager)
  against RobertaForMaskedLM + DataCollatorForLanguageModeling, eager and under torch.compile, at
  micro-batches of 32 x 512 accumulated to the paper's 2048 sequences: tokens/s, the ratios, MFU,
  peak memory, each path's final loss;
- "finetune step" (bench/gpu_finetune.py): finetune.trainer.train_step at 16 x 512 and at a
  ChemProt-sized task's real lengths, with the precision that actually ran, read back from the
  activations (the recipe's "auto" is bf16 on a GPU), and MFU;
- "finetune real path": the `dontstop finetune --suite paper --task chemprot --model roberta-base`
  command on that task from a Hugging Face cache, for one epoch: import, load, tokenize, train and
  eval seconds, against the epoch the step row predicts.

Budget: an estimated 5 minutes on an H200 (two compilations of about a minute each, the rest timed
steps), not yet timed there; the issue allows 8.
Without CUDA it exits 2 unless --smoke: a tiny shape (2 layers, hidden 64, seq 64) and a small
task on the CPU through the same code, minus the compiled DAPT paths (compiling takes minutes on
a CPU; their fields are null, unless --compile), written only to the --results path given. Each row
is written as soon as it is measured.
FLOPs and MFU: bench/gpu_common.py.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from common import RESULTS_DIR, checked_smoke, record, stamp
from gpu_common import (FINETUNE_BATCH, PAPER_BATCH, PAPER_DAPT_STEPS, PAPER_LENGTH, ROBERTA_BASE,
                        SMOKE_SHAPE, Settings, peak_tflops)

PAPER_TASK_SIZES = (4169, 2427, 3469)   # ChemProt's train/dev/test (FACTS.md, Table 2)
SMOKE_TASK_SIZES = (48, 16, 16)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shape on the CPU: a plumbing check")
    parser.add_argument("--compile", action="store_true",
                        help="with --smoke: run the compiled DAPT paths too (minutes on a CPU; rehearses "
                             "torch.compile on the installed torch before device time is spent)")
    parser.add_argument("--micro-batch", type=int, help="DAPT sequences per forward pass (GPU 32, smoke 4)")
    parser.add_argument("--accumulation", type=int,
                        help="micro-batches per timed DAPT step (default 2048 / micro-batch; smoke 2)")
    parser.add_argument("--steps", type=int, help="timed DAPT optimizer steps per path (GPU 2, smoke 1)")
    parser.add_argument("--warmup-micro-batches", type=int, help="untimed DAPT micro-batches (GPU 4, smoke 1)")
    parser.add_argument("--finetune-steps", type=int, help="timed fine-tuning steps per precision (GPU 30, smoke 2)")
    parser.add_argument("--finetune-warmup", type=int, help="untimed fine-tuning steps (GPU 3, smoke 1)")
    parser.add_argument("--mix-steps", type=int, help="timed steps at the task's real lengths (GPU 261 = an epoch, smoke 2)")
    parser.add_argument("--finetune-precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="FinetuneRecipe.precision of the fine-tuning rows (auto: bf16 on a GPU)")
    parser.add_argument("--peak-tflops", type=float, help="the card's dense bf16 peak (default: by device name)")
    parser.add_argument("--results", help="JSON lines file to append to (default bench/results/gpu_paper.jsonl; "
                                          "required with --smoke)")
    args = parser.parse_args(argv)
    checked_smoke(parser, args)
    return args


def build_settings(args: argparse.Namespace) -> Settings:
    device = "cpu" if args.smoke else "cuda"
    defaults = ({"micro_batch": 4, "accumulation": 2, "steps": 1, "warmup_micro_batches": 1,
                 "finetune_steps": 2, "finetune_warmup": 1, "mix_steps": 2, "seq": 64} if args.smoke else
                {"micro_batch": 32, "accumulation": None, "steps": 2, "warmup_micro_batches": 4,
                 "finetune_steps": 30, "finetune_warmup": 3, "mix_steps": 261, "seq": PAPER_LENGTH})
    chosen = {key: getattr(args, key, None) or value for key, value in defaults.items()}
    name = "cpu" if args.smoke else torch.cuda.get_device_name()
    peak = args.peak_tflops or (None if args.smoke else peak_tflops(name))
    note = ("given by --peak-tflops" if args.peak_tflops else "CPU: no peak, MFU null" if args.smoke
            else f"table entry for {name!r}" if peak else f"{name!r} not in the peak table: MFU null "
            "(pass --peak-tflops)")
    settings = Settings(device=device, device_name=name, shape=SMOKE_SHAPE if args.smoke else ROBERTA_BASE,
                        peak_tflops=peak, peak_note=note, finetune_precision=args.finetune_precision,
                        compile=not args.smoke or args.compile,
                        task_sizes=SMOKE_TASK_SIZES if args.smoke else PAPER_TASK_SIZES, **chosen)
    if PAPER_BATCH % settings.micro_batch:
        raise SystemExit(f"--micro-batch {settings.micro_batch} does not divide the paper's batch of {PAPER_BATCH}")
    accumulation = settings.accumulation or settings.full_accumulation
    if not 1 <= accumulation <= settings.full_accumulation:
        raise SystemExit(f"--accumulation must be 1..{settings.full_accumulation} (2048 / micro-batch)")
    return replace(settings, accumulation=accumulation)


def print_table(rows: list[dict], settings: Settings) -> None:
    dapt, step, real = rows
    mfu = (lambda value: "null" if value is None else f"{value:.1%}")
    print(f"\n{settings.device_name}: peak {settings.peak_tflops} TFLOPS ({settings.peak_note})")
    print(f"DAPT: ours {dapt['tokens_per_s']:,.0f} tokens/s (eager {dapt['ours_eager_tokens_per_s']:,.0f}), "
          f"stock {dapt['stock_eager_tokens_per_s']:,.0f}, stock + compile {dapt['stock_compile_tokens_per_s']}: "
          f"{dapt['ratio_vs_stock_eager']}x / {dapt['ratio_vs_stock_compile']}x; MFU {mfu(dapt['mfu'])}; peak "
          f"{dapt['peak_memory_mb']:,.0f} MiB vs {dapt['stock_compile_peak_memory_mb']} MiB; "
          f"{dapt['projected_dapt_hours']} h for 12.5K x 2048 seqs")
    print(f"fine-tuning step ({step['precision']}): {step['sequences_per_s']:,.1f} seqs/s at 16 x {step['seq']} "
          f"(MFU {mfu(step['mfu'])}); {step['mix_sequences_per_s']:,.1f} seqs/s at real lengths "
          f"(mean {step['mix_mean_length']} tokens, padded to x{step['mix_pad_to_multiple_of']}; "
          f"by multiple: {step['mix_by_pad_multiple']})")
    print(f"dontstop finetune, 1 epoch: {real['command_s']} s in all (import {real['import_s']} s, load "
          f"{real['load_s']} s, tokenize {real['tokenize_s']} s, train {real['train_s']} s, eval {real['eval_s']} s); "
          f"epoch {real['epoch_s']} s vs {real['predicted_epoch_s']} s predicted ({real['ratio_epoch_to_predicted']}x)")


def main(argv: list[str] | None = None) -> int:
    from gpu_dapt import dapt_vs_stock_row
    from gpu_finetune import build_world, finetune_real_path_row, finetune_step_row

    args = parse_arguments(argv)
    if not args.smoke and not torch.cuda.is_available():
        print("no CUDA device; run with --smoke on CPU", file=sys.stderr)
        return 2
    settings = build_settings(args)
    run_id = time.strftime("%Y%m%d-%H%M%S")
    config = {**asdict(settings), "paper_batch": PAPER_BATCH, "paper_dapt_steps": PAPER_DAPT_STEPS,
              "finetune_batch": FINETUNE_BATCH, "attention": "sdpa", "weights": "random",
              "flops_formula": "6 * params + 12 * layers * hidden * seq per token (PaLM appendix B)"}
    results = Path(args.results) if args.results else RESULTS_DIR / "gpu_paper.jsonl"
    rows = []

    def keep(row: dict) -> None:
        """Write each row as soon as it is measured: a device call cut off by its time limit
        still brings back the rows it finished."""
        rows.append(row)
        record(results, {**row, "device": settings.device, "device_name": settings.device_name,
                         "peak_note": settings.peak_note, **stamp(run_id, config)})

    with tempfile.TemporaryDirectory(prefix="gpu-paper-") as scratch:
        world = build_world(Path(scratch), settings, settings.task_sizes)
        keep(dapt_vs_stock_row(settings))
        keep(finetune_step_row(settings, world, settings.finetune_precision))
        keep(finetune_real_path_row(settings, world, rows[-1]))
    print_table(rows, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
