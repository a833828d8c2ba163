"""The paper's claims, each checked against this suite's runs: difference, p-value, verdict.

Every difference is signed in the claim's direction (positive supports it), in test-metric
points ×100. Where both conditions ran at least 3 of the same seeds, the comparison is paired
by seed (report/paired.py): the difference is the mean per-seed difference over those seeds
and the verdict comes from the paired t-test (`test` = `paired`); otherwise the difference is
that of the means and the verdict comes from Welch's two-sided t-test over all seeds (`welch`).
Welch's p and MDD are kept beside the paired ones on every row. The verdict is `holds`
(p < 0.05, positive), `reversed` (p < 0.05, negative), `underpowered` (not significant, and
the paper's own effect for the claim is below the minimum detectable difference of the test
that decided: report/power.py), `not significant`, or `missing` (fewer than two seeds on a
side). `p_holm` adjusts the deciding p-values of all tested rows together (Holm); the verdict
stays per claim, the note says how many hold after the adjustment.
A claim that a condition is best of its table ("DAPT + TAPT is best") compares it with every
other condition of that table and shows the comparison that supports it least
(`beats_every_other`): it holds only when it beats each of them, and is `missing` where one of
them has no runs on the task.
We report what the runs show, whichever way it falls.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..conditions import BEST_OTHER, Claim
from ..fileio import UserError, read_json
from ..tasks import GENERAL_TEXT as GENERAL   # the corpus standing in for the base model's pretraining data
from .paired import MIN_PAIRS, compared, holm
from .power import POWER, min_detectable_difference, paper_effect
from .render import Grid, format_p, signed
from .runs import scores
from .tables import Layout, tasks_of_table

ALPHA = 0.05
# The verdict of a row whose difference has no test over seeds (the farthest-domain claim), by its sign.
UNTESTED_SIGN = {True: "in direction (no test)", False: "against (no test)"}
COLUMNS = ["claim", "task", "comparison", "difference", "p_value", "verdict", "mdd", "paper_effect",
           "test", "n_pairs", "r_seeds", "p_paired", "mdd_paired", "p_holm"]


def verdict(difference: float, p_value: float, mdd: float = np.nan, effect: float = np.nan) -> str:
    if np.isnan(p_value):
        return "missing"
    if p_value < ALPHA:
        return "holds" if difference > 0 else "reversed"
    return "underpowered" if effect > 0 and mdd > effect else "not significant"


# The columns of the test that decides a row (its `test`): its p-value and its minimum detectable
# difference; `deciding` picks the same columns for a whole frame.
DECIDED_BY = {"paired": ("p_paired", "mdd_paired"), "welch": ("p_value", "mdd")}


def compare(runs: pd.DataFrame, claim: str, task: str, better: str, worse: str,
            names: dict[str, str], effect: float = np.nan) -> dict:
    row = {"claim": claim, "task": task, "comparison": f"{names[better]} − {names[worse]}",
           "mdd": min_detectable_difference(scores(runs, task, better), scores(runs, task, worse)),
           "paper_effect": effect, **compared(runs, task, better, worse)}
    p_value, mdd = (row[column] for column in DECIDED_BY[row["test"]])
    return {**row, "verdict": verdict(row["difference"], p_value, mdd, effect)}


def deciding(frame: pd.DataFrame, paired: str, welch_: str) -> pd.Series:
    """Per row, column `paired` where the paired test decided, else `welch_`."""
    return frame[paired].where(frame.test == "paired", frame[welch_])


def beats_every_other(runs: pd.DataFrame, claim: Claim, task: str, layout: Layout, effect: float) -> dict:
    """`claim.better` is best of its table when it beats each other condition of that table (of
    Table 5: RoBERTa, DAPT and TAPT; not Table 3's ¬DAPT, printed in the same file): an
    intersection-union test, which holds at level α when every one of the comparisons holds at
    α, unadjusted. The row is the comparison that supports the claim least, the largest
    one-sided p of better > other: it `holds` only when every comparison does, is `reversed`
    when some other condition beats `better`, and names that condition. A condition without a
    run on this task is not compared, and `better` cannot be shown best without it: a row
    that would hold is `missing (no <condition> runs)` (with TAPT's runs lost, DAPT + TAPT
    "held" as best on beating RoBERTa and DAPT alone)."""
    others = [c for c in layout.paper_order(claim.table) if c != claim.better]
    with_runs = [c for c in others if scores(runs, task, c)] or others[:1]
    rows = [compare(runs, claim.claim, task, claim.better, other, layout.names, effect) for other in with_runs]
    row = max(rows, key=one_sided_p)
    unrun = [layout.names[c] for c in others if c not in with_runs]
    if unrun and row["verdict"] == "holds":
        row["verdict"] = f"missing (no {', '.join(unrun)} runs)"
    return row


def one_sided_p(row: dict) -> float:
    """The p-value of the test that decided `row`, one-sided in the claim's direction; 1 when
    the comparison could not be tested."""
    p_value = row[DECIDED_BY[row["test"]][0]]
    if np.isnan(p_value):
        return 1.0
    return p_value / 2 if row["difference"] > 0 else 1 - p_value / 2


def load_overlap(path: Path) -> dict[str, float] | None:
    """Each domain's vocabulary overlap (%) with the general corpus, as written by `dontstop
    analyze vocab` (vocab_overlap.csv: a corpus x corpus matrix; or its .json); lower =
    farther from the base model's data. None when the file does not exist, or compares only
    domain corpora (the paper suite: RoBERTa's own data is not public, so there is no "PT")."""
    if not path.exists():
        return None
    wrong = UserError(f"{path}: not a corpus x corpus matrix of percentages (expected `dontstop analyze vocab` "
                      "output)")   # a NaN or a word in a cell gave a verdict, or a traceback
    try:
        if path.suffix == ".json":
            data = read_json(path)
            matrix = pd.DataFrame(data.get("overlap_percent", {}) if isinstance(data, dict) else {})
        else:
            matrix = pd.read_csv(path, index_col=0)
        matrix = matrix.astype(float)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError, TypeError):
        raise wrong from None
    if matrix.empty or [str(i) for i in matrix.index] != [str(c) for c in matrix.columns] \
            or not ((matrix >= 0) & (matrix <= 100)).all().all():
        raise wrong
    # fractions (a diagonal of 1.0) read as 0.4% overlaps; an asymmetric one flipped the verdict
    for row in matrix.index:
        if abs(matrix.loc[row, row] - 100) > 0.01:
            raise UserError(f"{wrong}: a corpus overlaps itself by 100, but {row},{row} is {matrix.loc[row, row]:g} "
                            "(fractions, not percentages?)")
        for column in matrix.columns:
            if abs(matrix.loc[row, column] - matrix.loc[column, row]) > 0.01:
                raise UserError(f"{wrong}: {row},{column} is {matrix.loc[row, column]:g} but {column},{row} is "
                                f"{matrix.loc[column, row]:g} (an overlap is one number for both)")
    if GENERAL not in matrix.columns:
        return None
    return {str(k): float(v) for k, v in matrix[GENERAL].items() if k != GENERAL}


def farthest_domain_gains_most(runs: pd.DataFrame, layout: Layout, overlap: dict[str, float] | None,
                               tasks: tuple[str, ...], claim: Claim) -> dict:
    """The gain of `better` over `worse` (DAPT over the baseline) is largest on the domain with
    the least vocabulary overlap with the base model's data."""
    row = {"claim": claim.claim, "task": "all",
           "comparison": "gain on farthest domain − largest gain elsewhere",
           "difference": np.nan, "p_value": np.nan, "mdd": np.nan, "paper_effect": np.nan, "test": "none"}
    gains = domain_gains(runs, layout, tasks, claim.better, claim.worse)
    known = {d: g for d, g in gains.items() if overlap and d in overlap}
    unmeasured = sorted(set(gains) - set(known))   # the farthest of the others is no verdict on all of them
    # A domain of the table's tasks with no gain (no runs of one side on any of its tasks) was left
    # out: with the farthest domain's DAPT runs gone, the next farthest was named farthest and decided it.
    ungained = [d for d in dict.fromkeys(layout.tasks[key].domain for key in tasks) if d not in gains]
    if len(known) < 2 or (overlap is not None and (unmeasured or ungained)):
        names = layout.names
        missing = ("no vocabulary overlap with the general corpus" if overlap is None
                   else f"no vocabulary overlap for {', '.join(unmeasured)}" if unmeasured
                   else f"no {names[claim.better]} − {names[claim.worse]} gain on {', '.join(ungained)}" if ungained
                   else "fewer than two domains measured")
        return {**row, "verdict": f"missing ({missing})"}
    farthest = min(known, key=overlap.get)
    row["task"] = f"{farthest} (overlap {overlap[farthest]:g}%)"
    row["difference"] = known[farthest] - max(g for d, g in known.items() if d != farthest)
    # One gain per domain: a sign, not a test over seeds. It said `holds` (+0.1 in the mini run), the
    # word that every other row earns with p < 0.05.
    return {**row, "verdict": UNTESTED_SIGN[bool(row["difference"] > 0)]}


def domain_gains(runs: pd.DataFrame, layout: Layout, tasks: tuple[str, ...], better: str,
                 worse: str) -> dict[str, float]:
    """Mean over a domain's tasks of mean(better) − mean(worse)."""
    by_domain: dict[str, list[float]] = {}
    for key in tasks:
        dapt, base = scores(runs, key, better), scores(runs, key, worse)
        if dapt and base:
            by_domain.setdefault(layout.tasks[key].domain, []).append(np.mean(dapt) - np.mean(base))
    return {domain: float(np.mean(gains)) for domain, gains in by_domain.items()}


def findings_frame(runs: pd.DataFrame, layout: Layout, overlap: dict[str, float] | None) -> pd.DataFrame:
    """One row per (claim, task), the claims of every condition folder in their `order`."""
    rows = []
    for claim in layout.conditions.claims():
        tasks = tasks_of_table(layout, claim.table)
        if claim.test == "farthest_domain":
            rows.append(farthest_domain_gains_most(runs, layout, overlap, tasks, claim))
            continue
        effect = paper_effect(layout, claim)
        for task in tasks:
            if claim.worse == BEST_OTHER:
                rows.append(beats_every_other(runs, claim, task, layout, effect))
            else:
                rows.append(compare(runs, claim.claim, task, claim.better, claim.worse, layout.names, effect))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.assign(n_pairs=frame.n_pairs.astype("Int64"),
                        p_holm=holm(deciding(frame, "p_paired", "p_value")))


def findings_grid(frame: pd.DataFrame, layout: Layout) -> Grid:
    names = layout.task_names
    mdd = deciding(frame, "mdd_paired", "mdd")
    rows = [[r.claim, names.get(r.task, r.task), r.comparison, signed(r.difference),
             "—" if r.test == "none" else r.test, format_p(r.p_paired), format_p(r.p_value),
             format_p(r.p_holm), "—" if np.isnan(r.r_seeds) else f"{r.r_seeds:.2f}", unsigned(m),
             signed(r.paper_effect), r.verdict] for r, m in zip(frame.itertuples(), mdd)]
    note = (f"Difference in the claim's direction (positive supports it), test metric ×100. Test `paired`: "
            f"both conditions ran at least {MIN_PAIRS} of the same seeds; the difference is the mean per-seed "
            f"difference over them, p the paired t-test's (scipy ttest_rel), r the correlation of the two "
            f"conditions across those seeds. Test `welch`: the difference of means and Welch's two-sided "
            f"t-test over all seeds (its p is shown on every row). Verdict at α = {ALPHA} from the named "
            f"test; MDD: the smallest difference that test detects with {POWER:.0%} power; paper: the "
            f"claim's mean published effect over the paper's tasks; underpowered: not significant and "
            f"paper < MDD. A claim that a condition is best compares it with every other condition of its "
            f"table and shows the comparison that supports it least: it holds only if each one does. "
            f"Holm p: Holm's step-down adjustment over every tested row. A row without a test (one gain per "
            f"domain) says only whether its sign is the claim's: in direction or against. {holm_summary(frame)}")
    return Grid(["Claim", "Task", "Comparison", "Difference", "Test", "p (paired)", "p (Welch)", "Holm p",
                 "r", "MDD", "Paper", "Verdict"], rows, note=note)


def holm_summary(frame: pd.DataFrame) -> str:
    """How many claims hold (and are reversed) at alpha, before and after Holm's adjustment."""
    tested = frame[frame.p_holm.notna()]
    if tested.empty:
        return f"None of the {len(frame)} rows could be tested."
    holds, reversed_ = tested.verdict == "holds", tested.verdict == "reversed"
    adjusted = tested.p_holm < ALPHA
    return (f"{holds.sum()} of the {len(tested)} tested claims ({(tested.test == 'paired').sum()} paired by "
            f"seed) hold at α = {ALPHA}; {(holds & adjusted).sum()} after Holm's adjustment over those "
            f"{len(tested)}. Reversed: {reversed_.sum()}; {(reversed_ & adjusted).sum()} after Holm.")


def unsigned(value: float) -> str:
    return "—" if np.isnan(value) else f"{value:.1f}"
