"""The figures of notebooks/results.ipynb, each from a frame of report/notebook.py or the
tables; every function returns a matplotlib Figure (shown inline by the notebook), or None
after printing why there is nothing to draw. Scores are test (or dev) metric ×100.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import matplotlib.ticker as ticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from .tables import Layout

VERDICT_COLORS = {"holds": "tab:green", "reversed": "tab:red", "underpowered": "tab:orange",
                  "not significant": "tab:grey", "agrees": "tab:green", "differs (+)": "tab:blue",
                  "differs (−)": "tab:red", "too few seeds": "tab:grey", "missing": "black",
                  "in direction": "tab:olive", "against": "tab:pink"}   # a sign without a test


LABELLED_CELLS = 20   # more cells than this: no text labels, the table above names them


def verdict_color(verdict: str):
    """`missing (fewer than two domains measured)` takes the colour of `missing`."""
    return VERDICT_COLORS.get(verdict) or VERDICT_COLORS.get(verdict.split(" (")[0], "black")


def condition_colors(layout: Layout) -> dict[str, tuple]:
    """One fixed colour per condition folder, the same in every figure."""
    palette = sns.color_palette("tab10") + sns.color_palette(["black", "navy"])
    return {c: palette[i % len(palette)] for i, c in enumerate(layout.conditions.display)}


def panels(count: int, width: float, height: float, columns: int = 3):
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _tasks(frame: pd.DataFrame, layout: Layout) -> list[str]:
    return [t for t in layout.task_names if t in set(frame.task)]


def _nothing(what: str) -> None:
    print(f"nothing to plot: {what}")


def seed_scatter(runs: pd.DataFrame, layout: Layout) -> plt.Figure | None:
    """Every seed's test score per (task, condition), with the cell's mean ± std (ddof=1)."""
    if runs.empty:
        return _nothing("no runs")
    names, colors = layout.conditions.display, condition_colors(layout)
    tasks = _tasks(runs, layout)
    fig, axes = panels(len(tasks), 4.4, 3.8)
    for ax, task in zip(axes, tasks):
        here = runs[runs.task == task]
        order = [c for c in names if c in set(here.condition)]
        for y, condition in enumerate(order):
            seeds = here[here.condition == condition].score.to_numpy()
            jitter = np.linspace(-0.12, 0.12, len(seeds)) if len(seeds) > 1 else np.zeros(1)
            ax.scatter(seeds, y + jitter, s=16, color=colors[condition], alpha=0.8, zorder=3)
            std = seeds.std(ddof=1) if len(seeds) > 1 else 0.0
            ax.errorbar(seeds.mean(), y, xerr=std, fmt="|", color="black", markersize=14,
                        capsize=3, zorder=4)
        ax.set_yticks(range(len(order)),
                      [f"{names[c]} ({(here.condition == c).sum()})" for c in order], fontsize=8)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
        ax.set(title=layout.task_names[task], xlabel="test score ×100")
    fig.suptitle("Every seed (dots) and mean ± std over seeds (black); seeds per cell in brackets",
                 fontsize=10)
    fig.tight_layout()
    return fig


def dev_curve_plot(curves: pd.DataFrame, layout: Layout) -> plt.Figure | None:
    """Dev score after each fine-tuning epoch, one line per run; a dot at its best epoch."""
    if curves.empty:
        return _nothing("no dev curves")
    names, colors = layout.conditions.display, condition_colors(layout)
    tasks = _tasks(curves, layout)
    fig, axes = panels(len(tasks), 4.4, 3.2)
    for ax, task in zip(axes, tasks):
        here = curves[curves.task == task]
        for (condition, _), run in here.groupby(["condition", "seed"], sort=False):
            ax.plot(run.epoch, run.dev, color=colors[condition], alpha=0.6, linewidth=1)
            best = run[run.best]
            ax.scatter(best.epoch, best.dev, color=colors[condition], s=18, zorder=3,
                       edgecolor="black", linewidth=0.5)
        epochs = int(here.epoch.max())
        ax.set_xticks(range(1, epochs + 1) if epochs <= 12 else ticker.MaxNLocator(integer=True).tick_values(1, epochs))
        ax.set(title=layout.task_names[task], xlabel="epoch", ylabel="dev score ×100",
               xlim=(0.7, epochs + 0.3))
        ax.grid(alpha=0.3)
    shown = [c for c in names if c in set(curves.condition)]
    handles = [Line2D([], [], color=colors[c], label=names[c]) for c in shown]
    handles.append(Line2D([], [], marker="o", color="grey", markeredgecolor="black", linestyle="",
                          label="best dev epoch (kept)"))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.98), fontsize=8)
    fig.tight_layout()
    return fig


def stage_loss_plot(stages: pd.DataFrame) -> plt.Figure | None:
    """Held-out MLM loss of every pretraining stage before (hollow) and after (filled) it."""
    stages = stages.dropna(subset=["before", "after"])
    if stages.empty:
        return _nothing("no pretraining stage with a held-out loss")
    stages = stages.sort_values(["kind", "stage"], ignore_index=True)
    kinds = list(dict.fromkeys(stages.kind))
    colors = dict(zip(kinds, sns.color_palette("tab10")))
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.3 * len(stages)))
    for y, row in stages.iterrows():
        ax.annotate("", xy=(row.after, y), xytext=(row.before, y),
                    arrowprops={"arrowstyle": "->", "color": "grey", "lw": 1})
        ax.scatter(row.before, y, facecolor="white", edgecolor=colors[row.kind], s=30, zorder=3)
        ax.scatter(row.after, y, color=colors[row.kind], s=30, zorder=3)
    ax.set_yticks(range(len(stages)), stages.stage, fontsize=8)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.legend(handles=[Line2D([], [], marker="o", color=colors[k], linestyle="", label=k) for k in kinds],
              title="stage kind", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set(xlabel="held-out MLM loss on the stage's own corpus (nats per masked token)",
           title="Before (hollow) → after (filled) each pretraining stage, keyed by lineage")
    fig.tight_layout()
    return fig


def heatmap(matrix: pd.DataFrame, title: str, label: str, fmt: str = ".1f",
            cmap: str = "viridis") -> plt.Figure:
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * matrix.shape[1], 0.8 + 0.6 * matrix.shape[0]))
    sns.heatmap(matrix.astype(float), annot=True, fmt=fmt, cmap=cmap, cbar_kws={"label": label}, ax=ax)
    ax.set(title=title, xlabel=matrix.columns.name or "", ylabel=matrix.index.name or "")
    ax.tick_params(axis="y", rotation=0)
    fig.tight_layout()
    return fig


def source_mix_plot(mix: pd.DataFrame, layout: Layout) -> plt.Figure | None:
    """Share of each pool source among the candidates each selection picked, beside the pool's."""
    if mix.empty:
        return _nothing("no kNN-TAPT or RAND-TAPT selection among these runs")
    sources = sorted(set(mix.source))
    colors = dict(zip(sources, sns.color_palette("Set2")))
    tasks = _tasks(mix, layout)
    fig, axes = panels(len(tasks), 6.0, 0.9 + 0.45 * mix.groupby("task").selection.nunique().max(), 2)
    for ax, task in zip(axes, tasks):
        shares = mix[mix.task == task].pivot(index="selection", columns="source", values="share")
        shares = shares.reindex(list(dict.fromkeys(mix[mix.task == task].selection))).fillna(0)
        left = np.zeros(len(shares))
        for source in shares.columns:
            ax.barh(range(len(shares)), shares[source], left=left, color=colors[source], label=source)
            for y, (start, width) in enumerate(zip(left, shares[source])):
                if width >= 6:
                    ax.text(start + width / 2, y, f"{width:.0f}%", ha="center", va="center", fontsize=8)
            left += shares[source].to_numpy()
        ax.set_yticks(range(len(shares)), shares.index, fontsize=8)
        ax.invert_yaxis()
        ax.set(xlim=(0, 100), xlabel="share of selected text (%)", title=layout.task_names[task])
        ax.legend(title="source", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def cost_gain_plot(cells: pd.DataFrame, layout: Layout) -> plt.Figure | None:
    """Gain over the baseline (difference of the means; the bar is the condition's own std over
    seeds, not the gain's uncertainty) against pretraining tokens, log scale."""
    spent = cells[(cells.tokens > 0) & cells.gain.notna()]
    if spent.empty:
        return _nothing("no condition with both pretraining tokens and a baseline to compare with")
    names, colors = layout.conditions.display, condition_colors(layout)
    markers = dict(zip(names, "osD^vPX*<>hp" * 3))
    tasks = _tasks(spent, layout)
    fig, axes = panels(len(tasks), 4.4, 3.4)
    for ax, task in zip(axes, tasks):
        ax.axhline(0, color="grey", linestyle="--", linewidth=1)
        for row in spent[spent.task == task].itertuples():
            ax.errorbar(row.tokens, row.gain, yerr=0 if np.isnan(row.std) else row.std,
                        marker=markers[row.condition], color=colors[row.condition], capsize=3,
                        markersize=6, alpha=0.85)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ticker.EngFormatter())
        ax.xaxis.set_minor_locator(ticker.LogLocator(subs=(2, 5)))
        ax.xaxis.set_minor_formatter(ticker.EngFormatter())
        ax.tick_params(axis="x", which="both", labelsize=8)
        ax.set(title=layout.task_names[task], xlabel="pretraining tokens (all stages)",
               ylabel="gain over the baseline ×100")
        ax.grid(alpha=0.3)
    shown = [c for c in names if c in set(spent.condition)]
    handles = [Line2D([], [], marker=markers[c], color=colors[c], linestyle="", label=names[c]) for c in shown]
    handles.append(Line2D([], [], color="grey", linestyle="--", label=f"{names[layout.conditions.baseline]} (no pretraining)"))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.98), fontsize=8)
    fig.tight_layout()
    return fig


def probe_plot(frame: pd.DataFrame, layout: Layout, r: float, rho: float) -> plt.Figure | None:
    """Probe gain against fine-tuned gain over the baseline, one dot per (task, condition):
    colour = condition, marker = task."""
    cells = frame[frame.condition != layout.conditions.baseline].dropna(subset=["probe_gain", "finetune_gain"])
    if cells.empty:
        return _nothing("no probed cell with fine-tuning runs and a baseline")
    names, colors = layout.names, condition_colors(layout)
    tasks = _tasks(cells, layout)
    markers = dict(zip(tasks, "osD^vPX*<>hp" * 3))
    fig, ax = plt.subplots(figsize=(7, 5))
    for row in cells.itertuples():
        ax.scatter(row.probe_gain, row.finetune_gain, color=colors[row.condition], marker=markers[row.task],
                   s=45, alpha=0.85, edgecolor="black", linewidth=0.4)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.axvline(0, color="grey", linewidth=0.8)
    shown = [c for c in layout.conditions.display if c in set(cells.condition)]
    handles = [Line2D([], [], marker="o", linestyle="", color=colors[c], label=names[c]) for c in shown]
    handles += [Line2D([], [], marker=markers[t], linestyle="", color="grey", label=names[t]) for t in tasks]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set(xlabel="probe gain over the baseline ×100", ylabel="fine-tuned gain over the baseline ×100",
           title="Does the probe predict fine-tuning? " + (f"Pearson r = {r:.2f}, Spearman ρ = {rho:.2f}"
                                                           if math.isfinite(r) else "no correlation (a gain is constant)"))
    fig.tight_layout()
    return fig


def findings_plot(findings: pd.DataFrame, layout: Layout) -> plt.Figure | None:
    """Each claim's difference (dot, coloured by verdict) against the band ±MDD that its seeds
    could not tell from zero (light: Welch's; dark, narrower: the paired test's, where the row
    is paired), and the paper's own effect (diamond)."""
    rows = findings.dropna(subset=["difference"]).reset_index(drop=True)
    if rows.empty:
        return _nothing("no claim with runs on both sides")
    names = layout.task_names
    fig, ax = plt.subplots(figsize=(8.5, 1.2 + 0.28 * len(rows)))
    for y, row in rows.iterrows():
        for mdd, color, height in ((row.mdd, "#e4e4e4", 0.7), (row.mdd_paired, "#b0b0b0", 0.35)):
            if not np.isnan(mdd):
                ax.barh(y, 2 * mdd, left=-mdd, color=color, height=height)
        ax.scatter(row.difference, y, color=verdict_color(row.verdict), s=30, zorder=3)
        if not np.isnan(row.paper_effect):
            ax.scatter(row.paper_effect, y, marker="D", facecolor="none", edgecolor="black", s=28, zorder=4)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [f"{r.comparison} · {names.get(r.task, r.task)}" for r in rows.itertuples()],
                  fontsize=7)
    ax.invert_yaxis()
    verdicts = [v for v in VERDICT_COLORS if v in {r.split(" (")[0] for r in rows.verdict}]
    handles = [Line2D([], [], marker="o", linestyle="", color=VERDICT_COLORS[v], label=v) for v in verdicts]
    handles += [Line2D([], [], marker="D", linestyle="", markerfacecolor="none", color="black",
                       label="paper's effect"),
                plt.Rectangle((0, 0), 1, 1, color="#e4e4e4", label="±MDD, Welch (80% power)"),
                plt.Rectangle((0, 0), 1, 1, color="#b0b0b0", label="±MDD, paired by seed")]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set(xlabel="difference in the claim's direction ×100 (positive supports it)",
           title="The paper's claims: what the seeds show and what they could detect")
    fig.tight_layout()
    return fig


def agreement_plot(agreement: pd.DataFrame, layout: Layout) -> plt.Figure | None:
    """Our mean ± std against the published mean ± std of every reproduced cell."""
    if agreement.empty:
        return _nothing("no reproduced cell with a published value")
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    for row in agreement.itertuples():
        ax.errorbar(row.published_mean, row.mean, xerr=row.published_std,
                    yerr=0 if np.isnan(row.std) else row.std, fmt="o", capsize=2, markersize=5,
                    color=verdict_color(row.verdict))
        if len(agreement) <= LABELLED_CELLS:
            ax.annotate(f"{layout.names[row.task]} {layout.names[row.condition]}",
                        (row.published_mean, row.mean), textcoords="offset points", xytext=(3, 3), fontsize=6)
    low = min(agreement.published_mean.min(), agreement["mean"].min()) - 3
    high = max(agreement.published_mean.max(), agreement["mean"].max()) + 3
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    handles = [Line2D([], [], marker="o", linestyle="", color=VERDICT_COLORS[v], label=v)
               for v in VERDICT_COLORS if v in set(agreement.verdict)]
    ax.legend(handles=handles, fontsize=8, loc="upper left")
    ax.set(xlim=(low, high), ylim=(low, high), xlabel="published (5 seeds) ×100", ylabel="ours ×100",
           title="Every reproduced cell against the paper (dashed: equal)")
    fig.tight_layout()
    return fig
