"""dontstop aggregate: turn finished runs into the paper's tables, findings and plots.

    dontstop aggregate --suite mini                 # results/mini/** -> paper_tables/mini/
    dontstop aggregate --suite paper --wandb        # also log tables and plots to W&B

The only writer of paper_tables/<suite>/ (besides the domain analysis in its analysis/).
Reads nothing but results/<suite>/**/metrics.json (records.MetricsRecord) and the condition
folders of experiments/ (their display names, tables and claims).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..experiment import EXPERIMENTS_DIR
from ..tasks import SUITES
from .write import aggregate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("aggregate", help="results/<suite> -> the paper's tables and plots")
    parser.add_argument("--suite", default="mini", choices=list(SUITES))
    parser.add_argument("--results", default="results", help="folder holding <suite>/**/metrics.json")
    parser.add_argument("--out", default="paper_tables", help="tables go to <out>/<suite>/")
    parser.add_argument("--experiments", default=str(EXPERIMENTS_DIR),
                        help="folder of condition folders (default: the repository's experiments/)")
    parser.add_argument("--overlap", help="per-domain vocabulary overlap with the general corpus "
                        "(CSV or JSON; default <out>/<suite>/analysis/vocab_overlap.csv)")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="runs made from different data versions: proceed without a warning")
    parser.add_argument("--wandb", action="store_true", help="log tables and plots to one W&B run")
    parser.set_defaults(func=_aggregate)


def _aggregate(args: argparse.Namespace) -> int:
    aggregate(args.suite, Path(args.results), Path(args.out), experiments=Path(args.experiments),
              overlap=Path(args.overlap) if args.overlap else None, allow_mixed=args.allow_mixed,
              wandb=args.wandb)
    return 0
