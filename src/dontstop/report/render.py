"""Render a table: a Grid of display strings -> Markdown (GitHub) or LaTeX (booktabs).

A table is kept twice: `tidy` (one row per cell, numbers; the CSV) and `Grid` (the paper's
rows and columns as strings, with the best cell of each task in bold; Markdown and LaTeX).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class Grid:
    header: list[str]
    rows: list[list[str]]
    bold: set[tuple[int, int]] = field(default_factory=set)  # (row, column) of best cells
    note: str = ""


def format_cell(mean: float, std: float, n: int) -> str:
    """The paper's cell, plus the number of seeds: `84.2 ± 0.2 (5)`; no runs is `— (0)`."""
    if n == 0:
        return "— (0)"
    return f"{mean:.1f} ± {'—' if n < 2 else f'{std:.1f}'} ({n})"


def as_shown(value: float) -> float:
    """A mean as its cell prints it (one decimal, format_cell's rounding): the best cell is picked
    on this, so two cells that read 84.2 are both bold, not the one 0.04 higher unseen."""
    return float(f"{value:.1f}")


def signed(value: float) -> str:
    """A difference with its sign, one decimal: `+1.2`; one that rounds to zero is `+0.0`, not
    `-0.0`; none (NaN) is `—`."""
    return "—" if np.isnan(value) else f"{round(value, 1) + 0.0:+.1f}"


def format_p(p: float) -> str:
    return "—" if np.isnan(p) else f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def count(value: float, unit: str = "") -> str:
    """Like the paper's Table 9: 1.1K, 24K, 3MB; a run without pretraining shows `—`."""
    if pd.isna(value) or value == 0:
        return "—"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= scale:
            return f"{value / scale:.3g}{prefix}{unit}"
    return f"{value:.0f}{unit}"


def duration(seconds: float) -> str:
    if pd.isna(seconds) or seconds == 0:
        return "—"
    return f"{seconds:.0f} s" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def to_markdown(grid_: Grid, title: str) -> str:
    def line(cells: list[str], row: int) -> str:
        escaped = [c.replace("|", r"\|") for c in cells]   # a `|` in a study's name split its row one column on
        marked = [f"**{c}**" if (row, j) in grid_.bold else c for j, c in enumerate(escaped)]
        return "| " + " | ".join(marked) + " |"

    lines = [f"# {title}", ""] + ([grid_.note, ""] if grid_.note else [])
    lines += [line(grid_.header, -1), "|" + "---|" * len(grid_.header)]
    lines += [line(cells, i) for i, cells in enumerate(grid_.rows)]
    return "\n".join(lines) + "\n"


LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$", "{": r"\{", "}": r"\}",
                 "\\": r"\textbackslash{}", "^": r"\^{}", "~": r"\~{}", "|": r"\textbar{}",
                 "±": r"$\pm$", "¬": r"$\neg$", "—": "---", "−": "$-$", "Δ": r"$\Delta$", "×": r"$\times$",
                 "→": r"$\to$", "≥": r"$\geq$"}


def latex_escape(text: str) -> str:
    return "".join(LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(grid_: Grid, title: str) -> str:
    """A booktabs tabular; best cells in \\textbf."""
    def line(cells: list[str], row: int) -> str:
        escaped = [latex_escape(c) for c in cells]
        return " & ".join(rf"\textbf{{{c}}}" if (row, j) in grid_.bold else c
                          for j, c in enumerate(escaped)) + r" \\"

    lines = [f"% {latex_escape(title)}"] + ([f"% {grid_.note}"] if grid_.note else [])
    lines += [r"\begin{tabular}{l" + "r" * (len(grid_.header) - 1) + "}", r"\toprule",
              line(grid_.header, -1), r"\midrule"]
    lines += [line(cells, i) for i, cells in enumerate(grid_.rows)]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"]) + "\n"
