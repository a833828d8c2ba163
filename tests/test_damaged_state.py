"""A results or cache folder left damaged, read-only or shared between runs is refused before any
work, in one line, and nothing already written is touched.

The runner tests' finished run (conftest's `reference`: the base and TAPT stages, baseline and TAPT on
rt-polarity, seeds 0-2, --quick) is copied for each case, damaged, and run again with a new seed (3):
the damage must be named before the new seed's first run starts (its baseline run needs no damaged
stage, so it would run first).
"""
import contextlib
import json
import shutil
import subprocess

import pytest

from conftest import RUN_CONDITIONS, dontstop, dontstop_here, metrics_of


def copy_of(reference, tmp_path):
    shutil.copytree(reference[1] / "results", tmp_path / "results")
    shutil.copytree(reference[1] / "cache", tmp_path / "cache")
    return next((tmp_path / "cache").rglob("base+tapt-rt-polarity-*"))


def refused_before_any_work(result, root, message: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert lines[0].startswith(f"dontstop: error: {message}"), lines[0]
    assert not list((root / "results").rglob("seed_3")), "a run started before the refusal"


def _other_recipe(checkpoint):
    record = json.loads((checkpoint / "pretrain_record.json").read_text())
    record["recipe"]["lr"] = 1e-3      # the record of a TAPT stage trained with another lr
    (checkpoint / "pretrain_record.json").write_text(json.dumps(record))


DAMAGES = {   # name -> (damage to the finished TAPT checkpoint, what the line says after the folder)
    "weights_missing": (lambda ck: (ck / "model.safetensors").unlink(),
                        ": cannot load checkpoint: model.safetensors is missing (pretrain_record.json lists it)"),
    "config_missing": (lambda ck: (ck / "config.json").unlink(), ": not a model directory (no config.json)"),
    # status said "done", and the first job to load it failed ("For details look at the above report!")
    "config_edited": (lambda ck: (ck / "config.json").write_text((ck / "config.json").read_text().replace(
                          '"hidden_size": 128', '"hidden_size": 64')),
                      ": cannot load checkpoint: config.json differs from the sha256 pretrain_record.json recorded "
                      "when it was written (corrupt or modified)"),
    "tokenizer_missing": (lambda ck: [(ck / name).unlink() for name in ("tokenizer.json", "tokenizer_config.json")],
                          ": cannot load checkpoint: its tokenizer holds only its 5 special tokens"),
    "record_truncated": (lambda ck: (ck / "pretrain_record.json").write_text('{"name": "base+ta'),
                         "/pretrain_record.json:1: invalid JSON"),
    "other_recipe": (_other_recipe, ": built from other settings than its stage asks (lr: built with 0.001, "
                                    "the stage asks 0.0002; a folder copied or renamed from another stage?)"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_finished_stage_is_refused_before_any_work_and_status_shows_that_line(damage, reference, tmp_path,
                                                                                       capsys):
    """A finished stage is never built over; before, a missing weights file, config or record
    failed after other runs had been made, and a checkpoint without its tokenizer files or
    trained with another recipe was fine-tuned from as if whole (the tokenizer of 5 special
    tokens turned every word into [UNK]). `status` said "done" for it (it looked only for the
    record); now it runs the runner's own check on every finished stage, needed by an unfinished
    run or not."""
    checkpoint = copy_of(reference, tmp_path)
    spoil, says = DAMAGES[damage]
    spoil(checkpoint)
    before = metrics_of(tmp_path)
    result = dontstop_here(capsys, "run", *RUN_CONDITIONS, "--seeds", "0", "3", data_dir=reference[0], root=tmp_path)
    refused_before_any_work(result, tmp_path, f"{checkpoint}{says}")
    assert "a finished stage is never built over: remove its folder to build it again" in result.stderr
    assert metrics_of(tmp_path) == before

    status = dontstop_here(capsys, "status", "--conditions", "baseline", "tapt", "--tasks", "rt-polarity", "--seeds",
                           "0", "1", "2", data_dir=reference[0], root=tmp_path).stdout
    stages = dict(line.split(None, 1) for line in status.split("fine-tuning runs")[0].splitlines()[2:])
    assert stages == {"base": "done", "base+tapt-rt-polarity": "damaged: " + result.stderr.strip().removeprefix(
        "dontstop: error: ")}, status
    assert "8 jobs: 7 done, 1 damaged, 0 running" in status


def test_a_stage_folder_of_weights_without_their_record_is_refused_before_any_work_and_shown_by_status(
        reference, tmp_path, capsys):
    """A stage folder holding weights but no pretrain_record.json (deleted; a copy) is not finished,
    and pretraining refuses a folder of other files: that came after baseline seed 3 had run."""
    checkpoint = copy_of(reference, tmp_path)
    (checkpoint / "pretrain_record.json").unlink()
    result = dontstop_here(capsys, "run", *RUN_CONDITIONS, "--seeds", "0", "3", data_dir=reference[0], root=tmp_path)
    says = ": not empty and not an unfinished pretraining run; its stage is built in this folder: move it away"
    refused_before_any_work(result, tmp_path, f"{checkpoint}{says}")
    status = dontstop_here(capsys, "status", "--conditions", "baseline", "tapt", "--tasks", "rt-polarity", "--seeds",
                           "0", "1", "2", data_dir=reference[0], root=tmp_path).stdout
    stages = dict(line.split(None, 1) for line in status.split("fine-tuning runs")[0].splitlines()[2:])
    assert stages["base+tapt-rt-polarity"].startswith(f"damaged: {checkpoint}{says}"), status


@contextlib.contextmanager
def read_only(folder):
    """`folder` made unwritable: by its mode, or (as root, whom modes do not stop) immutable."""
    folder.chmod(0o555)
    immutable = False
    try:
        if subprocess.run(["test", "-w", str(folder)]).returncode == 0:
            immutable = shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)],
                                                                   capture_output=True).returncode == 0
            if not immutable:
                pytest.skip("cannot make a folder read-only here (root without chattr)")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


@pytest.mark.parametrize("where", ["condition", "checkpoints"])
def test_a_read_only_folder_a_job_writes_into_is_refused_before_any_work(where, reference, tmp_path, capsys):
    """A read-only condition folder failed with the system's words (exit 1) once the runs before it
    had been made; a read-only checkpoints folder, at the first stage's lock."""
    checkpoint = copy_of(reference, tmp_path)
    folder = (tmp_path / "results" / "quick" / "mini" / "rt-polarity" / "tapt" if where == "condition"
              else checkpoint.parent)
    if where == "checkpoints":
        shutil.rmtree(checkpoint)       # the TAPT stage to build again, into the read-only folder
    with read_only(folder):
        result = dontstop_here(capsys, "run", *RUN_CONDITIONS, "--seeds", "0", "3", data_dir=reference[0], root=tmp_path)
    refused_before_any_work(result, tmp_path, f"{folder}: not a writable directory (no write permission on {folder})")


def test_a_damaged_run_history_is_refused_before_any_work(reference, tmp_path, capsys):
    """reproduce appends to RUN.json after every job; a damaged one failed then, after all the work."""
    copy_of(reference, tmp_path)
    history = tmp_path / "results" / "quick" / "mini" / "RUN.json"
    history.write_text('{"suite": "mini", "invocations": [{"comm')
    result = dontstop_here(capsys, "reproduce", "--conditions", "baseline", "--tasks", "rt-polarity", "--seeds", "0",
                           "3", "--tables-dir", tmp_path / "tables", data_dir=reference[0], root=tmp_path)
    refused_before_any_work(result, tmp_path, f"{history}:1: invalid JSON")
    assert not list((tmp_path / "cache").rglob("base+dapt-*"))   # the analysis's stages neither


def test_a_folder_where_a_lock_file_goes_is_one_line_naming_it(reference, tmp_path, capsys):
    """`status` and `run` ended with "...lock: Is a directory", exit 1 (both take the lock with
    fileio.job_lock: `status` shows it)."""
    copy_of(reference, tmp_path)
    lock = tmp_path / "results" / "quick" / "mini" / "rt-polarity" / "baseline" / ".seed_3.lock"
    lock.mkdir()
    result = dontstop_here(capsys, "status", "--tasks", "rt-polarity", "--seeds", "0", "3", data_dir=reference[0],
                           root=tmp_path)
    refused_before_any_work(result, tmp_path, f"{lock}: a folder where a lock file goes (made by hand or a "
                                              "copy?); remove it")


def test_two_runners_with_other_settings_never_end_as_if_every_run_were_theirs(reference, tmp_path):
    """Two runners on one results folder share its jobs by their locks; started with two settings
    at once, each found the other's runs finished and ended with exit 0 on a folder of both."""
    copy_of(reference, tmp_path)
    seeds = ["--seeds", "3", "4", "5", "6", "--workers", "1"]
    runners = [dontstop("run", "experiments/baseline", "--tasks", "rt-polarity", *seeds, *extra,
                        data_dir=reference[0], root=tmp_path, start_new_session=True)
               for extra in ([], ["--set", "finetune.lr=1e-4"])]
    outputs = [runner.communicate(timeout=600)[0] for runner in runners]
    made = {json.loads(path.read_text())["config"]["lr"]
            for path in (tmp_path / "results").rglob("baseline/seed_[3-6]/metrics.json")}
    for runner, output in zip(runners, outputs):
        if runner.returncode == 0:      # only a runner whose every run is of its own settings
            assert len(made) == 1, output[-2000:]
        else:
            assert runner.returncode == 2 and "from other settings than asked" in output, output[-2000:]
    assert len(made) == 1 or "finished meanwhile by another runner" in "".join(outputs)


def test_two_reproduce_calls_ending_together_both_keep_their_entry_in_the_run_history(tmp_path, monkeypatch):
    """Two `reproduce` calls on one results folder share its jobs and each appends its call to
    RUN.json after them: ending together, each read the history before the other wrote it, and
    the first call's entry was written over. Its command is recorded as a shell takes it (a path
    with a space was two words)."""
    import sys
    import threading

    from dontstop.overrides import folder
    from dontstop.records import RunHistory
    from dontstop.runner import history
    from dontstop.suites import load_suite

    results = tmp_path / "my results"
    suite = load_suite("mini", overrides=folder("--results-dir", "results_dir", str(results)))
    both_read = threading.Barrier(2, timeout=3)   # each call reads before either writes, if nothing stops it
    read = RunHistory.read

    def read_then_wait(*args):
        found = read(*args)
        with contextlib.suppress(threading.BrokenBarrierError):   # the other waits on the lock meanwhile
            both_read.wait()
        return found

    monkeypatch.setattr(RunHistory, "read", read_then_wait)
    monkeypatch.setattr(sys, "argv", ["dontstop", "reproduce", "--results-dir", str(results)])
    calls = [threading.Thread(target=history.record_invocation, args=(suite, False, seconds, [], 1))
             for seconds in (10.0, 20.0)]
    for call in calls:
        call.start()
    for call in calls:
        call.join()
    invocations = read(results / "mini", "mini").invocations
    assert sorted(call.wall_time_s for call in invocations) == [10.0, 20.0]
    assert invocations[0].command == f"dontstop reproduce --results-dir '{results}'"


def test_status_of_results_it_may_not_write_reads_the_locks_an_interrupted_run_left(reference, tmp_path, capsys):
    """`status` only reads, but it took each lock it found, opening the file for writing, to see
    whether a runner held it: on results it may not write (a read-only mount, a colleague's
    folder) it failed with `.../.seed_3.lock: Read-only file system`, exit 1, at the first lock
    an interrupted run had left. It tries a shared lock now, on the file opened for reading."""
    from dontstop.fileio import job_lock

    copy_of(reference, tmp_path)
    lock = tmp_path / "results" / "quick" / "mini" / "rt-polarity" / "baseline" / ".seed_3.lock"
    lock.touch()   # the run of seed 3 was interrupted

    def status() -> str:
        result = dontstop_here(capsys, "status", "--conditions", "baseline", "--tasks", "rt-polarity", "--seeds",
                               "0", "3", data_dir=reference[0], root=tmp_path)
        assert result.returncode == 0 and not result.stderr, result.stderr
        return result.stdout.strip().splitlines()[-1]

    with read_only(lock):
        assert status().startswith("3 jobs: 2 done, 0 running") and status().endswith(", 1 not started")
    with job_lock(lock) as mine, read_only(lock):   # a runner holds it
        assert mine and status().startswith("3 jobs: 2 done, 1 running")


def test_a_full_disk_when_a_run_writes_its_metrics_is_one_line_naming_the_file(reference, tmp_path, capsys,
                                                                               monkeypatch):
    """A write that fails names no file (`OSError: [Errno 28] No space left on device`): a run that
    had fine-tuned for minutes ended with `dontstop: error: No space left on device`, which of the
    study's folders left unsaid. Now the line names the file that was being written."""
    import errno
    import os

    copy_of(reference, tmp_path)
    fsync = os.fsync

    def full_disk_for_metrics(fd):   # where a full disk shows on a network file system: at the flush
        if ".metrics.json." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk_for_metrics)
    result = dontstop_here(capsys, "run", "experiments/baseline", "--tasks", "rt-polarity", "--seeds", "3",
                           "--workers", "1", data_dir=reference[0], root=tmp_path)
    seed = tmp_path / "results" / "quick" / "mini" / "rt-polarity" / "baseline" / "seed_3"
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1] == (
        f"dontstop: error: {seed / 'metrics.json'}: No space left on device"), result.stderr[-2000:]
    assert [path.name for path in seed.iterdir()] == ["config.json"]   # no record, no temporary file


def test_status_of_a_cache_it_may_not_write_reports_and_a_run_refuses_it_in_one_line(reference, tmp_path, capsys):
    """The input checks keep their verdicts in <cache>/input_checks.json: in a cache `status` may not
    write (a colleague's) it failed with `.../.input_checks.json.x1y2.tmp: Operation not permitted`,
    exit 1, and so did `run` and its dry run, naming a temporary file. The memo is a shortcut: status
    goes without it; a run (and its dry run) is refused as a read-only results folder is."""
    copy_of(reference, tmp_path)
    cache = tmp_path / "cache"
    for memo in cache.rglob("input_checks.json"):
        memo.unlink()   # the verdicts to be written again
    with read_only(cache):
        result = dontstop_here(capsys, "status", "--conditions", "baseline", "--tasks", "rt-polarity", "--seeds",
                               "0", "3", data_dir=reference[0], root=tmp_path)
        assert result.returncode == 0 and not result.stderr, result.stderr
        assert result.stdout.strip().splitlines()[-1].startswith("3 jobs: 2 done")
        for dry_run in ([], ["--dry-run"]):
            result = dontstop_here(capsys, "run", *RUN_CONDITIONS, "--seeds", "0", "3", *dry_run,
                                   data_dir=reference[0], root=tmp_path)
            refused_before_any_work(result, tmp_path, f"{cache}: not a writable directory (no write permission on {cache})")
