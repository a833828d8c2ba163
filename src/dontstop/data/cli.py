"""dontstop data download|check|build-mini: the data side of the study.

    dontstop data download chemprot            # the paper's jsonl files -> data/paper/tasks/chemprot/
    dontstop data download --data-url URL      # every paper task, from a mirror of the S3 layout
    dontstop data check data/mini              # every task split, corpus and pool under a folder
    dontstop data check path/to/train.jsonl --task chemprot
    dontstop data build-mini                   # the offline mini benchmark -> data/mini/
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .formats import Problem, check_corpus, parse_split, task_dir
from .task_checks import check_task
from ..fileio import UserError, check_writable_dir, wrong_kind
from ..flags import seed_flag
from ..suite_roots import DATA_HOLDS, check_root_given
from ..tasks import PAPER_TASKS, SUITES, get_task

CORPUS_SUFFIXES = (".txt", ".jsonl")


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="download, check or build task data")
    commands = data.add_subparsers(dest="data_command", required=True)

    download = commands.add_parser("download", help="fetch the paper tasks' jsonl files")
    download.add_argument("tasks", nargs="*", metavar="TASK",
                          help=f"paper task keys (default: all of them): {', '.join(PAPER_TASKS)}")
    download.add_argument("--all", action="store_true", help="every paper task (the default)")
    download.add_argument("--data-dir", default="data")
    download.add_argument("--data-url", metavar="URL",
                          help="base URL serving <task>/<split>.jsonl (default: $DONTSTOP_DATA_URL, "
                               "else the paper's S3 bucket)")
    download.set_defaults(func=_download)

    check = commands.add_parser("check", help="validate task files, corpora and pools")
    check.add_argument("paths", nargs="+", help="a .jsonl split, a task folder, a corpus, "
                       "or a suite folder such as data/mini")
    check.add_argument("--task", help="task key whose label set applies (default: from the path)")
    check.add_argument("--suite", default=None, choices=list(SUITES))
    check.set_defaults(func=_check)

    build = commands.add_parser("build-mini", help="build the offline mini benchmark")
    build.add_argument("--data-dir", default="data")
    build.add_argument("--seed", type=seed_flag, default=0)
    build.add_argument("--readme", help="where to write the size table (default: <data-dir>/README.md)")
    build.set_defaults(func=_build_mini)


def _download(args: argparse.Namespace) -> int:
    from .download import data_base, download_task

    if args.all and args.tasks:
        raise UserError("give task keys or --all, not both")
    keys = list(dict.fromkeys(args.tasks)) or list(PAPER_TASKS)
    tasks = [get_task("paper", key) for key in keys]  # an unknown key: one line naming the known
    base = data_base(args.data_url)
    check_root_given(args.data_dir, "paper", [], "--data-dir", holds=DATA_HOLDS)   # it fetched into data/paper/paper
    check_writable_dir(args.data_dir)   # before any download, not when the first file is written
    for task in tasks:
        dest = task_dir(args.data_dir, "paper", task.key)
        manifest = download_task(task, dest, base)
        sizes = ", ".join(f"{split} {entry['bytes']} B" for split, entry in manifest.items())
        print(f"{task.key}: {dest} ({sizes})")
    return 0


def _build_mini(args: argparse.Namespace) -> int:
    from .mini import build_mini
    from .mini_readme import GENERATED, write_data_readme

    # beside the build it describes (data/README.md described a build elsewhere, of another seed)
    check_root_given(args.data_dir, "mini", [], "--data-dir", holds=DATA_HOLDS)   # it built data/mini/mini
    readme = Path(args.readme or Path(args.data_dir) / "README.md")
    for folder in (args.data_dir, readme.parent):   # before the build, not after it
        check_writable_dir(folder)
    if readme.is_dir():   # found after the whole build, in a line naming a temporary file, exit 1
        raise UserError(f"--readme {readme}: a folder; give the path of the file to write")
    if readme.is_file() and GENERATED not in readme.read_text(encoding="utf-8", errors="replace")[:200]:
        raise UserError(f"--readme {readme}: a file build-mini did not write, which it would replace; "
                        "give another --readme")
    manifest = build_mini(Path(args.data_dir), seed=args.seed)
    write_data_readme(manifest, readme)
    print(f"mini benchmark built in {Path(args.data_dir) / 'mini'}; sizes in {readme}")
    return 0


def _check(args: argparse.Namespace) -> int:
    known = [key for suite in ([args.suite] if args.suite else SUITES) for key in SUITES[suite].tasks]
    if args.task and args.task not in known:   # checked on a corpus it was ignored, exit 0
        raise UserError(f"--task {args.task}: unknown task; known: {', '.join(dict.fromkeys(known))}")
    paths = list(map(Path, args.paths))
    targets_of = {path: _targets(path, set()) for path in paths if path.exists()}   # each walked once
    _check_label_flags(args, {kind for targets in targets_of.values() for kind, _ in targets})
    problems: list[Problem] = []
    checked = 0
    for path in paths:
        if not path.exists():
            raise UserError(f"{path}: no such file or folder")
        targets = targets_of[path]
        if not targets:   # a typo'd layout (train.json, data.csv) must not pass as "0 errors"
            problems.append(Problem(str(path), None, None, "nothing to check in this folder: no task folder "
                                    f"(train.jsonl), no corpus or pool ({', '.join(CORPUS_SUFFIXES)})"))
        for kind, target in targets:
            problems += _check_one(kind, target, args)
            checked += 1
        if path.name == "mini" and (path / "manifest.json").exists():
            problems += _mini_leakage(path)
    for problem in problems:
        print(problem)
    errors = sum(p.severity == "error" for p in problems)
    print(f"checked {checked} item(s): {errors} error(s), {len(problems) - errors} warning(s)")
    return 2 if errors else 0   # an error is what `dontstop run` refuses; warnings it tolerates


def _check_label_flags(args: argparse.Namespace, kinds: set[str]) -> None:
    """--task and --suite choose the label set a task split is checked against: given with corpora
    and pools alone (`kinds`: what _targets found under the paths) they were ignored, exit 0
    ('0 error(s)' read as the corpus checked against the task, which no check does: pretraining
    drops a task's dev/test text itself)."""
    given = [f"{flag} {value}" for flag, value in (("--task", args.task), ("--suite", args.suite)) if value]
    if given and kinds and not kinds & {"task", "split"}:
        raise UserError(f"{given[0]}: chooses the labels a task split is checked against, and {' '.join(args.paths)} "
                        "holds corpora or pools alone (no labels; checked against no task's text); leave it out")


def _mini_leakage(root: Path) -> list[Problem]:
    """The built mini benchmark's cross-file rule: no dev/test text anywhere it is trained on."""
    from .mini import check_no_leakage

    return [Problem(str(root), None, "text", violation) for violation in check_no_leakage(root.parent)]


def _targets(path: Path, seen: set[Path]) -> list[tuple[str, Path]]:
    """What to check under a path: ('task', folder), ('split', file), ('corpus', file), or
    ('unreadable', path) for a link to nothing or to itself, a fifo or a device. A folder reached
    twice (a link to a folder above) is checked once."""
    if path.is_file():
        is_split = path.suffix == ".jsonl" and path.stem in ("train", "dev", "test")
        return [("split" if is_split else "corpus", path)]
    if not path.is_dir():
        return [("unreadable", path)]
    if path.resolve() in seen:
        return []
    seen.add(path.resolve())
    if (path / "train.jsonl").exists() or _splits_in_another_format(path):
        return [("task", path)]   # the latter: each split "not found", naming the file in its place
    targets = []
    for child in sorted(path.iterdir()):
        if child.is_dir():
            targets += _targets(child, seen)
        elif child.suffix in CORPUS_SUFFIXES and child.name != "manifest.json":
            targets += _targets(child, seen)
    return targets


def _splits_in_another_format(folder: Path) -> bool:
    """A task folder of train and dev or test files that are not JSON lines (train.csv, dev.csv):
    it was skipped, as a folder with nothing to check, and `data check data` said 0 errors."""
    stems = {p.stem for p in folder.iterdir() if p.is_file() and p.suffix != ".jsonl"}
    return "train" in stems and bool(stems & {"dev", "test"})


def _check_one(kind: str, path: Path, args: argparse.Namespace) -> list[Problem]:
    if kind == "unreadable":
        # a fifo or a device found (a fifo: never opened, it would block) is said as what it is
        special = path.exists() and wrong_kind(path)
        return [Problem(str(path), None, None, special or "not a readable file (a link to nothing, or to itself?)")]
    if kind == "corpus":   # a pool (data/<suite>/pools/) must hold text on every jsonl line
        return check_corpus(path, pool=path.parent.name == "pools")
    task = _task_for(path if kind == "task" else path.parent, args)
    if kind == "task":
        return check_task(path, task)
    return parse_split(path, task.labels if task else None)[1]


def _task_for(folder: Path, args: argparse.Namespace):
    """The registry task a folder belongs to: --task, else data/<suite>/tasks/<key>/."""
    key = args.task or folder.name
    # --task alone is looked up in every suite, as it was checked: under data/mini/tasks/, a
    # paper task's key was "unknown task", the list of known ones naming it
    in_folder = folder.parent.parent.name if folder.parent.name == "tasks" and not args.task else None
    suite = args.suite or in_folder
    for candidate in ([suite] if suite else list(SUITES)):
        if candidate in SUITES and key in SUITES[candidate].tasks:
            return get_task(candidate, key)
    if args.task:
        raise UserError(f"--task {args.task}: unknown task")
    return None
