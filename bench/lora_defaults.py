"""python bench/lora_defaults.py --base cache/mini/checkpoints/base-<hash8> [--rows NAME...] [--smoke --results PATH]

How the LoRA defaults (recipes.AdapterRecipe, the suites' dapt_lora / tapt_lora lr) were chosen:
DAPT on the mini suite's CS corpus and TAPT on ACL-Roles, each from the suite's base stage
(`--base`: the "RoBERTa" checkpoint the runner built), with the suite's own dapt / tapt recipe
(same steps, batch, length, seed and held-out documents), once in full and once per LoRA
variant (learning rate, rank, target modules, MLM head's transform trained or frozen). Each row:
the stage's held-out MLM loss before and after (nats per masked token, the same held-out
documents and masks for every row of a stage), trainable parameters (what the checkpoint
stores), checkpoint MiB and wall seconds. Rows are JSON lines in bench/results/lora_defaults.jsonl.

--smoke: 3 steps of DAPT and 1 variant on a tiny slice, written only to --results.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import DATA_DIR, RESULTS_DIR, checked_smoke, ensure_mini_data, record, stamp
from lora_cost import checkpoint_figures
from dontstop.data.leakage import leakage_guard
from dontstop.overrides import folder
from dontstop.pretrain.trainer import run_pretraining
from dontstop.recipes import PretrainRecipe
from dontstop.stage_identity import stage_recipe
from dontstop.suites import load_suite

# (row name, stage, recipe overrides): the full stage first, then the LoRA variants, every
# setting that differs from AdapterRecipe's defaults written out (rank 8, alpha 16, dropout 0.1)
QV = {"target_modules": ["query", "value"]}
ALL = {"target_modules": ["query", "key", "value", "dense"]}
VARIANTS = [
    ("dapt full", "dapt", {}),
    ("dapt lora r8 qv lr5e-4", "dapt_lora", {"lr": 5e-4, "adapter": QV}),
    ("dapt lora r8 qv lr2e-3", "dapt_lora", {"lr": 2e-3, "adapter": QV}),
    ("dapt lora r8 qv lr5e-3", "dapt_lora", {"lr": 5e-3, "adapter": QV}),
    ("dapt lora r8 qv lr2e-3 head frozen", "dapt_lora", {"lr": 2e-3, "adapter": {**QV, "train_head": False}}),
    ("dapt lora r8 qkvd lr2e-3", "dapt_lora", {"lr": 2e-3, "adapter": ALL}),
    ("dapt lora r32 qkvd lr2e-3", "dapt_lora", {"lr": 2e-3, "adapter": {**ALL, "rank": 32, "alpha": 64.0}}),
    ("tapt full", "tapt", {}),
    ("tapt lora r8 qv lr2e-4", "tapt_lora", {"lr": 2e-4, "adapter": QV}),
    ("tapt lora r8 qv lr1e-3", "tapt_lora", {"lr": 1e-3, "adapter": QV}),
    ("tapt lora r8 qv lr2e-3", "tapt_lora", {"lr": 2e-3, "adapter": QV}),
    ("tapt lora r8 qkvd lr2e-3", "tapt_lora", {"lr": 2e-3, "adapter": ALL}),
]
CORPUS = {"dapt": "corpora/cs.txt", "tapt": "tasks/aclsum-roles/train.jsonl"}


def run_variant(name: str, kind: str, overrides: dict, base: str, data_dir: Path, smoke: bool) -> dict:
    suite = load_suite("mini", overrides=folder("--data-dir", "data_dir", str(data_dir)))
    full_kind = kind.removesuffix("_lora")
    recipe = stage_recipe(suite, kind)
    adapter = {**recipe.get("adapter", {}), **overrides.pop("adapter", {})} if "adapter" in recipe else None
    recipe = {**recipe, **overrides, "adapter": adapter}
    if smoke:
        recipe = {**recipe, "max_steps": 3, "epochs": None, "batch_size": 4, "per_device_batch_size": 4,
                  "max_length": 32, "heldout_documents": 10}
    out = Path(tempfile.mkdtemp(prefix="lora-defaults-")) / "checkpoint"
    began = time.time()
    try:
        pretrain = run_pretraining(PretrainRecipe(**{**recipe, "base_model": base, "output_dir": str(out),
                                                     "corpora": [str(data_dir / "mini" / CORPUS[full_kind])]}),
                                   guard=leakage_guard(suite.leakage_task_dirs()))
        figures = checkpoint_figures(out)
    finally:
        shutil.rmtree(out.parent)
    return {"row": name, "stage": full_kind, "lora": adapter is not None, "recipe_lr": recipe["lr"],
            "adapter": adapter, "steps": pretrain.steps, "heldout_loss_before": round(pretrain.heldout_loss_before, 4),
            "heldout_loss_after": round(pretrain.heldout_loss_after, 4), **figures,
            "tokens_per_s": round(pretrain.tokens_per_s, 1), "wall_time_s": round(time.time() - began, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the mini suite's base stage checkpoint")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--smoke", action="store_true", help="3 steps, 2 rows: a plumbing check")
    parser.add_argument("--rows", nargs="+", help="only the rows whose name starts with one of these")
    parser.add_argument("--results", help="JSON lines file (default bench/results/lora_defaults.jsonl; "
                                          "required with --smoke)")
    args = parser.parse_args(argv)
    checked_smoke(parser, args)
    if args.data_dir == DATA_DIR:
        ensure_mini_data()
    run_id, results = time.strftime("%Y%m%d-%H%M%S"), Path(args.results or RESULTS_DIR / "lora_defaults.jsonl")
    chosen = [v for v in VARIANTS if not args.rows or v[0].startswith(tuple(args.rows))]
    for name, kind, overrides in chosen[:2] if args.smoke else chosen:
        row = run_variant(name, kind, dict(overrides), args.base, args.data_dir, args.smoke)
        record(results, {**row, **stamp(run_id, {"base": args.base, "smoke": args.smoke})})
    return 0


if __name__ == "__main__":
    sys.exit(main())
