"""The paper's result tables rebuilt from runs: layout, best cells, published values, rendering.

A table is kept twice: `tidy` (one row per (task, condition) cell, numbers; this is the
CSV) and `grid` (the paper's rows and columns as strings, with the best cell of each task
marked; this is the Markdown and LaTeX).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .aggregate import CONDITIONS, format_cell, scores, suite_tasks, summarize, task_names, welch
from .published import COST_COLUMNS, published_cell

TABLE5_CONDITIONS = ("baseline", "dapt", "not_dapt", "tapt", "dapt_tapt")
KNN_CONDITIONS = ("knn_tapt_50", "knn_tapt_150", "knn_tapt_500")
COST_CONDITIONS = ("baseline", "tapt", *KNN_CONDITIONS, "curated_tapt", "dapt", "dapt_tapt")
COST_FIELDS = ("steps", "documents", "bytes", "tokens", "wall_time_s")  # pretrain_record keys


@dataclass(frozen=True)
class TableSpec:
    name: str                          # file stem under paper_tables/<suite>/
    title: str
    tasks: tuple[str, ...]
    conditions: tuple[str, ...]
    published_from: tuple[str, ...]    # published table ids to look a cell up in, in order
    conditions_as_rows: bool = False   # Tables 6-8 print conditions as rows, tasks as columns


@dataclass
class Grid:
    header: list[str]
    rows: list[list[str]]
    bold: set[tuple[int, int]] = field(default_factory=set)  # (row, column) of best cells
    note: str = ""


def table_specs(suite: str) -> list[TableSpec]:
    """Tables 5 (+ ¬DAPT of Table 3), 6, 7 and 8 over the suite's tasks, in registry order."""
    tasks = suite_tasks(suite).values()
    # RCT-500 is a sub-sample of RCT: the paper reports it only in the data-selection tables.
    main = tuple(t.key for t in tasks if not t.curated_from)
    return [
        TableSpec("table5", "Table 5 (with ¬DAPT of Table 3): domain- and task-adaptive pretraining",
                  main, TABLE5_CONDITIONS, ("5", "3")),
        TableSpec("table6", "Table 6: Transfer-TAPT", tuple(t.key for t in tasks if t.transfer),
                  ("tapt", "transfer_tapt"), ("6",), conditions_as_rows=True),
        TableSpec("table7", "Table 7: Curated-TAPT", tuple(t.key for t in tasks if t.curated),
                  ("tapt", "dapt_tapt", "curated_tapt", "dapt_curated_tapt"), ("7",), True),
        TableSpec("table8", "Table 8: automated data selection (kNN-TAPT)",
                  tuple(t.key for t in tasks if t.knn),
                  ("baseline", "tapt", "rand_tapt", *KNN_CONDITIONS, "dapt"), ("8",), True),
    ]


def cost_tasks(suite: str) -> tuple[str, ...]:
    """Table 9's task: the one with both kNN selection and a curated pool (RCT-500)."""
    return tuple(t.key for t in suite_tasks(suite).values() if t.knn and t.curated)


def cell_frame(runs: pd.DataFrame, spec: TableSpec, published: pd.DataFrame | None) -> pd.DataFrame:
    """One row per (task, condition) of `spec`: mean, std, n, best; published and delta
    when `published` is given. A cell without runs has n = 0 and NaN mean."""
    index = pd.MultiIndex.from_product([spec.tasks, spec.conditions], names=["task", "condition"])
    cells = summarize(runs).reindex(index).reset_index()
    cells["n"] = cells["n"].fillna(0).astype(int)
    if published is not None:
        paper = [published_cell(published, spec.published_from, task, condition)
                 for task, condition in index]
        cells["published_mean"] = [np.nan if cell is None else cell["mean"] for cell in paper]
        cells["published_std"] = [np.nan if cell is None else cell["std"] for cell in paper]
        cells["delta"] = cells["mean"] - cells["published_mean"]
    cells["best"] = cells["mean"] == cells.groupby("task")["mean"].transform("max")
    return cells


def paper_text(row: pd.Series) -> str:
    """`81.9 ± 1.0 (+0.3)`: the published cell and reproduced minus published."""
    if np.isnan(row["published_mean"]):
        return "—"
    delta = "" if np.isnan(row["delta"]) else f" ({row['delta']:+.1f})"
    return f"{row['published_mean']:.1f} ± {row['published_std']:.1f}{delta}"


def grid(spec: TableSpec, cells: pd.DataFrame, names: dict[str, str]) -> Grid:
    """The paper's layout; with published numbers, a `paper (Δ)` column beside each cell."""
    with_paper = "published_mean" in cells
    rows_keys, column_keys = ((spec.conditions, spec.tasks) if spec.conditions_as_rows
                              else (spec.tasks, spec.conditions))
    header = ["" if spec.conditions_as_rows else "Task"]
    for key in column_keys:
        header += [names[key]] + ([f"{names[key]}: paper (Δ)"] if with_paper else [])
    lookup = cells.set_index(["task", "condition"])
    result = Grid(header, [])
    for i, row_key in enumerate(rows_keys):
        line = [names[row_key]]
        for column_key in column_keys:
            cell = lookup.loc[(column_key, row_key) if spec.conditions_as_rows else (row_key, column_key)]
            if cell["best"]:
                result.bold.add((i, len(line)))
            line.append(format_cell(cell["mean"], cell["std"], cell["n"]))
            if with_paper:
                line.append(paper_text(cell))
        result.rows.append(line)
    return result


def cost_frame(runs: pd.DataFrame, suite: str, published: pd.DataFrame | None) -> pd.DataFrame:
    """Table 9: pretraining cost (summed over the stages of a lineage) and F1 per condition."""
    spec = TableSpec("table9", "", cost_tasks(suite), COST_CONDITIONS, ("9",))
    cells = cell_frame(runs, spec, published)
    costs = [pretraining_cost(runs, r.task, r.condition) for r in cells.itertuples()]
    counts = {name: "Int64" for name in COST_FIELDS if name != "wall_time_s"}  # whole numbers in the CSV
    cells = pd.concat([cells, pd.DataFrame(costs, index=cells.index).astype(counts)], axis=1)
    if published is not None:
        for column in COST_COLUMNS:
            cells[f"published_{column}"] = [_published_cost(published, r.task, r.condition, column)
                                            for r in cells.itertuples()]
    return cells


def pretraining_cost(runs: pd.DataFrame, task: str, condition: str) -> dict[str, float]:
    """Steps, documents, bytes, tokens and seconds of pretraining behind one condition.

    Every seed of a condition starts from the same checkpoint, so the first run's records
    stand for all; the baseline has no stages and costs nothing.
    """
    found = runs[(runs.task == task) & (runs.condition == condition)]
    if found.empty:
        return dict.fromkeys(COST_FIELDS, np.nan)
    stages = found.iloc[0]["pretraining"]
    return {name: float(sum(stage.get(name, 0) for stage in stages)) for name in COST_FIELDS}


def _published_cost(published: pd.DataFrame, task: str, condition: str, column: str) -> str:
    paper = published_cell(published, ("9",), task, condition)
    return "—" if paper is None or pd.isna(paper[column]) else paper[column]


def cost_grid(cells: pd.DataFrame, suite: str) -> Grid:
    names = {**task_names(suite), **CONDITIONS}
    with_paper = "published_mean" in cells
    header = ["Task", "Condition", "Steps", "Docs", "Storage", "Tokens", "Time", "F1"]
    header += ["Paper steps", "Paper docs", "Paper storage", "Paper F1 (Δ)"] if with_paper else []
    result = Grid(header, [], note="Pretraining cost summed over the stages of each lineage.")
    for i, (_, cell) in enumerate(cells.iterrows()):
        line = [names[cell["task"]], names[cell["condition"]], count(cell["steps"]),
                count(cell["documents"]), count(cell["bytes"], "B"), count(cell["tokens"]),
                duration(cell["wall_time_s"]), format_cell(cell["mean"], cell["std"], cell["n"])]
        if with_paper:
            line += [cell[f"published_{c}"] for c in COST_COLUMNS] + [paper_text(cell)]
        if cell["best"]:
            result.bold.add((i, 7))
        result.rows.append(line)
    return result


def count(value: float, unit: str = "") -> str:
    """Like the paper's Table 9: 1.1K, 24K, 3MB; a run without pretraining shows `—`."""
    if pd.isna(value) or value == 0:
        return "—"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= scale:
            return f"{value / scale:.3g}{prefix}{unit}"
    return f"{value:.0f}{unit}"


def duration(seconds: float) -> str:
    if pd.isna(seconds) or seconds == 0:
        return "—"
    return f"{seconds:.0f} s" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def significance_frame(runs: pd.DataFrame, suite: str) -> pd.DataFrame:
    """Welch t-test over seeds: every condition vs the baseline, DAPT+TAPT vs DAPT and TAPT."""
    pairs = [(c, "baseline") for c in CONDITIONS if c != "baseline"]
    pairs += [("dapt_tapt", "dapt"), ("dapt_tapt", "tapt")]
    rows = []
    for task in suite_tasks(suite):
        for condition, reference in pairs:
            a, b = scores(runs, task, condition), scores(runs, task, reference)
            if a and b:
                t, p = welch(a, b)
                rows.append({"task": task, "condition": condition, "reference": reference,
                             "difference": np.mean(a) - np.mean(b), "n": len(a),
                             "n_reference": len(b), "t": t, "p_value": p})
    return pd.DataFrame(rows, columns=["task", "condition", "reference", "difference", "n",
                                       "n_reference", "t", "p_value"])


def significance_grid(frame: pd.DataFrame, suite: str) -> Grid:
    names = {**task_names(suite), **CONDITIONS}
    rows = [[names[r.task], names[r.condition], names[r.reference], f"{r.difference:+.1f}",
             f"{r.n} / {r.n_reference}", format_p(r.p_value)] for r in frame.itertuples()]
    note = ("Welch's t-test (scipy.stats.ttest_ind, equal_var=False, two-sided) over seeds; "
            "difference = condition minus reference, test metric ×100.")
    return Grid(["Task", "Condition", "Reference", "Difference", "n / n ref.", "p"], rows,
                bold={(i, 5) for i, p in enumerate(frame.p_value) if p < 0.05}, note=note)


def format_p(p: float) -> str:
    return "—" if np.isnan(p) else f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def to_markdown(grid_: Grid, title: str) -> str:
    def line(cells: list[str], row: int) -> str:
        marked = [f"**{c}**" if (row, j) in grid_.bold else c for j, c in enumerate(cells)]
        return "| " + " | ".join(marked) + " |"

    lines = [f"# {title}", ""] + ([grid_.note, ""] if grid_.note else [])
    lines += [line(grid_.header, -1), "|" + "---|" * len(grid_.header)]
    lines += [line(cells, i) for i, cells in enumerate(grid_.rows)]
    return "\n".join(lines) + "\n"


LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "±": r"$\pm$", "¬": r"$\neg$",
                 "—": "---", "−": "$-$", "Δ": r"$\Delta$", "×": r"$\times$", "→": r"$\to$", "≥": r"$\geq$"}


def latex_escape(text: str) -> str:
    return "".join(LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(grid_: Grid, title: str) -> str:
    """A booktabs tabular; best cells in \\textbf."""
    def line(cells: list[str], row: int) -> str:
        escaped = [latex_escape(c) for c in cells]
        return " & ".join(rf"\textbf{{{c}}}" if (row, j) in grid_.bold else c
                          for j, c in enumerate(escaped)) + r" \\"

    lines = [f"% {latex_escape(title)}"] + ([f"% {grid_.note}"] if grid_.note else [])
    lines += [r"\begin{tabular}{l" + "r" * (len(grid_.header) - 1) + "}", r"\toprule",
              line(grid_.header, -1), r"\midrule"]
    lines += [line(cells, i) for i, cells in enumerate(grid_.rows)]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"]) + "\n"
