"""The significance table: each condition tested against the baseline, and against the
conditions its folder's `significance_against` names, on every task.

Tested as the findings test a claim (report/findings.py): paired by seed where both conditions
ran at least MIN_PAIRS of the same fine-tuning seeds (report/paired.py: a seed fixes the head's
initial weights, the batch order and the dropout stream, so two conditions' runs of one seed
are matched pairs), else Welch's t-test over all seeds. Welch's p stays on every row.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .paired import MIN_PAIRS, compared
from .render import Grid, format_p, signed
from .runs import scores
from .tables import Layout

TITLE = "Significance over seeds (paired by seed, else Welch's t-test)"

SIGNIFICANCE_COLUMNS = ["task", "condition", "reference", "test", "difference", "n", "n_reference", "n_pairs",
                        "r_seeds", "p_paired", "t", "p_value"]


def significance_frame(runs: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """Every condition vs the baseline, then the pairs a condition's `significance_against`
    names (DAPT + TAPT vs DAPT and vs TAPT): tested as findings are (report/findings.py), paired
    by seed where both ran at least MIN_PAIRS of the same seeds (`test` "paired": `difference`
    the mean per-seed difference, `p_paired`, `r_seeds`), else Welch's test over all seeds
    (`test` "welch": the difference of means); Welch's `t` and `p_value` on every row."""
    conditions = layout.conditions
    pairs = [(e.condition, conditions.baseline) for e in conditions if e.condition != conditions.baseline]
    pairs += [(e.condition, other) for e in conditions for other in e.significance_against]
    rows = []
    for task in layout.tasks:
        for condition, reference in pairs:
            a, b = scores(runs, task, condition), scores(runs, task, reference)
            if a and b:
                rows.append({"task": task, "condition": condition, "reference": reference, "n": len(a),
                             "n_reference": len(b), **compared(runs, task, condition, reference)})
    return pd.DataFrame(rows, columns=SIGNIFICANCE_COLUMNS)


def significance_grid(frame: pd.DataFrame, layout: Layout) -> Grid:
    names = layout.names
    rows = [[names[r.task], names[r.condition], names[r.reference], signed(r.difference),
             f"{r.n} / {r.n_reference}", r.test, format_p(r.p_paired), format_p(r.p_value),
             "—" if np.isnan(r.r_seeds) else f"{r.r_seeds:.2f}"] for r in frame.itertuples()]
    deciding = frame.p_paired.where(frame.test == "paired", frame.p_value)
    note = (f"Difference = condition minus reference, test metric ×100. Test `paired`: both ran at least "
            f"{MIN_PAIRS} of the same fine-tuning seeds; the difference is the mean per-seed difference over "
            "them, p the paired t-test's (scipy.stats.ttest_rel, two-sided), r the correlation of the two "
            "across those seeds. Test `welch`: the difference of means and Welch's t-test (scipy.stats."
            "ttest_ind, equal_var=False, two-sided) over all seeds; its p is shown on every row. Bold: the "
            "p of the row's test below 0.05, unadjusted (findings.md adjusts its claims for their number).")
    bold = {(i, 6 if test == "paired" else 7) for i, (test, p) in enumerate(zip(frame.test, deciding)) if p < 0.05}
    return Grid(["Task", "Condition", "Reference", "Difference", "n / n ref.", "Test", "p (paired)", "p (Welch)",
                 "r"], rows, bold=bold, note=note)
