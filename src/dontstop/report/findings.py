"""The paper's claims, each checked against this suite's runs: difference, p-value, verdict.

Every difference is signed in the claim's direction (positive supports it), in test-metric
points ×100. The p-value is Welch's two-sided t-test over seeds; the verdict is `holds`
(p < 0.05, positive), `reversed` (p < 0.05, negative), `underpowered` (not significant, and
the paper's own effect for the claim is below the minimum detectable difference of these
seeds: report/power.py), `not significant`, or `missing` (fewer than two seeds on a side).
We report what the runs show, whichever way it falls.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..experiment import BEST_OTHER, Claim
from ..fileio import UserError, read_json
from .power import POWER, min_detectable_difference, paper_effect
from .render import Grid, format_p
from .runs import scores, suite_tasks, task_names, welch
from .tables import Layout, tasks_of_table

ALPHA = 0.05
GENERAL = "general"  # the corpus standing in for the base model's pretraining data
COLUMNS = ["claim", "task", "comparison", "difference", "p_value", "verdict", "mdd", "paper_effect"]


def verdict(difference: float, p_value: float, mdd: float = np.nan, effect: float = np.nan) -> str:
    if np.isnan(p_value):
        return "missing"
    if p_value < ALPHA:
        return "holds" if difference > 0 else "reversed"
    return "underpowered" if effect > 0 and mdd > effect else "not significant"


def compare(runs: pd.DataFrame, claim: str, task: str, better: str, worse: str,
            names: dict[str, str], effect: float = np.nan) -> dict:
    a, b = scores(runs, task, better), scores(runs, task, worse)
    difference = np.mean(a) - np.mean(b) if a and b else np.nan
    p_value, mdd = welch(a, b)[1], min_detectable_difference(a, b)
    return {"claim": claim, "task": task, "comparison": f"{names[better]} − {names[worse]}",
            "difference": difference, "p_value": p_value, "verdict": verdict(difference, p_value, mdd, effect),
            "mdd": mdd, "paper_effect": effect}


def strongest_other(runs: pd.DataFrame, task: str, condition: str, candidates: tuple[str, ...]) -> str:
    """The best-scoring condition of `candidates` other than `condition` on this task."""
    others = [c for c in candidates if c != condition]
    with_runs = [c for c in others if scores(runs, task, c)]
    return max(with_runs, key=lambda c: np.mean(scores(runs, task, c)), default=others[0])


def load_overlap(path: Path) -> dict[str, float] | None:
    """Each domain's vocabulary overlap (%) with the general corpus, as written by `dontstop
    analyze vocab` (vocab_overlap.csv: a corpus x corpus matrix; or its .json); lower =
    farther from the base model's data. None when the file does not exist, or compares only
    domain corpora (the paper suite: RoBERTa's own data is not public, so there is no "PT")."""
    if not path.exists():
        return None
    if path.suffix == ".json":
        matrix = pd.DataFrame(read_json(path).get("overlap_percent", {}))
    else:
        matrix = pd.read_csv(path, index_col=0)
    if matrix.empty or [str(i) for i in matrix.index] != [str(c) for c in matrix.columns]:
        raise UserError(f"{path}: not a corpus x corpus matrix (expected `dontstop analyze vocab` output)")
    if GENERAL not in matrix.columns:
        return None
    return {str(k): float(v) for k, v in matrix[GENERAL].items() if k != GENERAL}


def farthest_domain_gains_most(runs: pd.DataFrame, suite: str, overlap: dict[str, float] | None,
                               tasks: tuple[str, ...], claim: Claim) -> dict:
    """The gain of `better` over `worse` (DAPT over the baseline) is largest on the domain with
    the least vocabulary overlap with the base model's data."""
    row = {"claim": claim.claim, "task": "all",
           "comparison": "gain on farthest domain − largest gain elsewhere",
           "difference": np.nan, "p_value": np.nan, "mdd": np.nan, "paper_effect": np.nan}
    gains = domain_gains(runs, suite, tasks, claim.better, claim.worse)
    known = {d: g for d, g in gains.items() if overlap and d in overlap}
    if len(known) < 2:
        missing = "no vocabulary-overlap file" if overlap is None else "fewer than two domains measured"
        return {**row, "verdict": f"missing ({missing})"}
    farthest = min(known, key=overlap.get)
    row["task"] = f"{farthest} (overlap {overlap[farthest]:g}%)"
    row["difference"] = known[farthest] - max(g for d, g in known.items() if d != farthest)
    # One gain per domain: a sign, not a test over seeds.
    return {**row, "verdict": "holds" if row["difference"] > 0 else "reversed"}


def domain_gains(runs: pd.DataFrame, suite: str, tasks: tuple[str, ...], better: str,
                 worse: str) -> dict[str, float]:
    """Mean over a domain's tasks of mean(better) − mean(worse)."""
    by_domain: dict[str, list[float]] = {}
    for key in tasks:
        dapt, base = scores(runs, key, better), scores(runs, key, worse)
        if dapt and base:
            by_domain.setdefault(suite_tasks(suite)[key].domain, []).append(np.mean(dapt) - np.mean(base))
    return {domain: float(np.mean(gains)) for domain, gains in by_domain.items()}


def findings_frame(runs: pd.DataFrame, layout: Layout, overlap: dict[str, float] | None) -> pd.DataFrame:
    """One row per (claim, task), the claims of every condition folder in their `order`."""
    rows = []
    for claim in layout.conditions.claims():
        tasks = tasks_of_table(layout, claim.table)
        if claim.test == "farthest_domain":
            rows.append(farthest_domain_gains_most(runs, layout.suite, overlap, tasks, claim))
            continue
        candidates, effect = layout.table_conditions(claim.table), paper_effect(layout, claim)
        for task in tasks:
            worse = (strongest_other(runs, task, claim.better, candidates)
                     if claim.worse == BEST_OTHER else claim.worse)
            rows.append(compare(runs, claim.claim, task, claim.better, worse, layout.names, effect))
    return pd.DataFrame(rows, columns=COLUMNS)


def findings_grid(frame: pd.DataFrame, layout: Layout) -> Grid:
    names = task_names(layout.suite)
    rows = [[r.claim, names.get(r.task, r.task), r.comparison, signed(r.difference), format_p(r.p_value),
             unsigned(r.mdd), signed(r.paper_effect), r.verdict] for r in frame.itertuples()]
    note = (f"Difference signed in the claim's direction (positive supports it), test metric ×100; "
            f"p from Welch's two-sided t-test over seeds (scipy); verdict at α = {ALPHA}. MDD: the "
            f"smallest difference these seeds detect with {POWER:.0%} power (Welch); paper: the "
            f"claim's mean published effect over the paper's tasks; underpowered: paper < MDD.")
    return Grid(["Claim", "Task", "Comparison", "Difference", "p", "MDD", "Paper", "Verdict"], rows, note=note)


def signed(value: float) -> str:
    return "—" if np.isnan(value) else f"{value:+.1f}"


def unsigned(value: float) -> str:
    return "—" if np.isnan(value) else f"{value:.1f}"
