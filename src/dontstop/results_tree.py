"""Finding the record files of a results tree, <results>/<suite>/<task>/<condition>/[seed_<n>/]:
what `aggregate`, `status`, `run` and the domain analysis read, so that all of them take the
same files and refuse the same misplaced or broken ones with the same line."""
from __future__ import annotations

import os
from pathlib import Path

from .fileio import UserError
from .records import METRICS_FILE, PROBE_FILE, MetricsRecord, ProbeRecord, read_probe, read_run


def finished_runs(suite_results: str | Path) -> tuple[dict[Path, MetricsRecord], dict[Path, ProbeRecord]]:
    """Every metrics.json and probe.json under <results>/<suite>/, each checked against its folder
    (read_run, read_probe): what `aggregate`, `status` and `run` read, so all three refuse the same
    misplaced file with the same line."""
    runs = {path: read_run(path) for path in result_files(suite_results, METRICS_FILE)}
    probes = {path: read_probe(path) for path in result_files(suite_results, PROBE_FILE)}
    return runs, probes


def result_files(suite_results: str | Path, name: str) -> list[Path]:
    """Every file `name` under <results>/<suite>/: at any depth (a misplaced one is refused by
    its folder check), and in its place (<task>/<condition>/[seed_N/]) through a symlinked
    folder too, which `**` does not follow (a seed folder moved to another disk and linked back
    was done for `status` and missing from the tables, without a word). A link to nothing there
    is refused: the runs behind it were missing from the tables and `status`, and `run` failed on
    it, exit 1, after its jobs had started."""
    root = Path(suite_results)
    for link in (path for depth in ("*", "*/*", "*/*/*") for path in root.glob(depth)):
        if link.is_symlink() and not link.exists():   # its runs went missing from the tables without a word
            raise UserError(f"{link}: a link to nothing ({os.readlink(link)}): a folder moved again? link it to "
                            "where the folder is now, or remove the link")
    placed = root.glob(f"*/*/seed_*/{name}" if name == METRICS_FILE else f"*/*/{name}")
    return sorted(set(root.glob(f"**/{name}")) | set(placed))
