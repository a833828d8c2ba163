"""dontstop <command> ...: the single entry point; each command lives in its own module.

Every module listed in COMMAND_MODULES defines `register(subparsers)`, which adds its
sub-command(s) and sets `func(args) -> int`. User errors (UserError) print as one line
on stderr and exit 2; nothing is written after the error.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .fileio import UserError

COMMAND_MODULES = (
    "dontstop.data_cli",     # data download | check | build-mini
    "dontstop.select",       # select (kNN-TAPT / RAND-TAPT corpora)
    "dontstop.pretrain",     # pretrain (continued masked-LM: DAPT / TAPT)
    "dontstop.finetune",     # finetune (classifier for one task, model and seed)
    "dontstop.runner_cli",   # run | reproduce
    "dontstop.analyze",      # analyze vocab | mlm-loss (Figure 2, Tables 1 and 12)
    "dontstop.aggregate",    # aggregate (results -> paper_tables: tables, findings, plots)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dontstop", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"dontstop: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dontstop: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
