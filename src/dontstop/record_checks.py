"""What a record file's fields must hold beyond their types (records.py reads them through
these): the folder it sits in, scores that are fractions, sizes and times a run or probe could
have written, and the seeds of one cell against each other. Each failure is one line naming
the file and the field.
"""
from __future__ import annotations

import datetime
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from .fileio import UserError

COST_FIELDS = ("steps", "documents", "bytes", "tokens", "wall_time_s")  # PretrainRecord fields Table 9 sums
STAGE_COUNTS = COST_FIELDS[:-1]   # the same wherever a stage of one key is built; its time is not
# What a run measured of itself: no two runs of a second or more share all of it (their times
# alone differ). Shorter ones may: a tiny model's run (one epoch, the majority class whatever the
# seed) matched another's scores and every millisecond of its times, two seeds of the paper rehearsal.
RESULT_FIELDS = ("dev_curve", "dev", "test", "wall_time_s", "timings")
TIMED_APART_S = 1.0
ABSENT = object()   # a key one stage record has and the other lacks


def check_written(path: str | Path, record, writer: str, checks: dict[str, tuple[bool, str]], within: str = "") -> None:
    """`checks`: field -> (whether it holds, what a `writer` writes there); one line for the first
    that does not, the field named `within` its place in the file (`invocations[2].`)."""
    for name, (holds, written) in checks.items():
        if not holds:
            raise UserError(f"{path}: field '{within}{name}' is {getattr(record, name)!r}, which no {writer} writes "
                            f"({written}; edited by hand?)")


def iso_time(value: str) -> bool:
    """A time as written with datetime.isoformat ("2026-12-07T08:02:44")."""
    try:
        datetime.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def seconds(value: float) -> bool:
    """A duration a run writes: finite and >= 0 (JSON may hold NaN, Infinity or -3)."""
    return math.isfinite(value) and value >= 0


def check_folder(path: Path, record, expected: dict[str, tuple[int, str | None]]) -> None:
    """`expected`: field -> (which parent folder of `path` names it, the name the record implies)."""
    for name, (level, folder) in expected.items():
        found = path.parents[level - 1].name if len(path.parents) >= level else ""
        if found != folder:
            raise UserError(f"{path}: field {name!r} is {getattr(record, name)!r} but its folder is "
                            f"{found!r} (a copied or moved folder?); move it back or remove it")


def bound(value: Any) -> float:
    """A recipe's upper bound (epochs, max_train_examples) as a number; none (None, or not a number): inf."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else math.inf


def check_scores(path: str | Path, record, **more: float | list[float]) -> None:
    """Every score of a run or probe record (its test_metric, dev and test scores, and `more`) is a
    fraction in [0, 1]: NaN (which JSON files may hold) or a percentage would pass into the tables."""
    scores = {"test_metric": record.test_metric, **{f"dev.{k}": v for k, v in record.dev.items()},
              **{f"test.{k}": v for k, v in record.test.items()}}
    for name, value in more.items():
        scores.update({f"{name}[{i}]": v for i, v in enumerate(value)} if isinstance(value, list) else {name: value})
    for name, value in scores.items():
        if not 0 <= value <= 1:
            raise UserError(f"{path}: field {name!r} is {value!r}: not a fraction in [0, 1]")
    # test_metric is what the tables read: one edited by hand made another cell the bold best
    for split in ("test", "dev") if "dev_metric" in more else ("test",):
        given, kept = getattr(record, f"{split}_metric"), getattr(record, split).get(record.metric)
        if kept is None:   # it said "test_metric is 0.66, but test.f1 is None"
            raise UserError(f"{path}: field 'metric' is {record.metric!r}, but its {split} scores are "
                            f"{', '.join(getattr(record, split)) or 'none'} (edited by hand?)")
        if not math.isclose(given, kept, rel_tol=1e-9, abs_tol=1e-12):
            raise UserError(f"{path}: field '{split}_metric' is {given!r}, but {split}.{record.metric} is {kept!r} "
                            "(edited by hand?)")


def check_costs(path: Path, stages: list[dict]) -> None:
    """Table 9 sums each stage's steps, documents, bytes, tokens and seconds: a value that is no
    number was a TypeError traceback, a NaN a silent "—"."""
    for i, stage in enumerate(stages):
        for name in COST_FIELDS:
            value = stage.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not 0 <= value < math.inf):
                raise UserError(f"{path}: field 'pretraining[{i}].{name}' is {value!r}: not a count or a "
                                "duration (a number >= 0)")


def check_cells(records: dict[Path, Any]) -> None:
    """The seeds of each (task, condition) cell of `records` (metrics.json -> MetricsRecord)
    against each other: one kind of starting checkpoint (check_one_source), one pretraining lineage
    record (check_one_pretraining), no two the same run (check_no_copies)."""
    cells: dict[tuple[str, str, str | None], dict[Path, Any]] = {}
    for path, record in records.items():
        cells.setdefault((record.suite, record.task, record.condition), {})[path] = record
    for cell in cells.values():
        check_one_source(cell)
        check_one_pretraining(cell)
        check_no_copies(cell)


def check_one_source(cell: dict[Path, Any]) -> None:
    """The seeds of a cell all fine-tuned from the authors' released checkpoint (`published`), or
    none did: in the paper suite both have one lineage (no base stage), so seeds 0-2 of `run
    --from-released` and seeds 3-4 pretrained here were one cell, `72.8 ± 11.3 (5) †`, two
    different models averaged and the whole cell marked released."""
    first: dict[bool, Path] = {}
    for path, record in cell.items():
        first.setdefault(bool(record.published), path)
    if len(first) > 1:
        raise UserError(f"{first[True]}: fine-tuned from a released checkpoint ({cell[first[True]].model}), but "
                        f"{_in_cell(first[False])} of its cell from one pretrained here ({cell[first[False]].model}); "
                        "a cell averages one model's seeds: keep each in a --results-dir of its own")


def check_one_pretraining(cell: dict[Path, Any]) -> None:
    """The seeds of a cell fine-tuned from one checkpoint (their `model`'s folder, named by its stage
    key) hold its `pretraining` records alike: Table 9 read the first seed's alone, so one whose TAPT
    steps and seconds were edited to 99999 was "100K steps, 27.8 h", while the other seeds said 32. They agree on what each stage counts
    (STAGE_COUNTS; its times differ where it was built again: another machine, a cache cleared);
    the seed that differs from most of them is named. Seeds of other checkpoints (--allow-mixed
    data), and runs without records (`dontstop finetune`'s; Table 9 reads the first that has them),
    are not compared with them."""
    groups: dict[str, dict[Path, str]] = {}
    for path, record in ((path, record) for path, record in cell.items() if record.pretraining):
        stages = [stage if isinstance(stage, dict) else {} for stage in record.pretraining]
        groups.setdefault(Path(str(record.model)).name, {})[path] = json.dumps(
            [{name: stage.get(name) for name in STAGE_COUNTS} for stage in stages], sort_keys=True)
    for kept in groups.values():
        counts = Counter(kept.values())
        most = counts.most_common(1)[0][0]   # a tie: the first seed's
        reference = next(path for path, text in kept.items() if text == most)
        for path, text in kept.items():
            if text != most:
                field, here, there = _first_difference(json.loads(text), json.loads(most), "pretraining")
                others = {1: "", 2: " and 1 other seed"}.get(counts[most], f" and {counts[most] - 1} other seeds")
                raise UserError(f"{path}: field {field!r} is {here} here, {there} in {_in_cell(reference)}{others} "
                                "of its cell, all fine-tuned from one checkpoint (edited by hand?); remove this run's "
                                "folder and run it again")


def _first_difference(here: Any, there: Any, field: str) -> tuple[str, str, str]:
    """(field, its value here, there) at the first place two records' JSON values differ."""
    if field == "pretraining" and len(here) != len(there):
        return field, f"{len(here)} stage record(s)", f"{len(there)}"
    if isinstance(here, dict) and isinstance(there, dict) or isinstance(here, list) and isinstance(there, list) \
            and len(here) == len(there):
        keys = range(len(here)) if isinstance(here, list) else sorted(set(here) | set(there))
        for key in keys:
            mine, theirs = (value[key] if isinstance(value, list) else value.get(key, ABSENT) for value in (here, there))
            if mine != theirs:
                return _first_difference(mine, theirs, f"{field}[{key}]" if isinstance(key, int) else f"{field}.{key}")
    return field, *("absent" if value is ABSENT else repr(value) for value in (here, there))


def check_no_copies(cell: dict[Path, Any]) -> None:
    """No two seeds of a cell hold the same results (dev curve, scores, wall time and its parts):
    a run folder copied and its seed edited (in metrics.json and its config) was tabled as one
    more seed, `65.2 ± 2.0 (6)`, its scores and dev curve those of seed_0. Seeds run on purpose
    later (`run --seeds 5 6`) are runs of their own, with times of their own (runs under
    TIMED_APART_S are not compared)."""
    first: dict[str, Path] = {}
    for path, record in cell.items():
        results = json.dumps([getattr(record, name) for name in RESULT_FIELDS], sort_keys=True)
        if record.wall_time_s >= TIMED_APART_S and (seen := first.setdefault(results, path)) != path:
            raise UserError(f"{path}: the same results (dev curve, dev and test scores, wall time) as "
                            f"{_in_cell(seen)} (a copied folder, its seed edited?); remove the copy")


def _in_cell(path: Path) -> str:
    """A metrics.json as named beside another of its cell: seed_0/metrics.json."""
    return f"{path.parent.name}/{path.name}"
