"""What a comparison over seeds could have detected, and how large the paper's own effect was.

The minimum detectable difference (MDD) of a two-sided Welch test at level alpha with power
1 - beta, from the observed seed standard deviations s_a, s_b over n_a, n_b seeds, is the
usual normal-approximation bound with t quantiles:

    MDD = (t[1 - alpha/2, df] + t[1 - beta, df]) * sqrt(s_a^2 / n_a + s_b^2 / n_b)

with df the Welch-Satterthwaite degrees of freedom. Where the two conditions ran the same seeds
(report/paired.py), the paired t-test's MDD has the same form over the n per-seed differences
d_i = a_i - b_i, with s_d their sample standard deviation (ddof=1) and n - 1 degrees of freedom:

    MDD_paired = (t[1 - alpha/2, n - 1] + t[1 - beta, n - 1]) * s_d / sqrt(n)

Since s_d^2 = s_a^2 + s_b^2 - 2 r s_a s_b, a high correlation r across seeds makes it smaller
than Welch's. A claim whose published effect (the mean,
over the paper's tasks of that table, of the published difference in the claim's direction) is
below the MDD could not have been seen here even if it held exactly as in the paper: it is
"underpowered", not refuted.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from ..conditions import BEST_OTHER, SAME_FILE, Claim
from .published import published_cell
from .tables import Layout

ALPHA = 0.05
POWER = 0.8


def min_detectable_difference(a: list[float], b: list[float], alpha: float = ALPHA,
                              power: float = POWER) -> float:
    """The MDD (same units as the scores) of Welch's test between two samples; NaN below 2 seeds."""
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = np.sqrt(va + vb)
    if se == 0:
        return 0.0
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * se)


def paired_min_detectable_difference(differences: list[float], alpha: float = ALPHA,
                                     power: float = POWER) -> float:
    """The MDD (same units) of the paired t-test over per-seed differences; NaN below 2 pairs."""
    n = len(differences)
    if n < 2:
        return float("nan")
    se = np.std(differences, ddof=1) / np.sqrt(n)
    return float((stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)) * se)


def paper_effect(layout: Layout, claim: Claim) -> float:
    """The claim's published effect: its mean difference (claim direction) over the paper's
    tasks of its table; NaN where the paper prints no such pair."""
    tables = SAME_FILE.get(claim.table, (claim.table,))
    published = layout.published[layout.published.table.isin(tables)]
    own = layout.paper_order(claim.table)   # "best" of Table 5 is against its conditions, not Table 3's ¬DAPT
    differences = []
    for task in published.task.unique():
        cell = {c: published_cell(layout.published, tables[::-1], task, c)
                for c in layout.table_conditions(claim.table)}
        known = {c: row["mean"] for c, row in cell.items() if row is not None}
        if claim.better not in known:
            continue
        others = [v for c, v in known.items() if c != claim.better and c in own]
        worse = max(others, default=np.nan) if claim.worse == BEST_OTHER else known.get(claim.worse, np.nan)
        differences.append(known[claim.better] - worse)
    differences = [d for d in differences if not np.isnan(d)]
    return float(np.mean(differences)) if differences else float("nan")
