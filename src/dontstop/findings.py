"""The paper's claims, each checked against this suite's runs: difference, p-value, verdict.

Every difference is signed in the claim's direction (positive supports it), in test-metric
points ×100. The p-value is Welch's two-sided t-test over seeds; the verdict is `holds`
(p < 0.05, positive), `reversed` (p < 0.05, negative), `not significant`, or `missing`
(fewer than two seeds on a side). We report what the runs show, whichever way it falls.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .aggregate import CONDITIONS, scores, suite_tasks, task_names, welch
from .fileio import UserError, read_json
from .tables import KNN_CONDITIONS, TABLE5_CONDITIONS, Grid, format_p, table_specs

ALPHA = 0.05
GENERAL = "general"  # the corpus standing in for the base model's pretraining data
COLUMNS = ["claim", "task", "comparison", "difference", "p_value", "verdict"]


def pair_claims(suite: str) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(claim, condition that should score higher, the other, tasks it is tested on)."""
    specs = {spec.name: spec.tasks for spec in table_specs(suite)}
    main, knn = specs["table5"], specs["table8"]
    claims = [("DAPT beats the baseline", "dapt", "baseline", main),
              ("TAPT beats the baseline", "tapt", "baseline", main),
              ("¬DAPT is worse than DAPT", "dapt", "not_dapt", main),
              ("Transfer-TAPT is worse than TAPT", "tapt", "transfer_tapt", specs["table6"]),
              ("Curated-TAPT beats TAPT", "curated_tapt", "tapt", specs["table7"])]
    for reference in ("tapt", "rand_tapt"):
        claims += [(f"kNN-TAPT beats {CONDITIONS[reference]}", knn_condition, reference, knn)
                   for knn_condition in KNN_CONDITIONS]
    claims.append(("kNN-TAPT rises with k", KNN_CONDITIONS[-1], KNN_CONDITIONS[0], knn))
    return claims


def verdict(difference: float, p_value: float) -> str:
    if np.isnan(p_value):
        return "missing"
    if p_value >= ALPHA:
        return "not significant"
    return "holds" if difference > 0 else "reversed"


def compare(runs: pd.DataFrame, claim: str, task: str, better: str, worse: str) -> dict:
    a, b = scores(runs, task, better), scores(runs, task, worse)
    difference = np.mean(a) - np.mean(b) if a and b else np.nan
    p_value = welch(a, b)[1]
    return {"claim": claim, "task": task, "comparison": f"{CONDITIONS[better]} − {CONDITIONS[worse]}",
            "difference": difference, "p_value": p_value, "verdict": verdict(difference, p_value)}


def dapt_tapt_is_best(runs: pd.DataFrame, task: str) -> dict:
    """DAPT + TAPT against the strongest other condition of Table 5 on this task."""
    others = [c for c in TABLE5_CONDITIONS if c != "dapt_tapt" and scores(runs, task, c)]
    runner_up = max(others, key=lambda c: np.mean(scores(runs, task, c)), default="dapt")
    return compare(runs, "DAPT + TAPT is best", task, "dapt_tapt", runner_up)


def load_overlap(path: Path) -> dict[str, float] | None:
    """Each domain's vocabulary overlap (%) with the general corpus, as written by `dontstop
    analyze vocab` (vocab_overlap.csv: a corpus x corpus matrix; or its .json); lower =
    farther from the base model's data. None when the file does not exist."""
    if not path.exists():
        return None
    if path.suffix == ".json":
        matrix = pd.DataFrame(read_json(path).get("overlap_percent", {}))
    else:
        matrix = pd.read_csv(path, index_col=0)
    if GENERAL not in matrix.columns:
        raise UserError(f"{path}: no {GENERAL!r} column (expected `dontstop analyze vocab` output)")
    return {str(k): float(v) for k, v in matrix[GENERAL].items() if k != GENERAL}


def farthest_domain_gains_most(runs: pd.DataFrame, suite: str, overlap: dict[str, float] | None,
                               tasks: tuple[str, ...]) -> dict:
    """DAPT's gain over the baseline is largest on the domain with the least vocabulary overlap."""
    row = {"claim": "DAPT gains most on the domain farthest from the base model's data",
           "task": "all", "comparison": "gain on farthest domain − largest gain elsewhere",
           "difference": np.nan, "p_value": np.nan}
    gains = domain_gains(runs, suite, tasks)
    known = {d: g for d, g in gains.items() if overlap and d in overlap}
    if len(known) < 2:
        missing = "no vocabulary-overlap file" if overlap is None else "fewer than two domains measured"
        return {**row, "verdict": f"missing ({missing})"}
    farthest = min(known, key=overlap.get)
    row["task"] = f"{farthest} (overlap {overlap[farthest]:g}%)"
    row["difference"] = known[farthest] - max(g for d, g in known.items() if d != farthest)
    # One gain per domain: a sign, not a test over seeds.
    return {**row, "verdict": "holds" if row["difference"] > 0 else "reversed"}


def domain_gains(runs: pd.DataFrame, suite: str, tasks: tuple[str, ...]) -> dict[str, float]:
    """Mean over a domain's tasks of mean(DAPT) − mean(baseline)."""
    by_domain: dict[str, list[float]] = {}
    for key in tasks:
        dapt, base = scores(runs, key, "dapt"), scores(runs, key, "baseline")
        if dapt and base:
            by_domain.setdefault(suite_tasks(suite)[key].domain, []).append(np.mean(dapt) - np.mean(base))
    return {domain: float(np.mean(gains)) for domain, gains in by_domain.items()}


def findings_frame(runs: pd.DataFrame, suite: str, overlap: dict[str, float] | None) -> pd.DataFrame:
    """One row per (claim, task): the pairwise claims, then DAPT + TAPT is best, then the
    farthest-domain claim."""
    main = table_specs(suite)[0].tasks
    rows = [compare(runs, claim, task, better, worse)
            for claim, better, worse, tasks in pair_claims(suite) for task in tasks]
    rows += [dapt_tapt_is_best(runs, task) for task in main]
    rows.append(farthest_domain_gains_most(runs, suite, overlap, main))
    return pd.DataFrame(rows, columns=COLUMNS)


def findings_grid(frame: pd.DataFrame, suite: str) -> Grid:
    names = task_names(suite)
    rows = [[r.claim, names.get(r.task, r.task), r.comparison,
             "—" if np.isnan(r.difference) else f"{r.difference:+.1f}", format_p(r.p_value), r.verdict]
            for r in frame.itertuples()]
    note = (f"Difference signed in the claim's direction (positive supports it), test metric ×100; "
            f"p from Welch's two-sided t-test over seeds (scipy); verdict at α = {ALPHA}.")
    return Grid(["Claim", "Task", "Comparison", "Difference", "p", "Verdict"], rows, note=note)
