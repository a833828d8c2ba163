"""notebooks/results.ipynb executed on a study just aggregated (report/notebook.py executes it):
in place for the repository's own study (its outputs are committed), else a copy beside the
study's tables."""
from __future__ import annotations

from pathlib import Path

from ..conditions import EXPERIMENTS_DIR
from ..suites import Suite
from .job_actions import build_missing_selections
from .plan import RunPlan

NOTEBOOK = EXPERIMENTS_DIR.parent / "notebooks" / "results.ipynb"


def refresh_notebook(suite: Suite, tables_root: Path, plans: list[RunPlan], out: Path | None = None) -> None:
    """Execute the notebook on the suite's results and tables: in place, or into `out`; first,
    the kNN selections of `plans` it shows that the cache lacks (job_actions.build_missing_selections)."""
    from ..report.notebook import execute_notebook

    build_missing_selections(plans, suite)

    name = str(Path(suite.source).resolve()) if suite.is_study else suite.name
    path = execute_notebook(NOTEBOOK, results=Path(suite.results_dir), suite=name,
                            tables=tables_root, cache=Path(suite.cache_dir), data=Path(suite.data_dir), out=out)
    print(f"executed {path} on {Path(suite.results_dir) / suite.name}")
