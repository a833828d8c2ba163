"""The paper's published test results, as data: paper_tables/published/table<N>.csv.

Each row is one cell of Tables 3, 5, 6 (its legible cells), 7, 8 and 9 of Gururangan et al.
(2020), typed from the paper's tables: `table, task, condition, mean, std` with the
mean and standard deviation over 5 seeds in percent; Table 9 adds the paper's printed cost
columns `steps, docs, storage` ("1.1K", "24K", "3MB"). Task and condition are the keys of
dontstop.tasks.PAPER_TASKS and of the results tree.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..fileio import UserError

PUBLISHED_DIR = Path(__file__).resolve().parents[3] / "paper_tables" / "published"
COLUMNS = ["table", "task", "condition", "mean", "std"]
COST_COLUMNS = ["steps", "docs", "storage"]


def load_published(directory: str | Path = PUBLISHED_DIR) -> pd.DataFrame:
    """Every published cell, one row each; cost columns are empty outside Table 9."""
    paths = sorted(Path(directory).glob("table*.csv"))
    if not paths:
        raise UserError(f"{directory}: no published table<N>.csv files")
    frame = pd.concat([_read_table(path) for path in paths], ignore_index=True)
    return frame.astype({"table": str, "task": str, "condition": str})


def _read_table(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"table": str, "steps": str, "docs": str, "storage": str})
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    for column in ("mean", "std"):
        bad = frame.index[pd.to_numeric(frame[column], errors="coerce").isna()]
        if len(bad):
            raise UserError(f"{path}:{bad[0] + 2}: field {column!r} is not a number")
    return frame.reindex(columns=COLUMNS + COST_COLUMNS)


def published_cell(published: pd.DataFrame, tables: tuple[str, ...], task: str,
                   condition: str) -> pd.Series | None:
    """The published row of (task, condition) in the first of `tables` that prints it."""
    for table in tables:
        match = published[(published.table == table) & (published.task == task)
                          & (published.condition == condition)]
        if len(match):
            return match.iloc[0]
    return None
