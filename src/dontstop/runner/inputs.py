"""Every input file a plan reads, checked when the plan is made, before any work.

`dontstop run`, `reproduce` (`--dry-run` too) and `status` call `check_inputs` right after
planning, so a malformed task file, a corpus that is not UTF-8 or an empty pool stops the
command in one pass that lists every problem (one line each, exit 2), instead of failing
the fine-tuning job after pretraining has run. The checks are data/'s:
`check_task`, which `dontstop data check` runs too (both refuse the same files), and
`check_corpus` for corpora, kNN pools and curated files. A clean verdict is remembered by
(path, size, mtime) in <cache>/input_checks.json, as file_sha256 remembers hashes, so a
30 GB corpus is read once, not on every call.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

from ..data.formats import Problem, check_corpus, iter_corpus, load_split, parse_split, text_key
from ..data.leakage import leakage_keys
from ..data.task_checks import check_task, one_label_cut
from ..suites import Suite
from ..fileio import MISSING_DATA, atomic_write_json, file_sha256, raise_problems, read_memo, wrong_kind
from ..tasks import SPLITS
from .plan import RunPlan, unique_stages

MEMO = "input_checks.json"
CHECKS_VERSION = 4       # bump when a check changes: earlier verdicts are then redone
SHOWN = 20               # problems listed; `dontstop data check` lists every one
LARGE_BYTES = 1 << 30    # files this large get a line saying they are being checked
TASKS_TRAIN = "<the tasks' train splits>"   # what a base or domain corpus may not be alone
# A missing file under the data folder is data not built or downloaded yet (fileio.MISSING_DATA);
# elsewhere, nothing makes it
MISSING_GIVEN = ("input file not found (a path given outside the data folder: by the study file, --set, "
                 "--domain-corpus, --pool or --curated-corpus)")


def check_inputs(plans: list[RunPlan], suite: Suite, missing_ok: bool = False, shown: bool = False) -> None:
    """Raise UserErrors listing every problem of the inputs `plans` read: the task folders of
    their runs and stages (whole), the dev/test files of the suite's other tasks (the leakage
    guard reads them), and the corpora and pools of every stage still to build. A file that
    does not exist is a problem unless `missing_ok` (--dry-run, status: not downloaded yet) and it
    lies under the data folder, where `data download` or the mini build puts it: nothing makes a
    corpus given elsewhere (a mistyped --domain-corpus path passed a dry run without a word).
    `shown` (status): a missing corpus anywhere is no problem here, since status names it in its
    stage's line (a corpus deleted after submission is why a stage's job failed: status must show it)."""
    memo_path = Path(suite.cache_dir) / MEMO
    memo = read_memo(memo_path)
    before = dict(memo)
    problems: list[Problem] = []
    whole = _whole_tasks(plans, suite)
    for key in dict.fromkeys([*whole, *suite.tasks]):
        directory = suite.task_dir(key)
        if not directory.is_dir():   # the leakage guard skips a task not downloaded; a planned one needs it
            if key in whole and not missing_ok:
                problems.append(Problem(str(directory), None, None, "task folder not found "
                                        "(build or download the data first)"))
            continue
        task = suite.task(key)
        if key in whole:
            paths = [directory / f"{split}.jsonl" for split in SPLITS]
            found = _memoised(memo, f"task {task.labels}", paths, lambda: check_task(directory, task), missing_ok)
        else:   # only its dev and test texts are read, by the leakage guard
            paths = [p for p in (directory / "dev.jsonl", directory / "test.jsonl") if p.is_file()]
            found = [p for path in paths for p in _memoised(memo, "split", [path],
                                                            lambda path=path: parse_split(path)[1], missing_ok)]
        problems += found
    data_root = Path(suite.data_dir).resolve()
    for path, pool in _corpora(plans, suite):
        under_data = data_root in Path(path).resolve().parents
        problems += _memoised(memo, "pool" if pool else "corpus", [Path(path)],
                              lambda path=path, pool=pool: _checked_corpus(path, pool),
                              missing_ok and (shown or under_data), MISSING_DATA if under_data else MISSING_GIVEN)
    try:
        if not any(p.severity == "error" for p in problems):   # the files read cleanly: what they hold
            problems += [*_nothing_beyond_task_text(plans, suite, memo), *_one_label_cuts(plans, suite),
                         *_copied_tasks(whole, suite)]
    finally:   # the verdicts found so far, whatever the content checks raise
        if memo != before:
            try:
                atomic_write_json(memo_path, memo)
            except OSError:   # a cache status only reads (a colleague's, read-only): the memo is a shortcut
                pass
    raise_problems([p.error_line for p in problems if p.severity == "error"], SHOWN,
                   f"; `dontstop data check {Path(suite.data_dir) / suite.name}` lists every one")


def _whole_tasks(plans: list[RunPlan], suite: Suite) -> list[str]:
    """The tasks fine-tuned, and those whose train.jsonl a stage reads (TAPT, Transfer-TAPT,
    a curated pool made of another task's train, kNN queries)."""
    keys = [plan.task.key for plan in plans]
    tasks_root = (Path(suite.data_dir) / suite.name / "tasks").resolve()
    for stage in unique_stages(plans):
        for path in map(Path, [*stage.corpora, (stage.selection or {}).get("queries", "")]):
            if path.name == "train.jsonl" and path.resolve().parent.parent == tasks_root:
                keys.append(path.parent.name)
    return list(dict.fromkeys(keys))


def _corpora(plans: list[RunPlan], suite: Suite) -> list[tuple[str, bool]]:
    """(path, is a kNN pool) of every corpus and pool a stage still to build reads, task files aside."""
    tasks_root = (Path(suite.data_dir) / suite.name / "tasks").resolve()
    found: dict[str, bool] = {}
    for stage in unique_stages(plans):
        if stage.released or stage.record_path.exists():
            continue
        for path in stage.corpora:
            if Path(path).resolve().parent.parent != tasks_root:
                found.setdefault(path, False)
        if stage.selection:
            found[stage.selection["pool"]] = True
    return list(found.items())


def _nothing_beyond_task_text(plans: list[RunPlan], suite: Suite, memo: dict) -> list[Problem]:
    """A curated file or kNN/RAND pool (of a stage still to build) holding no document but the
    task's own train text and the suite's dev/test text, a base or domain corpus holding none but
    the tasks' train text and their dev/test text, or a TAPT corpus none but the dev/test text (a
    task file given by mistake, a train split copied from another task's test): pretraining and
    selection drop the dev/test text, so Curated-TAPT was TAPT under another name, with exit 0, as
    DAPT was (its corpus a task's train split), and a kNN, DAPT or TAPT stage stopped after the
    stages before it had been built. Stops at a file's first other document. The tasks' train
    text is read once, for every base and domain corpus, and leniently (a task this plan does not
    run may have a bad line); their clean verdict is kept in `memo`, as the files' is."""
    checked: dict[tuple[str | None, str], tuple[str, str]] = {}   # (task text, file) -> (stage, what)
    for stage in unique_stages(plans):
        if stage.released or stage.record_path.exists():
            continue
        selection = stage.selection or {}
        train, extra = (selection["queries"], selection["pool"]) if selection else \
            (stage.corpora if stage.kind == "tapt_large" and len(stage.corpora) == 2 else (None, None))
        if extra and Path(train).is_file() and Path(extra).is_file():
            checked.setdefault((train, extra), (stage.name, "kNN/RAND pool" if selection else "curated file"))
        for corpus in () if extra else stage.corpora:   # base, domain and TAPT corpora
            kind = stage.kind.split("_")[0]
            if Path(corpus).is_file():
                owner = TASKS_TRAIN if kind in ("base", "dapt") else None   # TAPT's is its train text
                checked.setdefault((owner, corpus), (stage.name, f"{kind} corpus"))
    if not checked:   # the dev/test text of every task is read only when there is a file to check
        return []
    guarded = [d for d in suite.leakage_task_dirs() if all((d / f"{s}.jsonl").is_file() for s in ("dev", "test"))]
    held_out, problems = leakage_keys(guarded), []
    task_files = [d / f"{split}.jsonl" for d in guarded for split in SPLITS if (d / f"{split}.jsonl").is_file()]
    # the paper's suite: 440K train texts, ~8 s on 2 cores; once, not once per domain (and not while each
    # stays as it was: the memo), so a dry run or status while DAPT trains stays fast
    tasks_text = functools.cache(lambda: held_out | {text_key(e.text) for path in task_files
                                                     if path.name == "train.jsonl" for e in parse_split(path)[0]})
    for (train, extra), (name, what) in checked.items():
        if train == TASKS_TRAIN:
            problems += _memoised(memo, "beyond the tasks' text", [Path(extra), *task_files],
                                  lambda extra=extra, name=name, what=what:
                                  _only_tasks_text(extra, name, what, held_out, tasks_text), False)
            continue
        known = held_out | ({text_key(e.text) for e in load_split(train)} if train else set())
        text, alone = ((f"text of {train} or dev/test text of the suite's tasks", "on the task's text alone")
                       if train else ("dev/test text of the suite's tasks", "on nothing"))
        if next(iter_corpus([extra], dedup=False, exclude=known), None) is None:
            mistake = ("a split copied from another task's?" if what == "tapt corpus"
                       else "a task file given by mistake?")
            problems.append(_dropped_whole(extra, what, text, name, alone, mistake))
    return problems


def _only_tasks_text(corpus: str, name: str, what: str, held_out: set[bytes],
                     tasks_text: Callable[[], set[bytes]]) -> list[Problem]:
    """A base or domain corpus of dev/test text alone (it pretrains on nothing), else of the tasks'
    train text and dev/test text alone (TAPT under another name)."""
    if next(iter_corpus([corpus], dedup=False, exclude=held_out), None) is None:
        text, alone = "dev/test text of the suite's tasks", "on nothing"
    elif next(iter_corpus([corpus], dedup=False, exclude=tasks_text()), None) is None:
        text, alone = ("train text of the suite's tasks or their dev/test text",
                       "on the tasks' train text alone, TAPT under another name")
    else:
        return []
    return [_dropped_whole(corpus, what, text, name, alone, "a task file given by mistake?")]


def _dropped_whole(path: str, what: str, text: str, stage: str, alone: str, mistake: str) -> Problem:
    """A file every document of which pretraining drops, or is the task's own text: its stage
    would pretrain `alone` ("on nothing", "on the task's text alone")."""
    return Problem(str(path), None, None, f"every document of this {what} is {text}, which pretraining drops: "
                   f"{stage} would pretrain {alone} ({mistake})")


def _one_label_cuts(plans: list[RunPlan], suite: Suite) -> list[Problem]:
    cut = suite.finetune.get("max_train_examples")
    paths = [suite.task_dir(key) / "train.jsonl" for key in dict.fromkeys(plan.task.key for plan in plans)]
    return [problem for path in paths if cut and path.is_file()
            if (problem := one_label_cut(load_split(path), cut, path))]


def _copied_tasks(keys: list[str], suite: Suite) -> list[Problem]:
    """A task whose three files are byte for byte another's (a folder copied under a new name):
    two identical table rows, and its Transfer-TAPT was TAPT. Hashes are memoised (file_sha256)."""
    first: dict[tuple[str, ...], str] = {}
    problems = []
    for key in keys:
        files = [suite.task_dir(key) / f"{split}.jsonl" for split in SPLITS]
        if all(path.is_file() for path in files):
            digest = tuple(file_sha256(path, suite.cache_dir) for path in files)
            if first.setdefault(digest, key) != key:
                problems.append(Problem(str(suite.task_dir(key)), None, None, "the same train, dev and test files as "
                                        f"task {first[digest]!r} ({suite.task_dir(first[digest])}): a copied "
                                        "folder? each task needs its own data"))
    return problems


def _checked_corpus(path: str, pool: bool) -> list[Problem]:
    size = Path(path).stat().st_size
    if size >= LARGE_BYTES:
        print(f"checking {path} ({size / 1e9:.1f} GB) before any work; once: the verdict is kept "
              "until the file changes", flush=True)
    return check_corpus(path, pool=pool, duplicates=False)


def _memoised(memo: dict, kind: str, paths: list[Path], check: Callable[[], list[Problem]],
              missing_ok: bool, missing: str = MISSING_DATA) -> list[Problem]:
    """check() for these files; a clean verdict is remembered by their path, size and mtime (and
    CHECKS_VERSION); problems are found again each time (they get fixed, and a broken file can
    have thousands). With `missing_ok`, a file that does not exist is not a problem; else it is
    `missing`."""
    # a folder, a fifo or a device (/dev/zero) is there, so not "not downloaded yet": a wrong path (a fifo
    # or a device was "input file not found"); told without opening it (a fifo blocks)
    wrong = [(path, what) for path in paths if path.exists() and (what := wrong_kind(path))]
    if wrong:
        return [Problem(str(path), None, None, what) for path, what in wrong]
    if not all(path.is_file() for path in paths):
        if missing_ok:
            return []
        return [Problem(str(path), None, None, missing) for path in paths if not path.is_file()]
    key = "|".join([f"v{CHECKS_VERSION}", kind] + [f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                                                   for p in paths])
    if key in memo:
        return []
    found = check()
    if not any(p.severity == "error" for p in found):
        memo[key] = "clean"
    return found
