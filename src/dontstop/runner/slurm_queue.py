"""What Slurm knows of our jobs, and what we remember of them: the Slurm side of the launcher
(runner/slurm.py submits, runner/status.py reports).

Every submitted job is remembered in <results>/<suite>/slurm/jobs.json under its slug (the name of
its log folder, <results>/<suite>/slurm-logs/<slug>/): its Slurm job id, its kind, label and the
file that marks it finished. A job missing from it (the file deleted) is found again from the
sbatch scripts submitit keeps in its log folder, <slurm id>_submission.sh. A job's state comes from slurmctld (`squeue -t all`, which keeps an
ended job for MinJobAge seconds), then from accounting (`sacct`), then from the job-completion log
(`sacct --completion`, on clusters without a database); submitit's own state calls use sacct
alone, which a cluster without slurmdbd cannot answer.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..suites import Suite
from ..fileio import UserError, atomic_write_json, read_json
from ..records import SLURM_FOLDER, SLURM_LOGS_FOLDER
from .jobs import Job

QUERY_TIMEOUT_S = 60
# squeue's states of a job that will still run (or is running); every other state is an end.
WAITING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED", "STOPPED",
           "SPECIAL_EXIT", "RESV_DEL_HOLD", "CONFIGURING"}
RUNNING = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT"}
NEVER = "DependencyNeverSatisfied"   # squeue's reason for a job whose afterok parent failed


@dataclass
class Submitted:
    """One submitted job, as jobs.json keeps it."""
    job_id: str
    kind: str                      # pretrain | finetune | probe (runner/jobs.py's Job.kind)
    label: str
    done_file: str                 # the job is finished once this file exists
    log_dir: str
    submitted_at: str
    earlier_ids: list[str] = field(default_factory=list)   # ids of earlier tries, oldest first
    settings: dict = field(default_factory=dict)   # what it runs (slurm.job_settings); {} when found again

    def log(self, stream: str = "err") -> Path:
        """submitit's log of the job's first task: <log_dir>/<job id>_0_log.<out|err>."""
        return Path(self.log_dir) / f"{self.job_id}_0_log.{stream}"


@dataclass(frozen=True)
class SlurmState:
    state: str                     # PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ... UNKNOWN
    reason: str = ""               # squeue's reason while pending (DependencyNeverSatisfied, ...)

    @property
    def waiting(self) -> bool:
        return self.state in WAITING and self.reason != NEVER

    @property
    def running(self) -> bool:
        return self.state in RUNNING

    @property
    def blocked(self) -> bool:
        return self.state in WAITING and self.reason == NEVER


def slug(job: Job) -> str:
    """A job's name in jobs.json, in its log folder and (prefixed) in squeue."""
    if job.kind == "pretrain":
        return f"pretrain-{Path(job.stage.checkpoint_dir).name}"
    seed = "" if job.seed is None else f"-seed{job.seed}"   # a probe has none
    return f"{job.kind}-{job.plan.task.key}-{job.plan.condition}{seed}"


def slurm_dir(suite: Suite) -> Path:
    return Path(suite.results_dir) / suite.name / SLURM_FOLDER


def logs_dir(suite: Suite) -> Path:
    return Path(suite.results_dir) / suite.name / SLURM_LOGS_FOLDER


def read_registry(suite: Suite, jobs: list[Job] = ()) -> dict[str, Submitted]:
    """jobs.json, each entry checked, plus each of `jobs` that it does not name but that was
    submitted (found): a deleted, emptied or older jobs.json must not make a queued or running job
    look never submitted, which submitted it twice and showed it as not started."""
    path = slurm_dir(suite) / "jobs.json"
    registry = {name: _entry(path, name, entry) for name, entry in _entries(path).items()}
    for job in jobs:
        if slug(job) not in registry and (found := _found(job, logs_dir(suite) / slug(job))):
            registry[slug(job)] = found
    return registry


def _entries(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = read_json(path)
    except UserError as e:   # truncated, say: its one line, and the way out
        raise UserError(f"{e}; {FIX}") from None
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), dict):
        raise UserError(f"{path}: expected {{\"suite\": ..., \"jobs\": {{<job>: {{...}}}}}}, the registry of "
                        f"submitted jobs; {FIX}")
    return data["jobs"]


# What to do with a damaged jobs.json: the jobs are found again from their log folders (_found)
FIX = "delete it: each submitted job is found again from its log folder"


def _entry(path: Path, name: str, entry) -> Submitted:
    fields = {f.name for f in dataclasses.fields(Submitted)}
    required = {f.name for f in dataclasses.fields(Submitted) if f.default_factory is dataclasses.MISSING}
    if not isinstance(entry, dict) or not required <= entry.keys() <= fields:
        raise UserError(f"{path}: job {name!r}: expected the fields {', '.join(sorted(required))}; {FIX}")
    if not str(entry["job_id"]).isdigit():   # one bad id fails squeue for all: each job looked ended
        raise UserError(f"{path}: job {name!r}: job_id {entry['job_id']!r} is no Slurm job id; {FIX}")
    if not isinstance(entry.get("settings", {}), dict):
        raise UserError(f"{path}: job {name!r}: settings {entry['settings']!r} is no mapping; {FIX}")
    return Submitted(**{**entry, "job_id": str(entry["job_id"])})


def _found(job: Job, log_dir: Path) -> Submitted | None:
    """The job's submissions from the sbatch scripts submitit keeps in its log folder,
    <log_dir>/<slurm id>_submission.sh; the highest id is the latest."""
    ids = sorted((int(path.name.split("_")[0]) for path in log_dir.glob("*_submission.sh")
                  if path.name.split("_")[0].isdigit()))
    if not ids:
        return None
    when = datetime.datetime.fromtimestamp((log_dir / f"{ids[-1]}_submission.sh").stat().st_mtime)
    return Submitted(str(ids[-1]), job.kind, job.label, str(job.done_file.resolve()), str(log_dir.resolve()),
                     when.isoformat(timespec="seconds"), [str(i) for i in ids[:-1]])


def write_registry(suite: Suite, registry: dict[str, Submitted]) -> None:
    atomic_write_json(slurm_dir(suite) / "jobs.json",
                      {"suite": suite.name, "jobs": {name: asdict(entry) for name, entry in registry.items()}})


def remember(registry: dict[str, Submitted], job: Job, job_id: str, log_dir: Path, settings: dict) -> None:
    earlier = registry.get(slug(job))
    registry[slug(job)] = Submitted(
        job_id, job.kind, job.label, str(job.done_file.resolve()), str(log_dir.resolve()),
        datetime.datetime.now().isoformat(timespec="seconds"),
        (earlier.earlier_ids + [earlier.job_id]) if earlier else [], settings)


def settings_difference(entry: Submitted, asked: dict) -> str | None:
    """The first setting in which a submitted job differs from the job asked now, or None (a job
    found again from its log folder has no settings on record: taken as the one asked)."""
    for name in sorted(entry.settings.keys() | asked.keys() if entry.settings else ()):
        if entry.settings.get(name) != asked.get(name):
            return f"{name}: submitted with {entry.settings.get(name)!r}, asked {asked.get(name)!r}"
    return None


def check_slurm() -> None:
    """A Slurm client on PATH and a controller that answers, else one line saying which is missing."""
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        raise UserError("--launcher slurm: sbatch/squeue not found on PATH (no Slurm client on this machine)")
    conf = os.environ.get("SLURM_CONF")
    if conf and not Path(conf).is_file():   # the client would retry for a minute before saying so
        raise UserError(f"--launcher slurm: SLURM_CONF={conf}: no such file")
    try:
        result = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired as e:
        said = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise UserError("--launcher slurm: the Slurm controller did not answer `scontrol ping` in 30 s"
                        + (f" ({_first_error(said)})" if said.strip() else "")) from None
    if result.returncode != 0 or " is UP" not in result.stdout:
        raise UserError(f"--launcher slurm: no reachable Slurm controller (scontrol ping: "
                        f"{_first_error(result.stderr + result.stdout)})")


def _first_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line or "fatal" in line] or lines or ["no answer"]
    return errors[0]


def slurm_states(job_ids: list[str]) -> dict[str, SlurmState]:
    """The state of each job id that Slurm still knows; ids it has forgotten are absent."""
    if not job_ids:
        return {}
    states: dict[str, SlurmState] = {}
    result = _query(["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i|%T|%r"])
    for line in result.splitlines():
        job_id, state, reason = (line.split("|") + ["", ""])[:3]
        states[job_id.strip()] = SlurmState(state.strip(), reason.strip())
    rest = [job_id for job_id in job_ids if job_id not in states]
    for command in (["sacct", "-n", "-X", "-P", "-o", "JobID,State"],
                    ["sacct", "--completion", "-n", "-P", "-o", "JobID,State"]):
        if not rest:
            break
        for line in _query(command + ["-j", ",".join(rest)]).splitlines():
            job_id, _, state = line.partition("|")
            if job_id in rest and state:   # a requeued job ends twice: the last line is the latest
                states[job_id] = SlurmState(state.split()[0])  # "CANCELLED by 0" -> CANCELLED
        rest = [job_id for job_id in rest if job_id not in states]
    return states


def _query(command: list[str]) -> str:
    """stdout of a Slurm query; empty when it fails (squeue of only forgotten ids, no accounting)."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout if result.returncode == 0 else ""


def cancel(job_ids: list[str]) -> None:
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
