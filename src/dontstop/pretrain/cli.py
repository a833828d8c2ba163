"""dontstop pretrain: continued masked-LM pretraining (DAPT / TAPT) of one checkpoint.

    dontstop pretrain --model bundled:bert-tiny --corpus data/mini/corpora/cs.txt --out ckpt/dapt-cs --steps 300
    dontstop pretrain --recipe tapt --model roberta-base --corpus train.jsonl --out ckpt/tapt
    dontstop pretrain --recipe dapt --model roberta-base --corpus cs.txt --out ckpt/dapt-cs-lora --lora rank=16
    accelerate launch -m dontstop pretrain --recipe dapt ...       # several GPUs (bf16 + SDPA on GPU)
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import yaml

from .. import wandb_log
from ..config import from_dict, parse_yaml
from ..data.leakage import leakage_guard
from ..fileio import UserError
from ..flags import add_flag, check_model_flag
from ..recipes import AdapterRecipe, PretrainRecipe, check_flags

# Paper Table 13; the remaining fields keep their (shared) dataclass defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "dapt": {"max_steps": 12500, "batch_size": 2048, "lr": 5e-4},  # ~one pass over 8B tokens
    "tapt": {"epochs": 100, "batch_size": 256, "lr": 1e-4, "pack_documents": False},  # 256 documents a step
}
# With --lora: the paper suite's LoRA learning rates (recipes.dapt_lora / tapt_lora of paper.yaml:
# 4x and 10x the full ones; at the full ones LoRA ends 0.10 and 0.18 nats worse, docs/lora.md).
LORA_LR = {"dapt": 2e-3, "tapt": 1e-3}


def register(subparsers) -> None:
    parser = subparsers.add_parser("pretrain", help="continued masked-LM pretraining (DAPT / TAPT)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="bundled:bert-tiny, a checkpoint directory or a hub id")
    parser.add_argument("--corpus", required=True, nargs="+", action="extend",
                        help=".txt (one document a line) or .jsonl (text)")
    parser.add_argument("--out", required=True, help="output checkpoint directory (must be new or unfinished)")
    parser.add_argument("--recipe", choices=sorted(PRESETS),
                        help="paper Table 13 preset (with --lora, the paper suite's LoRA lr: 2e-3 / 1e-3); flags override it")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, dest="max_steps", help="optimizer steps (DAPT style)")
    length.add_argument("--epochs", type=int, help="passes over the corpus (TAPT style)")
    parser.add_argument("--batch-size", type=int, help="sequences per optimizer step, all processes")
    parser.add_argument("--per-device-batch-size", type=int, help="sequences per forward pass")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--max-length", type=int, help="tokens per sequence")
    parser.add_argument("--heldout-documents", type=int, help="documents held out for the MLM loss")
    parser.add_argument("--pack-documents", action=argparse.BooleanOptionalAction,
                        help="join documents into full --max-length sequences (default, and --recipe dapt), "
                             "or one document a sequence (--no-pack-documents; --recipe tapt, as the paper)")
    parser.add_argument("--checkpoint-every", type=int, help="optimizer steps between resumable states")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--lora", nargs="*", action="extend", metavar="KEY=VALUE",
                        help="train LoRA adapters instead of every weight; keys: the fields of "
                             "recipes.AdapterRecipe (rank=16 alpha=32 'target_modules=[query, value]')")
    add_flag(parser, "--exclude-dev-test-of", old=["--exclude-heldout-of"], nargs="+", action="extend", default=[],
             metavar="TASK_DIR",
             help="drop corpus documents equal to these tasks' dev/test text (their leakage keys)")
    parser.add_argument("--no-wandb", action="store_true", help="do not log to Weights & Biases")
    parser.set_defaults(func=_main)


def recipe_from_args(args) -> PretrainRecipe:
    """The --recipe preset (if any) with every given flag on top of it."""
    overrides = {field.name: getattr(args, field.name) for field in dataclasses.fields(PretrainRecipe)
                 if getattr(args, field.name, None) is not None}
    check_flags(PretrainRecipe, overrides, {"max_steps": "--steps"})   # before anything is loaded
    _check_distinct(args.corpus)
    check_model_flag(args.model)
    preset = dict(PRESETS.get(args.recipe, {}))
    if "max_steps" in overrides or "epochs" in overrides:  # a length flag replaces the preset's
        for length in ("max_steps", "epochs"):
            preset.pop(length, None)
    if getattr(args, "lora", None) is not None:   # recorded with every default filled in, as a stage's
        adapter = from_dict(AdapterRecipe, adapter_from_args(args.lora), "pretrain recipe: adapter")
        overrides["adapter"] = dataclasses.asdict(adapter)
        if args.recipe in LORA_LR:
            preset["lr"] = LORA_LR[args.recipe]
    return PretrainRecipe(**{**preset, **overrides, "base_model": args.model,
                             "corpora": args.corpus, "output_dir": args.out})


def _check_distinct(corpora: list[str]) -> None:
    """One file named twice (`--corpus cs.txt ./cs.txt`) is read once (its second copy all
    duplicates): a typo for another corpus pretrained on the first alone, without a word."""
    seen: dict[Path, str] = {}   # the file -> its first spelling
    for corpus in corpora:
        path = Path(corpus).resolve()
        if path in seen:
            also = "" if seen[path] == corpus else f" (the file of {seen[path]})"
            raise UserError(f"--corpus {corpus}: given twice{also}; name each corpus once")
        seen[path] = corpus


def adapter_from_args(pairs: list[str]) -> dict[str, Any]:
    """`--lora rank=16 alpha=32` -> {"rank": 16, "alpha": 32}: each value read as YAML, as in a
    suite file (checked against AdapterRecipe by the trainer, before any work)."""
    adapter: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--lora {pair}: expected KEY=VALUE")
        if key in adapter:   # the last one was kept without a word
            raise UserError(f"--lora {pair}: key '{key}' given twice")
        try:
            adapter[key] = parse_yaml(value)
        except yaml.YAMLError:
            raise UserError(f"--lora {pair}: the value is not valid YAML") from None
    return adapter


def _main(args) -> int:
    from .trainer import run_pretraining   # here: torch and transformers, not for `--help`

    record = run_pretraining(recipe_from_args(args), wandb=wandb_log.wanted(args.no_wandb),
                             guard=leakage_guard(args.exclude_dev_test_of))
    losses = " -> ".join("n/a" if loss is None else f"{loss:.3f}"
                         for loss in (record.heldout_loss_before, record.heldout_loss_after))
    print(f"pretrained {record.steps} steps, {record.tokens:,} tokens at {record.tokens_per_s:,.0f} "
          f"tokens/s; held-out MLM loss {losses}; saved {args.out}")
    return 0
