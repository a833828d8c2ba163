"""The representation-probe table (beyond the paper): a frozen-encoder linear probe of every
checkpoint on every task (finetune/probe.py), beside the fine-tuning table, and how well the
probe's gains over the baseline track the fine-tuned gains.

A probe is deterministic (no seeds): a cell is one number. The correlation is over the
(task, condition) cells that have both a probe and fine-tuning runs, gains against the
baseline of the same task; Pearson and Spearman (scipy). Where either gain is the same in every
cell (a small task's probes often all score alike) there is no correlation: NaN, and the note
says why (scipy warned and the note printed `r = nan`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..conditions import Conditions
from ..fileio import UserError
from ..recipes import FinetuneRecipe
from ..records import PROBE_FILE, read_probe
from ..results_tree import result_files
from ..suites import Suite
from .render import Grid, as_shown, signed
from .runs import EQUAL_WITHIN, check_lineage, summarize
from .tables import Layout

COLUMNS = ["task", "condition", "probe", "probe_gain", "finetune", "finetune_gain"]


def load_probes(results_dir: str | Path, suite: Suite, conditions: Conditions) -> pd.DataFrame:
    """Every probe.json of the suite whose condition is a folder of experiments/, score in percent."""
    rows = []
    # the texts' length a probe of the suite reads (the runner probes with the fine-tuning recipe's)
    max_length = FinetuneRecipe(**{**suite.finetune, "model": "", "task": "", "suite": suite.name}).max_length
    for path in result_files(Path(results_dir) / suite.name, PROBE_FILE):
        record = read_probe(path)   # it sits in the folder of its task and condition
        task = suite.task_table.get(record.task)
        if task is not None and record.metric != task.metric:   # an accuracy probe was the bold best
            raise UserError(f"{path}: field 'metric' is {record.metric!r}: the suite scores {record.task} "
                            f"by {task.metric}")
        check_lineage(path, record.lineage, record.task, record.condition, suite, conditions, released_too=True)
        if record.max_length != max_length:   # `status` called it stale; the probe table showed it
            raise UserError(f"{path}: field 'max_length' is {record.max_length}, but the suite probes texts cut at "
                            f"finetune.max_length {max_length} (`status` calls it stale: redo it with "
                            "`dontstop run ... --rerun-stale`)")
        if record.condition in conditions:
            rows.append({"task": record.task, "condition": record.condition, "probe": 100 * record.test_metric})
    return pd.DataFrame(rows, columns=["task", "condition", "probe"])


def probe_frame(probes: pd.DataFrame, runs: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """One row per probed cell: probe score, fine-tuned mean, and both gains over the baseline."""
    baseline = layout.conditions.baseline
    finetuned = summarize(runs)["mean"] if len(runs) else pd.Series(dtype=float)
    rows = []
    for probe in probes.itertuples():
        base = probes[(probes.task == probe.task) & (probes.condition == baseline)].probe
        mean = finetuned.get((probe.task, probe.condition), np.nan)
        base_mean = finetuned.get((probe.task, baseline), np.nan)
        rows.append({"task": probe.task, "condition": probe.condition, "probe": probe.probe,
                     "probe_gain": probe.probe - base.iloc[0] if len(base) else np.nan,
                     "finetune": mean, "finetune_gain": mean - base_mean})
    rank = {key: i for i, key in enumerate(layout.names)}   # tasks in registry order, then conditions
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values(["task", "condition"], key=lambda column: column.map(rank), ignore_index=True)


def _correlated_cells(frame: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The (task, condition) cells with both a probe gain and a fine-tuned gain."""
    return frame[(frame.condition != baseline)].dropna(subset=["probe_gain", "finetune_gain"])


def correlation(frame: pd.DataFrame, baseline: str) -> tuple[float, float, int]:
    """(Pearson r, Spearman rho, cells) of probe gain against fine-tuned gain."""
    cells = _correlated_cells(frame, baseline)
    if len(cells) < 3 or constant_gain(cells):
        return np.nan, np.nan, len(cells)
    return (float(stats.pearsonr(cells.probe_gain, cells.finetune_gain)[0]),
            float(stats.spearmanr(cells.probe_gain, cells.finetune_gain)[0]), len(cells))


def constant_gain(cells: pd.DataFrame) -> str | None:
    """'probe' or 'fine-tuned' when that gain is the same in every cell (no correlation), else None."""
    for column, name in (("probe_gain", "probe"), ("finetune_gain", "fine-tuned")):
        if np.ptp(cells[column].to_numpy()) <= EQUAL_WITHIN:
            return name
    return None


def correlation_note(frame: pd.DataFrame, baseline: str) -> str:
    """The probe table's sentence on the correlation, or why there is none."""
    r, rho, n = correlation(frame, baseline)
    if n < 3:
        return f"Too few cells with fine-tuning runs ({n}) for a correlation."
    if np.isnan(r):
        constant = constant_gain(_correlated_cells(frame, baseline))
        return (f"No correlation of probe gain and fine-tuned gain: the {constant} gain is the "
                f"same in all {n} cells with fine-tuning runs.")
    return ("Across the cells with fine-tuning runs, probe gain vs fine-tuned gain: "
            f"Pearson r = {r:.2f}, Spearman ρ = {rho:.2f} ({n} cells).")


def probe_grid(frame: pd.DataFrame, layout: Layout) -> Grid:
    """Tasks as rows, conditions as columns: `probe (gain)`; the best probe of each task in bold."""
    names = layout.names
    conditions = [c for c in layout.conditions.display if c in set(frame.condition)]
    tasks = list(dict.fromkeys(frame.task))
    cells = frame.set_index(["task", "condition"])
    grid = Grid(["Task"] + [names[c] for c in conditions], [])
    for i, task in enumerate(tasks):
        line = [names[task]]
        best = cells.loc[task].probe.map(as_shown).max()   # as printed: two cells reading 45.8 are both bold
        for j, condition in enumerate(conditions, start=1):
            if (task, condition) not in cells.index:
                line.append("—")
                continue
            cell = cells.loc[(task, condition)]
            gain = "" if condition == layout.conditions.baseline or np.isnan(cell.probe_gain) else f" ({signed(cell.probe_gain)})"
            line.append(f"{cell.probe:.1f}{gain}")
            if as_shown(cell.probe) == best:
                grid.bold.add((i, j))
        grid.rows.append(line)
    grid.note = ("Frozen-encoder linear probe: mean-pooled last hidden states, logistic regression "
                 "(deterministic, no seeds), test metric ×100, gain over the baseline in brackets. "
                 + correlation_note(frame, layout.conditions.baseline))
    return grid
