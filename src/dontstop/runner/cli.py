"""dontstop run | reproduce | status | init-study: the study from one command, and where it stands.

    dontstop reproduce                       # the main job: every condition on the mini suite
    dontstop reproduce --quick               # 1 seed, shortened recipes (< 3 minutes)
    dontstop reproduce --suite paper --tasks chemprot citation_intent --conditions baseline tapt
    dontstop run experiments/tapt --suite mini --task aclsum-roles --seeds 0 1 2 [--dry-run]
    dontstop init-study my-study               # a commented study.yaml and its folders (init_study.py)
    dontstop reproduce --suite my-study/study.yaml   # your own tasks and domains (study_file.py)
    dontstop reproduce --launcher slurm --partition gpu --pretrain-gpus 4 [--wait]   # runner/slurm.py
    dontstop status [--suite S] [--results-dir R]   # done / running / queued / failed per job
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .. import wandb_log
from ..config import parse_pairs
from ..data.study import check_study_data
from ..experiment import (EXPERIMENTS_DIR, Experiment, Suite, load_conditions, load_experiment,
                          load_suite, override_suite, select_conditions, with_quick)
from ..fileio import UserError, UserErrors
from ..recipes import AT_LEAST_1, SEED, range_violations
from ..study_file import tables_dir
from .finished import refuse, stale_results
from .init_study import init_study
from .inputs import check_inputs
from .jobs import analysis_stages, execute
from .plan import RunPlan, plan_runs
from .slurm import add_arguments as add_launcher_arguments
from .slurm import launch as launch_on_slurm
from .slurm import options_from_args as slurm_options
from .status import show_status
from .study import (REPO_README, analyze_and_aggregate, cpu_count, ensure_mini_data, is_the_repo_study,
                    print_plan, print_skipped, record_invocation, refresh_notebook, update_readme)


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
    reproduce.add_argument("--tables-dir", help="where the tables and plots go (--quick: <dir>/quick; "
                           "default: paper_tables, a study's: tables/ beside its file)")
    _common_arguments(reproduce)
    reproduce.set_defaults(func=_reproduce)

    status = subparsers.add_parser("status", help="where each job stands: done, running, queued, failed")
    status.add_argument("--tasks", nargs="+", help="task keys (default: the suite's)")
    status.add_argument("--conditions", nargs="+", help="condition names (default: all)")
    status.add_argument("--seeds", nargs="+", type=int)
    _common_arguments(status)
    status.set_defaults(func=_status)

    init = subparsers.add_parser("init-study", help="a commented study.yaml and the folders to fill")
    init.add_argument("folder", help="where to write study.yaml (created if missing)")
    init.add_argument("--name", help="the study's name (default: the folder's)")
    init.set_defaults(func=_init_study)


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", default="mini", help="mini | paper | path to a study file")
    parser.add_argument("--quick", action="store_true", help="quick seeds and shortened recipes")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and an estimate")
    parser.add_argument("--no-wandb", action="store_true", help="do not log to Weights & Biases")
    parser.add_argument("--workers", type=int, default=None,
                        help="parallel jobs, one CPU thread each (default: CPU cores; 1 on a GPU)")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="allow adding runs made from different data hashes")
    parser.add_argument("--rerun-stale", action="store_true",
                        help="redo finished runs made from other settings than asked (recipe, "
                        "checkpoint, data); their old files are kept as *.stale-<n>.json")
    parser.add_argument("--results-dir", help="default: the suite's (results)")
    parser.add_argument("--cache-dir", help="default: the suite's (cache)")
    parser.add_argument("--data-dir", help="default: the suite's (data)")
    parser.add_argument("--published-dapt", action="store_true",
                        help="start DAPT from allenai/<domain>_roberta_base (paper suite)")
    parser.add_argument("--published", action="store_true",
                        help="start every condition the authors released (DAPT, TAPT, DAPT + TAPT, "
                        "Curated-TAPT, ...) from its allenai/* checkpoint (paper suite)")
    parser.add_argument("--domain-corpus", action="append", default=[], metavar="DOMAIN=PATH")
    parser.add_argument("--pool", action="append", default=[], metavar="DOMAIN=PATH",
                        help="kNN candidate pool (default: the domain corpus)")
    parser.add_argument("--curated-corpus", action="append", default=[], metavar="TASK=PATH")
    parser.add_argument("--experiments", default=str(EXPERIMENTS_DIR),
                        help="folder of condition folders (default: the repository's experiments/)")
    add_launcher_arguments(parser)   # --launcher local|slurm, --wait and the Slurm job options


def resolve_suite(args: argparse.Namespace) -> Suite:
    """The suite with the command line's overrides, after every flag is checked: task keys,
    the keys of DOMAIN=PATH / TASK=PATH flags (a typo never adds a domain), seeds and workers
    (recipes.py's ranges); all problems at once, one line each. A study's own task files are
    checked here too."""
    suite = load_suite(args.suite)
    given = {flag: parse_pairs(values, flag) for flag, values in (
        ("--domain-corpus", args.domain_corpus), ("--pool", args.pool), ("--curated-corpus", args.curated_corpus))}
    problems = _flag_problems(suite, args, given)
    if problems:
        raise UserErrors(problems)
    suite = override_suite(
        suite, data_dir=args.data_dir, results_dir=args.results_dir,
        cache_dir=args.cache_dir, published_dapt=args.published_dapt, published=args.published,
        domain_corpora=given["--domain-corpus"], pools=given["--pool"], curated=given["--curated-corpus"])
    check_study_data(suite)
    return with_quick(suite) if args.quick else suite


def _flag_problems(suite: Suite, args: argparse.Namespace, given: dict[str, dict[str, str]]) -> list[str]:
    problems = []
    lookups = [(f"--tasks {key}", suite.task, key) for key in args.tasks or []] + [
        (f"{flag} {key}={path}", suite.task if flag == "--curated-corpus" else suite.domain, key)
        for flag, pairs in given.items() for key, path in pairs.items()]
    for where, lookup, key in lookups:   # the suite's lookups name the known keys
        try:
            lookup(key)
        except UserError as e:
            problems.append(f"{where}: {e}")
    seeds = args.seeds or []
    problems += [v.as_flag("--seeds") for seed in seeds
                 for v in range_violations({"seed": SEED}, {"seed": seed})]
    problems += [f"--seeds {' '.join(map(str, seeds))}: seed {seed} given twice (each seed is one run)"
                 for seed in sorted({s for s in seeds if seeds.count(s) > 1})]
    problems += [v.as_flag("--workers") for v in range_violations({"workers": AT_LEAST_1},
                                                                  {"workers": getattr(args, "workers", None)})]
    return problems


def plan_and_check(suite: Suite, experiments: list[Experiment], args: argparse.Namespace) -> list[RunPlan]:
    """Every (condition, task) plan, then every input file they read checked in one pass, before
    any work (runner/inputs.py). Files that do not exist are allowed only with --dry-run; with
    them all there, these plans are the plans to run."""
    plans = [plan for e in experiments
             for plan in plan_runs(suite, e, args.tasks, args.seeds, planning_only=True)]
    check_inputs(plans, suite, missing_ok=args.dry_run)
    return plans


def _run(args: argparse.Namespace) -> int:
    suite = resolve_suite(args)
    experiments = [load_experiment(path) for path in args.experiments]
    print_skipped(suite, experiments, args.tasks)
    plans = plan_and_check(suite, experiments, args)
    if not plans:
        raise UserError("no condition applies to the chosen tasks")
    _go(plans, suite, args, analysis=False)
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    suite = resolve_suite(args)
    experiments = select_conditions(load_conditions(args.experiments), args.conditions)
    ensure_mini_data(suite)
    print_skipped(suite, experiments, args.tasks)
    plans = plan_and_check(suite, experiments, args)
    began = time.time()
    finished = _go(plans, suite, args, analysis=True)
    if args.dry_run or (args.launcher == "slurm" and not args.wait):
        return 0
    history = record_invocation(suite, args, time.time() - began, plans, finished)
    tables_root = tables_dir(suite, args.tables_dir) / ("quick" if args.quick else "")
    tables = analyze_and_aggregate(suite, tables_root, Path(args.experiments),
                                   wandb=not args.no_wandb and wandb_log.configured())
    if is_the_repo_study(suite, args):   # the README block and the committed notebook follow the tables
        update_readme(REPO_README, history, tables)
        refresh_notebook(suite, tables_root)
    elif suite.is_study:   # a study's own executed copy, beside its tables
        refresh_notebook(suite, tables_root, out=tables / "results.ipynb")
    return 0


def _go(plans: list[RunPlan], suite: Suite, args: argparse.Namespace, analysis: bool) -> int:
    """Print the plan (--dry-run) or execute it; return the number of jobs finished.
    `analysis`: the domain analysis follows (reproduce), so the stages it reads are built too."""
    if args.dry_run:
        stale = stale_results(plans, suite, args.allow_mixed)
        print_plan(plans, suite, stale, analysis_stages(suite) if analysis else set())
        if stale and not args.rerun_stale:
            refuse(stale)
        return 0
    wandb = not args.no_wandb and wandb_log.configured()
    if args.launcher == "slurm":
        return launch_on_slurm(plans, suite, slurm_options(args), wandb=wandb, allow_mixed=args.allow_mixed,
                               rerun_stale=args.rerun_stale, analysis=analysis)
    return execute(plans, suite, wandb=wandb, allow_mixed=args.allow_mixed, rerun_stale=args.rerun_stale,
                   analysis=analysis, workers=args.workers or _default_workers())


def _default_workers() -> int:
    import torch

    return 1 if torch.cuda.is_available() else cpu_count()


def _init_study(args: argparse.Namespace) -> int:
    study = init_study(Path(args.folder), args.name)
    print(f"wrote {study}, {study.parent / 'README.md'} and the folders data/my-task/ and corpora/;\n"
          f"fill them, then: cd {study.parent} && dontstop reproduce --suite study.yaml --dry-run")
    return 0


def _status(args: argparse.Namespace) -> int:
    suite = resolve_suite(args)
    show_status(suite, select_conditions(load_conditions(args.experiments), args.conditions),
                args.tasks, args.seeds, allow_mixed=args.allow_mixed)
    return 0
