"""The study's figures, each written as PNG and PDF under paper_tables/<suite>/plots/.

- bars: every condition per task, seed dots, the published mean as a black diamond (paper suite);
- knn: F1 against k with TAPT, RAND-TAPT and DAPT as reference lines (Table 8);
- cost: F1 against pretraining tokens on a log scale (Table 9);
- mlm_loss: held-out MLM loss of each pretraining stage before and after it (Table 1).
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker as ticker
from matplotlib.lines import Line2D
import numpy as np
import pandas as pd
import seaborn as sns

from ..fileio import atomic_output
from .fonts import label_fonts
from .published import published_cell
from .runs import scores
from .tables import Layout, cost_spec, table_specs

PUBLISHED_TABLES = ("5", "3", "6", "7", "8", "9")  # where a task's published cell is looked up
REFERENCE_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def save(fig: plt.Figure, stem: Path) -> list[Path]:
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        with atomic_output(path, "wb") as f:
            # No creation date in the PDF: the same runs give the same bytes
            fig.savefig(f, format=path.suffix[1:], dpi=150, bbox_inches="tight",
                        metadata={"CreationDate": None} if path.suffix == ".pdf" else None)
    plt.close(fig)
    return paths


def subplots(count: int, width: float, height: float, columns: int = 3):
    count = max(count, 1)  # an empty selection still gets one (empty) panel
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, axes.flat


def bar_plot(runs: pd.DataFrame, layout: Layout, stem: Path) -> list[Path]:
    """One panel per task: mean test score per condition (bars) and per seed (dots)."""
    names = layout.conditions.display
    published = layout.published if layout.with_paper else None
    runs = runs.assign(name=runs.condition.map(names))
    tasks = [t for t in layout.task_names if t in set(runs.task)]
    fig, axes = subplots(len(tasks), 4.2, 3.6)
    for ax, task in zip(axes, tasks):
        task_runs = runs[runs.task == task]
        order = [name for key, name in names.items() if key in set(task_runs.condition)]
        sns.barplot(task_runs, y="name", x="score", order=order, errorbar=None, color="#b8cde0", ax=ax)
        np.random.seed(0)   # stripplot's jitter draws from numpy's global generator: same runs, same plot
        sns.stripplot(task_runs, y="name", x="score", order=order, color="#1f3b57", size=3.5, ax=ax)
        marked = _published_markers(ax, published, task, order, names) if published is not None else []
        # Scores differ by a few points: cut the axis near the data so differences show.
        low, high = min([*task_runs.score, *marked]), max([*task_runs.score, *marked])
        ax.set_xlim(max(0, low - 0.1 * (high - low) - 2), min(100, high + 0.05 * (high - low) + 1))
        ax.set(title=layout.task_names[task], xlabel="test score ×100 (axis cut)", ylabel="")
    if published is not None:
        paper = Line2D([], [], marker="D", color="black", linestyle="", label="published (paper)")
        fig.legend(handles=[paper], loc="upper right")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return save(fig, stem)


def _published_markers(ax: plt.Axes, published: pd.DataFrame, task: str, order: list[str],
                       names: dict[str, str]) -> list[float]:
    """Black diamonds at the published means; returns them (for the axis limits)."""
    keys = {name: key for key, name in names.items()}
    cells = [(published_cell(published, PUBLISHED_TABLES, task, keys[name]), y) for y, name in enumerate(order)]
    points = [(cell["mean"], y) for cell, y in cells if cell is not None]
    if points:
        xs, ys = zip(*points)
        ax.scatter(xs, ys, marker="D", color="black", zorder=5, s=22)
    return [x for x, _ in points]


def knn_plot(runs: pd.DataFrame, layout: Layout, stem: Path) -> list[Path]:
    """Table 8 as curves: mean ± std over seeds against k, Table 8's other conditions (but the
    baseline) as reference lines."""
    names = layout.conditions.display
    published = layout.published if layout.with_paper else None
    table8 = table_specs(layout)[3]
    knn = layout.conditions.knn()
    knn_conditions, ks = [c for c, _ in knn], [k for _, k in knn]
    references = [c for c in table8.conditions if c not in knn_conditions and c != layout.conditions.baseline]
    fig, axes = subplots(len(table8.tasks), 4.2, 3.4)
    for ax, task in zip(axes, table8.tasks):
        values = [scores(runs, task, c) for c in knn_conditions]
        means = [np.mean(v) if v else np.nan for v in values]
        stds = [np.std(v, ddof=1) if len(v) > 1 else 0 for v in values]
        ax.errorbar(ks, means, yerr=stds, marker="o", color="black", capsize=3, label="kNN-TAPT")
        for condition, color in zip(references, REFERENCE_COLORS):
            reference = scores(runs, task, condition)
            if reference:
                ax.axhline(np.mean(reference), color=color, linestyle="--", label=names[condition])
        if published is not None:
            paper = [published_cell(published, ("8",), task, c) for c in knn_conditions]
            ax.plot(ks, [np.nan if p is None else p["mean"] for p in paper], "D:", color="grey",
                    label="kNN-TAPT (paper)")
        ax.set(xscale="log", xticks=ks, xticklabels=[str(k) for k in ks], xlabel="k (neighbours per task sentence)",
               ylabel="test score ×100", title=layout.task_names[task])
        ax.minorticks_off()
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, stem)


def cost_plot(cost: pd.DataFrame, layout: Layout, stem: Path) -> list[Path]:
    """Table 9 as a scatter: test score against pretraining tokens (log scale)."""
    names = layout.conditions.display
    tasks = cost_spec(layout).tasks
    fig, axes = subplots(len(tasks), 6.5, 4.0)
    for ax, task in zip(axes, tasks):
        cells = cost[(cost.task == task) & (cost.n > 0)]
        spent = cells[cells.tokens > 0].assign(name=lambda f: f.condition.map(names))
        ax.errorbar(spent.tokens, spent["mean"], yerr=spent["std"].fillna(0), fmt="none",
                    ecolor="grey", capsize=3)
        sns.scatterplot(spent, x="tokens", y="mean", hue="name", style="name", s=70, ax=ax)
        baseline = cells[cells.condition == layout.conditions.baseline]
        if len(baseline):
            ax.axhline(baseline["mean"].iloc[0], color="grey", linestyle="--",
                       label=f"{names[layout.conditions.baseline]} (no pretraining)")
        ax.set(xlabel="pretraining tokens (all stages, log scale)", ylabel="test score ×100",
               title=f"Cost of adapting to {layout.task_names[task]}")
        if spent.empty:  # e.g. every cell from a released checkpoint: nothing was pretrained here
            ax.text(0.5, 0.5, "no pretraining run here", transform=ax.transAxes, ha="center")
            continue
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ticker.EngFormatter())
        ax.xaxis.set_minor_locator(ticker.LogLocator(subs=(2, 5)))
        ax.xaxis.set_minor_formatter(ticker.EngFormatter())
        ax.tick_params(axis="x", which="minor", length=3.5)  # label 200k, 500k level with 1M
        if ax.get_legend_handles_labels()[0]:  # nothing to label when a filter left no runs
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return save(fig, stem)


def stage_losses(runs: pd.DataFrame) -> pd.DataFrame:
    """Held-out MLM loss before/after every distinct pretraining stage found in the runs.

    Keyed by lineage: "curated-aclsum-roles" alone and after DAPT are different stages."""
    stages = {stage.get("lineage") or stage.get("name"): stage
              for record in runs.pretraining for stage in record}
    rows = [{"stage": name, "when": when, "loss": stage.get(f"heldout_loss_{when}")}
            for name, stage in sorted(stages.items()) for when in ("before", "after")]
    return pd.DataFrame(rows, columns=["stage", "when", "loss"]).dropna()


def mlm_loss_plot(runs: pd.DataFrame, stem: Path) -> list[Path]:
    losses = stage_losses(runs)
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.32 * max(1, losses.stage.nunique())))
    if len(losses):
        sns.barplot(losses, y="stage", x="loss", hue="when", ax=ax)
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), title="MLM loss")
    ax.set(xlabel="held-out MLM loss on the stage's own corpus (nats/token)", ylabel="",
           title="Masked-LM loss before and after each pretraining stage")
    fig.tight_layout()
    return save(fig, stem)


def make_plots(runs: pd.DataFrame, layout: Layout, cost: pd.DataFrame | None, plot_dir: Path) -> list[Path]:
    """Every figure; the kNN and cost ones only where the suite has a task for them (`cost`: Table
    9's frame, None when it has no task; a study may have neither). Labels in any script are
    drawn with an installed font that has them (fonts.label_fonts)."""
    with label_fonts([*layout.names.values(), *stage_losses(runs).stage]):
        paths = bar_plot(runs, layout, plot_dir / "bars")
        if table_specs(layout)[3].tasks:
            paths += knn_plot(runs, layout, plot_dir / "knn")
        if cost is not None:
            paths += cost_plot(cost, layout, plot_dir / "cost")
        return paths + mlm_loss_plot(runs, plot_dir / "mlm_loss")
