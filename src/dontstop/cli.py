"""dontstop <command> ...: the single entry point; each phase's command lives in its cli module.

The only importer of the phases' cli modules. Every module in COMMANDS defines `register(subparsers)`, which adds its sub-command(s)
and sets `func(args) -> int`. Only the chosen command's module is imported (the trainers
pull in torch and transformers; `dontstop data check` should not wait for them). User
errors (UserError) print as one line on stderr and exit 2, UserErrors as one line per problem
found; a failing disk or file system (OSError: no space left, permission denied) prints as
one line and exits 1.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .fileio import UserError

COMMANDS = {
    "data": "dontstop.data.cli",          # data download | check | build-mini
    "select": "dontstop.select.cli",      # kNN-TAPT / RAND-TAPT corpora
    "pretrain": "dontstop.pretrain.cli",  # continued masked-LM: DAPT / TAPT
    "finetune": "dontstop.finetune.cli",  # one classifier run: (task, checkpoint, seed)
    "run": "dontstop.runner.cli",         # conditions -> stages and runs
    "reproduce": "dontstop.runner.cli",   # the whole study, then its tables
    "status": "dontstop.runner.cli",      # where each job stands (local or Slurm)
    "init-study": "dontstop.runner.cli",  # a study file of your own task and domain, to fill
    "readmes": "dontstop.runner.cli",     # experiments/*/README.md from each config.yaml
    "analyze": "dontstop.analysis.cli",   # vocab | mlm-loss (Figure 2, Tables 1 and 12)
    "aggregate": "dontstop.report.cli",   # results -> paper_tables: tables, findings, plots
}


def build_parser(commands: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dontstop", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in dict.fromkeys(COMMANDS[c] for c in commands or COMMANDS):
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = [argv[0]] if argv and argv[0] in COMMANDS else None
    args = build_parser(chosen).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:   # UserErrors: one line per problem found
        for line in e.lines:
            print(f"dontstop: error: {line}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, permission denied, ...: one line naming the file when known
        where = f"{e.filename}: " if e.filename else ""
        print(f"dontstop: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:   # a command may say what goes on without it (Slurm jobs)
        print(f"dontstop: interrupted; {e.args[0] if e.args else 'rerun the same command to resume'}",
              file=sys.stderr)
        return 130
