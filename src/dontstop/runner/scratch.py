"""What a killed attempt of a job leaves behind, found and removed by the job's next attempt.

A kill -9 at the wrong moment (the OOM killer, a lost node, a Slurm job past its time) leaves what
no finished job keeps and nothing reads as a result:

    .<file>.<8 random>.tmp            a file being written (fileio.atomic_output), in the job's folder
    resume/.tmp-step-<n>/             a pretraining state being saved (pretrain/trainer.py): ~1.5 GB
                                      for roberta-base with its optimizer, ~4.5 GB for roberta-large
    resume/.tmp-tokens.bin            the token file being written (pretrain/sequences.py)
    resume/ of a finished stage       the states a stage removes right after writing its record
    selections/.<selection>-<8 random>/   a selection made again for its index (job_actions._select)

A few crashes fill a disk, and a resumed cache should look like an uninterrupted one. Each is
removed by the next attempt of the same job, only while it holds the lock that every writer of that
scratch holds (the job's, runner/jobs.Job.lock_file; a selection's, selection_lock; its index's), so
a live process's scratch is never touched; and only by a name that this code alone makes, in that
job's own folder, so another job's scratch is never touched. `dontstop status` names what is left.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import AbstractSet, Iterable

from ..fileio import is_locked, job_lock
from ..records import PRETRAIN_RECORD_FILE

TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")   # `.<name>.` + tempfile's 8 random characters
PARTIAL_STATE = re.compile(r"\.tmp-step-[0-9]{9}")             # trainer._save_resume_state's `.tmp-step-%09d`
PARTIAL_TOKENS = ".tmp-tokens.bin"                             # sequences.write_token_stream's, of resume/tokens.bin
RESUME = "resume"                                              # <checkpoint>/resume/: an unfinished stage's states
SHOWN = 3                                                      # paths named in the line; the rest counted


def temporaries(folder: Path, names: AbstractSet[str] | None = None) -> list[Path]:
    """fileio.atomic_output's temporaries in `folder`: of the files `names`, or (None: a folder
    that only the job writes into) of any file."""
    return [path for path in _entries(folder) if (found := TEMPORARY.fullmatch(path.name))
            and (names is None or found["name"] in names) and _plain(path, folder=False)]


def stage_scratch(checkpoint_dir: str | Path) -> list[Path]:
    """What killed attempts left in a pretraining stage's folder (its job's lock covers it)."""
    folder = Path(checkpoint_dir)
    resume = folder / RESUME
    if (folder / PRETRAIN_RECORD_FILE).is_file():   # finished: nothing writes here any more
        return temporaries(folder) + ([resume] if _plain(resume, folder=True) else [])
    partial = [path for path in _entries(resume)
               if (PARTIAL_STATE.fullmatch(path.name) and _plain(path, folder=True))
               or (path.name == PARTIAL_TOKENS and _plain(path, folder=False))]
    return [*temporaries(folder), *temporaries(resume), *partial]


def job_scratch(job) -> list[Path]:
    """What killed attempts of `job` (runner/jobs.Job) left in its own folder."""
    folder = job.done_file.parent
    if job.kind == "pretrain":
        return stage_scratch(folder)
    if job.kind == "probe":   # the cell's folder, which holds the seeds' folders too: its record's alone
        return temporaries(folder, {job.done_file.name})
    return temporaries(folder)   # a seed's folder: its run alone writes there


def selection_lock(selection_dir: Path) -> Path:
    """Held by whoever writes a selection's folder or its scratch (job_actions._select), whichever
    index it uses: the index's lock alone does not cover it (one selection may be made under two
    leakage guards, so two indexes)."""
    return selection_dir.with_name(f".{selection_dir.name}.lock")


def selection_scratch(selection_dir: Path) -> list[Path]:
    """What killed attempts left of a selection (under selection_lock)."""
    # tempfile.TemporaryDirectory(prefix=".<selection>-") adds 8 random characters: another
    # selection's name (`<name>-<hash8>`) is never hidden, and its scratch is longer
    made_again = re.compile(re.escape(f".{selection_dir.name}-") + "[a-z0-9_]{8}")
    return [*temporaries(selection_dir), *(path for path in _entries(selection_dir.parent)
                                           if made_again.fullmatch(path.name) and _plain(path, folder=True))]


def index_scratch(index_dir: Path) -> list[Path]:
    """What killed attempts left of a kNN index (under its lock, job_actions._select): its files,
    its embedder's, and the note beside it of selections that differ (job_actions._differs_file)."""
    return [*temporaries(index_dir), *temporaries(index_dir / "embedder"),
            *temporaries(index_dir.parent, {index_dir.with_suffix(".differs.json").name})]


def remove_scratch(paths: Iterable[Path], what: str, folder: Path) -> None:
    """Remove `paths` (their lock held by the caller) and say so in one line with their size."""
    removed, size = [], 0
    for path in paths:
        bytes_ = _size(path)
        try:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        except OSError:   # left as it is, for `status` to name: the job goes on
            continue
        removed.append(path)
        size += bytes_
    if removed:
        names = [str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path) for path in removed]
        more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
        print(f"note: {what}: removed what a killed earlier attempt left in {folder} ({human_size(size)}): "
              f"{', '.join(names[:SHOWN])}{more}", flush=True)


def clear_job_scratch(job) -> None:
    """The job's next attempt, under its lock (runner/jobs.work, runner/slurm_job): what earlier
    ones left. A stage's selection is cleared by job_actions._select, under the selection's lock."""
    remove_scratch(job_scratch(job), f"{job.kind} {job.label}", job.done_file.parent)


def clear_finished_jobs(jobs: list) -> None:
    """What killed attempts left that no job takes up again: of finished jobs (a stage's resume/,
    when the kill came between its record and their removal) and of selections (a selection
    finished, its index made again for the notebook), each under its lock when no process holds it
    (one that does is finishing that job, or making that selection, now)."""
    for job in jobs:
        if job.done() and job_scratch(job):
            with job_lock(job.lock_file) as mine:
                if mine:
                    clear_job_scratch(job)
        stage = job.stage if job.kind == "pretrain" else None
        if stage is not None and stage.selection and selection_scratch(stage.selection_dir):
            with job_lock(selection_lock(stage.selection_dir)) as mine:
                if mine:
                    remove_scratch(selection_scratch(stage.selection_dir), f"selection {stage.lineage}",
                                   stage.selection_dir.parent.parent)


def leftover_scratch(jobs: list) -> list[Path]:
    """`dontstop status`: what killed attempts left that no live process holds (a few folder
    listings a job); only read, so a cache it may not write is reported on too."""
    found = []
    for job in jobs:
        found += [] if is_locked(job.lock_file) else job_scratch(job)
        stage = job.stage if job.kind == "pretrain" else None
        if stage is not None and stage.selection and not is_locked(selection_lock(stage.selection_dir)):
            found += selection_scratch(stage.selection_dir)
    return found


def human_size(size: int) -> str:
    """`1.5 GB`, `812 KB`, `40 B` (powers of 1000, as `df -H`)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def total_size(paths: Iterable[Path]) -> int:
    return sum(_size(path) for path in paths)


def _size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (links not followed)."""
    try:
        if not path.is_dir() or path.is_symlink():
            return path.lstat().st_size
        return sum(os.lstat(os.path.join(root, name)).st_size
                   for root, _, files in os.walk(path) for name in files)
    except OSError:   # gone meanwhile
        return 0


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError:   # not there (yet), or not a folder: nothing left in it
        return []


def _plain(path: Path, folder: bool) -> bool:
    """A folder (or a regular file) itself, not a link to one: only what this code made is removed."""
    return not path.is_symlink() and (path.is_dir() if folder else path.is_file())
