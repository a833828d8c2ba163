"""W&B from the real runner, offline: groups, job types, logged keys, checkpoints as `model`
artifacts by reference, and the lineage edges base -> TAPT -> fine-tuning and
base -> DAPT -> DAPT+TAPT -> fine-tuning, read back from the offline run files
(tests/wandb_records.py). One quick runner call, shared with test_lora.py (conftest's
wandb_study: TAPT, DAPT+TAPT and their LoRA counterparts on rt-polarity, 1 seed)."""
import json

import pytest

from dontstop import wandb_log
from dontstop.records import PRETRAIN_RECORD_FILE, PretrainRecord

pytest.importorskip("wandb")
TASK = "rt-polarity"


@pytest.fixture(scope="module")
def logged(wandb_study):
    """The shared W&B study's runs, and its checkpoints but the LoRA ones (test_lora.py reads those):
    (root, {run name: WandbRun}, {lineage: checkpoint folder})."""
    root, runs, checkpoints = wandb_study
    return root, runs, {lineage: folder for lineage, folder in checkpoints.items() if "lora" not in lineage}


def produced(run):
    return [a for a in run.artifacts_logged if not a.use_after_commit]


def test_wandb_finetune_runs_are_grouped_by_task_and_condition(logged):
    root, runs, _ = logged
    for condition in ("tapt", "dapt_tapt"):
        run = runs[f"{TASK}/{condition}/seed_0"]
        metrics = json.loads(next(root.rglob(f"{TASK}/{condition}/seed_0/metrics.json")).read_text())
        assert (run.group, run.job_type, run.exit_code) == (f"{TASK}/{condition}", "finetune", 0)
        assert {"mini", TASK, condition} <= set(run.tags)
        assert {"epoch", "train/loss", "dev/macro_f1", "dev/accuracy"} <= run.history_keys
        assert len(run.history) == metrics["epochs_run"]
        assert run.summary["test/macro_f1"] == pytest.approx(metrics["test_metric"])
        assert run.summary["test_metric"] == pytest.approx(metrics["test_metric"])
        assert {key: run.config[key] for key in metrics["config"]} == metrics["config"]  # resolved
        assert (run.config["condition"], run.config["lineage"]) == (condition, metrics["lineage"])
        assert produced(run) == []


def test_wandb_pretraining_logs_loss_tokens_per_s_and_its_checkpoint_by_reference(logged):
    _, runs, checkpoints = logged
    assert {"tapt-rt-polarity", "dapt-reviews", "dapt-reviews+tapt-rt-polarity"} <= {
        lineage.removeprefix("base+") for lineage in checkpoints}   # after a suite's base stage, if any
    for lineage, folder in checkpoints.items():
        run = runs[folder.name]
        record = PretrainRecord.read(folder / PRETRAIN_RECORD_FILE)
        kind = lineage.split("+")[-1].split("-")[0]           # dapt-reviews -> dapt, tapt-... -> tapt
        assert (run.job_type, run.group, run.exit_code) == ("pretrain", f"pretrain/{kind}", 0)
        assert {"train/loss", "train/tokens_per_s", "train/lr"} <= run.history_keys
        assert len(run.history) == record.steps
        assert run.summary["tokens_per_s"] == pytest.approx(record.tokens_per_s)
        assert run.config["lineage"] == lineage and run.config["stage_key"].startswith(folder.name[-8:])
        # a 2-GPU and a 1-GPU DAPT can be told apart: processes and device, as in the record
        assert (run.config["processes"], run.config["device"]) == (record.processes, record.device) == (1, "cpu")
        assert (run.summary["processes"], run.summary["device"]) == (1, "cpu")
        [artifact] = produced(run)
        assert (artifact.name, artifact.type) == (wandb_log.artifact_name(folder.name), "model")
        assert artifact.metadata["lineage"] == lineage
        files = sorted(p.resolve().as_uri() for p in folder.rglob("*") if p.is_file())
        assert sorted(artifact.references) == files          # by reference: one entry per file
        assert not any("/wandb/" in ref for ref in artifact.references)


def test_wandb_lineage_runs_base_to_dapt_to_dapt_tapt_to_finetuning(logged):
    root, runs, checkpoints = logged
    output_of = {a.name: run.name for run in runs.values() for a in produced(run)}
    inputs = {run.name: [a.name for a in run.artifacts_used] for run in runs.values()}
    for run in runs.values():  # the config names the input too: it survives any sync
        assert [run.config["input_artifact"]] == inputs[run.name]

    def chain(finetune_run: str) -> list[str]:
        """Artifact names from the fine-tuning run's input back to the base model."""
        names, run = [], finetune_run
        while True:
            [used] = inputs[run]
            names.append(used)
            if used not in output_of:
                return names[::-1]
            run = output_of[used]

    for condition, ends in [("tapt", "+tapt-rt-polarity"), ("dapt_tapt", "+dapt-reviews+tapt-rt-polarity")]:
        lineage = json.loads(next(root.rglob(f"{TASK}/{condition}/seed_0/metrics.json")).read_text())["lineage"]
        assert f"+{lineage}".endswith(ends)
        parts = lineage.split("+")   # base -> each stage of the lineage, in order -> fine-tuning
        expected = [wandb_log.artifact_name(checkpoints["+".join(parts[:i])].name) for i in range(1, len(parts) + 1)]
        assert chain(f"{TASK}/{condition}/seed_0") == ["base-bundled-bert-tiny"] + expected
    dapt_tapt = [folder.name for lineage, folder in checkpoints.items() if lineage.endswith("dapt-reviews+tapt-rt-polarity")]
    assert wandb_log.artifact_name(dapt_tapt[0]) == dapt_tapt[0].replace("+", "--")


def test_wandb_folders_stay_out_of_results_and_checkpoints(logged):
    root, runs, checkpoints = logged
    assert len(list((root / "wandb_dir" / "wandb").glob("offline-run-*"))) == len(runs)
    assert {folder.name for folder in checkpoints.values()} | {f"{TASK}/tapt/seed_0", f"{TASK}/dapt_tapt/seed_0"} <= set(runs)
    assert not list((root / "results").rglob("wandb")) and not list((root / "cache").rglob("wandb"))


@pytest.mark.parametrize("text, prefix, name", [
    ("dapt-cs+tapt-aclsum-roles-1a2b3c4d", "", "dapt-cs--tapt-aclsum-roles-1a2b3c4d"),
    ("bundled:bert-tiny", "base-", "base-bundled-bert-tiny"),
    ("roberta-base", "base-", "base-roberta-base"),
    ("allenai/cs_roberta_base", "base-", "base-allenai-cs_roberta_base"),
])
def test_wandb_artifact_names_are_valid(text, prefix, name):
    assert wandb_log.artifact_name(text, prefix) == name
    long = wandb_log.artifact_name("+".join(["dapt-biomed"] * 20))
    assert len(long) == 128 and long != wandb_log.artifact_name("+".join(["dapt-biomed"] * 21))


def test_wandb_model_artifact_of_a_hub_id_is_a_reference_to_its_page(tmp_path):
    model = wandb_log.model_artifact("allenai/cs_roberta_base")
    assert model == wandb_log.ModelArtifact("base-allenai-cs_roberta_base",
                                            "https://huggingface.co/allenai/cs_roberta_base")
    base_dir = tmp_path / "my model"
    base_dir.mkdir()
    assert wandb_log.model_artifact(str(base_dir)).name == "base-my-model"
    (base_dir / PRETRAIN_RECORD_FILE).write_text("{}")
    assert wandb_log.model_artifact(str(base_dir)) == wandb_log.ModelArtifact("my-model", base_dir.as_uri())


def test_wandb_disabled_or_failing_never_fails_a_run(monkeypatch, capsys):
    import wandb

    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_log.start_run(True, group="g", job_type="finetune", name="n", config={}) is None
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr(wandb_log, "_init_failed", False)

    def unreachable(**kwargs):
        raise ConnectionError("api.wandb.ai unreachable\nmore detail")
    monkeypatch.setattr(wandb, "init", unreachable)
    for _ in range(2):  # the second call does not try again
        assert wandb_log.start_run(True, group="g", job_type="finetune", name="n", config={}) is None
    err = capsys.readouterr().err
    assert err.count("warning: W&B start failed (ConnectionError: api.wandb.ai unreachable)") == 1
    assert len(err.strip().splitlines()) == 1

    class Broken:
        offline = True

        def log(self, data, step=None):
            raise RuntimeError("disk full")

        def finish(self):
            raise RuntimeError("disk full")
    run = wandb_log.Run(Broken())
    for _ in range(3):
        run.log({"x": 1})
    run.finish()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dontstop: warning: W&B log failed (RuntimeError: disk full); the run goes on without it",
                   "dontstop: warning: W&B finish failed (RuntimeError: disk full); the run goes on without it"]
