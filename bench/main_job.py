"""python bench/main_job.py [--full] [--smoke] [--workdir DIR | --in-repo]

Wall time of the main job: `dontstop reproduce --quick` (with --full also the default run,
`dontstop reproduce`) as a subprocess in a fresh temporary folder, with fresh --results-dir
and --cache-dir inside it (nothing cached is reused) and the repo's data/ (built first if
missing). The job's paper tables land in that folder too: the repo is untouched. --workdir
keeps the folders (DIR/quick, DIR/default), e.g. to compare their tables with results/mini.
--in-repo times the default run where `make reproduce` writes (the repo's results/, cache/ and
paper_tables/, which it regenerates: README block and notebook included); it refuses unless
results/mini/ and cache/mini/ are absent, so the run is as fresh as in a temporary folder.
--smoke times `--dry-run` (the plan only): a plumbing check. Appends one JSON line per job
to bench/results/main_job.jsonl.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import DATA_DIR, REPO, RESULTS_DIR, ensure_mini_data, record, stamp
from dontstop.records import RUN_HISTORY_FILE, RunHistory


def time_in_repo(data_dir: str) -> dict:
    """The default run into the repo's own folders, which must hold no mini results or cache yet."""
    for folder in (REPO / "results" / "mini", REPO / "cache" / "mini"):
        if folder.exists():
            raise SystemExit(f"{folder}: already exists; --in-repo times fresh runs only (move it away)")
    command = [sys.executable, "-m", "dontstop", "reproduce", "--no-wandb"]   # as `make reproduce`
    if Path(data_dir).resolve() != DATA_DIR:
        command += ["--data-dir", data_dir]
    print("$ " + " ".join(command), flush=True)
    began = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - began
    return {"job": "dontstop reproduce (in the repo)", "returncode": completed.returncode,
            "wall_time_s": round(wall, 1), **_recorded(REPO / "results" / "mini")}


def _recorded(suite_results: Path) -> dict:
    """What the run recorded of its last call (records.RunHistory), None where it wrote none."""
    calls = RunHistory.read(suite_results, suite_results.name).invocations
    last = calls[-1] if calls else None
    return {"fine_tuning_runs": last and last.runs, "jobs_finished": last and last.jobs_finished,
            "job_recorded_wall_time_s": last and last.wall_time_s}


def time_job(job: list[str], data_dir: str, workdir: str | None) -> dict:
    """Run `dontstop reproduce <job>` in a fresh folder (`workdir`/<job name>, kept, or a temporary
    one); its wall time and the run's own record."""
    with tempfile.TemporaryDirectory(prefix="main-job-") as temporary:
        scratch = Path(temporary)
        if workdir:
            scratch = Path(workdir) / ("quick" if "--quick" in job else "default")
            if scratch.exists():
                raise SystemExit(f"{scratch}: already exists; main_job times fresh runs only")
            scratch.mkdir(parents=True)
        command = [sys.executable, "-m", "dontstop", "reproduce", *job, "--no-wandb", "--data-dir", data_dir,
                   "--results-dir", str(scratch / "results"), "--cache-dir", str(scratch / "cache")]
        print("$ " + " ".join(command), flush=True)
        began = time.perf_counter()
        completed = subprocess.run(command, cwd=scratch, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        wall = time.perf_counter() - began
        run_records = sorted((scratch / "results").rglob(RUN_HISTORY_FILE))  # results/[quick/]<suite>/
        recorded = _recorded(run_records[0].parent if run_records else scratch)
    return {"job": "dontstop reproduce " + " ".join(job), "returncode": completed.returncode,
            "wall_time_s": round(wall, 1), **recorded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also time the default (non-quick) run")
    parser.add_argument("--smoke", action="store_true", help="time `reproduce --quick --dry-run` only")
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    parser.add_argument("--workdir", help="keep each job's results, cache and tables here (default: a temporary "
                                          "folder, removed afterwards)")
    parser.add_argument("--in-repo", action="store_true",
                        help="time the default run into the repo's results/, cache/ and paper_tables/")
    parser.add_argument("--results", default=str(RESULTS_DIR / "main_job.jsonl"))
    args = parser.parse_args()
    if Path(args.data_dir) == DATA_DIR:
        ensure_mini_data()
    jobs = [["--quick", "--dry-run"]] if args.smoke else [["--quick"]] + ([[]] if args.full else [])
    run_id = time.strftime("%Y%m%d-%H%M%S")
    status = 0
    for job in jobs:
        row = time_job(job, str(Path(args.data_dir).resolve()), args.workdir)
        record(Path(args.results), {**row, **stamp(run_id, {"data_dir": args.data_dir})})
        status = status or row["returncode"]
    if args.in_repo:
        row = time_in_repo(args.data_dir)
        record(Path(args.results), {**row, **stamp(run_id, {"data_dir": args.data_dir})})
        status = status or row["returncode"]
    sys.exit(status)


if __name__ == "__main__":
    main()
