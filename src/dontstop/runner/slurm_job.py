"""One runner job inside its Slurm allocation: what `--launcher slurm` submits (runner/slurm.py).

    python -m dontstop.runner.slurm_job <log_dir>/stage.pkl   # each process of a multi-GPU stage

A job runs as a local worker's job does (runner/jobs.py): with one CPU thread, so that a seed gives
the same numbers whatever the launcher; under the job's flock lock; and only while its done-file
is missing, so a job that another runner finished meanwhile returns at once. A stage with several
GPUs or nodes runs `accelerate launch` on every node of its allocation (one Slurm task per node);
the processes meet at the first node, and each builds the stage with build_stage, which resumes
from <checkpoint>/resume/ as every stage does. A preempted or timed-out job requeues itself
(submitit calls `checkpoint`) and resumes the same way.
"""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..data.leakage import LeakageGuard, leakage_guard
from ..suites import Suite
from ..fileio import atomic_output, job_lock
from .jobs import Job
from .job_actions import build_stage, run_job
from .scratch import clear_job_scratch

PORT_BASE = 20000   # the processes of job N meet at PORT_BASE + N % 20000 on its first node


@dataclass(frozen=True)
class Launch:
    """A stage built by several processes: `gpus_per_node` on each of `nodes` nodes."""
    gpus_per_node: int
    nodes: int
    spec: str            # pickle of (stage, suite, wandb), read by every process


class RunnerJob:
    """The function submitit runs: one job of runner/jobs.py (a stage, a fine-tuning run, a probe)."""

    def __init__(self, job: Job, suite: Suite, wandb: bool, launch: Launch | None = None):
        self.job, self.suite, self.wandb, self.launch = job, suite, wandb, launch

    def __call__(self) -> str:
        import torch

        torch.set_num_threads(1)   # as runner/jobs.py's workers: same seed, same metrics
        signal.signal(signal.SIGTERM, _stop)   # after submitit's handlers, which ignore it
        job, node = self.job, int(os.environ.get("SLURM_NODEID", "0"))
        if job.done():
            return f"{job.label}: already finished"
        if node != 0:              # the other nodes of a multi-node stage: their processes only
            _launch(self.launch, node)
            return f"{job.label}: node {node} finished"
        with job_lock(job.lock_file, wait=True):   # a local runner on it: wait, then find it done
            if job.done():
                return f"{job.label}: already finished"
            missing = [str(path) for path in job.needs if not path.exists()]
            if missing:
                raise RuntimeError(f"{job.label}: its parent stage is not finished ({missing[0]} missing)")
            clear_job_scratch(job)   # here, under the lock: a stage's processes under accelerate hold none
            if self.launch is not None:
                _launch(self.launch, node)
            else:   # the local workers' own dispatch: a stage, a fine-tuning seed or a probe
                run_job(job, self.suite, leakage(self.suite) if job.kind == "pretrain" else LeakageGuard(), self.wandb)
        return f"{job.label}: finished"

    def checkpoint(self):
        """On preemption or time-out submitit requeues the job with this; it resumes from its files."""
        import submitit

        # submitit now requeues the job and exits; the SIGTERM Slurm sends for the requeue must not
        # reach _stop, whose SystemExit would interrupt that exit with a traceback in the log.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return submitit.helpers.DelayedSubmission(self)


def _stop(signum: int, frame) -> None:
    """SIGTERM (scancel, or Slurm ending the job): stop now. submitit only logs it, so a cancelled
    job trained on until Slurm's SIGKILL (KillWait, 30 s by default) and could even finish its stage
    after Slurm had said CANCELLED. Nothing is lost: every state and record is written atomically,
    and a time-out or preemption is handled earlier, by submitit's USR2 (checkpoint, requeue)."""
    raise SystemExit(f"stopped by {signal.Signals(signum).name} (scancel, or Slurm ending the job)")


def leakage(suite: Suite) -> LeakageGuard:
    """The leakage guard of runner/jobs.py, computed where the stage is built."""
    return leakage_guard(suite.leakage_task_dirs(), suite.cache_dir)


def write_spec(path: Path, job: Job, suite: Suite, wandb: bool) -> str:
    """At submission: what each process of a multi-process stage builds."""
    with atomic_output(path, "wb") as f:
        pickle.dump((job.stage, suite, wandb), f)
    return str(path.resolve())


def launch_command(launch: Launch, node: int, head: str, port: int, cpu: bool = False) -> list[str]:
    """`accelerate launch` of one node's processes (torchrun underneath, static rendezvous at
    head:port). On CPUs (`cpu`: tests, no GPU) each process runs with ACCELERATE_USE_CPU=true."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
            "--num_machines", str(launch.nodes), "--num_processes", str(launch.nodes * launch.gpus_per_node),
            "--machine_rank", str(node), "--main_process_ip", head, "--main_process_port", str(port),
            "--mixed_precision", "no" if cpu else "bf16", "--dynamo_backend", "no",
            "-m", "dontstop.runner.slurm_job", launch.spec]


def _launch(launch: Launch, node: int) -> None:
    import torch

    cpu = not torch.cuda.is_available()
    port = PORT_BASE + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000
    head = _head_node() if launch.nodes > 1 else "127.0.0.1"
    env = {**os.environ, **({"ACCELERATE_USE_CPU": "true"} if cpu else {})}
    subprocess.run(launch_command(launch, node, head, port, cpu), env=env, check=True)


def _head_node() -> str:
    """The allocation's first node, where process 0 listens."""
    nodes = subprocess.run(["scontrol", "show", "hostnames", os.environ["SLURM_JOB_NODELIST"]],
                           capture_output=True, text=True, check=True).stdout.split()
    return nodes[0]


def _process_main(spec: str) -> None:
    """One process of a multi-process stage, under accelerate launch."""
    from ..pretrain.trainer import process_state

    state = process_state()   # joins the group (on CPUs: ACCELERATE_USE_CPU, set by _launch)
    with open(spec, "rb") as f:
        stage, suite, wandb = pickle.load(f)
    # One write per line (end=""): unbuffered, print's separate "\n" lets the processes' lines interleave
    print(f"{stage.lineage}: process {state.process_index} of {state.num_processes}\n", end="", flush=True)
    build_stage(stage, suite, leakage(suite), wandb)


if __name__ == "__main__":
    _process_main(sys.argv[1])
