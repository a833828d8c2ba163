"""Flags that several commands share, one name and one meaning each (docs/CONTRACTS.md, Glossary),
and the spellings they replaced, still read for one release: each use of an old one prints one
line on stderr naming the new one.

    add_flag(parser, "--results-dir", old=["--results"], help=...)   # any flag with old spellings
    add_suite_flags(parser, folders=FOLDERS)     # --suite, --set KEY=VALUE and the folder flags
    suite_overrides(args)                        # what they (and the NAME=PATH flags) override

A folder flag names the root a command reads or writes `<suite>/...` under (`--results-dir`,
`--cache-dir`, `--data-dir`, `--tables-dir`, `--experiments-dir`); `--out` is only ever the exact
folder one command writes (`dontstop pretrain`, `finetune`, `select`, `analyze`).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .conditions import EXPERIMENTS_DIR
from .config import parse_pairs
from .fileio import UserError, under_home
from .overrides import Override, check_one_setting_each, folder, from_pairs, parse_set
from .value_rules import SEED

NOTE = "dontstop: note: {old} is deprecated and will be removed in the next release; use {new}"
FOLDERS = {   # flag -> (the Suite key it overrides, its help)
    "--results-dir": ("results_dir", "root of <suite>/<task>/<condition>/seed_<n>/ (default: the suite's: results)"),
    "--cache-dir": ("cache_dir", "root of <suite>/checkpoints/, selections/, indexes/ and guard_checks/ "
                                 "(default: the suite's: cache)"),
    "--data-dir": ("data_dir", "root of <suite>/tasks/ and the suite's relative paths (default: the suite's: data)"),
}
PAIRS = {"--domain-corpus": ("domain_corpora", "DOMAIN=PATH", "a domain's DAPT corpus, beside the suite's"),
         "--pool": ("pools", "DOMAIN=PATH", "a domain's kNN candidate pool (default: its domain corpus)"),
         "--curated-corpus": ("curated", "TASK=PATH", "a task's curated unlabeled pool (Curated-TAPT)")}


class _OldSpelling(argparse.Action):
    """An old spelling of `target`'s flag: says so on stderr, then does what `target` does."""

    def __init__(self, option_strings, dest, target: argparse.Action, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.target = target

    def __call__(self, parser, namespace, values, option_string=None):
        print(NOTE.format(old=option_string, new=self.target.option_strings[0]), file=sys.stderr)
        self.target(parser, namespace, values, self.target.option_strings[0])


def add_flag(parser: argparse.ArgumentParser, *names: str, old: tuple[str, ...] | list[str] = (),
             **kwargs) -> argparse.Action:
    """`parser.add_argument(*names, **kwargs)`, and each of `old` as a hidden spelling of it."""
    action = parser.add_argument(*names, **kwargs)
    for spelling in old:
        parser.add_argument(spelling, action=_OldSpelling, target=action, dest=action.dest, nargs=action.nargs,
                            type=action.type, metavar=action.metavar, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return action


def add_experiments_dir(parser: argparse.ArgumentParser) -> None:
    """--experiments-dir: the folder of condition folders, which must be one (a file, or a folder
    not there, read as "condition 'baseline' is not a folder of <file>")."""
    add_flag(parser, "--experiments-dir", old=["--experiments"], default=str(EXPERIMENTS_DIR),
             type=_folder_of_conditions, help="folder of condition folders (default: the repository's experiments/)")


def _folder_of_conditions(value: str) -> str:
    value = under_home(value)   # checked before cli.expand_home sees it: `--experiments-dir=~/exps`
    if not Path(value).is_dir():
        raise argparse.ArgumentTypeError(f"{value}: {'a file' if Path(value).exists() else 'no such folder'}; "
                                         "give the folder that holds the condition folders")
    return value


def add_suite_flags(parser: argparse.ArgumentParser, folders: tuple[str, ...] = tuple(FOLDERS),
                    old: dict[str, list[str]] | None = None) -> None:
    """--suite, --set KEY=VALUE (repeatable) and the folder flags named in `folders`."""
    parser.add_argument("--suite", default="mini", help="mini | paper | path to a study file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="set_values",
                        help="any suite key by its dotted path, the value as YAML (finetune.lr=1e-4, "
                        "recipes.dapt.max_steps=200); checked as the suite file is; repeatable")
    for flag in folders:
        add_flag(parser, flag, old=(old or {}).get(flag, ()), help=FOLDERS[flag][1])


def add_pair_flags(parser: argparse.ArgumentParser, flags: tuple[str, ...] = tuple(PAIRS)) -> None:
    """The NAME=PATH flags (repeatable): inputs beside the suite's."""
    for flag in flags:
        parser.add_argument(flag, action="append", default=[], metavar=PAIRS[flag][1], help=PAIRS[flag][2])


def suite_overrides(args: argparse.Namespace) -> list[Override]:
    """Every override of the suite that `args` carries: --set, the folder flags, the NAME=PATH
    flags and --from-released[-dapt], for suites.load_suite (which checks them)."""
    found = parse_set(getattr(args, "set_values", []))
    for flag, (key, _) in FOLDERS.items():
        found += folder(flag, key, getattr(args, key, None))
    for flag, (section, _, _) in PAIRS.items():
        given = getattr(args, flag[2:].replace("-", "_"), [])
        found += from_pairs(flag, section, parse_pairs(given, flag), given)
    for flag in ("--from-released", "--from-released-dapt"):
        key = flag[2:].replace("-", "_")
        found += [Override((key,), True, flag)] if getattr(args, key, False) else []
    check_one_setting_each(found)
    return found


def seed_flag(text: str) -> int:
    """argparse type of a --seed, in recipes.SEED's range (numpy and torch take 32-bit unsigned
    seeds); -1 was accepted by the commands of the domain analysis and the mini build."""
    value = int(text)
    if not SEED.allows(value):
        raise argparse.ArgumentTypeError(f"{text}: {SEED}")
    return value


# Suite keys that choose which runs are made, never how they are tabled: `aggregate` refuses them.
RUN_ONLY_KEYS = ("seeds", "quick_seeds", "probe", "quick_probe", "estimate_tokens_per_s", "estimate_bench")


def aggregate_command(args: argparse.Namespace) -> str:
    """The `dontstop aggregate` command that makes these tables again from the same runs (their
    README names it): the flags of `args` that choose the runs and the tables' folder."""
    words = ["dontstop", "aggregate", "--suite", str(args.suite), *(["--quick"] if args.quick else [])]
    for value in args.set_values:
        words += [] if value.partition("=")[0].split(".")[0] in RUN_ONLY_KEYS else ["--set", value]
    for flag in ("--results-dir", "--tables-dir"):
        given = getattr(args, flag[2:].replace("-", "_"), None)
        words += [flag, str(given)] if given else []
    experiments = getattr(args, "experiments_dir", None)   # one's own condition folders: the tables' columns
    if experiments and Path(experiments).resolve() != EXPERIMENTS_DIR.resolve():
        words += ["--experiments-dir", str(experiments)]
    return shlex.join(words)


def check_model_flag(model: str) -> None:
    """`pretrain` and `finetune`'s --model: an empty one was the working folder (".: not a model
    directory"), naming no flag."""
    if not model.strip():
        raise UserError(f"--model {model!r}: empty; give bundled:<name>, a checkpoint folder or a hub id")
