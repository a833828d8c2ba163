"""After the jobs of `dontstop reproduce`: the domain analysis on what the suite has, then the
paper's tables, findings and plots (report/write.py)."""
from __future__ import annotations

from pathlib import Path

from ..suites import Suite, analysis_dir


def analyze_and_aggregate(suite: Suite, tables_root: Path, experiments_dir: Path, command: str,
                          wandb: bool = False) -> Path:
    """The domain analysis (Figure 2, Tables 1 and 12), then the tables and plots; what the
    analysis cannot compute is a note in the tables' README, with the aggregate `command` that
    makes them again. Returns the tables' folder."""
    # here, not at import: `run`, `status` and `--dry-run` need neither (1.7 s of sklearn, pandas,
    # matplotlib and seaborn on a 2-core CPU)
    from ..analysis.domains import analyze_suite
    from ..report.write import aggregate

    print(f"domain analysis -> {analysis_dir(tables_root, suite.name)}", flush=True)
    notes = analyze_suite(suite, analysis_dir(tables_root, suite.name))
    tables = aggregate(suite, Path(suite.results_dir), tables_root, experiments_dir=experiments_dir,
                       notes=notes, wandb=wandb, command=command)
    print(f"tables and plots: {tables}/README.md")
    return tables
