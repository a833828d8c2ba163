"""Two conditions compared seed by seed, and many such comparisons at once (Holm).

The runs of a task that share a fine-tuning seed are matched pairs (the seed fixes the head's
initial weights, the batch order and the dropout stream, whatever checkpoint the run starts
from; docs/mini_study.md).

Over the n seeds both conditions ran (n >= MIN_PAIRS), with d_i = a_i - b_i: `difference` is
the mean of d, `r_seeds` the Pearson correlation of a and b across those seeds, `p_paired`
Student's paired two-sided t-test (scipy's ttest_rel: t = mean(d) / (s_d / sqrt(n)), n - 1
df) and `mdd_paired` its minimum detectable difference (report/power.py). With fewer pairs
every column is NaN and the comparison falls back to Welch's test over all seeds.
`compared` is one comparison as the findings and the significance table make it; `holm` adjusts
the p-values of every claim tested in one findings table together.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..fileio import UserError
from .power import paired_min_detectable_difference
from .runs import EQUAL_WITHIN, p_without_spread, scores, welch

MIN_PAIRS = 3
PAIRED_COLUMNS = ["n_pairs", "difference", "r_seeds", "p_paired", "mdd_paired"]


def seed_pairs(runs: pd.DataFrame, task: str, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    """The scores of conditions `a` and `b` on `task` at the seeds both ran, in seed order."""
    sides = []
    for condition in (a, b):
        cell = runs[(runs.task == task) & (runs.condition == condition)]
        twice = cell[cell.seed.duplicated(keep=False)]
        if len(twice):
            raise UserError(f"{' and '.join(twice.path)}: two runs of {task}/{condition} with seed "
                            f"{twice.seed.iloc[0]}; keep one")
        sides.append(cell.set_index("seed").score)
    shared = sides[0].index.intersection(sides[1].index).sort_values()
    return sides[0][shared].to_numpy(float), sides[1][shared].to_numpy(float)


def paired_statistics(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """PAIRED_COLUMNS of matched scores a, b (same seed at the same position)."""
    n = len(a)
    if n < MIN_PAIRS:
        return {"n_pairs": n, **{column: float("nan") for column in PAIRED_COLUMNS[1:]}}
    d = a - b
    if np.ptp(d) <= EQUAL_WITHIN:
        p = p_without_spread(float(d.mean()))   # the same difference on every seed
    else:
        p = float(stats.ttest_rel(a, b).pvalue)
    return {"n_pairs": n, "difference": float(d.mean()), "r_seeds": correlation(a, b), "p_paired": p,
            "mdd_paired": paired_min_detectable_difference(d)}


def compared(runs: pd.DataFrame, task: str, a: str, b: str) -> dict[str, float | str]:
    """Conditions `a` − `b` on `task` as the findings and the significance table test them: the
    PAIRED_COLUMNS over their shared seeds, Welch's `t` and `p_value` over all seeds, and `test`:
    "paired" with at least MIN_PAIRS shared seeds (`difference` the mean per-seed difference),
    else "welch" (`difference` the difference of the means; NaN without runs on a side)."""
    scores_a, scores_b = scores(runs, task, a), scores(runs, task, b)
    t, p = welch(scores_a, scores_b)
    row = {**paired_statistics(*seed_pairs(runs, task, a, b)), "t": t, "p_value": p}
    row["test"] = "paired" if row["n_pairs"] >= MIN_PAIRS else "welch"
    if row["test"] == "welch":
        row["difference"] = np.mean(scores_a) - np.mean(scores_b) if scores_a and scores_b else np.nan
    return row


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r across seeds; NaN when either side has the same score on every seed."""
    if np.ptp(a) <= EQUAL_WITHIN or np.ptp(b) <= EQUAL_WITHIN:
        return float("nan")
    return float(stats.pearsonr(a, b).statistic)


def holm(p_values: list[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment over the p-values that are not NaN (NaN stays NaN).

    With the m tested p-values sorted, p_(1) <= ... <= p_(m), the adjusted p_(i) is
    max over j <= i of min(1, (m - j + 1) p_(j)): rejecting where it is below alpha keeps
    the chance of any false claim among the m at most alpha.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return adjusted
