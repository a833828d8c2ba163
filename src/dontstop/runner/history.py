"""results/<suite>/RUN.json: every call of `dontstop reproduce` that ran jobs on a suite's results,
appended after its jobs (records.RunHistory), so a study resumed over several calls keeps the
time of each; the README's results block says how long the whole study took from it."""
from __future__ import annotations

import datetime
import platform
import shlex
import sys
from pathlib import Path

from ..fileio import job_lock
from ..provenance import cpu_count, git_commit, software_versions
from ..records import RUN_HISTORY_FILE, Invocation, RunHistory
from ..suites import Suite
from .plan import RunPlan


def check_history(suite: Suite) -> None:
    """The suite's RUN.json, which record_invocation appends to after the jobs, read now: a damaged
    or copied one is refused before any work, not once every job has run."""
    RunHistory.read(Path(suite.results_dir) / suite.name, suite.name)


def record_invocation(suite: Suite, quick: bool, seconds: float, plans: list[RunPlan], finished: int) -> RunHistory:
    """Append this call to the suite's history and write it; returns the history. Read and written
    under a lock: two `reproduce` calls on one results folder (which share its jobs) ending
    together each read the history before the other wrote it, and the first call's entry was lost."""
    folder = Path(suite.results_dir) / suite.name
    with job_lock(folder / f".{RUN_HISTORY_FILE}.lock", wait=True):
        history = RunHistory.read(folder, suite.name)
        history.invocations.append(Invocation(
            command=shlex.join(["dontstop", *sys.argv[1:]]),   # a path with spaces, quoted as a shell takes it
            finished_at=datetime.datetime.now().isoformat(timespec="seconds"),
            wall_time_s=round(seconds, 1), jobs_finished=finished, quick=quick,
            runs=sum(len(p.seeds) for p in plans), git_commit=git_commit(),
            machine=f"{platform.machine()}, {cpu_count()} CPU cores, {platform.system()}",
            versions=software_versions()))
        history.write(folder)
    print(f"run record: {folder / RUN_HISTORY_FILE} ({seconds / 60:.1f} min, {finished} jobs finished)")
    return history
