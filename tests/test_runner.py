"""The runner end to end on the real mini data: kills, concurrent runners, bad input.

Every run here uses --quick recipes (1-epoch TAPT, 2-epoch fine-tuning) so the whole file
stays within a few minutes on 2 cores.
"""
import contextlib
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

from dontstop.conditions import load_conditions
from dontstop.records import RunHistory
from dontstop.suites import load_suite
from conftest import REPO, SUBSET, dontstop, dontstop_here, metrics_of, quick_argv, refused


def finished_lines(output):
    return [line.split(":")[0].strip() for line in output.splitlines() if line.startswith("    ")]


def test_reproduce_quick_runs_every_condition_on_every_task(mini_build, tmp_path):
    data_dir, _ = mini_build
    suite_yaml = tmp_path / "probed.yaml"   # the mini suite, with its probes in the quick run too
    suite_yaml.write_text("name: mini-probed\nextends: mini\nquick_probe: true\n")
    result = dontstop("reproduce", "--suite", suite_yaml, "--tables-dir", tmp_path / "tables",
                      data_dir=data_dir, root=tmp_path)
    assert "ETA" in result.stdout and "run record:" in result.stdout
    suite = load_suite("mini")
    found = {(m["task"], m["condition"]) for m in metrics_of(tmp_path).values()}
    expected = {(task, e.condition) for e in load_conditions() if e.default for task in suite.tasks
                if e.applies(suite.task(task), suite)}   # the LoRA rows run when named
    assert found == expected and len(expected) > 30
    assert (tmp_path / "tables" / "quick" / "mini-probed" / "README.md").exists()
    [call] = RunHistory.read(tmp_path / "results" / "quick" / "mini-probed", "mini-probed").invocations
    assert call.runs == len(expected) and call.jobs_finished > len(expected) and call.wall_time_s > 0
    # every (task, condition) was probed, and the results notebook, which reproduce executes for
    # a study file into its tables folder, runs clean on this quick run
    assert len(list((tmp_path / "results" / "quick" / "mini-probed").glob("*/*/probe.json"))) == len(expected)
    import nbformat

    executed = tmp_path / "tables" / "quick" / "mini-probed" / "results.ipynb"
    outputs = [o for cell in nbformat.read(executed, as_version=4).cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 8


def test_status_piped_to_a_reader_that_stops_ends_quietly(mini_build, tmp_path):
    """`dontstop status | head`: the reader closes the pipe; it said `dontstop: error: Broken pipe`
    (exit 1), or Python's two lines at exit when its output was buffered. Now nothing, exit 141
    (128 + SIGPIPE), as the shell's own tools end."""
    data_dir, _ = mini_build
    for buffered in ("", "1"):   # PYTHONUNBUFFERED unset / set
        status = subprocess.Popen(
            [sys.executable, "-m", "dontstop", "status", "--quick", "--data-dir", str(data_dir),
             "--results-dir", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")],
            cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": buffered},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        status.stdout.close()   # the reader is gone before the first line is written
        assert (status.wait(), status.stderr.read()) == (141, b"")
        status.stderr.close()


def test_status_says_an_interrupted_stage_resumes_from_its_saved_state(mini_build, tmp_path, capsys):
    """A stage an interrupted run had trained for hours, its states saved, was "not started". A
    saved state that pretraining would refuse (another recipe) was found only when its job started,
    after the jobs before it: now it is a damaged stage, and `run` refuses it before any work."""
    from dontstop.cli import main
    from dontstop.fileio import atomic_write_json
    from dontstop.overrides import folder
    from dontstop.pretrain.outcome import recipe_json
    from dontstop.runner.job_actions import pretrain_recipe
    from dontstop.runner.plan import plan_runs
    from dontstop.suites import with_quick

    data_dir, _ = mini_build
    flags = {"--data-dir": str(data_dir), "--results-dir": str(tmp_path / "results"),
             "--cache-dir": str(tmp_path / "cache")}
    argv = ["--quick", "--conditions", "tapt", "--tasks", "rt-polarity", *[word for pair in flags.items() for word in pair]]
    suite = with_quick(load_suite("mini", overrides=[o for flag, value in flags.items()
                                                     for o in folder(flag, flag[2:].replace("-", "_"), value)]), [])
    [plan] = plan_runs(suite, load_conditions().get("tapt"), ["rt-polarity"], planning_only=True)
    base = plan.stages[0]
    state = Path(base.checkpoint_dir) / "resume" / "step-000000004"   # the base stage's (of 10 steps)
    state.mkdir(parents=True)
    progress = {"step": 4, "resumed_from_step": 0, "tokens": 16384, "loss": 6.5, "train_time_s": 9.0,
                "wall_time_s": 10.0, "heldout_loss_before": 8.0, "recipe": recipe_json(pretrain_recipe(base, suite))}
    atomic_write_json(state / "progress.json", progress)
    assert main(["status", *argv]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("base ")]
    assert line.endswith("not started; an earlier run saved step-000000004: the next one resumes from it"), line

    atomic_write_json(state / "progress.json", {**progress, "recipe": {**progress["recipe"], "lr": 0.1}})
    assert main(["status", *argv]) == 0
    assert "1 damaged" in capsys.readouterr().out
    assert main(["run", "experiments/tapt", "--quick", *argv[3:], "--no-wandb"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"dontstop: error: {state}: an unfinished run with another recipe (lr: 0.1 there, "
        f"{progress['recipe']['lr']!r} asked); its stage is built in this folder: move it away to build the stage")
    assert not (tmp_path / "results").exists() and sorted(state.parent.iterdir()) == [state]   # no work, no token file


def test_a_job_failing_in_one_of_two_workers_is_one_line_without_leaked_semaphore_warnings():
    """Under the error line came two `resource_tracker: ... leaked semaphore` warnings: tqdm's
    multiprocessing lock in the worker stopped mid-job (worker_setup gives it a thread lock)."""
    result = subprocess.run([sys.executable, str(REPO / "tests" / "worker_error.py")], capture_output=True,
                            text=True, cwd=REPO, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line and not line.startswith("job ")]   # the bars
    assert result.returncode == 2 and lines == ["dontstop: error: the job's one line"], result.stderr


def test_kill_then_rerun_gives_the_uninterrupted_results(reference, tmp_path):
    data_dir, reference_root = reference
    shutil.copytree(reference_root / "cache", tmp_path / "cache")  # the TAPT stage is built
    runner = dontstop("run", *SUBSET, "--workers", "1", data_dir=data_dir, root=tmp_path,
                      start_new_session=True)
    deadline = time.time() + 300
    while not list((tmp_path / "results").rglob("metrics.json")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # now inside the next fine-tuning run
    os.killpg(runner.pid, signal.SIGKILL)
    runner.wait()
    killed = metrics_of(tmp_path)
    assert 1 <= len(killed) < 6
    dontstop("run", *SUBSET, "--workers", "1", data_dir=data_dir, root=tmp_path)
    after, expected = metrics_of(tmp_path), metrics_of(reference_root)
    assert set(after) == set(expected) and len(after) == 6
    for key, metrics in after.items():
        assert metrics["test"] == expected[key]["test"] and metrics["dev_curve"] == expected[key]["dev_curve"]
        if key in killed:
            assert metrics == killed[key]  # finished runs are never rerun or rewritten


def worker_pids(runner_pid: int) -> list[int]:
    """The runner's worker processes (multiprocessing's spawned children; not its resource tracker)."""
    children = Path(f"/proc/{runner_pid}/task/{runner_pid}/children").read_text().split()
    return [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def test_a_worker_killed_outright_ends_the_run_in_one_line_and_a_rerun_resumes(reference, tmp_path):
    """A worker killed by the system (the OOM killer, kill -9) left the runner waiting forever on
    its result (multiprocessing.Pool); now the run ends with one line, and the same command resumes."""
    data_dir, reference_root = reference
    shutil.copytree(reference_root / "cache", tmp_path / "cache")
    runner = dontstop("run", *SUBSET, "--workers", "2", data_dir=data_dir, root=tmp_path, start_new_session=True)
    deadline = time.time() + 300
    while not list((tmp_path / "results").rglob(".seed_*.lock")) and time.time() < deadline:
        time.sleep(0.2)   # a worker is inside a fine-tuning run
    [victim, *_] = worker_pids(runner.pid)
    os.kill(victim, signal.SIGKILL)
    try:
        output = runner.communicate(timeout=300)[0]   # it used to wait here forever
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
    assert runner.returncode == 1 and output.strip().splitlines()[-1] == (
        "dontstop: error: a worker process was killed (out of memory? see `dmesg`); finished jobs are kept: "
        "rerun the same command to resume (fewer --workers use less memory)"), output[-2000:]
    dontstop("run", *SUBSET, "--workers", "2", data_dir=data_dir, root=tmp_path)
    after, expected = metrics_of(tmp_path), metrics_of(reference_root)
    assert {k: m["test"] for k, m in after.items()} == {k: m["test"] for k, m in expected.items()}


def gone(pids: list[int], within_s: float = 60.0) -> bool:
    """Whether every process of `pids` has ended (a zombie, ended but not yet reaped, counts)."""
    deadline = time.time() + within_s
    while time.time() < deadline:
        alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()
                 and Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"]
        if not alive:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_runner_stopped_by_a_signal_of_its_own_takes_its_workers_with_it(how, reference, tmp_path):
    """`kill PID` (SIGTERM: `timeout`, a batch system) or kill -9 of the runner alone, not of its
    process group: the runner died at once without a word, and its workers ran on, took every job
    left, then waited forever on the runner that was gone. Now SIGTERM is one line, exit 143, the
    workers stopped; after a kill -9 the workers end themselves; the same command resumes."""
    data_dir, reference_root = reference
    shutil.copytree(reference_root / "cache", tmp_path / "cache")
    runner = dontstop("run", *SUBSET, "--workers", "2", data_dir=data_dir, root=tmp_path, start_new_session=True)
    try:
        deadline = time.time() + 300
        while not list((tmp_path / "results").rglob(".seed_*.lock")) and time.time() < deadline:
            time.sleep(0.2)   # a worker is inside a fine-tuning run
        workers = worker_pids(runner.pid)
        os.kill(runner.pid, getattr(signal, how))
        output = runner.communicate(timeout=120)[0]
        assert workers and gone(workers), output[-2000:]
        if how == "SIGTERM":
            assert runner.returncode == 143 and output.strip().splitlines()[-1] == (
                "dontstop: interrupted; stopped by SIGTERM; finished jobs are kept: rerun the same command "
                "to resume"), output[-2000:]
    finally:   # the whole group, the runner gone or not: its workers outlived it before
        with contextlib.suppress(ProcessLookupError):
            os.killpg(runner.pid, signal.SIGKILL)
    assert len(metrics_of(tmp_path)) < 6   # stopped with runs left to do, which no orphan made since
    dontstop("run", *SUBSET, "--workers", "2", data_dir=data_dir, root=tmp_path)
    after, expected = metrics_of(tmp_path), metrics_of(reference_root)
    assert {k: m["test"] for k, m in after.items()} == {k: m["test"] for k, m in expected.items()}


def test_a_signal_the_runner_was_started_to_ignore_stays_ignored():
    """`nohup dontstop run ...` ignores SIGHUP, so that the run goes on when its terminal closes:
    the runner's own handler (runner/stopping.py) must not take that back."""
    from dontstop.runner.stopping import Stopped, stopped_by_signals

    before, term = signal.signal(signal.SIGHUP, signal.SIG_IGN), signal.getsignal(signal.SIGTERM)
    try:
        with stopped_by_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)   # nothing happens
            with pytest.raises(Stopped, match="^stopped by SIGTERM; finished jobs are kept"):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)   # the handler runs at the next bytecode; never slept out
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN and signal.getsignal(signal.SIGTERM) == term
    finally:
        signal.signal(signal.SIGHUP, before)


def test_more_workers_than_jobs_or_cores_start_only_what_has_a_job_and_say_so(reference, tmp_path):
    """--workers 999 started 999 processes, each importing torch and loading a model, for one job
    (the out-of-memory line followed); now only as many as there are jobs, with a note on cores."""
    data_dir, reference_root = reference
    shutil.copytree(reference_root / "cache", tmp_path / "cache")
    shutil.copytree(reference_root / "results", tmp_path / "results")
    [seed] = [path.parent for path in (tmp_path / "results").rglob("seed_1/metrics.json") if "tapt" in str(path)]
    shutil.rmtree(seed)
    out = dontstop("run", *SUBSET, "--workers", "999", data_dir=data_dir, root=tmp_path).stdout
    assert out.startswith("note: --workers 999 is more than this machine's ") and "1 to run on 1 worker(s)" in out
    assert {k: (m["test"], m["dev_curve"]) for k, m in metrics_of(tmp_path).items()} == \
        {k: (m["test"], m["dev_curve"]) for k, m in metrics_of(reference_root).items()}


def test_two_runners_share_the_work_without_doing_a_job_twice(reference, tmp_path):
    data_dir, reference_root = reference
    shutil.copytree(reference_root / "cache", tmp_path / "cache")
    runners = [dontstop("run", *SUBSET, "--workers", "1", data_dir=data_dir, root=tmp_path,
                        start_new_session=True) for _ in range(2)]
    outputs = [runner.communicate(timeout=600)[0] for runner in runners]
    assert [runner.returncode for runner in runners] == [0, 0], outputs
    done_by = [finished_lines(output) for output in outputs]
    assert not set(done_by[0]) & set(done_by[1])
    assert len(done_by[0]) + len(done_by[1]) == 6   # 2 conditions x 3 seeds (--quick: no probes)
    assert {k: m["test"] for k, m in metrics_of(tmp_path).items()} == \
        {k: m["test"] for k, m in metrics_of(reference_root).items()}


def test_a_corrupt_checkpoint_is_one_line_naming_it(reference, tmp_path, capsys):
    data_dir, reference_root = reference
    shutil.copytree(reference_root / "cache", tmp_path / "cache")
    weights = next((tmp_path / "cache").rglob("base+tapt-rt-polarity-*/model.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100_000])
    result = dontstop_here(capsys, "run", "experiments/tapt", "--tasks", "rt-polarity", "--seeds", "7",
                           data_dir=data_dir, root=tmp_path)
    assert result.returncode == 2
    assert f"{weights.parent}: cannot load checkpoint" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_changed_data_is_refused_unless_allowed(reference, tmp_path, capsys):
    data_dir, reference_root = reference
    shutil.copytree(data_dir, tmp_path / "data")
    shutil.copytree(reference_root / "results", tmp_path / "results")
    train = tmp_path / "data" / "mini" / "tasks" / "rt-polarity" / "train.jsonl"
    with open(train, "a") as f:
        f.write(json.dumps({"text": "an extra review", "label": "fresh", "id": "extra"}) + "\n")
    result = dontstop_here(capsys, "run", "experiments/baseline", "--tasks", "rt-polarity", "--seeds", "5",
                           data_dir=tmp_path / "data", root=tmp_path)
    assert result.returncode == 2 and "made from different train data" in result.stderr
    assert "--allow-mixed" in result.stderr and not (tmp_path / "results" / "quick" / "mini" /
                                                     "rt-polarity" / "baseline" / "seed_5").exists()


def test_a_run_finished_with_another_recipe_is_refused_or_redone(reference, tmp_path, capsys):
    """Changing the fine-tuning lr makes every finished run stale: --dry-run and run refuse them in
    one line naming the field and the run; --rerun-stale redoes one, keeping the old file beside."""
    data_dir, reference_root = reference
    shutil.copytree(reference_root / "results", tmp_path / "results")   # finished at the mini suite's lr
    runs = tmp_path / "results" / "quick" / "mini" / "rt-polarity" / "baseline"
    before = {path: path.read_bytes() for path in runs.rglob("*.json")}
    other_lr = ["--tasks", "rt-polarity", "--set", "finetune.lr=3.0e-4"]
    every = [*other_lr, "--seeds", "0", "1", "2"]
    expected = (f"{runs / 'seed_0' / 'metrics.json'}: finished from other settings than asked now "
                "(lr: finished with 0.0002, asked 0.0003); 2 more result(s) like it; redo them with --rerun-stale")
    for extra in (["--dry-run"], []):
        argv = quick_argv("run", "experiments/baseline", *every, *extra, data_dir=data_dir, root=tmp_path)
        assert refused(capsys, *argv) == f"{expected} (the old files are kept as *.stale-<n>.json) or choose another " \
            "--results-dir"
        assert {path: path.read_bytes() for path in runs.rglob("*.json")} == before   # nothing touched
    dry = dontstop_here(capsys, "run", "experiments/baseline", *every, "--dry-run", "--rerun-stale",
                        data_dir=data_dir, root=tmp_path)
    assert dry.returncode == 0 and "fine-tuning: 3 run(s) to do (3 of them stale" in dry.stdout
    status = dontstop_here(capsys, "status", "--conditions", "baseline", *every, data_dir=data_dir, root=tmp_path)
    # it said "done 3/3", and their stages "not started (no unfinished run needs it)"
    assert status.returncode == 0 and re.search(r"rt-polarity +baseline +stale 3/3", status.stdout)
    assert re.search(r"^\d+ jobs: .*, 3 stale,", status.stdout, re.M)
    redone = dontstop("run", "experiments/baseline", *other_lr, "--seeds", "0", "--rerun-stale",
                      data_dir=data_dir, root=tmp_path)
    assert f"stale, to redo: {runs / 'seed_0' / 'metrics.json'} (lr: " in redone.stdout
    assert (runs / "seed_0" / "metrics.stale-0.json").read_bytes() == before[runs / "seed_0" / "metrics.json"]
    assert json.loads((runs / "seed_0" / "metrics.json").read_text())["config"]["lr"] == 3e-4
    assert (runs / "seed_1" / "metrics.json").read_bytes() == before[runs / "seed_1" / "metrics.json"]


def test_two_runners_setting_a_stale_result_aside_at_once_lose_neither_file(tmp_path, monkeypatch, capsys):
    """Two `--rerun-stale` runners on one results folder: runner B sets the stale metrics.json aside
    and writes its redone result while runner A is between choosing its .stale-<n> name and renaming
    onto it. A name chosen by an exists() check was the one B had just taken, and A's rename
    replaced B's kept file: the old result was lost. Each name is claimed before the rename now."""
    from dontstop.runner.finished import Stale, retire

    metrics = tmp_path / "seed_0" / "metrics.json"
    metrics.parent.mkdir()
    metrics.write_text("the old result")
    real_replace, real_rename, other_ran = os.replace, Path.rename, []

    def runner_b_first() -> None:   # runner B, run at the moment runner A is about to rename
        if not other_ran:
            other_ran.append(True)
            retire([Stale(metrics, "lr: finished with 0.0002, asked 0.0003")])
            metrics.write_text("runner B's redone result")

    def replace(src, dst, *args, **kwargs):
        runner_b_first()
        return real_replace(src, dst, *args, **kwargs)

    def rename(self, target):
        runner_b_first()
        return real_rename(self, target)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(Path, "rename", rename)
    retire([Stale(metrics, "lr: finished with 0.0002, asked 0.0001")])   # runner A
    monkeypatch.undo()
    kept = {path.name: path.read_text() for path in metrics.parent.iterdir()}
    assert sorted(kept.values()) == ["runner B's redone result", "the old result"], kept
    assert sorted(kept) == ["metrics.stale-0.json", "metrics.stale-1.json"]   # A redoes the run: none left
    said = capsys.readouterr().out
    assert said.count("kept as metrics.stale-") == 2
    retire([Stale(metrics, "lr: finished with 0.0002, asked 0.0001")])   # B had set it aside before A's look
    assert "already set aside by another runner" in capsys.readouterr().out   # it was a traceback
    assert sorted(path.name for path in metrics.parent.iterdir()) == sorted(kept)   # no empty claim left


def test_a_clean_cache_builds_no_stage_when_every_run_is_finished(reference, tmp_path, capsys):
    data_dir, reference_root = reference
    shutil.copytree(reference_root / "results", tmp_path / "results")     # the cache is not copied
    dry = dontstop_here(capsys, "run", *SUBSET, "--dry-run", data_dir=data_dir, root=tmp_path)
    assert dry.returncode == 0 and "stage skip" in dry.stdout and "stage build" not in dry.stdout
    assert "fine-tuning: 0 run(s) to do, 6 finished" in dry.stdout
    result = dontstop_here(capsys, "run", *SUBSET, data_dir=data_dir, root=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "6 jobs, 6 already finished, 0 to run" in result.stdout
    assert not list((tmp_path / "cache").rglob("pretrain_record.json"))


def test_unwritable_results_dir_fails_before_any_work(mini_build, tmp_path):
    data_dir, _ = mini_build
    (tmp_path / "file").write_text("not a folder")
    result = subprocess.run([sys.executable, "-m", "dontstop", "run", "experiments/baseline", "--quick",
                             "--data-dir", str(data_dir), "--results-dir", str(tmp_path / "file" / "results"),
                             "--cache-dir", str(tmp_path / "cache"), "--no-wandb"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and "not a writable directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "cache" / "mini").exists()


@pytest.mark.parametrize("command", [["reproduce", "--quick"], ["reproduce", "--quick", "--dry-run"],
                                     ["aggregate"], ["analyze", "vocab"], ["init-study"], ["pretrain"], ["finetune"]])
def test_an_output_folder_under_a_file_is_refused_before_any_work(command, mini_build, tmp_path, capsys):
    """The tables (written after every run), an analysis, a new study, a checkpoint or a run
    folder under a path that is a file: one line, exit 2, nothing run (reproduce used to run the
    whole study, then fail; pretrain and finetune failed with exit 1 once under way)."""
    from dontstop.cli import main

    data_dir, _ = mini_build
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "out"
    data, results, cache = (["--data-dir", str(data_dir)], ["--results-dir", str(tmp_path / "results")],
                            ["--cache-dir", str(tmp_path / "cache")])
    given = {"reproduce": ["--tables-dir", str(out), *data, *results, *cache, "--no-wandb"],
             "aggregate": ["--tables-dir", str(out), *results], "analyze": ["--out", str(out), *data, *cache],
             "init-study": [str(out)],
             "pretrain": ["--model", "bundled:bert-tiny", "--corpus", str(data_dir / "mini" / "corpora" / "general.txt"),
                          "--out", str(out), "--steps", "1", "--no-wandb"],
             "finetune": ["--suite", "mini", "--task", "rt-polarity", "--model", "bundled:bert-tiny", "--out", str(out),
                          *data, "--no-wandb"]}[command[0]]
    assert main([*command, *given]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"dontstop: error: {out}") and f"not a writable directory ({tmp_path / 'file'} is a file)" in line
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache" / "mini").exists()


def test_a_stage_or_run_longer_than_its_models_positions_is_refused_before_any_work(mini_build, tmp_path, capsys):
    """A recipe's max_length past what the stage's or run's model can hold (bert-tiny: 512 tokens) used to
    crash that stage after the ones before it had run."""
    from dontstop.cli import main

    data_dir, _ = mini_build
    too_long = "key 'max_length': 1000; bundled:bert-tiny takes at most 512 tokens a sequence"
    for key, where, says in (("recipes.tapt.max_length", "recipes.tapt", too_long),
                             ("finetune.max_length", "finetune", too_long),
                             # batches padded past the positions (a traceback mid-run, and a dry run passed)
                             ("finetune.pad_to_multiple_of", "finetune", "key 'pad_to_multiple_of': 1000; it pads "
                              "max_length 64 to 1000 tokens, and bundled:bert-tiny takes at most 512 a sequence")):
        assert main(["reproduce", "--quick", "--set", f"{key}=1000", "--data-dir", str(data_dir), "--results-dir",
                     str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache"), "--no-wandb"]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line == f"dontstop: error: suite mini: {where}: {says}"
        assert not (tmp_path / "cache" / "mini").exists() and not (tmp_path / "results").exists()   # not even empty


def test_a_base_model_without_an_mlm_head_is_refused_before_any_work(mini_build, tmp_path, capsys):
    """`base_model: bundled:minilm` (a sentence encoder) passed the dry run, and every stage built on a random head."""
    from dontstop.cli import main

    data_dir, _ = mini_build
    for dry in (["--dry-run"], []):
        assert main(["reproduce", "--quick", *dry, "--set", "base_model=bundled:minilm", "--data-dir", str(data_dir),
                     "--results-dir", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache"),
                     "--no-wandb"]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("dontstop: error: bundled:minilm: no MLM head among its weights"), line
        assert not (tmp_path / "cache" / "mini").exists() and not (tmp_path / "results").exists()


def test_dry_run_prints_the_plan_without_running(mini_build, tmp_path, capsys):
    data_dir, _ = mini_build
    result = dontstop_here(capsys, "reproduce", "--dry-run", data_dir=data_dir, root=tmp_path)
    assert result.returncode == 0 and "stage build" in result.stdout and "dapt-cs+tapt-aclsum-roles" in result.stdout
    assert "estimated total on this machine" in result.stdout
    assert not (tmp_path / "results").exists()


def test_only_the_repos_own_full_mini_study_rewrites_the_readme(tmp_path):
    from dontstop.runner.readme_block import is_the_repo_study
    from dontstop.suites import Suite

    suite = Suite("mini", "bundled:bert-tiny", tasks=[], seeds=[0], results_dir=str(REPO / "results"))
    assert is_the_repo_study(suite, whole=True)
    assert not is_the_repo_study(suite, whole=False)   # --quick, --tasks, --conditions or --set
    elsewhere = Suite("mini", "bundled:bert-tiny", tasks=[], seeds=[0], results_dir=str(tmp_path / "results"))
    assert not is_the_repo_study(elsewhere, whole=True)  # e.g. bench/main_job.py's fresh folder


def test_update_readme_replaces_only_the_generated_block(tmp_path):
    from dontstop.records import Invocation
    from dontstop.runner.readme_block import update_readme

    tables = tmp_path / "paper_tables" / "mini"
    tables.mkdir(parents=True)
    (tables / "table5.md").write_text("# Table 5\n\n| Task | RoBERTa |\n|---|---|\n| ACL | 1.0 |\n")
    (tables / "findings.md").write_text("# Findings\n\n| Claim |\n|---|\n| DAPT beats |\n")
    (tables / "runs.csv").write_text("task,condition,seed\n" + "".join(f"acl,dapt,{s}\n" for s in range(5)))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- generated:results -->\nold numbers\n<!-- /generated:results -->\nafter\n")
    calls = [Invocation(command="dontstop reproduce", finished_at=f"2026-11-25T1{n}:00:00", wall_time_s=seconds,
                        jobs_finished=3, quick=False, runs=3, git_commit="0123456789abcdef", machine="m", versions={})
             for n, seconds in enumerate((60.0, 30.0))]
    history = RunHistory("mini", calls)
    update_readme(readme, history, tables)
    text = readme.read_text()
    assert text.startswith("intro\n<!-- generated:results -->\nGenerated by `dontstop reproduce`")
    assert "old numbers" not in text and "| ACL | 1.0 |" in text and "| DAPT beats |" in text
    assert "m; 5 fine-tuning runs in its tables; made by 2 call(s), the longest 1.0 min, 1.5 min of wall time in all, each in results/mini/RUN.json" in text
    assert text.endswith("<!-- /generated:results -->\nafter\n")
    no_markers = tmp_path / "OTHER.md"
    no_markers.write_text("nothing to replace\n")
    update_readme(no_markers, history, tables)
    assert no_markers.read_text() == "nothing to replace\n"


@pytest.mark.parametrize("argv", [["reproduce", "--tasks", "rt-polaritty"],
                                  ["run", "experiments/tapt", "--tasks", "x"],
                                  ["reproduce", "--conditions", "tapt", "dapt_tpat"]])
def test_an_unknown_task_or_condition_is_one_line_naming_the_known_ones(argv, tmp_path):
    result = subprocess.run([sys.executable, "-m", "dontstop", *argv, "--results-dir", str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert ("rt-polaritty" in line or "'x'" in line or "dapt_tpat" in line) and "known: " in line
    assert "aclsum-roles" in line or "dapt_tapt" in line
    assert not any(tmp_path.iterdir())


def test_analysis_that_cannot_run_is_a_note_and_the_tables_are_still_built(tmp_path, capsys):
    """The paper suite without domain corpora: no Figure 2, no Table 12, but every table."""
    from dontstop.analysis.domains import analyze_suite
    from dontstop.records import MetricsRecord
    from dontstop.report.write import aggregate

    suite = load_suite("paper")
    suite.data_dir, suite.cache_dir = str(tmp_path / "data"), str(tmp_path / "cache")
    notes = analyze_suite(suite, tmp_path / "tables" / "paper" / "analysis")
    assert any("vocabulary overlap" in n and "--domain-corpus" in n for n in notes)
    assert any("MLM loss" in n for n in notes)
    scores = {"accuracy": 0.8, "macro_f1": 0.8, "micro_f1": 0.8}
    MetricsRecord(suite="paper", task="chemprot", condition="baseline", seed=0, model="roberta-base",
                  lineage="base", metric="micro_f1", dev=scores, test=scores, dev_metric=0.8,
                  test_metric=0.8, best_epoch=1, epochs_run=1, dev_curve=[0.8], train_examples=1,
                  wall_time_s=1.0, config={}, versions={}, git_commit=None,
                  data_sha256={}).write(tmp_path / "results" / "paper" / "chemprot" / "baseline" / "seed_0")
    out = aggregate("paper", tmp_path / "results", tmp_path / "tables", notes=notes)
    index = (out / "README.md").read_text()
    assert "## Not computed" in index and "vocabulary overlap (Figure 2): skipped" in index
    chemprot = next(line for line in (out / "table5.md").read_text().splitlines() if line.startswith("| ChemProt"))
    assert chemprot.startswith("| ChemProt | **80.0 ± — (1)** | 81.9 ± 1.0 (-1.9, too few seeds) |")


@pytest.mark.parametrize("flag", ["--results-dir", "--cache-dir"])
def test_runs_or_stages_among_the_suites_tables_are_refused_before_any_work(flag, tmp_path, capsys, monkeypatch):
    """`run --results-dir paper_tables` wrote its runs into paper_tables/mini, the default run's
    tables, and every later `aggregate` refused that folder (files no aggregate wrote)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "paper_tables" / "mini").mkdir(parents=True)
    other = "--cache-dir" if flag == "--results-dir" else "--results-dir"
    line = refused(capsys, "run", str(REPO / "experiments" / "baseline"), "--dry-run", "--no-wandb",
                   "--data-dir", str(REPO / "data"), flag, "paper_tables", other, "elsewhere")
    assert line == (f"{flag} paper_tables: paper_tables/mini would lie among the tables of paper_tables/mini (or "
                    "hold them); give it a folder of its own")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["paper_tables", "paper_tables/mini"]
