"""Real offline wandb runs, read back from their run-*.wandb record logs (tests/wandb_records.py).

Offline lineage: in wandb 0.31 `run.use_artifact(...)` raises TypeError("Cannot use artifact
when in offline mode.") for names and Artifact objects alike, before anything is recorded.
`declare_input_artifact` below writes the same `UseArtifactRecord` that use_artifact
publishes online, through the run's (private) interface; the reader sees it as
`artifacts_used`. `wandb sync` does not turn that record into a lineage edge (wandb-core's
sender only hands use_artifact records to the launch job builder; online, the edge is made
by the Python client's GraphQL useArtifact call), so code that must survive a sync should
also put the input's name in the config.
"""
import struct
import zlib

import pytest

from wandb_records import (
    BLOCK_LEN, WandbLogError, find_offline_runs, read_raw_records, read_records, summarize_run,
    wait_for_exit,
)

wandb = pytest.importorskip("wandb")


@pytest.fixture
def wandb_root(tmp_path, monkeypatch):
    """Offline, silent, and everything wandb writes (runs, staging, cache, settings) under tmp."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    for var, sub in [("WANDB_DATA_DIR", "data"), ("WANDB_CACHE_DIR", "cache"),
                     ("WANDB_ARTIFACT_DIR", "artifacts"), ("WANDB_CONFIG_DIR", "config")]:
        monkeypatch.setenv(var, str(tmp_path / sub))
    return tmp_path


def offline_run(root, **kwargs):
    settings = wandb.Settings(console="off", x_disable_stats=True, x_disable_meta=True,
                              x_disable_machine_info=True, save_code=False, disable_git=True,
                              x_save_requirements=False, reinit="finish_previous")
    return wandb.init(dir=str(root), mode="offline", project="dontstop-test",
                      settings=settings, **kwargs)


def run_file(root, run):
    """The finished run's log; run.finish() may return before wandb-core has flushed it."""
    [path] = [p for p in find_offline_runs(root) if p.name == f"run-{run.id}.wandb"]
    return wait_for_exit(path)


def declare_input_artifact(run, name: str, type: str, id: str = "") -> None:
    """Offline stand-in for `run.use_artifact(name)`: record the input in the run's log."""
    from wandb.proto import wandb_internal_pb2 as pb

    run._interface._publish_use_artifact(pb.UseArtifactRecord(id=id or name, type=type, name=name))


def test_wandb_finetune_run_reads_back(wandb_root):
    run = offline_run(wandb_root, group="aclsum-roles/tapt", job_type="finetune",
                      config={"lr": 2e-5, "seed": 0})
    for _ in range(2):
        run.log({"epoch": 1, "train_loss": 0.5, "dev_metric": 0.6})
    run.config.update({"model": {"name": "tiny", "layers": 2}})
    run.summary["test_metric"] = 0.7
    run.finish()

    records = read_records(run_file(wandb_root, run))
    assert records[0].WhichOneof("record_type") == "header"
    got = summarize_run(run_file(wandb_root, run))
    assert (got.run_id, got.project) == (run.id, "dontstop-test")
    assert (got.group, got.job_type) == ("aclsum-roles/tapt", "finetune")
    assert got.config == {"lr": 2e-5, "seed": 0, "model": {"name": "tiny", "layers": 2}}
    assert got.history_keys == {"epoch", "train_loss", "dev_metric"}
    assert [row["_step"] for row in got.history] == [0, 1]
    assert all(row["train_loss"] == 0.5 and row["dev_metric"] == 0.6 for row in got.history)
    assert got.summary["test_metric"] == 0.7
    assert got.summary["dev_metric"] == 0.6  # the last logged value
    assert got.exit_code == 0
    assert got.artifacts_logged == [] and got.artifacts_used == []


def test_wandb_artifact_lineage_pretrain_to_finetune(wandb_root):
    model_dir = wandb_root / "tapt-model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    (model_dir / "model.safetensors").write_bytes(b"\0" * 16)

    pretrain = offline_run(wandb_root, group="aclsum-roles/tapt", job_type="pretrain")
    with pytest.raises(TypeError, match="offline"):
        pretrain.use_artifact("roberta-base:latest")  # wandb 0.31: refused offline
    declare_input_artifact(pretrain, "roberta-base:latest", "model")
    artifact = wandb.Artifact("tapt-aclsum-roles", type="model", metadata={"steps": 10})
    artifact.add_reference(model_dir.as_uri(), checksum=False)
    pretrain.log_artifact(artifact, aliases=["seed0"])
    pretrain.finish()

    finetune = offline_run(wandb_root, group="aclsum-roles/tapt", job_type="finetune",
                           config={"input_model": "tapt-aclsum-roles:latest"})
    with pytest.raises(TypeError, match="offline"):
        finetune.use_artifact(artifact)
    declare_input_artifact(finetune, "tapt-aclsum-roles:latest", "model", id=artifact._client_id)
    finetune.finish()

    assert len(find_offline_runs(wandb_root)) == 2
    pre = summarize_run(run_file(wandb_root, pretrain))
    [logged] = pre.logged("model")
    assert (logged.name, logged.type) == ("tapt-aclsum-roles", "model")
    assert set(logged.aliases) == {"seed0", "latest"}
    # a directory reference is stored as one manifest entry per file, each with its own ref
    assert sorted(logged.references) == [(model_dir / "config.json").as_uri(),
                                         (model_dir / "model.safetensors").as_uri()]
    assert logged.metadata == {"steps": 10}
    assert [(u.name, u.type) for u in pre.artifacts_used] == [("roberta-base:latest", "model")]

    fine = summarize_run(run_file(wandb_root, finetune))
    [used] = fine.artifacts_used
    assert (used.name.split(":")[0], used.type) == (logged.name, logged.type)
    assert used.id == logged.client_id  # the edge, when the Artifact object is at hand
    assert fine.config["input_model"] == "tapt-aclsum-roles:latest"
    assert fine.artifacts_logged == []


def test_wandb_table_key_is_visible(wandb_root):
    pd = pytest.importorskip("pandas")
    run = offline_run(wandb_root, job_type="analyze")
    frame = pd.DataFrame({"task": ["citation_intent", "sciie"], "f1": [0.6, 0.7]})
    run.log({"results": wandb.Table(dataframe=frame)})
    run.finish()

    got = summarize_run(run_file(wandb_root, run))
    assert "results" in got.history_keys and got.tables == {"results"}
    assert got.history[0]["results"]["nrows"] == 2 and got.history[0]["results"]["ncols"] == 2
    assert got.summary["results"]["_type"] == "table-file"
    assert [a.type for a in got.artifacts_logged] == ["run_table"]
    assert any(f.startswith("media/table/results_") for f in got.files)


def test_wandb_records_spanning_blocks(wandb_root):
    big = "x" * (2 * BLOCK_LEN + 123)  # one record split FIRST/MIDDLE/LAST
    run = offline_run(wandb_root, config={"big": big})
    for step in range(300):
        run.log({"value": step})
    run.finish()

    path = run_file(wandb_root, run)
    assert path.stat().st_size > 3 * BLOCK_LEN
    assert len(read_raw_records(path, strict=True)) == len(read_records(path))
    got = summarize_run(path)
    assert got.config["big"] == big, "the split config record did not round-trip"
    assert [row["value"] for row in got.history] == list(range(300))


def test_wandb_records_reject_corrupt_logs(tmp_path):
    def chunk(kind, data):
        return struct.pack("<IHB", zlib.crc32(data, zlib.crc32(bytes([kind]))), len(data), kind) + data

    good = tmp_path / "run-good.wandb"
    good.write_bytes(b":W&B" + struct.pack("<HB", 0xBEE1, 0) + chunk(1, b"a") + chunk(2, b"b")
                     + chunk(3, b"c") + chunk(4, b"d"))
    assert read_raw_records(good, strict=True) == [b"a", b"bcd"]
    corrupt = tmp_path / "run-corrupt.wandb"
    corrupt.write_bytes(good.read_bytes()[:-1] + b"e")
    with pytest.raises(WandbLogError, match="CRC"):
        read_raw_records(corrupt)
    truncated = tmp_path / "run-truncated.wandb"
    truncated.write_bytes(good.read_bytes()[:-3])
    assert read_raw_records(truncated) == [b"a"]
    with pytest.raises(WandbLogError):
        read_raw_records(truncated, strict=True)
    (tmp_path / "run-other.wandb").write_bytes(b"not a log")
    with pytest.raises(WandbLogError, match="not a wandb"):
        read_raw_records(tmp_path / "run-other.wandb")
