"""Write paper_tables/<suite>/: every table as Markdown, CSV and LaTeX, the plots, the
provenance of the runs and a README index. Called by `dontstop aggregate` (aggregate.py).

Every file is derived from results/ alone and rewritten whole (atomically) on each run.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import wandb_log
from .aggregate import CONDITIONS, mixed_data, provenance_markdown, task_names
from .fileio import atomic_output, atomic_write_text
from .findings import findings_frame, findings_grid, load_overlap
from .plots import make_plots
from .published import load_published
from .tables import (Grid, cell_frame, cost_frame, cost_grid, grid, significance_frame,
                     significance_grid, table_specs, to_latex, to_markdown)

MIXED_NOTE = "**Mixed inputs**: some tasks were run on different data versions; see provenance.md."


def build_tables(runs: pd.DataFrame, suite: str, published: pd.DataFrame | None,
                 overlap: dict[str, float] | None) -> dict[str, tuple[str, pd.DataFrame, Grid]]:
    """name -> (title, tidy frame, display grid) for every table; `published` adds the
    paper's cells beside ours (paper suite)."""
    names = {**task_names(suite), **CONDITIONS}
    tables = {}
    for spec in table_specs(suite):
        cells = cell_frame(runs, spec, published)
        tables[spec.name] = (spec.title, cells, grid(spec, cells, names))
    cost = cost_frame(runs, suite, published)
    tables["table9"] = ("Table 9: the cost of each way of adapting", cost, cost_grid(cost, suite))
    significance = significance_frame(runs, suite)
    tables["significance"] = ("Significance over seeds (Welch's t-test)", significance,
                              significance_grid(significance, suite))
    findings = findings_frame(runs, suite, overlap)
    tables["findings"] = ("The paper's claims against this suite's runs", findings,
                          findings_grid(findings, suite))
    return tables


def write_table(out_dir: Path, name: str, title: str, tidy: pd.DataFrame, grid_: Grid) -> list[Path]:
    paths = [out_dir / f"{name}.{suffix}" for suffix in ("md", "csv", "tex")]
    atomic_write_text(paths[0], to_markdown(grid_, title))
    with atomic_output(paths[1]) as f:
        tidy.to_csv(f, index=False, float_format="%.4f")
    atomic_write_text(paths[2], to_latex(grid_, title))
    return paths


def write_report(runs: pd.DataFrame, suite: str, out_dir: Path, *, overlap_path: Path,
                 flag_mixed: bool, wandb: bool) -> list[Path]:
    """Write every table, plot and index file for `suite`; returns the paths written."""
    published = load_published() if suite == "paper" else None
    tables = build_tables(runs, suite, published, load_overlap(overlap_path))
    written = []
    for name, (title, tidy, grid_) in tables.items():
        if flag_mixed:
            grid_.note = f"{MIXED_NOTE} {grid_.note}".strip()
        written += write_table(out_dir, name, title, tidy, grid_)
    with atomic_output(out_dir / "runs.csv") as f:
        runs.drop(columns="pretraining").to_csv(f, index=False, float_format="%.4f")
    provenance = out_dir / "provenance.md"
    atomic_write_text(provenance, provenance_markdown(runs, mixed_data(runs)))
    plots = make_plots(runs, suite, published, tables["table9"][1], out_dir / "plots")
    written += [out_dir / "runs.csv", provenance] + plots
    written.append(write_index(out_dir, suite, tables, plots, flag_mixed))
    if wandb:
        log_to_wandb(suite, out_dir, tables, plots)
    return written


def write_index(out_dir: Path, suite: str, tables: dict, plots: list[Path], flag_mixed: bool) -> Path:
    lines = [f"# Results of the `{suite}` suite", "",
             f"Written by `dontstop aggregate --suite {suite}` from results/{suite}/**/metrics.json.", ""]
    lines += [MIXED_NOTE, ""] if flag_mixed else []
    lines += ["## Tables (Markdown, CSV, LaTeX)", ""]
    lines += [f"- {title}: [{name}.md]({name}.md), [{name}.csv]({name}.csv), [{name}.tex]({name}.tex)"
              for name, (title, _, _) in tables.items()]
    lines += ["- every run, one row each: [runs.csv](runs.csv)",
              "- data hashes, commits and versions behind the tables: [provenance.md](provenance.md)",
              "", "## Plots (PNG, PDF)", ""]
    lines += [f"- ![{p.stem}](plots/{p.name}) [pdf](plots/{p.stem}.pdf)" for p in plots if p.suffix == ".png"]
    path = out_dir / "README.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def log_to_wandb(suite: str, out_dir: Path, tables: dict, plots: list[Path]) -> None:
    """One summary run: every table as a W&B Table, every plot as an image."""
    import wandb

    run = wandb_log.start_run(True, group="summary", job_type="aggregate", name=f"aggregate-{suite}",
                              config={"suite": suite}, directory=str(out_dir))
    if run is None:
        return
    for name, (_, tidy, _) in tables.items():
        run.log({f"tables/{name}": wandb.Table(dataframe=tidy.astype(str))})
    for path in plots:
        if path.suffix == ".png":
            run.log({f"plots/{path.stem}": wandb.Image(str(path))})
    wandb_log.finish(run)
