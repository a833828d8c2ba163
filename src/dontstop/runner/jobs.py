"""Execute run plans on this machine: build each pretraining stage once, then fine-tune one
run per seed (`dontstop run` and `dontstop reproduce`, runner/cli.py).

Work is a list of jobs (pretraining stages in dependency order, then fine-tuning runs and,
with the suite's `probe`, one linear probe per (task, condition)); `workers`
processes, one CPU thread each, take the next job that is ready (its parent stage is
finished) and not locked by anyone else. A job is finished only when its last file exists
(`pretrain_record.json`, `metrics.json`), so a killed job is redone on the next run and
two runners on one results folder never run the same job twice. A finished run made from other
settings than asked is refused, or redone with --rerun-stale (runner/finished.py); a stage is
built only when an unfinished run or probe, or the domain analysis, needs it.
"""
from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from ..data.leakage import LeakageGuard, leakage_guard
from ..suites import Suite
from ..fileio import UserError, check_writable_dir, is_locked, job_lock
from ..records import METRICS_FILE, PROBE_FILE
from .finished import refuse, retire, stale_results
from .plan import RunPlan, Stage, domain_stages, unique_stages
from .stopping import end_with_runner, stopped_by_signals
from .job_actions import run_job
from .scratch import clear_finished_jobs, clear_job_scratch
from .job_checks import (check_data_consistency, check_finished_stages, check_models_available,
                         check_stage_models, check_stages_to_build)

POLL_S = 2.0  # how often a worker waiting on another worker's stage looks again


@dataclass(frozen=True)
class Job:
    kind: str                     # "pretrain" | "finetune" | "probe"
    label: str                    # what the progress line shows
    done_file: Path               # the job is finished once this exists
    needs: tuple[Path, ...]       # files that must exist first (parent stages' records)
    stage: Stage | None = None
    plan: RunPlan | None = None
    seed: int | None = None

    @property
    def lock_file(self) -> Path:
        return self.done_file.parent.with_name(f".{self.done_file.parent.name}.lock")

    def done(self) -> bool:
        return self.done_file.exists()

    def ready(self) -> bool:
        return all(path.exists() for path in self.needs)


def execute(plans: list[RunPlan], suite: Suite, *, wandb: bool = False, allow_mixed: bool = False,
            workers: int = 1, rerun_stale: bool = False, analysis: bool = False) -> int:
    """Run every unfinished job; return how many this call finished. `analysis`: the domain
    analysis follows (reproduce), so the stages it reads are built too."""
    jobs = prepare_jobs(plans, suite, allow_mixed, rerun_stale=rerun_stale, analysis=analysis)
    clear_finished_jobs(make_jobs(plans, probe=suite.probe))   # a kill's leftovers (runner/scratch.py)
    todo = sum(not job.done() for job in jobs)
    processes = max(1, min(workers, todo))   # a worker with no job to take would only load torch
    print(f"{len(jobs)} jobs, {len(jobs) - todo} already finished, {todo} to run "
          f"on {processes} worker(s)", flush=True)
    guard = leakage_guard(suite.leakage_task_dirs(running=tasks_of(plans)), suite.cache_dir)
    start = (time.time(), len(jobs) - todo)   # for the ETA: when, and how many were done then
    with stopped_by_signals():   # SIGTERM, SIGHUP: stop as on Ctrl-C, the workers too
        if workers <= 1:
            worker_setup()   # the same arithmetic as a worker process: same seed, same metrics
            finished = work(jobs, suite, guard, wandb, start)
        else:
            finished = _run_workers(jobs, suite, guard, wandb, start, processes)
    began = start[0]
    left = sum(not job.done() for job in jobs)
    print(f"done: {finished} job(s) finished in {clock(time.time() - began)}"
          + (f"; {left} left (held by another runner)" if left else ""), flush=True)
    check_no_other_settings(plans, suite, allow_mixed, todo)
    return finished


def check_no_other_settings(plans: list[RunPlan], suite: Suite, allow_mixed: bool, todo: int) -> None:
    """A runner started at the same time on this results folder with other settings (another --set)
    shares the jobs by their locks, so some runs asked here were finished from its settings: say so
    in one line rather than end as if every run were this call's."""
    stale = stale_results(plans, suite, allow_mixed) if todo else []
    if stale:
        raise UserError(f"{stale[0].path}: finished meanwhile by another runner on this results folder, "
                        f"from other settings than asked here ({stale[0].reason})"
                        + (f"; {len(stale) - 1} more like it" if len(stale) > 1 else "")
                        + "; give each setting a --results-dir of its own")


def prepare_jobs(plans: list[RunPlan], suite: Suite, allow_mixed: bool, *, rerun_stale: bool = False,
                 analysis: bool = False) -> list[Job]:
    """The jobs of `plans`, after the checks that must fail before any work, whatever the launcher:
    writable folders (the roots, then every folder a job writes into), every results file in its
    own folder, no stale result (or, with `rerun_stale`, each one set aside to be redone), the same
    data as finished runs, every starting model loadable, every finished stage built on whole and
    the stage asked. The folders are made (and written to, as a test) only once every check has
    passed: a refused command leaves no empty results folder behind."""
    for directory in (suite.results_dir, suite.cache_dir):
        check_writable_dir(directory)
    stale = stale_results(plans, suite, allow_mixed)
    if stale and not rerun_stale:
        refuse(stale)
    redone = {item.path for item in stale}
    for plan in {plan.task.key: plan for plan in plans}.values():  # the check covers a whole task
        check_data_consistency(plan, suite, allow_mixed, redone=redone)
    jobs = make_jobs(plans, probe=suite.probe, analysis=analysis_stages(suite, plans) if analysis else [], redo=redone)
    check_job_folders(jobs, redone)
    retire(stale)
    check_job_models(jobs, suite)
    for directory in (suite.results_dir, suite.cache_dir):
        ensure_writable(directory)
    return jobs


def check_job_models(jobs: list[Job], suite: Suite) -> None:
    """The models the unfinished jobs start from, before any work (a dry run checks them too): each
    one loadable, each finished stage built on (or selection pretrained on) whole and the one
    asked, each stage to build fitting its starting model."""
    check_models_available(jobs)
    check_finished_stages(jobs, suite)
    check_stages_to_build(jobs, suite)
    check_stage_models(jobs, suite)


def check_job_folders(jobs: list[Job], redone: set[Path]) -> None:
    """Every folder that an unfinished job, or one about to be `redone` (its stale file renamed
    beside it), writes into or locks in can be written, before any work: a read-only condition,
    seed or checkpoints folder failed with the system's words, after the jobs before it had run."""
    folders = {path.parent for path in redone}
    for job in (job for job in jobs if not job.done() or job.done_file in redone):
        folders |= {job.done_file.parent, job.lock_file.parent}
        folders |= {job.stage.selection_dir} if job.stage is not None and job.stage.selection else set()
    for folder in sorted(folders):
        check_writable_dir(folder)


def make_jobs(plans: list[RunPlan], probe: bool = False, analysis: list[Stage] | None = None,
              redo: set[Path] = frozenset()) -> list[Job]:
    """Stages first, each once and after its parent; then every (plan, seed) run; with `probe`,
    one representation probe per plan (its checkpoint on its task, no seeds).

    `analysis` (the stages the domain analysis reads, analysis_stages; empty when none follows):
    only the stages that an unfinished run or probe (or one in `redo`) needs, with their parents,
    and those. None (`dontstop status`): every stage of the plans."""
    runs: list[Job] = []
    for plan in plans:
        needs = tuple(s.record_path for s in plan.stages if not s.released)
        runs += [Job("finetune", f"{plan.task.key}/{plan.condition} seed {seed}",
                     plan.run_dir(seed) / METRICS_FILE, needs, plan=plan, seed=seed)
                 for seed in plan.seeds]
        if probe:
            runs.append(Job("probe", f"{plan.task.key}/{plan.condition} probe",
                            plan.cell_dir / PROBE_FILE, needs, plan=plan))
    stages = unique_stages(plans)
    if analysis is not None:
        unfinished = [job for job in runs if not job.done() or job.done_file in redo]
        needed = {stage.key for job in unfinished for stage in job.plan.stages} | {s.key for s in analysis}
        stages = [stage for stage in ({s.key: s for s in stages} | {s.key: s for s in analysis}).values()
                  if stage.key in needed]
    return [Job("pretrain", f"{s.lineage} ({s.kind})", s.record_path, _needs(s, stages), stage=s)
            for s in stages if not s.released] + runs


def analysis_stages(suite: Suite, plans: list[RunPlan]) -> list[Stage]:
    """The stages the domain analysis of `reproduce` reads, parents first: the suite's base stage,
    and of its DAPT and DAPT (LoRA) stages of each domain those that these plans or the finished
    runs in the results start from (analysis/domains.studied_stages): the models the analysis
    scores, whatever else the cache holds."""
    from ..analysis.domains import studied_stages   # here: the analysis loads sklearn, which `run` needs not

    names = studied_stages(suite) | {stage.name for plan in plans for stage in plan.stages}
    return [stage for stage in domain_stages(suite, ("dapt", "dapt:lora"), planning_only=True)
            if stage.kind == "base" or stage.name in names]


def tasks_of(plans: list[RunPlan]) -> set[str]:
    return {plan.task.key for plan in plans}


def _needs(stage: Stage, stages: list[Stage]) -> tuple[Path, ...]:
    parents = [s for s in stages if s.checkpoint_dir == stage.parent and not s.released]
    return tuple(s.record_path for s in parents)


def work(jobs: list[Job], suite: Suite, guard: LeakageGuard, wandb: bool,
         start: tuple[float, int]) -> int:
    """One worker: take the first ready, unlocked, unfinished job until none is left."""
    finished = 0
    while True:
        pending = [job for job in jobs if not job.done()]
        if not pending:
            return finished
        ran = False
        for job in (job for job in pending if job.ready()):
            with job_lock(job.lock_file) as mine:
                if not mine or job.done():
                    continue
                _announce(job, jobs, start)
                clear_job_scratch(job)   # what a killed earlier attempt left (runner/scratch.py)
                run_job(job, suite, guard, wandb)
                finished, ran = finished + 1, True
                break
        if not ran:
            if not any(job.ready() for job in pending) and not _others_busy(pending):
                return finished   # what is left waits on a stage nobody is building
            time.sleep(POLL_S)


def _others_busy(pending: list[Job]) -> bool:
    """True while another process holds the lock of some pending job."""
    return any(is_locked(job.lock_file) for job in pending)


def _announce(job: Job, jobs: list[Job], start: tuple[float, int]) -> None:
    """A line per job; the ETA extrapolates this call's pace over all workers to what is left."""
    done = sum(j.done() for j in jobs)
    elapsed, done_here = time.time() - start[0], done - start[1]
    eta = "?" if not done_here else clock(elapsed / done_here * (len(jobs) - done))
    print(f"[{done + 1}/{len(jobs)}] {job.kind} {job.label} | elapsed {clock(elapsed)} | ETA {eta}",
          flush=True)


def _run_workers(jobs: list[Job], suite: Suite, guard: LeakageGuard, wandb: bool,
                 start: tuple[float, int], workers: int) -> int:
    # concurrent.futures, not multiprocessing.Pool: a worker killed outright (the kernel's OOM
    # killer, a kill -9) breaks the executor, where a Pool waited forever for its result
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=worker_start,
                             initargs=(os.getpid(),)) as executor:
        results = [executor.submit(work, jobs, suite, guard, wandb, start) for _ in range(workers)]
        try:
            return sum(result.result() for result in results)  # re-raises a worker's error here
        except BrokenProcessPool:
            raise SystemExit("dontstop: error: a worker process was killed (out of memory? see `dmesg`); "
                             "finished jobs are kept: rerun the same command to resume (fewer --workers "
                             "use less memory)") from None
        except BaseException:   # a job's error, Ctrl-C or SIGTERM: the workers stop now, mid-job (redone next time)
            for child in multiprocessing.active_children():
                child.terminate()
            raise


def worker_start(runner_pid: int) -> None:
    """A worker process: it ends once its runner is gone (killed outright), then as worker_setup."""
    end_with_runner(runner_pid)
    worker_setup()


def worker_setup() -> None:
    """One BLAS/OpenMP thread per worker: N workers on N cores beat N threads each. And tqdm's
    write lock a thread lock: its default multiprocessing lock, made in each spawned worker (so
    never shared between them), was a semaphore a worker stopped mid-job never released: two
    `resource_tracker: ... leaked semaphore` warnings under the error line of a job that failed."""
    import threading

    import torch
    from tqdm import tqdm

    torch.set_num_threads(1)
    tqdm.set_lock(threading.RLock())


def ensure_writable(directory: str | Path) -> None:
    """Fail before any work starts, not after an hour of pretraining."""
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        raise UserError(f"{directory}: not a writable directory ({e.strerror or e})") from None


def clock(seconds: float) -> str:
    """`1h02m` or `3m07s`: elapsed times and ETAs of the progress lines."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"
