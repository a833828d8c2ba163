"""dontstop aggregate: turn finished runs into the paper's tables, findings and plots.

    dontstop aggregate --suite mini                 # results/mini/** -> paper_tables/mini/
    dontstop aggregate --suite paper --wandb        # also log tables and plots to W&B
    dontstop aggregate --suite my/study.yaml        # results/<its name>/** -> my/tables/<its name>/
    dontstop aggregate --results-dir R --tables-dir T --set tasks=[aclsum-roles]   # R/mini/** -> T/mini/
    dontstop aggregate --quick                      # results/quick/mini/** -> paper_tables/quick/mini/

The only writer of paper_tables/<suite>/ (besides the domain analysis in its analysis/).
Reads nothing but results/<suite>/**/metrics.json (records.MetricsRecord) and the condition
folders of experiments/ (their display names, tables and claims).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import wandb_log
from ..conditions import load_conditions
from ..fileio import UserError, check_dir_path, raise_problems
from ..flags import RUN_ONLY_KEYS, add_experiments_dir, add_flag, add_suite_flags, aggregate_command, suite_overrides
from ..suite_roots import check_root_given
from ..study_file import tables_dir
from ..suites import load_suite, with_quick
from ..tasks import QUICK_FOLDER
from ..unused_settings import unused_settings
from .runs import asked_settings_difference, read_runs
from .tables_folder import check_tables_root
from .write import aggregate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("aggregate", help="results/<suite> -> the paper's tables and plots")
    add_suite_flags(parser, folders=("--results-dir",), old={"--results-dir": ["--results"]})
    add_flag(parser, "--tables-dir", old=["--out"], help="root of <suite>/ tables and plots (default: "
             "paper_tables; a study's: tables/ beside its file)")
    add_experiments_dir(parser)
    parser.add_argument("--overlap", help="per-domain vocabulary overlap with the general corpus "
                        "(CSV or JSON; default <tables-dir>/<suite>/analysis/vocab_overlap.csv)")
    add_flag(parser, "--no-mixed-warning", old=["--allow-mixed"], action="store_true",
             help="runs made from different data versions of a task: no warning, no note in the tables")
    parser.add_argument("--wandb", action="store_true", help="log tables and plots to one W&B run")
    parser.add_argument("--quick", action="store_true", help="the results of `reproduce --quick` "
                        "(<results-dir>/quick -> <tables-dir>/quick)")
    parser.set_defaults(func=_aggregate)


def _aggregate(args: argparse.Namespace) -> int:
    overrides = suite_overrides(args)
    suite = load_suite(args.suite, overrides=overrides)
    tables_root = tables_dir(suite, args.tables_dir) / (QUICK_FOLDER if args.quick else "")
    full, suite = suite, with_quick(suite, overrides) if args.quick else suite
    for override in overrides:   # `--set seeds=[0,1]` tabled all five seeds, without a word
        if override.keys[0] in RUN_ONLY_KEYS:
            raise UserError(f"{override.given}: aggregate tables every run it finds; {override.keys[0]} only "
                            "chooses what `run` and `reproduce` make (to table fewer runs, keep them in a "
                            "--results-dir of their own)")
    # as `run` refuses it: no run was made with it
    raise_problems(unused_settings(full, overrides, args.quick, load_conditions(args.experiments_dir)))
    check_tables_root(tables_root, suite, Path(args.experiments_dir))
    if args.wandb:
        wandb_log.check_settings()
    if args.overlap:
        from .findings import GENERAL, load_overlap   # pandas: not for --help

        if not Path(args.overlap).is_file():   # it was skipped: the claim it decides said "missing"
            what = "a folder, not a file" if Path(args.overlap).is_dir() else "no such file"
            raise UserError(f"--overlap {args.overlap}: {what} (`dontstop analyze vocab` writes it: "
                            "<tables-dir>/<suite>/analysis/vocab_overlap.csv)")
        # one of other corpora (a domain renamed) decided the claim on the domains it had
        overlap = load_overlap(Path(args.overlap))
        missing = [GENERAL] if overlap is None else [domain for domain in suite.domain_corpora if domain not in overlap]
        if missing:
            raise UserError(f"--overlap {args.overlap}: no row for {', '.join(map(repr, missing))} (it needs "
                            f"{GENERAL} and the suite's domains: {', '.join(suite.domain_corpora)}); give the "
                            "`dontstop analyze vocab` output of this suite's corpora")
    check_root_given(suite.results_dir, suite.name, suite.tasks, "--results-dir")   # "no metrics.json" beside them
    check_dir_path(suite.results_dir)   # a file: "rf/mini: no metrics.json found; run ... first", as status says it
    records = read_runs(suite.results_dir, suite)
    difference = asked_settings_difference(records, suite, args.quick)
    if difference:   # the tables would claim the suite's recipe for runs of another
        raise UserError(f"{difference}; aggregate the results of `reproduce --quick` with --quick, "
                        "those of a run made with --set with the same --set; redo runs made before the suite "
                        "was edited (`dontstop run ... --rerun-stale`)")
    aggregate(suite, Path(suite.results_dir), tables_root,
              experiments_dir=Path(args.experiments_dir), overlap=Path(args.overlap) if args.overlap else None,
              no_mixed_warning=args.no_mixed_warning, wandb=args.wandb, records=records,
              command=aggregate_command(args))
    return 0
