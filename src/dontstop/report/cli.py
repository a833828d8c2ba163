"""dontstop aggregate: turn finished runs into the paper's tables, findings and plots.

    dontstop aggregate --suite mini                 # results/mini/** -> paper_tables/mini/
    dontstop aggregate --suite paper --wandb        # also log tables and plots to W&B
    dontstop aggregate --suite my/study.yaml        # results/<its name>/** -> my/tables/<its name>/

The only writer of paper_tables/<suite>/ (besides the domain analysis in its analysis/).
Reads nothing but results/<suite>/**/metrics.json (records.MetricsRecord) and the condition
folders of experiments/ (their display names, tables and claims).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..experiment import EXPERIMENTS_DIR, load_suite
from ..study_file import tables_dir
from .write import aggregate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("aggregate", help="results/<suite> -> the paper's tables and plots")
    parser.add_argument("--suite", default="mini", help="mini | paper | path to a study file")
    parser.add_argument("--results", default="results", help="folder holding <suite>/**/metrics.json")
    parser.add_argument("--out", help="tables go to <out>/<suite>/ (default: paper_tables; "
                        "a study's: tables/ beside its file)")
    parser.add_argument("--experiments", default=str(EXPERIMENTS_DIR),
                        help="folder of condition folders (default: the repository's experiments/)")
    parser.add_argument("--overlap", help="per-domain vocabulary overlap with the general corpus "
                        "(CSV or JSON; default <out>/<suite>/analysis/vocab_overlap.csv)")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="runs made from different data versions: proceed without a warning")
    parser.add_argument("--wandb", action="store_true", help="log tables and plots to one W&B run")
    parser.set_defaults(func=_aggregate)


def _aggregate(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite)
    aggregate(suite, Path(args.results), tables_dir(suite, args.out), experiments=Path(args.experiments),
              overlap=Path(args.overlap) if args.overlap else None, allow_mixed=args.allow_mixed,
              wandb=args.wandb)
    return 0
