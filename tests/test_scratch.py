"""What a killed attempt of a job leaves behind (runner/scratch.py): removed by the job's next
attempt under its lock, never while another live process holds that lock."""
import dataclasses
import re
import time
from pathlib import Path

import pytest

from dontstop.conditions import EXPERIMENTS_DIR, load_condition
from dontstop.data.leakage import leakage_guard
from dontstop.fileio import atomic_output, job_lock
from dontstop.records import MetricsRecord, PretrainRecord
from dontstop.runner.jobs import make_jobs, work
from dontstop.runner.plan import plan_runs
from dontstop.runner.scratch import clear_finished_jobs, leftover_scratch, selection_lock
from dontstop.runner.status import show_status

# a base stage of 6 steps that saves its state every 2; a fine-tuning run of one epoch
TINY_STAGE = {"max_steps": 6, "checkpoint_every": 2, "batch_size": 2, "per_device_batch_size": 2, "max_length": 16}


class Killed(BaseException):
    """A kill -9 at that point: nothing after it runs (not an Exception, which a handler might catch)."""


def killed_mid_write(path: Path, leftovers: list) -> None:
    """A write of `path` in progress when its process died: fileio.atomic_output's own temporary,
    left as a kill leaves it (the context is never exited, so nothing tidies it; `leftovers` keeps
    it referenced until the test ends)."""
    write = atomic_output(path)
    write.__enter__().write('{"cut short": ')
    leftovers.append(write)


def tiny_jobs(suite, condition: str = "baseline"):
    suite.recipes = {**suite.recipes, "base": TINY_STAGE}
    suite.finetune = {**suite.finetune, "epochs": 1}
    plans = plan_runs(suite, load_condition(EXPERIMENTS_DIR / condition), ["aclsum-roles"], [0])
    return make_jobs(plans)


def run_all(jobs, suite) -> None:
    work(jobs, suite, leakage_guard(suite.leakage_task_dirs(), suite.cache_dir), False, (time.time(), 0))


def tree(root: Path) -> list[str]:
    """Every path under `root`, but the file-hash memo (fileio.file_sha256): written by the first
    of the two runs alone, the second finding the hashes in this process's memory."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.name != "file_sha256.json")


def test_a_resumed_job_removes_what_its_killed_attempt_left_and_ends_as_an_uninterrupted_one(
        mini_suite, tmp_path, monkeypatch, capsys):
    """A stage killed after its state of step 4 was saved under its temporary name (`.tmp-step-*`,
    GBs at the paper's scale) and while its record was being written, a fine-tuning run killed while
    it wrote metrics.json: their scratch stayed in the cache and results for good (a state half saved
    until the stage finished; the temporaries forever). The next attempt of each job removes it under
    the job's lock, saying so in one line with its size, and the folders end as an uninterrupted
    run leaves them, with the same weights and metrics."""
    from dontstop.pretrain import trainer

    reference = dataclasses.replace(mini_suite, cache_dir=str(tmp_path / "whole" / "cache"),
                                    results_dir=str(tmp_path / "whole" / "results"))
    run_all(tiny_jobs(reference), reference)
    jobs = tiny_jobs(mini_suite)
    stage, finetune = jobs
    real_write = trainer.atomic_write_json

    def killed_at_step_4(path, obj):
        if Path(path).name == "progress.json" and Path(path).parent.name == ".tmp-step-000000004":
            raise Killed   # the state saved, not yet renamed into place
        real_write(path, obj)
    monkeypatch.setattr(trainer, "atomic_write_json", killed_at_step_4)
    with pytest.raises(Killed):
        run_all(jobs, mini_suite)
    monkeypatch.undo()
    checkpoint, run_dir, leftovers = stage.done_file.parent, finetune.done_file.parent, []
    assert (checkpoint / "resume" / ".tmp-step-000000004").is_dir() and (checkpoint / "resume" / "step-000000002").is_dir()
    killed_mid_write(stage.done_file, leftovers)
    run_dir.mkdir(parents=True)
    killed_mid_write(finetune.done_file, leftovers)
    assert len(leftover_scratch(jobs)) == 3   # what `dontstop status` names
    capsys.readouterr()

    real_run, seen = trainer.run_pretraining, []

    def resumed(recipe, **kwargs):   # what the resumed attempt starts from
        seen.append(sorted(path.name for path in (Path(recipe.output_dir) / "resume").iterdir()))
        return real_run(recipe, **kwargs)
    monkeypatch.setattr(trainer, "run_pretraining", resumed)
    run_all(jobs, mini_suite)
    assert seen[0] == ["step-000000002", "tokens.bin", "tokens.bin.json"]
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: ")]
    assert len(notes) == 2, notes
    assert re.fullmatch(rf"note: pretrain base \(base\): removed what a killed earlier attempt left in "
                        rf"{re.escape(str(checkpoint))} \([0-9.]+ [KMG]B\): \.pretrain_record\.json\.[a-z0-9_]{{8}}\.tmp, "
                        r"resume/\.tmp-step-000000004", notes[0]), notes[0]
    assert re.fullmatch(rf"note: finetune aclsum-roles/baseline seed 0: removed what a killed earlier attempt left in "
                        rf"{re.escape(str(run_dir))} \([0-9]+ B\): \.metrics\.json\.[a-z0-9_]{{8}}\.tmp", notes[1]), notes[1]
    assert PretrainRecord.read(stage.done_file).resumed_from_step == 2
    for root in ("cache", "results"):
        assert tree(tmp_path / root) == tree(tmp_path / "whole" / root)
    whole = tiny_jobs(reference)
    records = [PretrainRecord.read(job.done_file) for job in (stage, whole[0])]
    assert records[0].weights_sha256 == records[1].weights_sha256
    assert records[0].final_train_loss == records[1].final_train_loss
    metrics = [MetricsRecord.read(job.done_file) for job in (finetune, whole[1])]
    assert (metrics[0].test, metrics[0].dev_curve) == (metrics[1].test, metrics[1].dev_curve)
    assert leftover_scratch(jobs) == []


def test_scratch_held_by_a_live_lock_is_never_removed(mini_suite, capsys):
    """A second runner on the same cache: a stage another runner is finishing (its record written,
    its resume/ states being removed), a selection being made again for its index, a fine-tuning run
    being written. Their locks are held by a live process, so none of it is taken for a killed
    attempt's: not removed, not named by `status`; once the locks are free, it is."""
    jobs = tiny_jobs(mini_suite, "knn_tapt_50")
    base, knn, finetune = jobs[0], jobs[1], jobs[2]
    (base.done_file.parent / "resume" / "step-000000004").mkdir(parents=True)
    (base.done_file.parent / "resume" / "step-000000004" / "model.safetensors").write_bytes(b"w" * 1000)
    base.done_file.write_text("{}")   # finished: the record written, resume/ not yet removed
    made_again = knn.stage.selection_dir.with_name(f".{knn.stage.selection_dir.name}-abcd_123")
    made_again.mkdir(parents=True)
    (made_again / "corpus.jsonl").write_text('{"text": "a selected line"}\n')
    leftovers = []
    finetune.done_file.parent.mkdir(parents=True)
    killed_mid_write(finetune.done_file, leftovers)
    scratch = [base.done_file.parent / "resume", made_again, *finetune.done_file.parent.glob(".metrics.json.*.tmp")]
    with job_lock(base.lock_file) as a, job_lock(selection_lock(knn.stage.selection_dir)) as b, \
            job_lock(finetune.lock_file) as c:
        assert a and b and c   # this process's locks: another open of them (a runner) is refused
        assert leftover_scratch(jobs) == []
        clear_finished_jobs(jobs)   # what `run` does first
        assert all(path.exists() for path in scratch) and capsys.readouterr().out == ""
    assert sorted(leftover_scratch(jobs)) == sorted(scratch)
    show_status(mini_suite, [load_condition(EXPERIMENTS_DIR / "knn_tapt_50")], ["aclsum-roles"], [0])
    assert re.search(r"^note: 3 leftover\(s\) of killed attempts, 1\.[0-9] KB \(first: .*\); a `run` or `reproduce` "
                     "of these plans removes them$", capsys.readouterr().out, re.MULTILINE)
    clear_finished_jobs(jobs)   # the finished stage's and the selection's; the unfinished run's is its own attempt's
    assert [path.exists() for path in scratch] == [False, False, True]
    assert capsys.readouterr().out.count("note: ") == 2
