"""`--launcher slurm` against the real one-node Slurm of tests/slurm_cluster.py, on the real mini
data: the local launcher's metrics, a pretraining job cancelled mid-way and resumed, one requeued
by Slurm's time-limit warning and resumed, a failing job shown by `dontstop status` with its log,
and Slurm-less errors in one line.

The study is baseline and TAPT on rt-polarity, 2 seeds, with the quick recipes of a study file
extending the mini suite whose TAPT is 4 epochs with a resumable state after every step (about 12
steps), so that a scancel lands mid-way, and without probes. Each test starts from the stages of
one local run, copied. A last test runs a study file with its own (Korean) tasks and domains.
If Slurm cannot start, these tests fail; they never skip.
"""
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dontstop.records import MetricsRecord, PretrainRecord

REPO = Path(__file__).resolve().parents[1]
SUBSET = ["experiments/baseline", "experiments/tapt", "--tasks", "rt-polarity", "--seeds", "0", "1"]
SLURM = ["--launcher", "slurm", "--partition", "debug", "--time", "10"]
STATUS = ["status", "--conditions", "baseline", "tapt", "--tasks", "rt-polarity", "--seeds", "0", "1"]


@pytest.fixture(scope="module")
def suite_yaml(tmp_path_factory) -> Path:
    """A study on the mini suite: a longer quick TAPT that saves its state after every step, no
    probes (fewer jobs; a probe job goes through the same dispatch as a run)."""
    study = {"name": "mini-slurm", "extends": "mini", "probe": False,
             "quick": {"tapt": {"epochs": 4, "checkpoint_every": 1}}}
    path = tmp_path_factory.mktemp("suite") / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def dontstop_command(*args, data_dir, root, suite, cache="cache") -> list[str]:
    """`python -m dontstop ... --quick` with its own results and cache folders."""
    return [sys.executable, "-m", "dontstop", *map(str, args), "--quick", "--no-wandb", "--suite", str(suite),
            "--data-dir", str(data_dir), "--results-dir", str(root / "results"), "--cache-dir", str(root / cache)]


ENV = {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def dontstop(*args, data_dir, root, suite, check=True, env=None, cache="cache"):
    """Run dontstop_command to its end."""
    command = dontstop_command(*args, data_dir=data_dir, root=root, suite=suite, cache=cache)
    result = subprocess.run(command, cwd=REPO, env={**os.environ, **ENV, **(env or {})}, capture_output=True,
                            text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def dontstop_in_background(*args, data_dir, root, suite) -> subprocess.Popen:
    """dontstop_command started without waiting for it: its stdout and stderr together, as text."""
    return subprocess.Popen(dontstop_command(*args, data_dir=data_dir, root=root, suite=suite), cwd=REPO,
                            env={**os.environ, **ENV}, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def scores(root: Path) -> dict[str, tuple]:
    """What a seed must reproduce, per run: test and dev scores and the dev curve."""
    found = {}
    for path in sorted((root / "results").rglob("metrics.json")):
        record = MetricsRecord.read(path)
        found[str(path.relative_to(root / "results"))] = (record.test, record.dev, record.dev_curve)
    return found


def registry(root: Path) -> dict:
    return json.loads((root / "results" / "quick" / "mini-slurm" / "slurm" / "jobs.json").read_text())["jobs"]


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"after {timeout} s: {what}"
        time.sleep(0.1)
    return found


def without_tapt(local_root: Path, root: Path) -> Path:
    """Copy the local run's pretraining stages but its TAPT one into `root`; returns where TAPT's
    record will be. The Slurm tests then start from its parent stage, already built."""
    shutil.copytree(local_root / "cache", root / "cache")
    [record] = (root / "cache").rglob("*tapt-rt-polarity-*/pretrain_record.json")
    shutil.rmtree(record.parent)
    return record


@pytest.fixture(scope="module")
def local_run(mini_build, suite_yaml, tmp_path_factory):
    """The study with the local launcher: (data_dir, root, number of jobs). The jobs are the two
    stages, the 4 fine-tuning runs, and whatever else the suite asks for (a probe per condition)."""
    data_dir, _ = mini_build
    root = tmp_path_factory.mktemp("local")
    result = dontstop("run", *SUBSET, "--workers", "2", data_dir=data_dir, root=root, suite=suite_yaml)
    jobs = int(re.search(r"^(\d+) jobs, 0 already finished", result.stdout, re.M)[1])
    return data_dir, root, jobs


def test_slurm_wait_gives_the_metrics_of_the_local_launcher(slurm_cluster, local_run, suite_yaml, tmp_path):
    """Fine-tuning under Slurm (the stages come from the local run; the next test builds TAPT under
    Slurm and compares the same metrics)."""
    data_dir, local_root, n = local_run
    shutil.copytree(local_root / "cache", tmp_path / "cache")
    result = dontstop("run", *SUBSET, *SLURM, "--wait", data_dir=data_dir, root=tmp_path, suite=suite_yaml)
    assert f"{n} jobs: 2 already finished, 0 queued or running, {n - 2} submitted" in result.stdout
    progress = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(progress) == n - 2 and progress[-1].startswith(f"[{n}/{n}] done") and "ETA" in progress[-1]
    assert scores(tmp_path) == scores(local_root) and len(scores(tmp_path)) == 4
    jobs = registry(tmp_path)
    assert len(jobs) == n - 2 and all(Path(job["log_dir"]).parent.name == "slurm-logs" for job in jobs.values())
    for job in jobs.values():   # every job ran in its own Slurm job and left its log in its folder
        assert slurm_cluster.wait_for_state(job["job_id"], {"COMPLETED"}) == "COMPLETED"
        assert (Path(job["log_dir"]) / f"{job['job_id']}_0_log.out").exists()

    again = dontstop("run", *SUBSET, *SLURM, data_dir=data_dir, root=tmp_path, suite=suite_yaml)
    # every run finished: no stage is needed any more, so only the runs are jobs (status lists all)
    assert f"{n - 2} jobs: {n - 2} already finished, 0 queued or running, 0 submitted" in again.stdout
    status = dontstop(*STATUS, data_dir=data_dir, root=tmp_path, suite=suite_yaml).stdout
    assert f"{n} jobs: {n} done, 0 running, 0 queued, 0 blocked, 0 failed, 0 not started" in status


def test_slurm_scancel_mid_pretraining_then_the_same_command_gives_the_uninterrupted_results(
        slurm_cluster, local_run, suite_yaml, tmp_path):
    data_dir, local_root, _ = local_run
    tapt = without_tapt(local_root, tmp_path)
    dontstop("run", *SUBSET, *SLURM, data_dir=data_dir, root=tmp_path, suite=suite_yaml)
    [tapt_job] = [job for name, job in registry(tmp_path).items() if name.startswith("pretrain-")]
    behind_tapt = [name for name in registry(tmp_path) if "tapt" in name]   # the stage and its runs
    wait_for(lambda: list(tapt.parent.glob("resume/step-*")), 120, "no resumable TAPT state")
    slurm_cluster.run(["scancel", tapt_job["job_id"]])
    assert slurm_cluster.wait_for_state(tapt_job["job_id"], set()) == "CANCELLED"
    assert not tapt.exists()

    status = dontstop(*STATUS, data_dir=data_dir, root=tmp_path, suite=suite_yaml).stdout
    assert f"failed (job {tapt_job['job_id']}, CANCELLED), log " in status, status

    # The TAPT runs wait on the cancelled stage forever: the same command cancels and resubmits them
    # behind the stage's new job, and leaves the baseline runs (queued, running or done) alone.
    result = dontstop("run", *SUBSET, *SLURM, "--wait", data_dir=data_dir, root=tmp_path, suite=suite_yaml)
    assert f"{len(behind_tapt)} submitted" in result.stdout, result.stdout
    resumed = PretrainRecord.read(tapt)
    assert 0 < resumed.resumed_from_step < resumed.steps
    assert scores(tmp_path) == scores(local_root) and len(scores(tmp_path)) == 4


def test_a_preempted_or_timed_out_slurm_job_requeues_itself_and_resumes_while_run_waits(
        slurm_cluster, local_run, suite_yaml, tmp_path):
    """Slurm warns a job before its time limit (or a preemption) with USR2, as submitit asks it to
    (`--signal=USR2@90`): submitit then calls RunnerJob.checkpoint and requeues the job, which
    starts again under the same id and resumes its stage from its last state. Sent here by hand
    (`scancel --signal=USR2`), mid-TAPT, while `run --wait` follows the jobs."""
    data_dir, local_root, _ = local_run
    tapt = without_tapt(local_root, tmp_path)
    waiting = dontstop_in_background("run", *SUBSET, *SLURM, "--wait", data_dir=data_dir, root=tmp_path,
                                     suite=suite_yaml)
    try:
        wait_for(lambda: (tmp_path / "results" / "quick" / "mini-slurm" / "slurm" / "jobs.json").exists(), 120,
                 "nothing submitted")
        [tapt_job] = [job for name, job in registry(tmp_path).items() if name.startswith("pretrain-")]
        wait_for(lambda: list(tapt.parent.glob("resume/step-*")), 120, "no resumable TAPT state")
        job_id = tapt_job["job_id"]
        slurm_cluster.run(["scancel", "--signal=USR2", job_id])
        # Slurm holds a requeued batch job for two minutes (BeginTime) before it may start again;
        # the test lets it start at once, as an administrator can.
        # check=False: a poll that slurmctld, busy with the requeue, answers with an error polls again
        wait_for(lambda: slurm_cluster.run(["squeue", "-h", "-j", job_id, "-o", "%T %r"], check=False).stdout.split()
                 == ["PENDING", "BeginTime"], 60, "the job not requeued")
        slurm_cluster.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"])
        out, _ = waiting.communicate(timeout=300)
    finally:
        waiting.kill()
    assert waiting.returncode == 0 and "failed" not in out, out[-3000:]
    log = (Path(tapt_job["log_dir"]) / f"{job_id}_0_log.out").read_text()
    assert f"Requeued job {job_id}" in log and "Job completed successfully" in log, log
    assert "Traceback" not in (Path(tapt_job["log_dir"]) / f"{job_id}_0_log.err").read_text()
    resumed = PretrainRecord.read(tapt)
    assert 0 < resumed.resumed_from_step < resumed.steps
    assert scores(tmp_path) == scores(local_root) and len(scores(tmp_path)) == 4
    assert slurm_cluster.wait_for_state(job_id, {"COMPLETED"}) == "COMPLETED"


def test_ctrl_c_while_run_waits_says_the_slurm_jobs_go_on(slurm_cluster, local_run, suite_yaml, tmp_path):
    """Ctrl-C during `--wait` stops the following, not the jobs: the line says so (it said "rerun the
    same command to resume", as for the local launcher, whose workers do stop)."""
    data_dir, local_root, _ = local_run
    shutil.copytree(local_root / "cache", tmp_path / "cache")   # both stages built: 4 runs to submit
    with slurm_cluster.partition_down():
        waiting = dontstop_in_background("run", *SUBSET, *SLURM, "--wait", data_dir=data_dir, root=tmp_path,
                                         suite=suite_yaml)
        try:
            lines = []
            for line in waiting.stdout:   # until it has submitted and follows the jobs
                lines.append(line)
                if "4 submitted" in line:
                    break
            waiting.send_signal(signal.SIGINT)
            out = "".join(lines) + waiting.communicate(timeout=60)[0]
        finally:
            waiting.kill()
        assert waiting.returncode == 130 and "Traceback" not in out, out[-3000:]
        assert out.splitlines()[-1] == (
            "dontstop: interrupted; the submitted jobs go on in Slurm: `dontstop status` shows them, the same "
            "command with --wait follows them again, scancel stops them")
        job_ids = [job["job_id"] for job in registry(tmp_path).values()]
        assert len(job_ids) == 4 and {slurm_cluster.job_state(job_id) for job_id in job_ids} == {"PENDING"}
        slurm_cluster.run(["scancel", *job_ids])


def test_slurm_failing_job_shows_in_status_with_its_log_and_blocks_only_its_runs(
        slurm_cluster, local_run, suite_yaml, tmp_path):
    data_dir, local_root, _ = local_run
    shutil.copytree(local_root / "cache", tmp_path / "cache")   # base and TAPT stages built
    corpus = tmp_path / "reviews.txt"
    shutil.copy(data_dir / "mini" / "corpora" / "reviews.txt", corpus)
    study = ["experiments/dapt", "experiments/tapt", "--tasks", "rt-polarity", "--seeds", "0", "2",
             "--domain-corpus", f"reviews={corpus}"]
    with slurm_cluster.partition_down():   # the jobs start only once the corpus is gone
        dontstop("run", *study, *SLURM, data_dir=data_dir, root=tmp_path, suite=suite_yaml)
        first = {name: job["job_id"] for name, job in registry(tmp_path).items()}
        (tmp_path / "results" / "quick" / "mini-slurm" / "slurm" / "jobs.json").unlink()
        again = dontstop("run", *study, *SLURM, data_dir=data_dir, root=tmp_path, suite=suite_yaml)
        assert f"{len(first)} queued or running, 0 submitted" in again.stdout, again.stdout   # not twice
        assert {name: job["job_id"] for name, job in registry(tmp_path).items()} == first
        corpus.unlink()   # after submission: the DAPT job fails when it starts

    def status():
        text = dontstop("status", *study[2:], "--conditions", "dapt", "tapt", data_dir=data_dir,
                        root=tmp_path, suite=suite_yaml).stdout
        cells = {tuple(line.split()[:2]): line for line in text.splitlines() if line.startswith("  rt-polarity")}
        ready = "done 2/2" in cells[("rt-polarity", "tapt")] and "blocked 2/2" in cells[("rt-polarity", "dapt")]
        return text if ready else None
    text = wait_for(status, 120, "the TAPT runs not done, or the DAPT ones not blocked")
    [dapt] = [line for line in text.splitlines() if line.split()[0].endswith("dapt-reviews")]
    assert "failed (job" in dapt and f"input missing: {corpus}" in dapt, dapt
    [log] = [word.rstrip(";,") for word in dapt.split() if "_0_log.err" in word]
    assert f"{corpus}: corpus file not found" in Path(log).read_text()
    assert {"seed 0: blocked: parent failed", "seed 2: blocked: parent failed"} <= \
        {line.strip().split(" (job")[0] for line in text.splitlines()}


def test_slurm_jobs_waiting_with_another_cache_or_other_settings_are_submitted_again_as_asked(
        slurm_cluster, local_run, suite_yaml, tmp_path):
    """The same command with another --cache-dir while the first one's jobs wait: the runs waited
    on the stage job of the old cache and failed "parent stage is not finished"; with another
    --set, they ran with the old settings. Now each waiting job made otherwise is cancelled and
    submitted again as asked, and the results are the local launcher's."""
    data_dir, local_root, _ = local_run
    without_tapt(local_root, tmp_path)
    shutil.copytree(tmp_path / "cache", tmp_path / "other-cache")
    with slurm_cluster.partition_down():
        dontstop("run", *SUBSET, *SLURM, data_dir=data_dir, root=tmp_path, suite=suite_yaml)
        first = {name: job["job_id"] for name, job in registry(tmp_path).items()}
        assert len(first) == 5   # TAPT, then 2 seeds of 2 conditions
        again = dontstop("run", *SUBSET, *SLURM, data_dir=data_dir, root=tmp_path, suite=suite_yaml,
                         cache="other-cache")
        assert "5 submitted" in again.stdout, again.stdout
        notes = [line for line in again.stdout.splitlines() if line.startswith("note: ")]
        assert len(notes) == 5 and all("cancelled, submitted again as asked" in note for note in notes)
        assert any("tapt-rt-polarity" in note and "(checkpoint: submitted with " in note for note in notes)
        assert any("baseline seed 0" in note and "(model: submitted with " in note for note in notes)
        second = {name: job["job_id"] for name, job in registry(tmp_path).items()}
        assert second.keys() == first.keys() and not set(second.values()) & set(first.values())
        assert {slurm_cluster.wait_for_state(job_id, set()) for job_id in first.values()} == {"CANCELLED"}
    result = dontstop("run", *SUBSET, *SLURM, "--wait", data_dir=data_dir, root=tmp_path, suite=suite_yaml,
                      cache="other-cache")
    assert re.search(r"^6 jobs: .* 0 submitted", result.stdout, re.M), result.stdout   # the base stage: built
    assert scores(tmp_path) == scores(local_root) and len(scores(tmp_path)) == 4
    assert not list((tmp_path / "cache").rglob("*tapt-rt-polarity-*/pretrain_record.json"))


def test_a_job_running_with_other_settings_than_asked_is_one_line_before_any_submission(tmp_path):
    """Running, it will end as it started (its result then refused as stale); the job asked cannot
    start beside it: one line naming the job, the setting and the way out, nothing submitted."""
    from types import SimpleNamespace

    from dontstop.fileio import UserError
    from dontstop.runner.jobs import Job
    from dontstop.runner.slurm import refuse_running_elsewise
    from dontstop.runner.slurm_queue import SlurmState, Submitted, settings_difference, slug

    job = Job("finetune", "rt-polarity/tapt seed 0", tmp_path / "metrics.json", (), seed=0,
              plan=SimpleNamespace(task=SimpleNamespace(key="rt-polarity"), condition="tapt"))
    entry = Submitted("12", "finetune", job.label, str(job.done_file), str(tmp_path), "t",
                      settings={"lr": 2e-5, "seed": 0})
    registry, asked = {slug(job): entry}, {slug(job): {"lr": 1e-4, "seed": 0}}
    assert settings_difference(entry, asked[slug(job)]) == "lr: submitted with 2e-05, asked 0.0001"
    assert settings_difference(dataclasses.replace(entry, settings={}), asked[slug(job)]) is None  # found again
    refuse_running_elsewise([job], registry, {"12": SlurmState("PENDING")}, asked)   # waiting: submit() redoes it
    refuse_running_elsewise([job], registry, {"12": SlurmState("RUNNING")}, {slug(job): {"lr": 2e-5, "seed": 0}})
    with pytest.raises(UserError) as error:
        refuse_running_elsewise([job], registry, {"12": SlurmState("RUNNING")}, asked)
    assert str(error.value) == ("rt-polarity/tapt seed 0: running as Slurm job 12 with other settings than asked "
                                "(lr: submitted with 2e-05, asked 0.0001); wait for it to end, or scancel 12, "
                                "then run the same command again")


def test_slurm_without_a_client_or_a_controller_or_with_a_wrong_partition_is_one_line(
        slurm_cluster, mini_build, suite_yaml, tmp_path):
    data_dir, _ = mini_build
    dead = tmp_path / "dead.conf"   # the test cluster's configuration, with nobody at the controller's port
    dead.write_text(re.sub(r"(?m)^SlurmctldPort=.*$", "SlurmctldPort=1", slurm_cluster.conf_path.read_text()))
    cases = {"sbatch/squeue not found on PATH": {"PATH": str(Path(sys.executable).parent)},
             "no reachable Slurm controller (scontrol ping: Slurmctld(primary)": {"SLURM_CONF": str(dead)},
             f"SLURM_CONF={tmp_path / 'none.conf'}: no such file": {"SLURM_CONF": str(tmp_path / "none.conf")}}
    for says, env in cases.items():
        result = dontstop("run", *SUBSET, *SLURM, data_dir=data_dir, root=tmp_path, suite=suite_yaml,
                          check=False, env=env)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("dontstop: error: --launcher slurm: ") and says in result.stderr
    assert not (tmp_path / "results").exists()
    result = dontstop("run", *SUBSET, *SLURM, "--partition", "nosuch", data_dir=data_dir, root=tmp_path,
                      suite=suite_yaml, check=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "sbatch refused the job" in result.stderr and "Invalid partition name" in result.stderr


def test_slurm_multi_gpu_pretraining_asks_for_every_node_and_runs_accelerate_on_each(mini_build, tmp_path):
    """What a multi-node DAPT job asks Slurm for, and the command each of its nodes runs (no GPU
    here to run it: tests/test_distributed.py runs that command on 2 CPU processes)."""
    from submitit.slurm.slurm import _make_sbatch_string

    from dontstop.cli import build_parser
    from dontstop.conditions import load_condition
    from dontstop.suites import load_suite, with_quick
    from dontstop.fileio import UserError
    from dontstop.runner.jobs import make_jobs
    from dontstop.runner.plan import plan_runs
    from dontstop.runner.slurm import options_from_args, sbatch_parameters
    from dontstop.runner.slurm_job import Launch, launch_command
    from dontstop.runner.slurm_queue import slug

    data_dir, _ = mini_build
    suite = with_quick(dataclasses.replace(load_suite("mini"), data_dir=str(data_dir), cache_dir=str(tmp_path)))
    jobs = make_jobs(plan_runs(suite, load_condition(REPO / "experiments" / "tapt"), ["rt-polarity"], [0]),
                     probe=True)
    stage, run = [job for job in jobs if job.kind == "pretrain"][-1], jobs[-2]
    assert [slug(job) for job in jobs[-2:]] == ["finetune-rt-polarity-tapt-seed0", "probe-rt-polarity-tapt"]
    assert slug(stage) == f"pretrain-{Path(stage.stage.checkpoint_dir).name}"
    flags = ["run", "experiments/tapt", "--launcher", "slurm", "--partition", "gpu", "--account", "lab",
             "--time", "600", "--sbatch", "qos=high", "--sbatch", "exclusive", "--finetune-gpus", "1"]
    options = options_from_args(build_parser(["run"]).parse_args(flags + ["--pretrain-gpus", "4", "--nodes", "2"]))

    def sbatch(job, parents):
        return _make_sbatch_string(command="python -m submitit.core._submit x", folder=tmp_path,
                                   **sbatch_parameters(job, options, parents)).splitlines()
    common = ["#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --time=600", "#SBATCH --qos=high",
              "#SBATCH --exclusive", "#SBATCH --ntasks-per-node=1"]
    assert set(common + ["#SBATCH --nodes=2", "#SBATCH --gpus-per-node=4", "#SBATCH --cpus-per-task=16",
                         "#SBATCH --dependency=afterok:12:13"]) <= set(sbatch(stage, ["12", "13"]))
    assert set(common + ["#SBATCH --nodes=1", "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=4"]) \
        <= set(sbatch(run, []))
    for job in (stage, run):   # before python: a kNN selection follows how OpenBLAS started (test_select.py)
        script = sbatch(job, [])   # the command is srun's line: `srun --unbuffered ... python -m submitit...`
        [command] = [number for number, line in enumerate(script) if "python -m submitit.core._submit x" in line]
        assert script.index("export OPENBLAS_NUM_THREADS=1") < command

    command = launch_command(Launch(4, 2, "/logs/stage.pkl"), node=1, head="node7", port=20012)
    assert command[:4] == [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    assert command[-3:] == ["-m", "dontstop.runner.slurm_job", "/logs/stage.pkl"]
    given = dict(zip(command[4:-3:2], command[5:-3:2]))
    assert given == {"--num_machines": "2", "--num_processes": "8", "--machine_rank": "1",
                     "--main_process_ip": "node7", "--main_process_port": "20012", "--mixed_precision": "bf16",
                     "--dynamo_backend": "no"}
    with pytest.raises(UserError, match="--nodes 2: several nodes run pretraining on GPUs; add --pretrain-gpus"):
        options_from_args(build_parser(["run"]).parse_args(flags + ["--nodes", "2"]))


@pytest.mark.parametrize("given, minutes", [("600", 600), ("90:30", 91), ("10:00:00", 600), ("1-0", 1440),
                                            ("2-12:30", 3630), ("1-00:00:01", 1441)])
def test_a_time_limit_is_minutes_or_one_of_sbatchs_forms(given, minutes):
    """`--time 10:00:00`, as sbatch and every cluster's docs write it, was refused as an invalid int."""
    from dontstop.cli import build_parser
    from dontstop.runner.slurm import options_from_args

    args = build_parser(["run"]).parse_args(["run", "experiments/tapt", "--launcher", "slurm", "--time", given])
    options = options_from_args(args)
    assert options.pretrain_time == options.finetune_time == minutes


def test_a_time_limit_in_no_form_of_sbatchs_is_one_line_naming_them(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dontstop", "reproduce", "--dry-run", "--launcher", "slurm",
                             "--time", "10h", "--results-dir", str(tmp_path / "results")], capture_output=True, text=True)
    assert result.returncode == 2 and not (tmp_path / "results").exists()
    assert result.stderr.strip().splitlines() == [
        "dontstop: error: reproduce: argument --time: '10h': give minutes, or sbatch's MIN, MIN:SEC, H:MIN:SEC, "
        "D-H, D-H:MIN or D-H:MIN:SEC ('dontstop reproduce --help' lists the flags)"]


@pytest.mark.parametrize("flags, message", [
    (["--launcher", "slurm", "--time", "0"], "--time 0: must be >= 1"),   # was taken as unset: 1440 minutes
    (["--launcher", "slurm", "--pretrain-gpus", "-1"], "--pretrain-gpus -1: must be >= 0"),
    (["--launcher", "slurm", "--nodes", "2"], "--nodes 2: several nodes run pretraining on GPUs; add --pretrain-gpus"),
    (["--partition", "gpu"], "--partition gpu: a Slurm job flag; add --launcher slurm (the local launcher runs "
                             "here, with --workers)"),
    # overrode the launcher's own #SBATCH line: the stages' order, or the time asked
    (["--launcher", "slurm", "--sbatch", "dependency=afterok:1"],
     "--sbatch dependency: the launcher sets it for each job (each job waits on its parent stages' jobs)"),
    (["--launcher", "slurm", "--sbatch", "time=5"],
     "--sbatch time: the launcher sets it for each job (give --time, --pretrain-time or --finetune-time)"),
    (["--launcher", "slurm", "--sbatch", "qos="],   # refused only when submitting, not by a dry run
     "--sbatch qos=: expected KEY=VALUE (e.g. qos=high) or a bare flag (exclusive)"),
    # passed by a dry run, refused by sbatch only when the study was submitted, or kept the last one silently
    (["--launcher", "slurm", "--partition", ""],
     "--partition '': empty; give a name, or leave the flag out (`#SBATCH --partition=` fails at submission)"),
    (["--launcher", "slurm", "--sbatch", "qos=high", "--sbatch", "qos=low"],
     "--sbatch qos=low: option 'qos' given twice (first as --sbatch qos=high)"),
    # a one-letter key the launcher sets: it was told "time=", which was refused next as the launcher's
    (["--launcher", "slurm", "--sbatch", "t=10"],
     "--sbatch t=10: sbatch's -t, --time, which the launcher sets for each job (give --time, --pretrain-time or "
     "--finetune-time)"),
    (["--launcher", "slurm", "--sbatch", "L=matlab:1"],
     "--sbatch L=matlab:1: give sbatch's long name, licenses= (the launcher writes #SBATCH --<KEY>, and sbatch has "
     "no --L)"),
    # one-letter bare flags were written #SBATCH --H and #SBATCH --s, refused by sbatch at submission
    (["--launcher", "slurm", "--sbatch", "H"],
     "--sbatch H: give sbatch's long name, hold (the launcher writes #SBATCH --<KEY>, and sbatch has no --H)"),
    (["--launcher", "slurm", "--sbatch", "s"],
     "--sbatch s: give sbatch's long name, oversubscribe (the launcher writes #SBATCH --<KEY>, and sbatch has no --s)"),
    (["--launcher", "slurm", "--sbatch", "Z=1"],
     "--sbatch Z=1: give sbatch's long option name (the launcher writes #SBATCH --<KEY>, and sbatch has no --Z)"),
    (["--launcher", "slurm", "--sbatch", "gpus=2"],
     "--sbatch gpus: the launcher sets it for each job (give --pretrain-gpus or --finetune-gpus)"),
    (["--wait"], "--wait: follows Slurm jobs; add --launcher slurm (the local launcher always waits)"),   # ignored
    (["--launcher", "slurm", "--workers", "4"],   # ignored
     "--workers 4: the local launcher's; --launcher slurm runs each stage and run as a Slurm job of its own"),
])
def test_a_bad_slurm_flag_is_one_line_before_any_work_even_in_a_dry_run(flags, message, tmp_path, capsys):
    from dontstop.cli import main

    assert main(["reproduce", "--dry-run", *flags, "--results-dir", str(tmp_path / "results")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"dontstop: error: {message}"]
    assert not (tmp_path / "results").exists()


def test_slurm_runs_a_study_file_with_its_own_tasks_as_the_local_launcher_does(slurm_cluster, korean_study,
                                                                               korean_reproduced, tmp_path):
    """A study file with its own tasks and domains (Korean, tests/korean_study.py) under Slurm: each
    job unpickles the Suite, whose tasks and domains travel with it (no job looks a task up by the
    suite's name), and gives the metrics of the local launcher (conftest's korean_reproduced, the
    whole study run with 2 workers). Baseline, DAPT and ¬DAPT (the study's second domain), 2 seeds."""
    subset = {"baseline", "dapt", "not_dapt"}
    command = [sys.executable, "-m", "dontstop", "run", *[str(REPO / "experiments" / name) for name in sorted(subset)],
               "--suite", str(korean_study / "study.yaml"), "--no-wandb", "--results-dir", str(tmp_path / "results"),
               "--cache-dir", str(tmp_path / "cache"), *SLURM, "--wait"]
    result = subprocess.run(command, cwd=tmp_path, env={**os.environ, **ENV}, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "8 jobs: 0 already finished, 0 queued or running, 8 submitted" in result.stdout, result.stdout
    local = {key: found for key, found in scores(korean_reproduced[0]).items() if key.split("/")[2] in subset}
    assert scores(tmp_path) == local and len(local) == 6
    jobs = json.loads((tmp_path / "results" / "korean-comments" / "slurm" / "jobs.json").read_text())["jobs"]
    assert len(jobs) == 8 and all(slurm_cluster.wait_for_state(job["job_id"], {"COMPLETED"}) == "COMPLETED"
                                  for job in jobs.values())


@pytest.mark.parametrize("text, says", [
    ('{"suite": "s", "jobs": {"fin', "jobs.json:1: invalid JSON"),   # truncated
    ('{"suite": "s", "jobs": {"finetune-rt-polarity-tapt-seed0": {"job_id": "12"}}}',
     "job 'finetune-rt-polarity-tapt-seed0': expected the fields done_file, job_id, kind, label"),
    ('{"suite": "s", "jobs": {"x": {"job_id": "12 ", "kind": "finetune", "label": "l", "done_file": "d", '
     '"log_dir": "l", "submitted_at": "t"}}}', "job 'x': job_id '12 ' is no Slurm job id"),
    ('{"suite": "s", "jobs": {"x": {"job_id": "12", "kind": "finetune", "label": "l", "done_file": "d", '
     '"log_dir": "l", "submitted_at": "t", "settings": [1]}}}', "job 'x': settings [1] is no mapping"),
    ('[]', 'expected {"suite": ..., "jobs": {<job>: {...}}}'),
])
def test_a_damaged_slurm_registry_is_one_line_and_a_deleted_one_is_found_again(text, says, tmp_path):
    """jobs.json edited by hand or truncated was a traceback (or, with one bad id, made squeue fail
    for every job: all submitted again); deleted, every job still queued or running was submitted
    twice. Its jobs are found again from the sbatch scripts submitit keeps in their log folders."""
    from types import SimpleNamespace

    from dontstop.fileio import UserError
    from dontstop.runner.jobs import Job
    from dontstop.runner.slurm_queue import read_registry

    suite = SimpleNamespace(results_dir=str(tmp_path), name="s")
    job = Job("finetune", "rt-polarity/tapt seed 0", tmp_path / "metrics.json", (), seed=0,
              plan=SimpleNamespace(task=SimpleNamespace(key="rt-polarity"), condition="tapt"))
    logs = tmp_path / "s" / "slurm-logs" / "finetune-rt-polarity-tapt-seed0"
    logs.mkdir(parents=True)
    for job_id in ("9", "10"):
        (logs / f"{job_id}_submission.sh").write_text("#!/bin/bash\n")
    [found] = read_registry(suite, [job]).values()
    assert (found.job_id, found.earlier_ids, found.kind, found.log_dir) == ("10", ["9"], "finetune", str(logs))
    (tmp_path / "s" / "slurm" / "jobs.json").parent.mkdir()
    (tmp_path / "s" / "slurm" / "jobs.json").write_text(text)
    with pytest.raises(UserError, match=re.escape(says)) as error:
        read_registry(suite, [job])
    assert str(error.value).endswith("delete it: each submitted job is found again from its log folder")
