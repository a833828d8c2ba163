"""Write paper_tables/<suite>/: every table as Markdown, CSV and LaTeX, the plots, the
provenance of the runs and a README index. Called by `dontstop aggregate` and `reproduce`.

Every file is derived from results/ alone, written into a hidden sibling folder and put in
place of the earlier tables at the end, all at once (tables_folder.written_whole).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from ..conditions import EXPERIMENTS_DIR, Conditions, load_conditions
from ..suites import Suite, analysis_dir
from ..fileio import UserError, atomic_output, atomic_write_text
from .agreement import agreement_frame, agreement_grid
from .agreement import summary as agreement_summary
from .findings import findings_frame, findings_grid, load_overlap
from .plots import make_plots
from .probe import load_probes, probe_frame, probe_grid
from .published import load_published
from .render import Grid, to_latex, to_markdown
from .runs import as_suite, load_runs, mixed_data, other_data_than_on_disk, provenance_markdown, read_runs
from .significance import TITLE as SIGNIFICANCE_TITLE, significance_frame, significance_grid
from .tables import Layout, cell_frame, cost_frame, cost_grid, cost_spec, grid, metric_note, table_specs
from .tables_folder import index_source, written_whole
from .wandb_upload import log_to_wandb

MIXED_NOTE = "**Mixed inputs**: some tasks were run on different data versions; see provenance.md."
COST_TITLE = "Table 9: the cost of each way of adapting"
CSV_FLOAT = "%.4f"
P_COLUMNS = ("p_value", "p_paired", "p_holm")   # the tables' p-value columns (p_text)


def aggregate(suite: Suite | str, results_dir: Path, tables_root: Path, *, experiments_dir: Path = EXPERIMENTS_DIR,
              overlap: Path | None = None, no_mixed_warning: bool = False, wandb: bool = False,
              notes: list[str] = (), records: dict | None = None, command: str | None = None) -> Path:
    """results/<suite> -> <tables_root>/<suite>/; returns that folder. `suite`: the Suite (its
    tasks name the rows), or a built-in suite's name or a study file's path; `records`: the
    runs' records, when the caller read them already (runs.read_runs); `command`: the aggregate
    command that makes them again, for their README (flags.aggregate_command; default --suite alone)."""
    suite = as_suite(suite)
    name, conditions = suite.name, load_conditions(experiments_dir)
    given = suite.source if suite.is_study else name   # as --suite names it
    records = read_runs(results_dir, suite) if records is None else records
    runs = load_runs(results_dir, suite, conditions, records)
    if runs.empty:
        raise UserError(f"{results_dir / name}: no metrics.json found; run `dontstop run ... --suite {given}` first")
    mixed = mixed_data(runs)
    if mixed and not no_mixed_warning:
        print(f"dontstop: warning: runs made from different data versions for "
              f"{', '.join(mixed)}; see provenance.md (--no-mixed-warning to silence it)", file=sys.stderr)
    other_data = other_data_than_on_disk(records, suite)
    if other_data and not no_mixed_warning:   # tabled without a word, while `status` called them stale
        print(f"dontstop: warning: {len(other_data)} run(s) made from other task data or corpora than the files on "
              f"disk now ({other_data[0]}); `status` calls them stale: redo them with `dontstop run ... --rerun-stale` "
              "(--no-mixed-warning to silence it)", file=sys.stderr)
    out_dir = tables_root / name
    if (out_dir / "README.md").exists():
        print(f"replacing the tables and plots of an earlier aggregate in {out_dir}/")
    overlap = overlap or analysis_dir(tables_root, name) / "vocab_overlap.csv"
    layout = make_layout(suite, shown_conditions(conditions, runs))
    probes = load_probes(results_dir, suite, conditions)   # a bad probe.json stops it before any folder is made
    with written_whole(out_dir) as staging:
        written = write_report(runs, layout, staging, overlap_path=overlap,
                               flag_mixed=bool(mixed) and not no_mixed_warning, wandb=wandb, notes=notes, probes=probes,
                               command=command or f"dontstop aggregate --suite {given}",
                               runs_folder=results_dir / name, final_dir=out_dir)
    print(f"{len(runs)} runs -> {len(written)} files in {out_dir}/ (index: {out_dir}/README.md)")
    return out_dir


def shown_conditions(conditions: Conditions, runs: pd.DataFrame) -> Conditions:
    """What the tables show: every condition of the default run (`default: true`), any other
    that has runs (the LoRA rows, once run with --conditions), and what their claims name."""
    ran = set(runs.condition)
    kept = [e for e in conditions if e.default or e.condition in ran]
    named = {key for e in kept for key in [*e.significance_against, *(c.better for c in e.claims),
                                           *(c.worse for c in e.claims)]}
    return Conditions(tuple(e for e in conditions if e in kept or e.condition in named), conditions.root)


def make_layout(suite: Suite | str, conditions: Conditions) -> Layout:
    """The paper's tasks show the published cell beside each of ours (a study's own tasks have
    none); every suite takes the paper's row order from the published tables."""
    suite = as_suite(suite)
    return Layout(suite.name, conditions, load_published(), with_paper=suite.with_published_numbers,
                  tasks=suite.tasks_by_key)


def build_tables(runs: pd.DataFrame, layout: Layout, overlap: dict[str, float] | None,
                 probes: pd.DataFrame | None = None) -> dict[str, tuple[str, pd.DataFrame, Grid]]:
    """name -> (title, tidy frame, display grid) for every table; `probes` (load_probes) adds
    the representation-probe table."""
    tables = {}
    for spec in (spec for spec in table_specs(layout) if spec.tasks):   # a study may have none for one
        cells = cell_frame(runs, spec, layout)
        tables[spec.name] = (spec.title, cells,
                             with_note(grid(spec, cells, layout.names), metric_note(layout, spec.tasks)))
    if probes is not None and len(probes):
        probe = probe_frame(probes, runs, layout)
        tables["probe"] = ("Representation probe: a frozen-encoder linear probe of every checkpoint",
                           probe, probe_grid(probe, layout))
    if cost_spec(layout).tasks:
        cost = cost_frame(runs, layout)
        tables["table9"] = (COST_TITLE, cost,
                            with_note(cost_grid(cost, layout), metric_note(layout, cost_spec(layout).tasks)))
    significance = significance_frame(runs, layout)
    tables["significance"] = (SIGNIFICANCE_TITLE, significance, significance_grid(significance, layout))
    findings = findings_frame(runs, layout, overlap)
    tables["findings"] = ("The paper's claims against this suite's runs", findings,
                          findings_grid(findings, layout))
    if layout.with_paper:
        agreement = agreement_frame({name: tidy for name, (_, tidy, _) in tables.items()})
        tables["findings"][2].note += " Reproduction: " + agreement_summary(agreement)
        tables["agreement"] = ("Does the rerun agree with the paper? Every reproduced cell", agreement,
                               agreement_grid(agreement, layout.names))
    return tables


def with_note(grid_: Grid, first: str) -> Grid:
    """`grid_` with `first` before its own note (a table's metric before what else it says)."""
    grid_.note = " ".join(part for part in (first, grid_.note) if part)
    return grid_


def p_text(p: float) -> str:
    """A p-value for the CSV: 4 decimals as every number there, but in scientific notation below
    1e-4, where 4 decimals print 3e-05 as 0.0000 (the exact 0 of a constant per-seed difference)."""
    if pd.isna(p):
        return ""
    return CSV_FLOAT % p if p == 0 or p >= 1e-4 else f"{p:.4e}"


def write_table(out_dir: Path, name: str, title: str, tidy: pd.DataFrame, grid_: Grid) -> list[Path]:
    paths = [out_dir / f"{name}.{suffix}" for suffix in ("md", "csv", "tex")]
    atomic_write_text(paths[0], to_markdown(grid_, title))
    with atomic_output(paths[1]) as f:
        tidy.assign(**{column: tidy[column].map(p_text) for column in P_COLUMNS if column in tidy}).to_csv(
            f, index=False, float_format=CSV_FLOAT)
    atomic_write_text(paths[2], to_latex(grid_, title))
    return paths


def write_report(runs: pd.DataFrame, layout: Layout, out_dir: Path, *, overlap_path: Path,
                 flag_mixed: bool, wandb: bool, notes: list[str] = (),
                 probes: pd.DataFrame | None = None, command: str, runs_folder: Path,
                 final_dir: Path | None = None) -> list[Path]:
    """Write every table, plot and index file of the layout's suite; returns the paths
    written. `notes` (what the analysis skipped, and why) go into the index, and the `command`
    that makes them again from the runs in `runs_folder`; `final_dir`: where they go once
    written (tables_folder.written_whole; default `out_dir`), from which the index names the runs."""
    suite = layout.suite
    tables = build_tables(runs, layout, load_overlap(overlap_path), probes)
    written = []
    for name, (title, tidy, grid_) in tables.items():
        if flag_mixed:
            grid_.note = f"{MIXED_NOTE} {grid_.note}".strip()
        written += write_table(out_dir, name, title, tidy, grid_)
    with atomic_output(out_dir / "runs.csv") as f:
        runs.drop(columns="pretraining").to_csv(f, index=False, float_format="%.4f")
    provenance = out_dir / "provenance.md"
    atomic_write_text(provenance, provenance_markdown(runs, mixed_data(runs)))
    plots = make_plots(runs, layout, tables["table9"][1] if "table9" in tables else None, out_dir / "plots")
    written += [out_dir / "runs.csv", provenance] + plots
    empty = [f"{spec.title or COST_TITLE}: no task of this suite has the inputs of its conditions"
             for spec in table_specs(layout) + [cost_spec(layout)] if not spec.tasks]
    written.append(write_index(out_dir, suite, tables, plots, flag_mixed, list(notes) + empty,
                               index_source(command, runs_folder, final_dir or out_dir)))
    if wandb:
        log_to_wandb(suite, tables, plots, runs)
    return written


def write_index(out_dir: Path, suite: str, tables: dict, plots: list[Path], flag_mixed: bool,
                notes: list[str], source: list[str]) -> Path:
    lines = [f"# Results of the `{suite}` suite", "", *source, ""]
    lines += [MIXED_NOTE, ""] if flag_mixed else []
    lines += ["## Not computed", ""] + [f"- {note}" for note in notes] + [""] if notes else []
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

