"""The real one-node Slurm cluster of tests/slurm_cluster.py: sbatch, submitit with a dependency, scancel.

These are the ground a Slurm launcher's tests stand on: if Slurm cannot start here they fail (the
fixture raises), they never skip.
"""
import subprocess
import time

import submitit


def wait_done(job: submitit.Job, timeout: float = 60) -> None:
    """submitit's job.result() waits forever on a job that never ends; a test must not."""
    deadline = time.monotonic() + timeout
    while not job.done():
        assert time.monotonic() < deadline, f"job {job.job_id} not done after {timeout} s"
        time.sleep(0.2)


def test_slurm_sbatch_wait_runs_a_script(slurm_cluster, tmp_path):
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/bash\necho \"hello from job $SLURM_JOB_ID on $(hostname -s)\"\n")
    out = tmp_path / "hello.out"
    # SLURM_CONF is in os.environ (the fixture put it there): a plain subprocess finds the cluster.
    result = subprocess.run(["sbatch", "--wait", "--parsable", "--output", str(out), str(script)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert out.read_text() == f"hello from job {job_id} on {slurm_cluster.hostname}\n"
    # sbatch --wait returns once the job's state is COMPLETED, which its COMPLETING flag (squeue shows
    # "COMPLETING" while slurmd cleans up the job) may still carry for a moment: poll for the end.
    assert slurm_cluster.wait_for_state(job_id, {"COMPLETED"}) == "COMPLETED"


def test_slurm_submitit_dependency_afterok(slurm_cluster, tmp_path):
    shared = tmp_path / "shared.txt"

    # Nested functions: cloudpickle sends them by value, so the job need not import this test module.
    def produce(text: str) -> int:
        shared.write_text(text)
        return len(text)

    def consume(suffix: str) -> str:
        return shared.read_text() + suffix  # fails if it ran before produce: afterok orders them

    executor = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm")
    executor.update_parameters(timeout_min=5, cpus_per_task=1, slurm_partition=slurm_cluster.partition)
    first = executor.submit(produce, "made by the first job")
    executor.update_parameters(slurm_dependency=f"afterok:{first.job_id}")  # sbatch --dependency
    second = executor.submit(consume, ", read by the second")

    wait_done(second)
    assert first.result() == len("made by the first job")
    assert second.result() == "made by the first job, read by the second"
    # submitit sees the result file a moment before Slurm has finished the job: poll for its end.
    for job in (first, second):
        assert slurm_cluster.wait_for_state(job.job_id, {"COMPLETED"}) == "COMPLETED"
    submission = (tmp_path / "submitit" / f"{second.job_id}_submission.sh").read_text()
    assert f"#SBATCH --dependency=afterok:{first.job_id}\n" in submission


def test_slurm_scancel_of_a_running_job(slurm_cluster, tmp_path):
    result = slurm_cluster.run(["sbatch", "--parsable", "--output", str(tmp_path / "sleep.out"),
                                "--wrap", "sleep 300"])
    job_id = result.stdout.strip()
    assert slurm_cluster.wait_for_state(job_id, {"RUNNING"}) == "RUNNING"

    slurm_cluster.run(["scancel", job_id])
    assert slurm_cluster.wait_for_state(job_id, set()) == "CANCELLED"
    # Once slurmctld forgets the job (MinJobAge), the completion log still knows how it ended.
    deadline = time.monotonic() + 10
    while slurm_cluster.completion_state(job_id) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slurm_cluster.completion_state(job_id) == "CANCELLED"
