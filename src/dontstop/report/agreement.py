"""Does the rerun agree with the paper? Every reproduced cell against its published one.

The paper gives mean ± std over 5 seeds (taken as a sample std, ddof=1, like ours: the paper
does not say); we have our seeds' scores. Welch's t-test from the two summaries
(scipy.stats.ttest_ind_from_stats, unequal variances, two-sided) says, per cell: "agrees"
(p >= 0.05: no detectable difference), "differs (+)" or "differs (−)" (p < 0.05; the sign is
ours minus the paper's), or "too few seeds" (fewer than 2 of ours). "agrees" is
the absence of evidence of a difference, at the power that the seeds give, not a proof of
equality; a cell with no runs has no verdict.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .render import Grid, format_cell, format_p, signed

ALPHA = 0.05
PAPER_SEEDS = 5   # the paper's cells are mean ± std over 5 seeds
COLUMNS = ["task", "condition", "table", "mean", "std", "n", "published_mean", "published_std",
           "delta", "p_value", "verdict", "released"]


def verdict(mean: float, std: float, n: int, published_mean: float, published_std: float) -> tuple[float, str]:
    """(p, verdict) of our cell against the published one; (NaN, "") when either is missing."""
    if n == 0 or np.isnan(published_mean):
        return np.nan, ""
    if n < 2:
        return np.nan, "too few seeds"
    # A published std of 0.0 (printed to one decimal) is at most 0.05: never claim it is exact.
    result = stats.ttest_ind_from_stats(mean, std, n, published_mean, max(published_std, 0.05),
                                        PAPER_SEEDS, equal_var=False)
    p = float(result.pvalue)
    if p >= ALPHA:
        return p, "agrees"
    return p, "differs (+)" if mean > published_mean else "differs (−)"


def add_verdicts(cells: pd.DataFrame) -> pd.DataFrame:
    """`p_value` and `verdict` columns on a cell frame that has published_mean/std."""
    results = [verdict(r["mean"], r["std"], r["n"], r["published_mean"], r["published_std"])
               for _, r in cells.iterrows()]
    return cells.assign(p_value=[p for p, _ in results], verdict=[v for _, v in results])


def agreement_frame(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per reproduced cell that has a published value, from every table's cells."""
    frames = [cells.assign(table=name) for name, cells in tables.items() if "verdict" in cells]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    every = pd.concat(frames, ignore_index=True)
    every = every[(every.n > 0) & every.published_mean.notna()]
    every = every.drop_duplicates(["task", "condition"]).reindex(columns=COLUMNS).reset_index(drop=True)
    return every.astype({"n": int})   # concat of frames with missing cells makes it float


def agreement_grid(frame: pd.DataFrame, names: dict[str, str]) -> Grid:
    rows = [[names[r.task], names[r.condition], format_cell(r.mean, r.std, r.n) + (" †" if r.released else ""),
             f"{r.published_mean:.1f} ± {r.published_std:.1f}", signed(r.delta), format_p(r.p_value),
             r.verdict] for r in frame.itertuples()]
    return Grid(["Task", "Condition", "Ours", "Paper (5 seeds)", "Δ", "p", "Verdict"], rows,
                note=f"{summary(frame)} Welch's t-test from the summaries (ours over our seeds, the "
                     f"paper's over 5), α = {ALPHA}; † fine-tuned from the authors' released checkpoint.")


def summary(frame: pd.DataFrame) -> str:
    """`12 cells: 9 agree with the paper, 2 differ (1 higher, 1 lower), 1 has too few seeds.`"""
    counts = frame.verdict.value_counts()
    higher, lower = counts.get("differs (+)", 0), counts.get("differs (−)", 0)
    return (f"{len(frame)} reproduced cells with a published value: {counts.get('agrees', 0)} agree "
            f"with the paper, {higher + lower} differ ({higher} higher, {lower} lower), "
            f"{counts.get('too few seeds', 0)} have too few seeds.")
