"""dontstop finetune: fine-tune a classifier for one (task, starting checkpoint, seed).

    dontstop finetune --suite mini --task aclsum-roles --model bundled:bert-tiny --seed 0 \\
        --out results/mini/aclsum-roles/adhoc/seed_0 --no-wandb

The recipe is the suite's (its `finetune` section over FinetuneRecipe's defaults, as `run` gives
its runs), each flag given replacing one of its values.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import wandb_log
from ..fileio import UserError
from ..flags import check_model_flag
from ..overrides import folder
from ..recipes import FinetuneRecipe, check_flags
from ..records import METRICS_FILE, PRETRAIN_RECORD_FILE, RUN_CONFIG_FILE, MetricsRecord
from ..study_tasks import is_folder_name
from ..suites import checkpoint_lineage, load_suite
from ..tasks import Task


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("finetune", help="fine-tune one (task, model, seed): metrics.json")
    parser.add_argument("--task", required=True, help="task key, e.g. aclsum-roles or chemprot")
    parser.add_argument("--suite", required=True, help="mini | paper | path to a study file")
    parser.add_argument("--model", required=True, help="bundled:bert-tiny, a checkpoint or a hub id")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="run folder for config.json and metrics.json")
    parser.add_argument("--data-dir", default="data")
    # default of each: the suite's `finetune` value, else FinetuneRecipe's (README "Commands")
    parser.add_argument("--epochs", type=int, help="default: the suite's, else the task profile's (10 or 3)")
    parser.add_argument("--max-length", type=int, help="tokens per text (default: the suite's, else 512)")
    parser.add_argument("--lr", type=float, help="default: the suite's, else 2e-5")
    parser.add_argument("--batch-size", type=int, help="default: the suite's, else 16")
    parser.add_argument("--max-train-examples", type=int,
                        help="first N training examples only (default: the suite's, else all)")
    parser.add_argument("--condition", help="recorded in metrics.json (the runner sets it)")
    parser.add_argument("--lineage", help="pretraining lineage of --model (default: a checkpoint of ours "
                                          "names its own, base-...-1a2b3c4d; any other model: base)")
    parser.add_argument("--skip-finished", action="store_true", help="leave a finished run as it is")
    parser.add_argument("--no-wandb", action="store_true", help="do not log to Weights & Biases")
    parser.set_defaults(func=_finetune_command)


def _finetune_command(args: argparse.Namespace) -> int:
    given = {key: value for key, value in dict(
        seed=args.seed, lr=args.lr, batch_size=args.batch_size, epochs=args.epochs,
        max_length=args.max_length, max_train_examples=args.max_train_examples).items() if value is not None}
    check_flags(FinetuneRecipe, given)   # before the run folder is made
    check_model_flag(args.model)
    suite = load_suite(args.suite, overrides=folder("--data-dir", "data_dir", args.data_dir))
    task = suite.task(args.task)   # its folder, metric and profile come with it
    # the suite's recipe, as `run` gives its runs (a mini cell redone by hand ran at lr 2e-5 and 512
    # tokens, not mini's 2e-4 and 64), each flag given replacing its value
    recipe = FinetuneRecipe(**{**suite.finetune, "model": args.model, "task": args.task, "suite": suite.name,
                               "data_dir": args.data_dir, **given})
    _check_out(Path(args.out), recipe, task, args.skip_finished)
    lineage = _lineage(args)
    from .trainer import run_finetune   # here: torch, transformers and peft, not for `--help`

    metrics = run_finetune(recipe, args.out, task=task, condition=args.condition, lineage=lineage,
                           wandb=wandb_log.wanted(args.no_wandb),
                           reuse_finished=args.skip_finished)
    print(f"{metrics.task} seed {metrics.seed}: {metrics.metric} dev {metrics.dev_metric:.4f} "
          f"test {metrics.test_metric:.4f} (best epoch {metrics.best_epoch}/{metrics.epochs_run}, "
          f"{metrics.wall_time_s:.1f} s)")
    return 0


def _lineage(args: argparse.Namespace) -> str:
    """The lineage the run records (the tables read it): a checkpoint of ours names its own in its
    folder's name; --lineage is checked against it, and --condition is a folder name (the tables
    took `--lineage base+tapt-x` for a run from the base model, as TAPT, and `--condition ../../x`)."""
    if args.condition is not None and not is_folder_name(args.condition):
        raise UserError(f"--condition {args.condition!r}: not a folder name (letters, digits, '.', '-', '_')")
    model = Path(args.model)
    own = checkpoint_lineage(model.name) if (model / PRETRAIN_RECORD_FILE).is_file() else None
    if args.lineage is not None and (not args.lineage.strip() or own and args.lineage != own):
        raise UserError(f"--lineage {args.lineage!r}: " + (f"--model {args.model} is a checkpoint of lineage {own!r}"
                                                            if own else "empty"))
    return args.lineage or own or "base"


def _check_out(out: Path, recipe: FinetuneRecipe, task: Task, skip_finished: bool) -> None:
    """--out is no model's folder (config.json there is the model's: it was replaced by the run's,
    and the checkpoint no longer loaded), and a finished run kept by --skip-finished is the one asked
    (one of another task, seed, model or recipe was returned as this one, exit 0)."""
    if _holds_a_model(out) or (Path(recipe.model).is_dir() and out.resolve() == Path(recipe.model).resolve()):
        raise UserError(f"--out {out}: holds a model, whose config.json the run's would replace; choose another --out")
    if (out / RUN_CONFIG_FILE).is_file() and not _a_runs_config(out / RUN_CONFIG_FILE):   # one's own, replaced
        raise UserError(f"--out {out}: holds a {RUN_CONFIG_FILE} no run wrote, which the run's would replace; "
                        "choose another --out")
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


def _a_runs_config(path: Path) -> bool:
    """Whether a config.json is the resolved recipe a run writes first (an interrupted run's: redone)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return isinstance(found, dict) and {"model", "task", "suite", "seed"} <= found.keys()


def _holds_a_model(folder: Path) -> bool:
    """Weights of any format save_pretrained or peft writes (sharded ones and their index too),
    or a pretraining record: a run folder holds none of them."""
    return folder.is_dir() and any(
        path.suffix in (".safetensors", ".bin", ".h5", ".msgpack") or path.name.endswith(".index.json")
        or path.name in ("adapter_config.json", PRETRAIN_RECORD_FILE) for path in folder.iterdir())
