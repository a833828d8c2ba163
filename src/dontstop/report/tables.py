"""The paper's result tables rebuilt from runs: which cells, in which order, with which
published values, the best cell of each task marked.

Which conditions a table shows comes from the conditions' folders (`tables:` in their
config.yaml); their order is the paper's (the row order of its published table), then any
condition the paper does not have, in the folders' `order`. Beside the paper's tables, our
Table LoRA (`tables: [lora]`: full-parameter and LoRA rows side by side, no published column),
written when a LoRA condition is shown (report/write.py: default, or run).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..conditions import PAPER_TABLES, SAME_FILE, Conditions
from ..record_checks import COST_FIELDS
from ..tasks import Task
from .agreement import add_verdicts
from .published import COST_COLUMNS, published_cell
from .render import Grid, as_shown, count, duration, format_cell, signed
from .runs import summarize

RELEASED_NOTE = "† fine-tuned from the authors' released checkpoint (`--from-released`), not pretrained here."


@dataclass(frozen=True)
class Layout:
    """What every table of a suite is drawn from, besides the runs."""
    suite: str
    conditions: Conditions
    published: pd.DataFrame        # the paper's cells: every table's row order, and its numbers
    with_paper: bool               # show the published cell beside ours (paper suite)
    tasks: dict[str, Task]         # the suite's tasks in its order (Suite.tasks_by_key)

    @property
    def task_names(self) -> dict[str, str]:
        """Task key -> its table name (the paper's, or a study's `display`), in the suite's order."""
        return {key: task.name for key, task in self.tasks.items()}

    @property
    def names(self) -> dict[str, str]:
        return {**self.task_names, **self.conditions.display}

    def paper_order(self, *tables: str) -> tuple[str, ...]:
        """The conditions of `tables`, in the order the paper prints them, then the others."""
        members = self.conditions.in_tables(*tables)
        printed: list[str] = []
        for table in tables:
            for condition in self.published.condition[self.published.table == table]:
                if condition in members and condition not in printed:
                    printed.append(condition)
        return tuple(printed + [c for c in members if c not in printed])

    def table_conditions(self, table: str) -> tuple[str, ...]:
        """The conditions of paper table `table`, as our file of that table prints them."""
        return self.paper_order(*SAME_FILE.get(table, (table,)))


@dataclass(frozen=True)
class TableSpec:
    name: str                          # file stem under paper_tables/<suite>/
    title: str
    tasks: tuple[str, ...]
    conditions: tuple[str, ...]
    published_from: tuple[str, ...]    # published table ids to look a cell up in, in order
    conditions_as_rows: bool = False   # Tables 6-8 print conditions as rows, tasks as columns
    paper: bool = True                 # a table of the paper: its published cells beside ours


def table_specs(layout: Layout) -> list[TableSpec]:
    """Tables 5 (+ ¬DAPT of Table 3), 6, 7 and 8 over the suite's tasks, in registry order."""
    tasks = layout.tasks.values()
    # RCT-500 is a sub-sample of RCT: the paper reports it only in the data-selection tables.
    main = tuple(t.key for t in tasks if not t.curated_from)
    order = layout.table_conditions
    specs = [
        TableSpec("table5", "Table 5 (with ¬DAPT of Table 3): domain- and task-adaptive pretraining",
                  main, order("5"), ("5", "3")),
        TableSpec("table6", "Table 6: Transfer-TAPT", tuple(t.key for t in tasks if t.transfer),
                  order("6"), ("6",), conditions_as_rows=True),
        TableSpec("table7", "Table 7: Curated-TAPT", tuple(t.key for t in tasks if t.curated),
                  order("7"), ("7",), True),
        TableSpec("table8", "Table 8: automated data selection (kNN-TAPT)",
                  tuple(t.key for t in tasks if t.knn), order("8"), ("8",), True),
    ]
    lora = set(layout.conditions.in_tables("lora")) - set(layout.conditions.in_tables(*PAPER_TABLES))
    if lora:   # a LoRA row beside the full-parameter rows it is compared with
        specs.append(TableSpec("table_lora", "Table LoRA (ours, not in the paper): full-parameter and LoRA "
                               "continued pretraining", main, order("lora"), ("lora",), paper=False))
    return specs


def tasks_of_table(layout: Layout, table: str) -> tuple[str, ...]:
    """The tasks a paper table (and a claim about it) covers; Table 3's are Table 5's."""
    specs = {spec.published_from[0]: spec for spec in table_specs(layout)}
    return specs[SAME_FILE.get(table, (table,))[-1]].tasks


def cost_spec(layout: Layout) -> TableSpec:
    """Table 9 over the task with both kNN selection and a curated pool (RCT-500)."""
    tasks = tuple(t.key for t in layout.tasks.values() if t.knn and t.curated)
    return TableSpec("table9", "", tasks, layout.paper_order("9"), ("9",))


METRIC_NAMES = {"macro_f1": "macro-F1", "micro_f1": "micro-F1", "accuracy": "accuracy"}


def metric_note(layout: Layout, tasks: tuple[str, ...]) -> str:
    """What a table's cells are: `Test macro-F1 ×100, ...`, or per metric where its tasks differ, as
    the paper's (micro-F1 for ChemProt and RCT, macro-F1 for the others; FACTS). No table said."""
    by_metric: dict[str, list[str]] = {}
    for key in tasks:
        by_metric.setdefault(layout.tasks[key].metric, []).append(layout.tasks[key].name)
    names = {metric: METRIC_NAMES.get(metric, metric) for metric in by_metric}
    what = (f"Test {names[next(iter(by_metric))]} ×100" if len(by_metric) == 1 else "Test metric ×100 ("
            + "; ".join(f"{names[metric]} for {', '.join(tasks_)}" for metric, tasks_ in by_metric.items()) + ")")
    return f"{what}, mean ± std over seeds (n seeds)." if by_metric else ""


def cell_frame(runs: pd.DataFrame, spec: TableSpec, layout: Layout) -> pd.DataFrame:
    """One row per (task, condition) of `spec`: mean, std, n, best; published and delta
    for the paper suite. A cell without runs has n = 0 and NaN mean."""
    index = pd.MultiIndex.from_product([spec.tasks, spec.conditions], names=["task", "condition"])
    cells = summarize(runs).reindex(index).reset_index()
    cells["n"] = cells["n"].fillna(0).astype(int)
    released = runs.groupby(["task", "condition"])["published"].any()
    cells["released"] = released.reindex(index).fillna(False).astype(bool).to_numpy()
    if layout.with_paper and spec.paper:
        paper = [published_cell(layout.published, spec.published_from, task, condition)
                 for task, condition in index]
        cells["published_mean"] = [np.nan if cell is None else cell["mean"] for cell in paper]
        cells["published_std"] = [np.nan if cell is None else cell["std"] for cell in paper]
        cells["delta"] = cells["mean"] - cells["published_mean"]
        cells = add_verdicts(cells)
    shown = cells["mean"].map(as_shown)   # bold is read off the printed numbers: a tie there is bold twice
    cells["best"] = shown == shown.groupby(cells["task"]).transform("max")
    return cells


def paper_text(row: pd.Series) -> str:
    """`81.9 ± 1.0 (+0.3, agrees)`: the published cell, reproduced minus published, verdict."""
    if np.isnan(row["published_mean"]):
        return "—"
    delta = "" if np.isnan(row["delta"]) else f" ({signed(row['delta'])}, {row['verdict']})"
    return f"{row['published_mean']:.1f} ± {row['published_std']:.1f}{delta}"


def our_text(row: pd.Series) -> str:
    """Our cell; † when its runs started from the authors' released checkpoint."""
    return format_cell(row["mean"], row["std"], row["n"]) + (" †" if row["released"] else "")


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
            line.append(our_text(cell))
            if with_paper:
                line.append(paper_text(cell))
        result.rows.append(line)
    if cells["released"].any():
        result.note = RELEASED_NOTE
    return result


def cost_frame(runs: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """Table 9: pretraining cost (summed over the stages of a lineage) and F1 per condition."""
    cells = cell_frame(runs, cost_spec(layout), layout)
    costs = [pretraining_cost(runs, r.task, r.condition) for r in cells.itertuples()]
    counts = {name: "Int64" for name in COST_FIELDS if name != "wall_time_s"}  # whole numbers in the CSV
    costs = pd.DataFrame(costs, index=cells.index, columns=list(COST_FIELDS))   # no task: no rows, same columns
    cells = pd.concat([cells, costs.astype(counts)], axis=1)
    if layout.with_paper:
        for column in COST_COLUMNS:
            cells[f"published_{column}"] = [_published_cost(layout.published, r.task, r.condition, column)
                                            for r in cells.itertuples()]
    return cells


def pretraining_cost(runs: pd.DataFrame, task: str, condition: str) -> dict[str, float]:
    """Steps, documents, bytes, tokens and seconds of adaptive pretraining behind one condition.

    Every seed of a condition starts from the same checkpoint, so the first run's records that
    has any stand for all (record_checks.check_one_pretraining refuses seeds that differ; a run
    of `dontstop finetune` records none, and a first seed emptied by hand was a row of zeros);
    the baseline adapts nothing and costs nothing.
    """
    found = runs[(runs.task == task) & (runs.condition == condition)]
    if found.empty:
        return dict.fromkeys(COST_FIELDS, np.nan)
    recorded = next((stages for stages in found["pretraining"] if stages), [])
    # The suite's base stage (the mini suite's "RoBERTa") is the base model's own pretraining.
    stages = [stage for stage in recorded if stage.get("kind") != "base"]
    return {name: float(sum(stage.get(name, 0) for stage in stages)) for name in COST_FIELDS}


def _published_cost(published: pd.DataFrame, task: str, condition: str, column: str) -> str:
    paper = published_cell(published, ("9",), task, condition)
    return "—" if paper is None or pd.isna(paper[column]) else paper[column]


def cost_grid(cells: pd.DataFrame, layout: Layout) -> Grid:
    names = layout.names
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
