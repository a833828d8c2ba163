"""dontstop <command> ...: the single entry point; each phase's command lives in its cli module.

The only importer of the phases' cli modules. Every module in COMMANDS defines `register(subparsers)`, which adds its sub-command(s)
and sets `func(args) -> int`. Only the chosen command's module is imported (the trainers
pull in torch and transformers; `dontstop data check` should not wait for them). A flag
argparse refuses and user errors (UserError) print as one line on stderr and exit 2, UserErrors as one line per problem
found; a failing disk or file system (OSError: no space left, permission denied) prints as
one line and exits 1; a reader that stops reading our output (`| head`) ends it quietly, exit 141.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import select
import sys

from .fileio import UserError, under_home

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


# The dests of the flags (and positional arguments) that name a file or folder, in any command.
PATH_DESTS = frozenset({"out", "corpus", "task_text", "pool", "index_dir", "data_dir", "results_dir", "cache_dir",
                        "tables_dir", "experiments_dir", "readme", "folder", "paths", "corpora",
                        "exclude_dev_test_of", "overlap"})

# Those naming a file or folder among other words (a suite's name or file, NAME=PATH): a line break is theirs too.
NAMED_PATH_DESTS = frozenset({"suite", "domain_corpus", "curated_corpus", "models"})


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a flag's error is one line like every other bad input's (argparse prints
    its whole usage block above it), naming the command whose `--help` lists the flags. Every
    sub-command's parser is one too (add_subparsers makes them of the parser's own class)."""

    def error(self, message: str, prog: str | None = None):
        prog = prog or self.prog
        command = prog.removeprefix("dontstop").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"dontstop: error: {where}{message} ('{prog} --help' lists the flags)\n")

    def parse_args(self, args=None, namespace=None):
        """Flags no command knows are the chosen command's error, not the top parser's (each
        sub-command's parser leaves its name in `_prog`, the innermost chosen one last)."""
        parsed, unknown = self.parse_known_args(args, namespace)
        prog = vars(parsed).pop("_prog", None)
        if unknown:
            self.error(f"unrecognized arguments: {' '.join(unknown)}", prog)
        chosen = next((parser for parser in _each_subparser(self) if parser.prog == prog), None)
        empty = _empty_path(chosen, parsed) if chosen else None
        if empty:
            self.error(empty, prog)
        return parsed


def _empty_path(parser: argparse.ArgumentParser, parsed: argparse.Namespace) -> str | None:
    """A path flag given an empty value (`--out "$OUT"` with OUT unset) was the working folder:
    `finetune --out ''` and `select --out ''` wrote their files there, `analyze --out ''` its
    tables, `init-study ''` a study; `--corpus ''` was ".: a folder, not a file". One holding a line
    break was a folder of that name, which every message naming it split over two lines."""
    for action in parser._actions:
        if action.dest not in PATH_DESTS | NAMED_PATH_DESTS:
            continue
        value = getattr(parsed, action.dest, None)
        for item in value if isinstance(value, list) else [value]:
            name = action.option_strings[0] if action.option_strings else action.metavar or action.dest
            if isinstance(item, str) and not item.strip() and action.dest in PATH_DESTS | {"suite"}:
                optional = action.option_strings and not action.required
                return (f"{name} {item!r}: an empty path (an unset shell variable?); give a file or folder"
                        f"{', or leave the flag out' if optional else ''}")
            if isinstance(item, str) and ("\n" in item or "\r" in item):   # `--results-dir "$(cat f)"`, a paste
                return (f"{name} {item!r}: holds a line break (a pasted command, a file's last newline?); "
                        "give the path on one line")
    return None


def _each_subparser(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in dict.fromkeys(action.choices.values()):   # an alias maps to the same parser
                yield subparser
                yield from _each_subparser(subparser)


def build_parser(commands: list[str] | None = None) -> argparse.ArgumentParser:
    parser = OneLineParser(prog="dontstop", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in dict.fromkeys(COMMANDS[c] for c in commands or COMMANDS):
        importlib.import_module(module_name).register(subparsers)
    for subparser in _each_subparser(parser):
        subparser.set_defaults(_prog=subparser.prog)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = [argv[0]] if argv and argv[0] in COMMANDS else None
    args = expand_home(build_parser(chosen).parse_args(argv))
    try:
        _check_out_outside_conditions(args)
        code = int(args.func(args) or 0)
        sys.stdout.flush()   # a reader gone shows here, inside this try, not as Python's message at exit
        return code
    except UserError as e:   # UserErrors: one line per problem found
        for line in e.lines:
            print(f"dontstop: error: {line}", file=sys.stderr)
        return 2
    except BrokenPipeError as e:   # `dontstop status | head`: the reader stopped reading, not an error
        if not _stdout_reader_gone():
            return _os_error(e)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # what is still buffered goes nowhere
        return 141   # 128 + SIGPIPE: how `yes | head` ends, so `set -o pipefail` sees it as the shell's tools
    except OSError as e:  # disk full, permission denied, ...: one line naming the file when known
        return _os_error(e)
    except KeyboardInterrupt as e:   # a command may say what goes on without it (Slurm jobs)
        print(f"dontstop: interrupted; {e.args[0] if e.args else 'rerun the same command to resume'}",
              file=sys.stderr)
        return getattr(e, "exit_code", 130)   # 128 + SIGINT; a runner's SIGTERM: 143 (runner/stopping.py)


def _check_out_outside_conditions(args: argparse.Namespace) -> None:
    """`--out experiments/dapt-cs` (`pretrain`, `finetune`, `select`, `analyze`): a folder without
    config.yaml among the condition folders, which every later `run`, `status` and `reproduce` refused."""
    if getattr(args, "out", None):
        from .conditions import EXPERIMENTS_DIR, check_outside_conditions

        check_outside_conditions(args.out, EXPERIMENTS_DIR, "--out")


def expand_home(args: argparse.Namespace) -> argparse.Namespace:
    """Every flag value that starts with ~ under the home folder (fileio.under_home): the shell
    leaves the ~ in `--out=~/x`, `--cache-dir=~/c` or a quoted path."""
    for name, value in vars(args).items():
        setattr(args, name, under_home(value))
    return args


def _os_error(e: OSError) -> int:
    """One line naming the file; exit 1 (the machine's trouble: a full disk, a permission), but 2
    for a path no file system takes (a name too long: the flag's value, a user's to fix)."""
    where = f"{e.filename}: " if e.filename else ""
    print(f"dontstop: error: {where}{e.strerror or e}", file=sys.stderr)
    return 2 if e.errno == errno.ENAMETOOLONG else 1


def _stdout_reader_gone() -> bool:
    """Whether the broken pipe is our standard output's (a pipe to a subprocess could break too):
    the write end of a pipe whose reader is gone polls as an error (POLLERR; POLLHUP on some systems)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
    except (OSError, ValueError, AttributeError):   # no file descriptor (captured), or no poll
        return False
