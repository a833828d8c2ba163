"""dontstop finetune: fine-tune a classifier for one (task, starting checkpoint, seed).

    dontstop finetune --suite mini --task aclsum-roles --model bundled:bert-tiny --seed 0 \\
        --out results/mini/aclsum-roles/adhoc/seed_0 --no-wandb
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import wandb_log
from ..fileio import UserError
from ..overrides import folder
from ..recipes import FinetuneRecipe, check_flags
from ..records import METRICS_FILE, PRETRAIN_RECORD_FILE, MetricsRecord
from ..suites import load_suite
from ..tasks import Task


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("finetune", help="fine-tune one (task, model, seed): metrics.json")
    parser.add_argument("--task", required=True, help="task key, e.g. aclsum-roles or chemprot")
    parser.add_argument("--suite", required=True, help="mini | paper | path to a study file")
    parser.add_argument("--model", required=True, help="bundled:bert-tiny, a checkpoint or a hub id")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="run folder for config.json and metrics.json")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--epochs", type=int, help="default: the task profile's (10 or 3)")
    parser.add_argument("--max-length", type=int, default=512, help="tokens per text")
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-train-examples", type=int, help="first N training examples only")
    parser.add_argument("--condition", help="recorded in metrics.json (the runner sets it)")
    parser.add_argument("--lineage", default="base", help="pretraining lineage of --model")
    parser.add_argument("--skip-finished", action="store_true", help="leave a finished run as it is")
    parser.add_argument("--no-wandb", action="store_true", help="do not log to Weights & Biases")
    parser.set_defaults(func=_finetune_command)


def _finetune_command(args: argparse.Namespace) -> int:
    flags = dict(seed=args.seed, lr=args.lr, batch_size=args.batch_size, epochs=args.epochs,
                 max_length=args.max_length, max_train_examples=args.max_train_examples)
    check_flags(FinetuneRecipe, flags)   # before the run folder is made
    suite = load_suite(args.suite, overrides=folder("--data-dir", "data_dir", args.data_dir))
    task = suite.task(args.task)   # its folder, metric and profile come with it
    recipe = FinetuneRecipe(model=args.model, task=args.task, suite=suite.name,
                            data_dir=args.data_dir, **flags)
    _check_out(Path(args.out), recipe, task, args.skip_finished)
    from .trainer import run_finetune   # here: torch, transformers and peft, not for `--help`

    metrics = run_finetune(recipe, args.out, task=task, condition=args.condition, lineage=args.lineage,
                           wandb=not args.no_wandb and wandb_log.configured(),
                           reuse_finished=args.skip_finished)
    print(f"{metrics.task} seed {metrics.seed}: {metrics.metric} dev {metrics.dev_metric:.4f} "
          f"test {metrics.test_metric:.4f} (best epoch {metrics.best_epoch}/{metrics.epochs_run}, "
          f"{metrics.wall_time_s:.1f} s)")
    return 0


def _check_out(out: Path, recipe: FinetuneRecipe, task: Task, skip_finished: bool) -> None:
    """--out is no model's folder (config.json there is the model's: it was replaced by the run's,
    and the checkpoint no longer loaded), and a finished run kept by --skip-finished is the one asked
    (one of another task, seed, model or recipe was returned as this one, exit 0)."""
    if _holds_a_model(out) or (Path(recipe.model).is_dir() and out.resolve() == Path(recipe.model).resolve()):
        raise UserError(f"--out {out}: holds a model, whose config.json the run's would replace; choose another --out")
    if skip_finished and (out / METRICS_FILE).is_file():
        from .resolve import recipe_difference   # torch: not for `--help`

        found = MetricsRecord.read(out / METRICS_FILE)
        asked = {"task": recipe.task, "seed": recipe.seed, "model": recipe.model, "suite": recipe.suite}
        same_folder = Path(found.model).exists() and Path(found.model).resolve() == Path(recipe.model).resolve()
        differ = [f"{key} {getattr(found, key)!r}, asked {value!r}" for key, value in asked.items()
                  if getattr(found, key) != value and not (key == "model" and same_folder)]
        if not differ and (difference := recipe_difference(found.config, recipe, task)):
            differ.append(difference)
        if differ:
            raise UserError(f"{out / METRICS_FILE}: --skip-finished: a finished run, but not the one asked "
                            f"({'; '.join(differ)}); choose another --out")


def _holds_a_model(folder: Path) -> bool:
    """Weights of any format save_pretrained or peft writes (sharded ones and their index too),
    or a pretraining record: a run folder holds none of them."""
    return folder.is_dir() and any(
        path.suffix in (".safetensors", ".bin", ".h5", ".msgpack") or path.name.endswith(".index.json")
        or path.name in ("adapter_config.json", PRETRAIN_RECORD_FILE) for path in folder.iterdir())
