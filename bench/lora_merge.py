"""python bench/lora_merge.py [--repeats N] [--threads T] [--smoke --results PATH]

What loading a LoRA checkpoint costs over loading a full one, measured in one run: fine-tuning
and the probe load every checkpoint with `models.load_pretrained(AutoModel, ...)`, which for a
LoRA checkpoint loads its base, merges the adapter (`merge_and_unload`), writes the merged model
to a temporary folder and loads that (adapters.merged_checkpoint). Three checkpoints, each made by
the real trainer (pretrain.trainer.run_pretraining) from bundled:bert-tiny with the mini suite's
recipes cut to 2 steps (the weights' values do not change the load's work):

  full:        a full DAPT stage (the baseline: a load with no merge)
  one adapter: a DAPT (LoRA) stage on bundled:bert-tiny
  two adapters: a TAPT (LoRA) stage on that DAPT (LoRA) checkpoint (its base is merged first)

Each row times `--repeats` loads (default 7, after one warm-up load not counted) in its own fresh
process at `--threads` CPU threads (default 1: a runner worker's) and reports the median load and
the extra seconds over the full checkpoint's median (`merge_s`, the figure docs/lora.md quotes).
Rows are JSON lines in bench/results/lora_merge.jsonl.

--smoke: 2 loads per row, written only to --results.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from common import RESULTS_DIR, parse_with_data_and_smoke, record, run_isolated, stamp
from dontstop.pretrain.trainer import run_pretraining
from dontstop.recipes import PretrainRecipe
from dontstop.stage_identity import stage_recipe
from dontstop.suites import load_suite

# (row, recipe kind, base: None = bundled:bert-tiny, else the row whose checkpoint is the base)
CHECKPOINTS = [("full", "dapt", None), ("one adapter", "dapt_lora", None), ("two adapters", "dapt_lora", "one adapter")]


def build_checkpoints(scratch: Path, corpus: Path) -> dict[str, Path]:
    """The three checkpoints, 2 optimizer steps of 4 x 32 tokens each (seconds on a CPU)."""
    suite, folders = load_suite("mini"), {}
    for row, kind, base in CHECKPOINTS:
        recipe = stage_recipe(suite, kind)
        recipe.update(max_steps=2, batch_size=4, per_device_batch_size=4, max_length=32, heldout_documents=0,
                      checkpoint_every=3, threads=1)
        folders[row] = scratch / row.replace(" ", "_")
        run_pretraining(PretrainRecipe(**{**recipe, "corpora": [str(corpus)], "output_dir": str(folders[row]),
                                          "base_model": str(folders[base]) if base else "bundled:bert-tiny"}))
    return folders


def time_loads(checkpoint: str, repeats: int, threads: int) -> list[float]:
    """Seconds of each of `repeats` loads, after one warm-up load (imports, the weights' hash)."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    from dontstop.models import load_pretrained

    hf_logging.set_verbosity_error()   # AutoModel's load report on an MLM checkpoint, once per load
    torch.set_num_threads(threads)
    load_pretrained(AutoModel, checkpoint)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        load_pretrained(AutoModel, checkpoint)
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, help="timed loads per row (default 7; --smoke 2)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each row's process")
    args = parse_with_data_and_smoke(parser, argv, data_help="holds mini/corpora/cs.txt")
    repeats = args.repeats or (2 if args.smoke else 7)
    run = time.strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory() as scratch:
        folders = build_checkpoints(Path(scratch), Path(args.data_dir) / "mini" / "corpora" / "cs.txt")
        baseline = None
        for row, _, _ in CHECKPOINTS:
            seconds = run_isolated(time_loads, str(folders[row]), repeats, args.threads)
            median = statistics.median(seconds)
            baseline = median if baseline is None else baseline
            record(Path(args.results) if args.results else RESULTS_DIR / "lora_merge.jsonl",
                   {"row": row, "model": "bundled:bert-tiny", "load_s_median": round(median, 4),
                    "load_s_min": round(min(seconds), 4), "load_s_max": round(max(seconds), 4),
                    "merge_s": round(median - baseline, 4), "load_ratio": round(median / baseline, 3),
                    **stamp(run, {"repeats": repeats, "threads": args.threads, "smoke": args.smoke})})
    return 0


if __name__ == "__main__":
    sys.exit(main())
