"""dontstop run | reproduce | status | init-study | readmes: the study from one command, and where it stands.

    dontstop reproduce                       # the main job: every condition on the mini suite
    dontstop reproduce --quick               # 1 seed, shortened recipes (< 3 minutes)
    dontstop reproduce --suite paper --tasks chemprot citation_intent --conditions baseline tapt
    dontstop reproduce --set finetune.lr=1e-4 --set recipes.dapt.max_steps=200 --results-dir results-lr
    dontstop run experiments/tapt --suite mini --tasks aclsum-roles --seeds 0 1 2 [--dry-run]
    dontstop init-study my-study               # a commented study.yaml and its folders (init_study.py)
    dontstop reproduce --suite my-study/study.yaml   # your own tasks and domains (study_file.py)
    dontstop reproduce --launcher slurm --partition gpu --pretrain-gpus 4 [--wait]   # runner/slurm.py
    dontstop status [--suite S] [--results-dir R]   # done / running / queued / failed per job
    dontstop readmes                           # experiments/*/README.md from each config.yaml
"""
from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

from .. import wandb_log
from ..condition_readme import write_readmes
from ..condition_folders import load_condition_folders
from ..conditions import Condition, check_outside_conditions, load_conditions, select_conditions
from ..data.study import check_study_data
from ..fileio import UserError, check_writable_dir, raise_problems
from ..flags import add_experiments_dir, add_flag, add_pair_flags, add_suite_flags, aggregate_command, suite_overrides
from ..provenance import cpu_count
from ..suite_roots import check_root_given
from ..value_rules import AT_LEAST_1, SEED, range_violations
from ..report.tables_folder import STUDY_NOTEBOOK, check_outside_tables, check_tables_root
from ..study_file import tables_dir
from ..suites import Suite, load_suite, with_quick
from ..tasks import QUICK_FOLDER
from ..unused_settings import unused_settings
from .analysis_tables import analyze_and_aggregate
from .finished import refuse, stale_results
from .history import check_history, record_invocation
from .init_study import init_study
from .inputs import check_inputs
from .jobs import analysis_stages, check_job_models, execute, make_jobs
from .mini_data import ensure_mini_data
from .notebook_refresh import refresh_notebook
from .plan import RunPlan, plan_runs
from .language_fit import print_language_notes
from .plan_printout import print_plan, print_skipped, skipped_tasks
from .readme_block import REPO_README, is_the_repo_study, update_readme
from .slurm import add_arguments as add_launcher_arguments
from .slurm import launch as launch_on_slurm
from .slurm import flag_problems as slurm_flag_problems
from .slurm import options_from_args as slurm_options
from .status import show_status


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run one or more conditions (their folders)")
    run.add_argument("conditions", nargs="+", metavar="CONDITION_DIR", help="condition folders, e.g. experiments/tapt")
    add_flag(run, "--tasks", nargs="+", action="extend", old=["--task"], help="task keys (default: the suite's)")
    run.add_argument("--seeds", nargs="+", action="extend", type=int, help="fine-tuning seeds (default: the suite's)")
    _common_arguments(run)
    run.set_defaults(func=_run)

    reproduce = subparsers.add_parser("reproduce", help="the whole study, then its tables")
    _selection_arguments(reproduce)
    reproduce.add_argument("--tables-dir", help="root of <suite>/ tables and plots (--quick: <dir>/quick; "
                           "default: paper_tables, a study's: tables/ beside its file)")
    _common_arguments(reproduce)
    reproduce.set_defaults(func=_reproduce)

    status = subparsers.add_parser(
        "status", help="where each job stands: done, running, queued, failed",
        description="Where each job stands. Takes every flag of run and reproduce, so that their command "
        "line works with `status` in its place; only the suite, folder, selection and --quick flags "
        "change what it shows (--workers, --dry-run, --rerun-stale, --wait and the Slurm job flags do nothing here).")
    _selection_arguments(status)
    _common_arguments(status)
    status.set_defaults(func=_status)

    init = subparsers.add_parser("init-study", help="a commented study.yaml and the folders to fill")
    init.add_argument("folder", help="where to write study.yaml (created if missing)")
    init.add_argument("--name", help="the study's name (default: the folder's)")
    init.set_defaults(func=_init_study)

    readmes = subparsers.add_parser("readmes", help="each condition's README.md, rendered from its config.yaml")
    add_experiments_dir(readmes)
    readmes.add_argument("--check", action="store_true", help="write nothing; exit 2 if a README differs")
    readmes.set_defaults(func=_readmes)


def _selection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", nargs="+", action="extend", help="task keys (default: the suite's)")
    parser.add_argument("--conditions", nargs="+", action="extend", help="condition names (default: every default one)")
    parser.add_argument("--seeds", nargs="+", action="extend", type=int)


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    add_suite_flags(parser)   # --suite, --set KEY=VALUE, --results-dir, --cache-dir, --data-dir
    parser.add_argument("--quick", action="store_true", help="quick seeds and shortened recipes")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and an estimate")
    parser.add_argument("--no-wandb", action="store_true", help="do not log to Weights & Biases")
    parser.add_argument("--workers", type=int, default=None,
                        help="parallel jobs, one CPU thread each (default: CPU cores; 1 on a GPU)")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="accept finished runs made from other task data than the files now")
    parser.add_argument("--rerun-stale", action="store_true",
                        help="redo finished runs made from other settings than asked (recipe, "
                        "checkpoint, data); their old files are kept as *.stale-<n>.json")
    add_flag(parser, "--from-released-dapt", old=["--published-dapt"], action="store_true",
             help="start DAPT from the released allenai/<domain>_roberta_base (paper suite)")
    add_flag(parser, "--from-released", old=["--published"], action="store_true",
             help="start every condition the authors released (DAPT, TAPT, DAPT + TAPT, "
             "Curated-TAPT, ...) from its released allenai/* checkpoint (paper suite)")
    add_pair_flags(parser)    # --domain-corpus, --pool, --curated-corpus NAME=PATH
    add_experiments_dir(parser)
    add_launcher_arguments(parser)   # --launcher local|slurm, --wait and the Slurm job options


def resolve_suite(args: argparse.Namespace, given: list[Condition] = ()) -> Suite:
    """The suite with the command line's overrides (--set, the folder and NAME=PATH flags,
    --from-released), checked as the suite file is (suites.load_suite), then the flags that are
    no suite keys: task keys, seeds and workers, and a setting no run reads (unused_settings.py:
    under any condition of --experiments-dir or `given`, `run`'s folders); all problems at once,
    one line each. A study's own task files are checked here too."""
    overrides = suite_overrides(args)
    suite = load_suite(args.suite, overrides=overrides)
    conditions = [*load_conditions(args.experiments_dir), *given]
    raise_problems(_flag_problems(suite, args) + unused_settings(suite, overrides, args.quick, conditions))
    check_study_data(suite)
    return with_quick(suite, overrides) if args.quick else suite


def _flag_problems(suite: Suite, args: argparse.Namespace) -> list[str]:
    problems = []
    for key in args.tasks or []:   # the suite's lookup names the known keys
        try:
            suite.task(key)
        except UserError as e:
            problems.append(f"--tasks {key}: {e}")
    tasks = args.tasks or []   # planned twice: the plan, its cost and the progress counted it twice
    problems += [f"--tasks {' '.join(tasks)}: task {key} given twice" for key in dict.fromkeys(tasks)
                 if tasks.count(key) > 1]
    seeds = args.seeds or []
    problems += [v.as_flag("--seeds") for seed in seeds
                 for v in range_violations({"seed": SEED}, {"seed": seed})]
    problems += [f"--seeds {' '.join(map(str, seeds))}: seed {seed} given twice (each seed is one run)"
                 for seed in sorted({s for s in seeds if seeds.count(s) > 1})]
    problems += [f"--seeds {' '.join(map(str, seeds))}: runs in place of the suite's seeds, which --set {value} "
                 "sets; give one of them" for value in getattr(args, "set_values", [])   # one was dropped, unsaid
                 if seeds and value.partition("=")[0] in ("seeds", "quick_seeds")]
    problems += [v.as_flag("--workers") for v in range_violations({"workers": AT_LEAST_1},
                                                                  {"workers": getattr(args, "workers", None)})]
    return problems + slurm_flag_problems(args)


def check_run_folders(suite: Suite, args: argparse.Namespace) -> None:
    """The runs and stages folders (--results-dir, --cache-dir), before any work: a dry run too, as
    the run refuses them; before check_inputs writes its memo in the cache (a --cache-dir that was a
    file, or read-only: the system's words, exit 1, naming a temporary file), and before `reproduce`
    builds the mini benchmark (minutes of work, then the refusal)."""
    for folder, flag in ((suite.results_dir, "--results-dir"), (suite.cache_dir, "--cache-dir")):
        check_root_given(folder, suite.name, suite.tasks, flag)
        check_outside_conditions(folder, args.experiments_dir, flag)
        check_outside_tables(Path(folder) / suite.name, tables_dir(suite, None) / suite.name, flag, folder)
        check_writable_dir(folder)


def plan_and_check(suite: Suite, conditions: list[Condition], args: argparse.Namespace) -> list[RunPlan]:
    """Every (condition, task) plan, then every input file they read checked in one pass, before
    any work (runner/inputs.py). Files that do not exist are allowed only with --dry-run; with
    them all there, these plans are the plans to run. The folders they write into were checked
    first (check_run_folders)."""
    plans = [plan for condition in conditions
             for plan in plan_runs(suite, condition, args.tasks, args.seeds, planning_only=True)]
    check_inputs(plans, suite, missing_ok=args.dry_run)
    return plans


def _run(args: argparse.Namespace) -> int:
    conditions = load_condition_folders(args.conditions, args.experiments_dir)
    suite = resolve_suite(args, conditions)
    print_skipped(suite, conditions, args.tasks)
    check_run_folders(suite, args)
    plans = plan_and_check(suite, conditions, args)
    if not plans:
        raise _none_applies(suite, conditions, args.tasks, "")
    print_language_notes(suite, args.tasks)
    _go(plans, suite, args, analysis=False)
    return 0


def _none_applies(suite: Suite, conditions: list[Condition], task_keys: list[str] | None, given: str) -> UserError:
    """No condition applies to a chosen task: the error says why for each (a built-in suite's tasks
    print no "skipped" line), after `given`, the flag that chose them."""
    why = {c.condition: "; ".join(dict.fromkeys(skipped_tasks(suite, c, task_keys).values())) for c in conditions}
    return UserError(f"{given}no condition applies to the chosen tasks "
                     f"({'; '.join(f'{key}: {reason}' for key, reason in why.items())})")


def _reproduce(args: argparse.Namespace) -> int:
    suite = resolve_suite(args)
    conditions = select_conditions(load_conditions(args.experiments_dir), args.conditions)
    # the folders it writes, refused before any work: the mini benchmark was built first (minutes),
    # then a --cache-dir that was a file was refused. A dry run checks them as the run does.
    check_run_folders(suite, args)
    tables_root = tables_dir(suite, args.tables_dir) / (QUICK_FOLDER if args.quick else "")
    check_tables_root(tables_root, suite, args.experiments_dir)   # written after every run: refused now
    check_history(suite)              # RUN.json: appended to after every run, read now
    ensure_mini_data(suite, dry_run=args.dry_run)   # before the plans: they check the tasks' files
    print_skipped(suite, conditions, args.tasks)
    plans = plan_and_check(suite, conditions, args)
    if not plans:   # it ran no job, then the domain analysis, then failed: "no metrics.json found"
        raise _none_applies(suite, conditions, args.tasks, f"--conditions {' '.join(args.conditions)}: "
                            if args.conditions else "")
    print_language_notes(suite, args.tasks)
    began = time.time()
    finished = _go(plans, suite, args, analysis=True)
    if args.dry_run or (args.launcher == "slurm" and not args.wait):
        return 0
    history = record_invocation(suite, args.quick, time.time() - began, plans, finished)
    tables = analyze_and_aggregate(suite, tables_root, Path(args.experiments_dir), aggregate_command(args),
                                   wandb=not args.no_wandb and wandb_log.configured())
    whole = not (args.quick or args.tasks or args.conditions or args.set_values)
    if is_the_repo_study(suite, whole):   # the README block and the committed notebook follow the tables
        update_readme(REPO_README, history, tables)
        refresh_notebook(suite, tables_root, plans)
    elif suite.is_study:   # a study's own executed copy, beside its tables
        refresh_notebook(suite, tables_root, plans, out=tables / STUDY_NOTEBOOK)
    return 0


def _go(plans: list[RunPlan], suite: Suite, args: argparse.Namespace, analysis: bool) -> int:
    """Print the plan (--dry-run) or execute it; return the number of jobs finished.
    `analysis`: the domain analysis follows (reproduce), so the stages it reads are built too."""
    if args.launcher == "local":   # runs here: a GPU it asks for must be here, before any stage is built
        from ..finetune.resolve import check_device   # torch

        try:
            check_device(suite.finetune.get("device") or "auto")
        except UserError as e:   # a dry run on a Slurm login node plans a GPU suite: it says so, and plans
            if not args.dry_run:
                raise
            print(f"note: {e}: run here, it would be refused (--launcher slurm runs it where the GPU is)",
                  flush=True)
    if args.launcher == "local" and (args.workers or 0) > cpu_count():
        print(f"note: --workers {args.workers} is more than this machine's {cpu_count()} CPU cores: each worker "
              "computes with one thread and holds its own model, so the extra ones add memory, not speed",
              flush=True)
    wandb = wandb_log.wanted(args.no_wandb)   # a dry run checks what the run would
    if args.dry_run:
        stale = stale_results(plans, suite, args.allow_mixed)
        jobs = make_jobs(plans, suite.probe, analysis_stages(suite, plans) if analysis else [], {s.path for s in stale})
        check_job_models(jobs, suite)
        print_plan(plans, suite, stale, jobs,
                   workers=None if args.launcher == "slurm" else args.workers or _default_workers())
        if stale and not args.rerun_stale:
            refuse(stale)
        return 0
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
          f"fill them, then: cd {shlex.quote(str(study.parent))} && dontstop reproduce --suite study.yaml --dry-run")
    return 0


def _status(args: argparse.Namespace) -> int:
    suite = resolve_suite(args)
    show_status(suite, select_conditions(load_conditions(args.experiments_dir), args.conditions),
                args.tasks, args.seeds, allow_mixed=args.allow_mixed)
    return 0


def _readmes(args: argparse.Namespace) -> int:
    differ = write_readmes(Path(args.experiments_dir), check=args.check)
    for path in differ:
        print(f"{path}: {'differs from' if args.check else 'rewritten from'} its config.yaml")
    if args.check and differ:
        raise UserError(f"{len(differ)} condition README(s) differ from their config.yaml; "
                        "`dontstop readmes` rewrites them")
    return 0
