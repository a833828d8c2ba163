"""Where each job of a study stands: done, running, queued, blocked, failed or not started.
`dontstop status` (runner/cli.py) prints it per pretraining stage and per (task, condition);
`--launcher slurm --wait` (runner/slurm.py) follows submitted jobs with it.

A job is done when its last file exists (as for the local launcher). Otherwise Slurm decides, for a
job in <results>/<suite>/slurm/jobs.json: queued or running while squeue says so, blocked while it
waits on a parent that failed (afterok never satisfied), failed once Slurm has ended it. Without
Slurm, a job whose lock a live process holds is running (a local runner) and any other is not started.
A finished pretraining stage whose checkpoint `run` would refuse (runner/job_checks.check_finished_stage:
its weights, config, tokenizer or record missing, truncated or of another stage; or, runner/stage_guard,
pretrained on the dev/test text of a task added since that is still to be fine-tuned on it) is damaged, not done;
so is a stage still to build whose folder or finished selection `run` would refuse
(check_stage_to_build).
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..conditions import Condition
from ..suites import Suite, checkpoints_dir
from ..fileio import UserError, check_dir_path, is_locked
from ..suite_roots import check_root_given
from .finished import stale_results
from .inputs import check_inputs
from .job_checks import check_finished_stage, check_stage_to_build
from .stage_guard import tasks_on
from .jobs import Job, clock, make_jobs
from .plan import input_sha256, plan_runs
from .scratch import human_size, leftover_scratch, total_size
from .slurm_queue import SlurmState, Submitted, read_registry, slug, slurm_states

ORDER = ("done", "stale", "damaged", "running", "queued", "blocked", "failed", "not started")


@dataclass(frozen=True)
class JobStatus:
    state: str                          # one of ORDER
    submitted: Submitted | None = None  # the latest Slurm submission, if any
    slurm: str = ""                     # Slurm's state (FAILED, TIMEOUT, CANCELLED, ...), if known
    problem: str = ""                   # why a damaged stage cannot be used, a stale result not counted

    def describe(self) -> str:
        if self.state in ("damaged", "stale"):
            return f"{self.state}: {self.problem}"
        if self.state == "done" or self.submitted is None:
            return self.state
        job = f"job {self.submitted.job_id}"
        if self.state == "blocked":
            return f"blocked: parent failed ({job}, pending forever)"
        if self.state == "failed":
            return f"failed ({job}, {self.slurm or 'ended'}), log {self.submitted.log()}"
        return f"{self.state} ({job})"


def job_status(job: Job, submitted: Submitted | None, slurm: SlurmState | None) -> JobStatus:
    """`slurm` must be read before this call: a job that ends in between is then seen done."""
    if job.done_file.exists():
        return JobStatus("done", submitted)
    if slurm is not None and (slurm.waiting or slurm.running or slurm.blocked):
        state = "running" if slurm.running else "blocked" if slurm.blocked else "queued"
        return JobStatus(state, submitted, slurm.state)
    if is_locked(job.lock_file):
        return JobStatus("running", submitted)
    if submitted is not None:
        return JobStatus("failed", submitted, slurm.state if slurm else "")
    return JobStatus("not started")


def statuses(jobs: list[Job], suite: Suite) -> dict[str, JobStatus]:
    """Every job's status by slug, with one squeue call for all of them."""
    entries = _submissions(jobs, read_registry(suite, jobs))
    states = slurm_states([entry.job_id for name, entry in entries.items()
                           if not Path(entry.done_file).exists()])
    return {slug(job): job_status(job, entries.get(slug(job)),
                                  states.get(entries[slug(job)].job_id) if slug(job) in entries else None)
            for job in jobs}


def _submissions(jobs: list[Job], registry: dict[str, Submitted]) -> dict[str, Submitted]:
    """The latest submission of each job, by slug; for a stage whose inputs changed or went missing
    since (a new hash, so a new slug), the unfinished submission of the same lineage."""
    planned = {slug(job) for job in jobs}
    unfinished = {entry.label: entry for name, entry in registry.items()
                  if entry.kind == "pretrain" and name not in planned and not Path(entry.done_file).exists()}
    found = {}
    for job in jobs:
        entry = registry.get(slug(job)) or (unfinished.get(job.label) if job.kind == "pretrain" else None)
        if entry is not None:
            found[slug(job)] = entry
    return found


def print_status(jobs: list[Job], suite: Suite, missing_inputs: dict[str, list[str]],
                 damaged: dict[str, str], stale: dict[Path, str]) -> dict[str, int]:
    """The table of `dontstop status`; returns the count of jobs per state.

    `missing_inputs`: stage slug -> its input files that do not exist (it cannot run as planned).
    `damaged`: stage slug -> why its finished checkpoint cannot be used (damaged_stages).
    `stale`: a finished result's file -> what it was made from that is not asked now (its run is
    redone by --rerun-stale, and needs its stages again).
    """
    found = statuses(jobs, suite)
    found |= {name: JobStatus("damaged", found[name].submitted, problem=problem) for name, problem in damaged.items()}
    found |= {slug(job): JobStatus("stale", problem=stale[job.done_file]) for job in jobs if job.done_file in stale}
    print(f"suite {suite.name}: results in {Path(suite.results_dir) / suite.name}")
    stages = [job for job in jobs if job.kind == "pretrain"]
    if stages:
        print("pretraining stages")
        needed = {path for job in jobs if job.kind != "pretrain" and (not job.done() or job.done_file in stale)
                  for path in job.needs}
        for job in stages:
            status, missing, why = found[slug(job)], missing_inputs.get(slug(job)), ""
            if status.state != "done" and missing:
                why = "; input missing: " + ", ".join(missing)
            if status.state == "not started" and job.done_file not in needed:
                why += " (no unfinished run needs it)"
            saved = sorted((job.done_file.parent / "resume").glob("step-*")) if status.state == "not started" else []
            if saved:   # it said "not started" of a stage an interrupted run had trained for hours
                why += f"; an earlier run saved {saved[-1].name}: the next one resumes from it"
            print(f"  {job.stage.lineage:44s} {status.describe()}{why}")
    cells: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        if job.kind != "pretrain":
            cells.setdefault((job.plan.task.key, job.plan.condition), []).append(job)
    if cells:
        print("fine-tuning runs (task, condition: seeds)")
    for (task, condition), cell in cells.items():
        seeds, probes = [j for j in cell if j.kind == "finetune"], [j for j in cell if j.kind != "finetune"]
        print(f"  {task:18s} {condition:20s} {_summary([found[slug(job)] for job in seeds])}"
              + "".join(f"; {job.kind}: {found[slug(job)].state}" for job in probes))
        for job in cell:
            if found[slug(job)].state in ("failed", "blocked"):
                what = f"seed {job.seed}" if job.kind == "finetune" else job.kind
                print(f"      {what}: {found[slug(job)].describe()}")
    counts = Counter(status.state for status in found.values())
    shown = [state for state in ORDER if state not in ("damaged", "stale") or counts[state]]   # named when there is one
    print(f"{len(jobs)} jobs: " + ", ".join(f"{counts[state]} {state}" for state in shown))
    return dict(counts)


def _summary(cell: list[JobStatus]) -> str:
    parts = []
    for state in ORDER:
        these = [status for status in cell if status.state == state]
        if not these:
            continue
        ids = [s.submitted.job_id for s in these if s.submitted and state in ("running", "queued")]
        parts.append(f"{state} {len(these)}/{len(cell)}" + (f" (job {', '.join(ids)})" if ids else ""))
    return ", ".join(parts)


def follow(jobs: list[Job], suite: Suite, poll_s: float) -> tuple[int, list[Job]]:
    """Wait until every job is done, failed or blocked, printing a line as each one gets there;
    returns (jobs finished meanwhile, jobs that failed or are blocked)."""
    began, total = time.time(), len(jobs)
    left = [job for job in jobs if not job.done()]
    done_before, finished, failed = total - len(left), 0, []
    while left:
        found = statuses(left, suite)
        for job in list(left):
            status = found[slug(job)]
            if status.state not in ("done", "failed", "blocked"):
                continue
            left.remove(job)
            finished += status.state == "done"
            failed += [job] if status.state != "done" else []
            elapsed = time.time() - began
            eta = clock(elapsed / finished * len(left)) if finished else "?"
            print(f"[{done_before + finished}/{total}] {status.describe()}: {job.kind} {job.label} | "
                  f"elapsed {clock(elapsed)} | ETA {eta}", flush=True)
        if left:
            time.sleep(poll_s)
    return finished, failed



def show_status(suite: Suite, conditions: list[Condition], tasks: list[str] | None,
                seeds: list[int] | None, allow_mixed: bool = False) -> dict[str, int]:
    """`dontstop status`: plan as --dry-run does (inputs may be missing, and are shown so), check
    the inputs that exist as `run` would (runner/inputs.py), check every results file as `run`
    does (its folder, and whether it is stale) and every finished stage's checkpoint as `run`
    does, then print every job."""
    for folder, flag in ((suite.results_dir, "--results-dir"), (suite.cache_dir, "--cache-dir")):
        check_dir_path(folder)
        check_root_given(folder, suite.name, suite.tasks, flag)
    plans = [plan for c in conditions for plan in plan_runs(suite, c, tasks, seeds, planning_only=True)]
    check_inputs(plans, suite, missing_ok=True, shown=True)   # each missing input: in its stage's line
    stale = stale_results(plans, suite, allow_mixed)
    jobs = make_jobs(plans, probe=suite.probe)
    missing = {slug(job): [path for path in _inputs(job.stage) if not Path(path).is_file()]
               for job in jobs if job.kind == "pretrain"}
    stale_reasons = {item.path: item.reason for item in stale}
    counts = print_status(jobs, suite, missing, damaged_stages(jobs, suite), stale_reasons)
    results = Path(suite.results_dir) / suite.name
    if not results.is_dir():   # a mistyped --results-dir reads as nothing run
        print(f"note: no results folder {results}: nothing has run there yet (or another --results-dir was meant)")
    stages = checkpoints_dir(suite)
    if any(job.kind == "pretrain" for job in jobs) and not stages.is_dir():   # a forgotten --cache-dir: all "not started"
        print(f"note: no stage folder {stages}: no stage was built there yet (or another --cache-dir was meant)")
    leftovers = leftover_scratch(jobs)
    if leftovers:   # a killed attempt's scratch: GBs of a pretraining state half saved, read by nothing
        print(f"note: {len(leftovers)} leftover(s) of killed attempts, {human_size(total_size(leftovers))} "
              f"(first: {leftovers[0]}); a `run` or `reproduce` of these plans removes them")
    if stale:
        print(f"{len(stale)} finished result(s) are stale, made from other settings than asked now "
              f"(first: {stale[0].path}: {stale[0].reason}); `run` and `reproduce` refuse them, "
              "--rerun-stale redoes them")
    return counts


def damaged_stages(jobs: list[Job], suite: Suite) -> dict[str, str]:
    """Stage slug -> the line `run` refuses its finished checkpoint, or the finished selection an
    unfinished stage would pretrain on, with (the runner's own checks, weights and tokenizer
    included, whether or not an unfinished job needs the stage now)."""
    sha = input_sha256(suite, planning_only=True)   # an input not on disk is not compared
    damaged = {}
    for job in (job for job in jobs if job.kind == "pretrain"):
        try:
            if job.done():
                check_finished_stage(job.stage, suite, sha, load=True, tasks=tasks_on(job.stage, jobs))
            else:
                check_stage_to_build(job.stage, suite)
        except UserError as e:
            damaged[slug(job)] = str(e)
    return damaged


def _inputs(stage) -> list[str]:
    selection = stage.selection or {}
    return [*stage.corpora, *(selection[key] for key in ("queries", "pool") if key in selection)]
