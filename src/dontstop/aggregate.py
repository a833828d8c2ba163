"""dontstop aggregate: turn finished runs into the paper's tables, findings and plots.

    dontstop aggregate --suite mini                 # results/mini/** -> paper_tables/mini/
    dontstop aggregate --suite paper --wandb        # also log tables and plots to W&B

The only reader of results/ and the only writer of paper_tables/<suite>/. It reads nothing
but results/<suite>/**/metrics.json (docs/CONTRACTS.md) into one tidy frame, one row per
run, with the test metric in percent. Cells are `mean ± std (n)` with the sample standard
deviation over seeds (ddof=1, as the paper's std over 5 seeds); a missing run is `—`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from scipy import stats

from .fileio import UserError, read_json
from .tasks import SUITES, Task

# Row and column keys of every table, in the paper's order, with the paper's display names.
CONDITIONS = {
    "baseline": "RoBERTa", "dapt": "DAPT", "not_dapt": "¬DAPT", "tapt": "TAPT",
    "dapt_tapt": "DAPT + TAPT", "transfer_tapt": "Transfer-TAPT", "curated_tapt": "Curated-TAPT",
    "dapt_curated_tapt": "DAPT + Curated-TAPT", "knn_tapt_50": "50NN-TAPT",
    "knn_tapt_150": "150NN-TAPT", "knn_tapt_500": "500NN-TAPT", "rand_tapt": "RAND-TAPT",
}
RUN_FIELDS = {"suite": str, "task": str, "condition": str, "seed": int, "test_metric": float}
RUN_COLUMNS = ["task", "condition", "seed", "score", "dev_score", "metric", "data", "git_commit",
               "versions", "pretraining", "path"]


def load_runs(results_dir: str | Path, suite: str) -> pd.DataFrame:
    """Every finished run of `suite` under `results_dir`, one row each (score in percent)."""
    if suite not in SUITES:
        raise UserError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    root = Path(results_dir) / suite
    rows = [_run_row(path, suite) for path in sorted(root.glob("**/metrics.json"))]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def _run_row(path: Path, suite: str) -> dict:
    record = read_json(path)
    if not isinstance(record, dict):
        raise UserError(f"{path}: expected a JSON object (docs/CONTRACTS.md)")
    for name, kind in RUN_FIELDS.items():
        value = record.get(name)
        if not isinstance(value, (int, float) if kind is float else kind) or isinstance(value, bool):
            raise UserError(f"{path}: field {name!r} missing or not a {kind.__name__}")
    tasks = SUITES[suite][0]
    checks = {"suite": (record["suite"] == suite, f"expected {suite!r}"),
              "task": (record["task"] in tasks, f"not a task of the {suite} suite"),
              "condition": (record["condition"] in CONDITIONS, "not a known condition"),
              "test_metric": (0 <= record["test_metric"] <= 1, "not a fraction in [0, 1]")}
    for name, (ok, problem) in checks.items():
        if not ok:
            raise UserError(f"{path}: field {name!r} is {record[name]!r}: {problem}")
    return {"task": record["task"], "condition": record["condition"], "seed": record["seed"],
            "score": 100 * record["test_metric"], "dev_score": 100 * record.get("dev_metric", float("nan")),
            "metric": record.get("metric"), "data": data_version(record.get("data_sha256") or {}),
            "git_commit": record.get("git_commit") or "unknown",
            "versions": " ".join(f"{k} {v}" for k, v in sorted((record.get("versions") or {}).items())),
            "pretraining": record.get("pretraining") or [], "path": str(path)}


def filter_runs(runs: pd.DataFrame, tasks: list[str] | None = None,
                conditions: list[str] | None = None) -> pd.DataFrame:
    """The runs of the given tasks and conditions; an empty or None list keeps all."""
    keep = pd.Series(True, index=runs.index)
    if tasks:
        keep &= runs.task.isin(tasks)
    if conditions:
        keep &= runs.condition.isin(conditions)
    return runs[keep]


def data_version(data_sha256: dict[str, str]) -> str:
    """A short, readable fingerprint of a run's task data: `dev=1a2b3c4d test=... train=...`."""
    return " ".join(f"{split}={sha[:8]}" for split, sha in sorted(data_sha256.items())) or "unknown"


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """mean, std (ddof=1) and n of the test score per (task, condition)."""
    grouped = runs.groupby(["task", "condition"])["score"]
    return grouped.agg(mean="mean", std="std", n="count")


def format_cell(mean: float, std: float, n: int) -> str:
    """The paper's cell, plus the number of seeds: `84.2 ± 0.2 (5)`; no runs is `— (0)`."""
    if n == 0:
        return "— (0)"
    return f"{mean:.1f} ± {'—' if n < 2 else f'{std:.1f}'} ({n})"


def scores(runs: pd.DataFrame, task: str, condition: str) -> list[float]:
    return runs.loc[(runs.task == task) & (runs.condition == condition), "score"].tolist()


def welch(a: list[float], b: list[float]) -> tuple[float, float]:
    """Welch's t-test (scipy, unequal variances, two-sided) of mean(a) - mean(b) over seeds.

    Returns (t, p); both NaN when either side has fewer than 2 seeds.
    """
    if len(a) < 2 or len(b) < 2:
        return float("nan"), float("nan")
    result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def task_names(suite: str) -> dict[str, str]:
    return {key: task.name for key, task in SUITES[suite][0].items()}


def suite_tasks(suite: str) -> dict[str, Task]:
    return SUITES[suite][0]


def mixed_data(runs: pd.DataFrame) -> dict[str, list[str]]:
    """Tasks whose runs were made from more than one version of the task data."""
    versions = runs.groupby("task")["data"].unique()
    return {task: sorted(found) for task, found in versions.items() if len(found) > 1}


def provenance_markdown(runs: pd.DataFrame, mixed: dict[str, list[str]]) -> str:
    """Which data hashes, code commits and library versions went into the tables."""
    lines = ["# Provenance", "", f"{len(runs)} runs (metrics.json files).", ""]
    if mixed:
        lines += ["**Mixed inputs**: these tasks were run on more than one data version: "
                  + ", ".join(f"`{task}`" for task in mixed) + ".", ""]
    for column, title in (("data", "Task data (sha256 prefixes)"), ("git_commit", "Code commits"),
                          ("versions", "Library versions")):
        counts = runs.groupby(["task", column] if column == "data" else [column]).size()
        lines += [f"## {title}", "", "| " + " | ".join(counts.index.names) + " | runs |",
                  "|" + "---|" * (counts.index.nlevels + 1)]
        lines += ["| " + " | ".join(key if isinstance(key, tuple) else (key,)) + f" | {n} |"
                  for key, n in counts.items()]
        lines.append("")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("aggregate", help="results/<suite> -> the paper's tables and plots")
    parser.add_argument("--suite", default="mini", choices=list(SUITES))
    parser.add_argument("--results", default="results", help="folder holding <suite>/**/metrics.json")
    parser.add_argument("--out", default="paper_tables", help="tables go to <out>/<suite>/")
    parser.add_argument("--overlap", help="per-domain vocabulary overlap with the general corpus "
                        "(CSV or JSON; default <out>/<suite>/analysis/vocab_overlap.csv)")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="runs made from different data versions: proceed without a warning")
    parser.add_argument("--wandb", action="store_true", help="log tables and plots to one W&B run")
    parser.set_defaults(func=_aggregate)


def _aggregate(args: argparse.Namespace) -> int:
    from .report import write_report

    runs = load_runs(args.results, args.suite)
    if runs.empty:
        raise UserError(f"{Path(args.results) / args.suite}: no metrics.json found; "
                        f"run `dontstop run ... --suite {args.suite}` first")
    mixed = mixed_data(runs)
    if mixed and not args.allow_mixed:
        print(f"dontstop: warning: runs made from different data versions for "
              f"{', '.join(mixed)}; see provenance.md (--allow-mixed to accept)", file=sys.stderr)
    out_dir = Path(args.out) / args.suite
    if (out_dir / "README.md").exists():
        print(f"replacing the tables and plots of an earlier aggregate in {out_dir}/")
    overlap = Path(args.overlap) if args.overlap else out_dir / "analysis" / "vocab_overlap.csv"
    written = write_report(runs, args.suite, out_dir, overlap_path=overlap,
                           flag_mixed=bool(mixed) and not args.allow_mixed, wandb=args.wandb)
    print(f"{len(runs)} runs -> {len(written)} files in {out_dir}/ (index: {out_dir}/README.md)")
    return 0
