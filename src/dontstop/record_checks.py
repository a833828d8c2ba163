"""What a record file's fields must hold beyond their types (records.py reads them through
these): the folder it sits in, scores that are fractions, sizes and times a run or probe could
have written. Each failure is one line naming the file and the field.
"""
from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

from .fileio import UserError


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
        if kept is None or not math.isclose(given, kept, rel_tol=1e-9, abs_tol=1e-12):
            raise UserError(f"{path}: field '{split}_metric' is {given!r}, but {split}.{record.metric} is {kept!r} "
                            "(edited by hand?)")
