"""python bench/base_threads.py [--steps N] [--threads 1 2] [--smoke --results PATH]

Why the mini suite's base stage takes both cores (`threads: 2` in experiments/suites/mini.yaml):
the base stage runs alone, before any other job can, so its second core would otherwise idle.
This runs the suite's base recipe (recipes.base: batch 32 x 128 tokens, lr 5e-4, on
corpora/general.txt, from bundled:bert-tiny) through the real trainer
(pretrain.trainer.run_pretraining), cut to `--steps` optimizer steps (default 30), once per
`--threads` value (default 1 and 2), each in its own fresh process, and reports the trainer's
tokens/s (training steps only, as pretrain_record.json's `tokens_per_s`) and the ratio against
the first `--threads` value of the same run. Rows are JSON lines in bench/results/base_threads.jsonl.

--smoke: 2 steps of 4 x 32 tokens, written only to --results.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS_DIR, parse_with_data_and_smoke, peak_memory_mb, record, run_isolated, stamp


def base_side(threads: int, steps: int, data_dir: str, smoke: bool) -> dict:
    """The base stage at `threads` CPU threads, in its own process: the suite's recipe, cut."""
    from dontstop.pretrain.trainer import run_pretraining
    from dontstop.recipes import PretrainRecipe
    from dontstop.stage_identity import stage_recipe
    from dontstop.suites import load_suite

    suite = load_suite("mini")
    recipe = stage_recipe(suite, "base")
    recipe.update(max_steps=steps, heldout_documents=0, checkpoint_every=steps + 1, threads=threads)
    if smoke:
        recipe.update(batch_size=4, per_device_batch_size=4, max_length=32)
    with tempfile.TemporaryDirectory() as scratch:
        pretrain = run_pretraining(PretrainRecipe(**{**recipe, "base_model": "bundled:bert-tiny",
                                                     "output_dir": str(Path(scratch) / "base"),
                                                     "corpora": [str(Path(data_dir) / "mini" / suite.base_corpus)]}))
    return {"tokens_per_s": round(pretrain.tokens_per_s, 1), "steps": pretrain.steps, "tokens": pretrain.tokens,
            "train_time_s": round(pretrain.tokens / pretrain.tokens_per_s, 2),
            "peak_memory_mb": round(peak_memory_mb("cpu"), 1),
            "recipe": {key: recipe.get(key) for key in ("lr", "batch_size", "max_length", "threads")}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="optimizer steps per row (default 30; --smoke 2)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="one row per value; the first is the baseline")
    args = parse_with_data_and_smoke(parser, argv, data_help="holds mini/corpora/general.txt")
    steps = args.steps or (2 if args.smoke else 30)
    run, baseline = time.strftime("%Y%m%d-%H%M%S"), None
    for threads in args.threads:
        side = run_isolated(base_side, threads, steps, args.data_dir, args.smoke)
        baseline = baseline or side["tokens_per_s"]
        record(Path(args.results) if args.results else RESULTS_DIR / "base_threads.jsonl",
               {"row": f"base stage, {threads} thread{'s' if threads > 1 else ''}", "model": "bundled:bert-tiny",
                "threads": threads, **side, "speedup": round(side["tokens_per_s"] / baseline, 3),
                **stamp(run, {"steps": steps, "threads": args.threads, "smoke": args.smoke})})
    return 0


if __name__ == "__main__":
    sys.exit(main())
