"""dontstop run | reproduce: the study from one command.

    dontstop reproduce                       # the main job: every condition on the mini suite
    dontstop reproduce --quick               # 1 seed, shortened recipes (< 3 minutes)
    dontstop reproduce --suite paper --tasks chemprot citation_intent --conditions baseline tapt
    dontstop run experiments/tapt --suite mini --task aclsum-roles --seeds 0 1 2 [--dry-run]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

from . import wandb_log
from .experiment import EXPERIMENTS_DIR, Suite, all_experiments, load_experiment, load_suite, with_quick
from .fileio import UserError, atomic_write_json, atomic_write_text, read_json
from .provenance import git_commit, software_versions
from .plan import RunPlan, plan_runs, unique_stages
from .run import execute


REPO_README = EXPERIMENTS_DIR.parent / "README.md"


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run one or more conditions (experiment folders)")
    run.add_argument("experiments", nargs="+", help="experiment folders, e.g. experiments/tapt")
    run.add_argument("--task", "--tasks", dest="tasks", nargs="+", help="task keys (default: the suite's)")
    run.add_argument("--seeds", nargs="+", type=int, help="fine-tuning seeds (default: the suite's)")
    _common_arguments(run)
    run.set_defaults(func=_run)

    reproduce = subparsers.add_parser("reproduce", help="the whole study, then its tables")
    reproduce.add_argument("--tasks", nargs="+", help="task keys (default: the suite's)")
    reproduce.add_argument("--conditions", nargs="+", help="condition names (default: all)")
    reproduce.add_argument("--seeds", nargs="+", type=int)
    reproduce.add_argument("--tables-dir", default="paper_tables",
                           help="where the tables and plots go (--quick: <dir>/quick)")
    _common_arguments(reproduce)
    reproduce.set_defaults(func=_reproduce)


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", default="mini", help="mini | paper | path to a suite YAML")
    parser.add_argument("--quick", action="store_true", help="quick seeds and shortened recipes")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and an estimate")
    parser.add_argument("--no-wandb", action="store_true", help="do not log to Weights & Biases")
    parser.add_argument("--workers", type=int, default=None,
                        help="parallel jobs, one CPU thread each (default: CPU cores; 1 on a GPU)")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="allow adding runs made from different data hashes")
    parser.add_argument("--results-dir", help="default: the suite's (results)")
    parser.add_argument("--cache-dir", help="default: the suite's (cache)")
    parser.add_argument("--data-dir", help="default: the suite's (data)")
    parser.add_argument("--published-dapt", action="store_true",
                        help="start DAPT from allenai/<domain>_roberta_base (paper suite)")
    parser.add_argument("--domain-corpus", action="append", default=[], metavar="DOMAIN=PATH")
    parser.add_argument("--pool", action="append", default=[], metavar="DOMAIN=PATH",
                        help="kNN candidate pool (default: the domain corpus)")
    parser.add_argument("--curated-corpus", action="append", default=[], metavar="TASK=PATH")


def resolve_suite(args: argparse.Namespace) -> Suite:
    suite = load_suite(args.suite)
    changes = {name: value for name, value in (("results_dir", args.results_dir),
               ("cache_dir", args.cache_dir), ("data_dir", args.data_dir)) if value}
    if args.published_dapt:
        changes["published_dapt"] = True
    for attribute, flag in (("domain_corpora", "domain_corpus"), ("pools", "pool"), ("curated", "curated_corpus")):
        pairs = getattr(args, flag)
        if pairs:
            changes[attribute] = {**getattr(suite, attribute), **_pairs(pairs, flag)}
    suite = replace(suite, **changes)
    return with_quick(suite) if args.quick else suite


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, path = value.partition("=")
        if not sep or not key or not path:
            raise UserError(f"--{flag.replace('_', '-')} {value!r}: expected NAME=PATH")
        pairs[key] = str(Path(path).resolve())  # suite paths are data-relative; flags are not
    return pairs


def _run(args: argparse.Namespace) -> int:
    suite = resolve_suite(args)
    experiments = [load_experiment(path) for path in args.experiments]
    plans = [plan for e in experiments for plan in plan_runs(suite, e, args.tasks, args.seeds)]
    if not plans:
        raise UserError("no condition applies to the chosen tasks")
    _go(plans, suite, args)
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    suite = resolve_suite(args)
    if suite.name == "mini":
        _ensure_mini_data(suite)
    experiments = all_experiments(EXPERIMENTS_DIR)
    if args.conditions:
        unknown = set(args.conditions) - {e.condition for e in experiments}
        if unknown:
            raise UserError(f"--conditions: unknown {', '.join(sorted(unknown))}")
        experiments = [e for e in experiments if e.condition in args.conditions]
    plans = [plan for e in experiments for plan in plan_runs(suite, e, args.tasks, args.seeds)]
    began = time.time()
    finished = _go(plans, suite, args)
    if args.dry_run:
        return 0
    history = _record_invocation(suite, args, time.time() - began, plans, finished)
    tables = _aggregate(suite, args)
    if _is_the_repo_study(suite, args):
        update_readme(REPO_README, history, tables)
    return 0


def _is_the_repo_study(suite: Suite, args: argparse.Namespace) -> bool:
    """Whether this run is the repository's own mini study (whole, in results/), whose tables the
    README shows; a run into another results directory (a benchmark, a copy) leaves it alone."""
    in_repo_results = Path(suite.results_dir).resolve() == REPO_README.parent / "results"
    return suite.name == "mini" and in_repo_results and not (args.quick or args.tasks or args.conditions)


def _go(plans: list[RunPlan], suite: Suite, args: argparse.Namespace) -> int:
    """Print the plan (--dry-run) or execute it; return the number of jobs finished."""
    if args.dry_run:
        print_plan(plans, suite)
        return 0
    wandb = not args.no_wandb and wandb_log.configured()
    return execute(plans, suite, wandb=wandb, allow_mixed=args.allow_mixed,
                   workers=args.workers or _default_workers())


def _default_workers() -> int:
    import torch

    return 1 if torch.cuda.is_available() else _cpu_count()


def print_plan(plans: list[RunPlan], suite: Suite) -> None:
    from .estimate import Estimator

    estimator, total = Estimator.for_suite(suite), 0.0
    print(f"suite {suite.name}: {len(plans)} (task, condition) pairs")
    for stage in unique_stages(plans):
        state = "published" if stage.published else "reuse" if stage.record_path.exists() else "build"
        seconds, tokens, steps = (0.0, 0, 0) if state != "build" else estimator.stage_seconds(stage)
        total += seconds
        print(f"  stage {state:9s} {stage.lineage:48s} steps~{steps:>7,d} tokens~{tokens:>12,d} "
              f"time~{seconds / 60:6.1f} min")
    todo = [(p, s) for p in plans for s in p.seeds if not (p.run_dir(s) / "metrics.json").exists()]
    finetune_seconds = sum(estimator.finetune_seconds(p) for p, _ in todo)
    total += finetune_seconds
    print(f"  fine-tuning: {len(todo)} run(s) to do, "
          f"{sum(len(p.seeds) for p in plans) - len(todo)} finished; time~{finetune_seconds / 60:.1f} min")
    print(f"estimated total on this machine: {total / 60:.1f} min")


def _ensure_mini_data(suite: Suite) -> None:
    if (Path(suite.data_dir) / "mini" / "manifest.json").exists():
        return
    from .mini import build_mini

    print("mini benchmark data missing: building it (dontstop data build-mini)")
    build_mini(Path(suite.data_dir))


def _record_invocation(suite: Suite, args: argparse.Namespace, seconds: float,
                       plans: list[RunPlan], finished: int) -> list[dict]:
    """Append this call to results/<suite>/RUN.json: a resumed study keeps every part's time."""
    path = Path(suite.results_dir) / suite.name / "RUN.json"
    history = read_json(path)["invocations"] if path.exists() else []
    history.append({
        "command": "dontstop " + " ".join(sys.argv[1:]),
        "finished_at": datetime.datetime.now().isoformat(timespec="seconds"),
        "wall_time_s": round(seconds, 1), "jobs_finished": finished, "quick": args.quick,
        "runs": sum(len(p.seeds) for p in plans), "git_commit": git_commit(),
        "machine": f"{platform.machine()}, {_cpu_count()} CPU cores, {platform.system()}",
        "versions": software_versions()})
    atomic_write_json(path, {"suite": suite.name, "invocations": history})
    print(f"run record: {path} ({seconds / 60:.1f} min, {finished} jobs finished)")
    return history


def _aggregate(suite: Suite, args: argparse.Namespace) -> Path:
    """The domain analysis (Figure 2, Tables 1 and 12), then the paper's tables and plots."""
    from .cli import main as dontstop

    out_root = Path(args.tables_dir) / ("quick" if args.quick else "")
    analysis = str(out_root / suite.name / "analysis")
    dirs = ["--data-dir", suite.data_dir, "--cache-dir", suite.cache_dir]
    for argv in (["analyze", "vocab", "--suite", args.suite, "--out", analysis, "--overwrite", *dirs],
                 ["analyze", "mlm-loss", "--suite", args.suite, "--out", analysis, "--overwrite", *dirs],
                 ["aggregate", "--suite", suite.name, "--results", suite.results_dir,
                  "--out", str(out_root)]):
        print("$ dontstop " + " ".join(argv), flush=True)
        if dontstop(argv) != 0:
            raise UserError(f"`dontstop {' '.join(argv)}` failed; the runs are kept, rerun it alone")
    print(f"tables and plots: {out_root / suite.name}/README.md")
    return out_root / suite.name


def update_readme(readme: Path, history: list[dict], tables: Path) -> None:
    """Put the study's main table, findings and one plot into the README, between markers."""
    begin, end = "<!-- generated:results -->", "<!-- /generated:results -->"
    text = readme.read_text(encoding="utf-8")
    if begin not in text or end not in text:
        return
    table5 = (tables / "table5.md").read_text(encoding="utf-8").split("\n", 1)[1].strip()
    findings = (tables / "findings.md").read_text(encoding="utf-8").split("\n", 1)[1].strip()
    run, minutes = history[-1], sum(h["wall_time_s"] for h in history) / 60
    block = (f"{begin}\nGenerated by `{run['command']}` on {run['finished_at']} "
             f"({run['machine']}; {run['runs']} fine-tuning runs; {minutes:.1f} min of wall time in "
             f"{len(history)} call(s), see results/mini/RUN.json; git {str(run['git_commit'])[:10]}). "
             f"Test macro-F1 × 100, mean ± std (n seeds); every table is in "
             f"[{tables}/]({tables}/README.md).\n\n{table5}\n\n"
             f"{findings}\n\n![every condition per task]({tables}/plots/bars.png)\n{end}")
    head, rest = text.split(begin, 1)
    atomic_write_text(readme, head + block + rest.split(end, 1)[1])
    print(f"updated the results in {readme}")


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

