"""`dontstop run | reproduce --launcher slurm`: the whole study submitted to Slurm at once.

    dontstop reproduce --launcher slurm --partition gpu --pretrain-gpus 8 --finetune-gpus 1 --time 720
    dontstop reproduce --launcher slurm --wait           # then one line per finished job, then the tables

Every pretraining stage and every fine-tuning run is one Slurm job (submitit; runner/slurm_job.py
is what runs in it), and a job starts only after the stages it needs: `--dependency=afterok:<id>`
on each parent stage's job that is not finished yet. Jobs that are finished, queued or running
(runner/slurm_queue.py: jobs.json, squeue) are not submitted again; a job that failed, was
cancelled or ran out of time is, and resumes from its last state. A job that waits on a failed
parent can never start: it is cancelled and submitted again behind the parent's new job; so is a
job still waiting that was submitted with other settings than asked now (another --set or
--cache-dir), while one already running is refused in one line. Logs go to
<results>/<suite>/slurm-logs/<job>/<slurm id>_0_log.{out,err}.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..data.leakage import leakage_keys
from ..suites import Suite
from ..fileio import UserError, job_lock, raise_problems
from ..value_rules import AT_LEAST_1, NON_NEGATIVE
from .slurm_time import slurm_minutes
from .job_actions import finetune_recipe
from .jobs import Job, prepare_jobs, tasks_of
from .plan import RunPlan
from .sbatch_options import OWN_SBATCH, sbatch_options
from .slurm_job import Launch, RunnerJob, write_spec
from .slurm_queue import (Submitted, cancel, check_slurm, logs_dir, read_registry, remember,
                          settings_difference, slug, slurm_dir, slurm_states, write_registry)
from .status import follow

POLL_S = 5.0          # --wait: seconds between two looks at the queue
CPUS_PER_GPU = 4      # default --*-cpus of a GPU job (data loading, tokenization)


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None
    account: str | None
    pretrain_time: int             # minutes
    finetune_time: int
    pretrain_gpus: int             # per node
    pretrain_cpus: int
    finetune_gpus: int
    finetune_cpus: int
    nodes: int                     # of a pretraining job
    sbatch: dict[str, str | bool]  # extra #SBATCH options
    wait: bool
    poll_s: float = POLL_S


# Each Slurm job flag, and the numbers it takes (the flags are None when not given).
JOB_FLAGS = {"--partition": None, "--account": None, "--time": AT_LEAST_1, "--pretrain-time": AT_LEAST_1,
             "--finetune-time": AT_LEAST_1, "--pretrain-gpus": NON_NEGATIVE, "--pretrain-cpus": AT_LEAST_1,
             "--finetune-gpus": None, "--finetune-cpus": AT_LEAST_1, "--nodes": AT_LEAST_1, "--sbatch": None}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The launcher flags of `run` and `reproduce` (runner/cli.py)."""
    parser.add_argument("--launcher", choices=("local", "slurm"), default="local",
                        help="local: --workers processes here; slurm: one Slurm job per stage and run")
    slurm = parser.add_argument_group("Slurm (--launcher slurm)")
    slurm.add_argument("--wait", action="store_true",
                       help="follow the jobs to their end (reproduce: then the analysis and tables)")
    slurm.add_argument("--partition")
    slurm.add_argument("--account")
    slurm.add_argument("--time", type=slurm_minutes, metavar="MIN",
                       help="time limit of every job: minutes, or sbatch's H:MIN:SEC, D-H:MIN, ...")
    slurm.add_argument("--pretrain-time", type=slurm_minutes, metavar="MIN", help="default --time, else 1440")
    slurm.add_argument("--finetune-time", type=slurm_minutes, metavar="MIN", help="default --time, else 240")
    slurm.add_argument("--pretrain-gpus", type=int, help="GPUs per node of a pretraining job (default 0)")
    slurm.add_argument("--pretrain-cpus", type=int, help=f"default 1, or {CPUS_PER_GPU} per GPU")
    slurm.add_argument("--finetune-gpus", type=int, choices=(0, 1), help="default 0")
    slurm.add_argument("--finetune-cpus", type=int, help=f"default 1, or {CPUS_PER_GPU} with a GPU")
    slurm.add_argument("--nodes", type=int, help="nodes of a pretraining job (default 1)")
    slurm.add_argument("--sbatch", action="append", default=[], metavar="KEY=VALUE",
                       help="any other sbatch option, e.g. --sbatch qos=high --sbatch constraint=a100")


def flag_problems(args: argparse.Namespace) -> list[str]:
    """The Slurm job flags' mistakes, one line each, before any work (a dry run too): a number out
    of its range, several nodes without GPUs, and a job flag given to the local launcher, which
    would ignore it."""
    given = {flag: getattr(args, flag[2:].replace("-", "_")) for flag in JOB_FLAGS}
    given = {flag: value for flag, value in given.items() if value not in (None, [])}
    if args.launcher != "slurm":
        return [f"{flag} {' '.join(value) if isinstance(value, list) else value}: a Slurm job flag; "
                "add --launcher slurm (the local launcher runs here, with --workers)" for flag, value in given.items()] \
            + (["--wait: follows Slurm jobs; add --launcher slurm (the local launcher always waits)"]
               if args.wait else [])
    problems = [f"{flag} {value}: {JOB_FLAGS[flag]}" for flag, value in given.items()
                if JOB_FLAGS[flag] is not None and not JOB_FLAGS[flag].allows(value)]
    problems += [f"{flag} {value!r}: empty; give a name, or leave the flag out (`#SBATCH {flag}=` fails at submission)"
                 for flag, value in given.items() if isinstance(value, str) and not value.strip()]
    if getattr(args, "workers", None) is not None:   # it was ignored
        problems.append(f"--workers {args.workers}: the local launcher's; --launcher slurm runs each stage "
                        "and run as a Slurm job of its own")
    try:
        own = [key for key in sbatch_options(args.sbatch) if key.replace("_", "-") in OWN_SBATCH]
        problems += [f"--sbatch {key}: the launcher sets it for each job ({OWN_SBATCH[key.replace('_', '-')]})"
                     for key in own]
    except UserError as e:
        problems.append(str(e))
    if (args.nodes or 1) > 1 and not args.pretrain_gpus:
        problems.append(f"--nodes {args.nodes}: several nodes run pretraining on GPUs; add --pretrain-gpus")
    return problems


def options_from_args(args: argparse.Namespace) -> SlurmOptions:
    def first(*values: int | None) -> int:   # the first flag given (0 is given, not unset)
        return next(value for value in values if value is not None)

    def cpus(given: int | None, gpus: int) -> int:
        return first(given, max(1, CPUS_PER_GPU * gpus))

    raise_problems(flag_problems(args))
    pretrain_gpus, finetune_gpus = first(args.pretrain_gpus, 0), first(args.finetune_gpus, 0)
    return SlurmOptions(
        args.partition, args.account, first(args.pretrain_time, args.time, 1440),
        first(args.finetune_time, args.time, 240), pretrain_gpus, cpus(args.pretrain_cpus, pretrain_gpus),
        finetune_gpus, cpus(args.finetune_cpus, finetune_gpus), first(args.nodes, 1),
        sbatch_options(args.sbatch), args.wait)


def launch(plans: list[RunPlan], suite: Suite, options: SlurmOptions, *, wandb: bool,
           allow_mixed: bool, rerun_stale: bool = False, analysis: bool = False) -> int:
    """Submit every unfinished job; with --wait, follow them and return how many finished."""
    check_slurm()
    jobs = prepare_jobs(plans, suite, allow_mixed, rerun_stale=rerun_stale, analysis=analysis)
    leakage_keys(suite.leakage_task_dirs(running=tasks_of(plans)))   # the jobs read them: fail here first
    submitted, active, finished = submit(jobs, suite, options, wandb)
    # From here Ctrl-C stops the following, not the jobs: say so (cli.main prints it). The try opens
    # before the line a reader waits for, so a Ctrl-C right after it is said so too (a test's race).
    try:
        print(f"{len(jobs)} jobs: {finished} already finished, {active} queued or running, {submitted} "
              f"submitted; logs in {logs_dir(suite)}/<job>/", flush=True)
        if not options.wait:
            print("`dontstop status` with the same --suite, --results-dir and --quick shows where they stand")
            return 0
        done, failed = follow(jobs, suite, options.poll_s)
    except KeyboardInterrupt:
        raise KeyboardInterrupt("the submitted jobs go on in Slurm: `dontstop status` shows them, the same "
                                "command with --wait follows them again, scancel stops them") from None
    if failed:
        raise UserError(f"{len(failed)} job(s) failed or wait on a failed one; `dontstop status` lists "
                        "them with their logs; fix the cause and run the same command again")
    return done


def submit(jobs: list[Job], suite: Suite, options: SlurmOptions, wandb: bool) -> tuple[int, int, int]:
    """Submit what is neither finished nor queued nor running, parents before children;
    returns (submitted, already queued or running, finished)."""
    counts = [0, 0, 0]
    slurm_dir(suite).mkdir(parents=True, exist_ok=True)
    with job_lock(slurm_dir(suite) / "jobs.lock", wait=True):   # two submitters: one after the other
        registry = read_registry(suite, jobs)
        states = slurm_states([registry[slug(j)].job_id for j in jobs if slug(j) in registry and not j.done()])
        settings = {slug(job): job_settings(job, suite) for job in jobs if not job.done()}
        refuse_running_elsewise(jobs, registry, states, settings)
        ids: dict[Path, str] = {}    # done-file of an unfinished job -> its Slurm job id
        renewed: set[Path] = set()   # done-files of the jobs submitted now
        for job in jobs:
            entry = registry.get(slug(job))
            slurm = states.get(entry.job_id) if entry else None
            if job.done():
                counts[2] += 1
                continue
            other = entry and settings_difference(entry, settings[slug(job)])
            if slurm and (slurm.waiting or slurm.running) and not renewed.intersection(job.needs) and not other:
                ids[job.done_file] = entry.job_id
                counts[1] += 1
                continue
            if slurm and slurm.waiting and other:
                print(f"note: {job.label}: Slurm job {entry.job_id} waited with other settings ({other}); "
                      "cancelled, submitted again as asked", flush=True)
            if slurm and (slurm.waiting or slurm.blocked):   # behind a parent that failed or is submitted
                cancel([entry.job_id])                       # again (it would never start), or elsewise
            parents = [ids[path] for path in job.needs if path in ids]
            ids[job.done_file] = _submit_one(job, parents, suite, options, wandb, registry, settings[slug(job)])
            renewed.add(job.done_file)
            write_registry(suite, registry)   # after each: a crash mid-way forgets no job
            counts[0] += 1
        write_registry(suite, registry)       # with the jobs found again in their log folders
    return counts[0], counts[1], counts[2]


def job_settings(job: Job, suite: Suite) -> dict:
    """What a job runs, to tell a submitted job from the one asked now (a `--set` or `--cache-dir`
    changed in between): a stage, the checkpoint folder it builds (its settings are in the name,
    the stage key); a run or probe, its resolved recipe (the checkpoint it starts from included)."""
    if job.kind == "pretrain":
        return {"checkpoint": str(Path(job.stage.checkpoint_dir).resolve())}
    recipe = finetune_recipe(job.plan, suite, job.seed or 0)
    return json.loads(json.dumps(asdict(recipe), default=str))   # as jobs.json will hold it


def refuse_running_elsewise(jobs: list[Job], registry: dict[str, Submitted], states: dict,
                            settings: dict[str, dict]) -> None:
    """One line, before anything is submitted, for a job that is running with other settings than
    asked now: it will finish as it started (a run's result then refused as stale), and the job
    asked cannot start beside it. A waiting one is cancelled and submitted again (submit)."""
    for job in jobs:
        entry = registry.get(slug(job))
        slurm = entry and states.get(entry.job_id)
        other = slurm and slurm.running and settings_difference(entry, settings[slug(job)])
        if other:
            raise UserError(f"{job.label}: running as Slurm job {entry.job_id} with other settings than "
                            f"asked ({other}); wait for it to end, or scancel {entry.job_id}, then run "
                            "the same command again")


def _submit_one(job: Job, parents: list[str], suite: Suite, options: SlurmOptions, wandb: bool,
                registry: dict[str, Submitted], settings: dict) -> str:
    import submitit

    log_dir = logs_dir(suite) / slug(job)
    launch = None
    if job.kind == "pretrain" and (options.pretrain_gpus > 1 or options.nodes > 1):
        launch = Launch(options.pretrain_gpus, options.nodes,
                        write_spec(log_dir / "stage.pkl", job, suite, wandb))
    executor = submitit.SlurmExecutor(folder=log_dir, max_num_timeout=3)
    executor.update_parameters(**sbatch_parameters(job, options, parents))
    try:
        with contextlib.redirect_stderr(io.StringIO()):   # submitit prints sbatch's error, then raises it
            submitted = executor.submit(RunnerJob(job, suite, wandb, launch))
    except Exception as e:  # sbatch refused it: a wrong partition, account or option
        detail = str(e).strip().splitlines() or [type(e).__name__]
        raise UserError(f"sbatch refused the job {job.label}: {detail[-1]}") from None
    remember(registry, job, submitted.job_id, log_dir, settings)
    return submitted.job_id



def sbatch_parameters(job: Job, options: SlurmOptions, parents: list[str]) -> dict:
    """submitit's SlurmExecutor parameters (sbatch options) of one job: one task per node."""
    pretrain = job.kind == "pretrain"
    parameters = dict(job_name=f"dontstop-{slug(job)}", nodes=options.nodes if pretrain else 1,
                      ntasks_per_node=1, cpus_per_task=options.pretrain_cpus if pretrain else options.finetune_cpus,
                      time=options.pretrain_time if pretrain else options.finetune_time,
                      partition=options.partition, account=options.account,
                      gpus_per_node=(options.pretrain_gpus if pretrain else options.finetune_gpus) or None,
                      dependency=f"afterok:{':'.join(parents)}" if parents else None,
                      additional_parameters=dict(options.sbatch),
                      # before python: submitit loads numpy (OpenBLAS) before dontstop can set it (__init__.py)
                      setup=["export OPENBLAS_NUM_THREADS=1"])
    return {key: value for key, value in parameters.items() if value is not None}
