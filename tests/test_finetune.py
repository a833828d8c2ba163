"""Fine-tuning: the paper's head, length-grouped batches, metrics.json, determinism, learning.

Tasks are built from sentences of aclsum's ACL papers: "sections" labels each sentence with
the part of the paper it comes from (imbalanced, so micro- and macro-F1 differ), "cue"
starts each sentence with a word that gives its label away (easy: a working trainer
must learn it).
"""
import json
import random
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
from conftest import package_file

from dontstop.finetune.classifier import load_classifier
from dontstop.cli import main
from dontstop.fileio import UserError, sha256_file
from dontstop.finetune.trainer import length_grouped_batches, run_finetune
from dontstop.records import MetricsRecord
from dontstop.recipes import FinetuneRecipe
from dontstop.suites import load_suite
from dontstop.tasks import Task

SCORES = {"accuracy", "macro_f1", "micro_f1"}
SIZES = {"train": 160, "dev": 80, "test": 80}
SECTIONS = Task("sections", "Sections", "cs", "macro_f1", "low")
CUE = Task("cue", "Cue", "cs", "macro_f1", "low")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """BERT-tiny's small matrices gain little from a second thread, and runs get 5x slower
    when that thread competes with other processes for the 2 cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def aclsum_sentences() -> list[tuple[str, str]]:
    """(sentence, section) pairs of aclsum's training papers, in file order."""
    path = package_file("aclsum", "dataset", "train.jsonl")   # skips if aclsum is missing
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        for section, sentences in json.loads(line)["sentences"].items():
            pairs += [(s, section) for s in sentences if 4 <= len(s.split()) <= 40]
    return pairs


def write_task(data_dir: Path, suite: str, key: str, rows: list[tuple[str, str]]) -> None:
    """Split `rows` into SIZES and write them as the paper's jsonl files."""
    directory = data_dir / suite / "tasks" / key
    directory.mkdir(parents=True)
    start = 0
    for split, size in SIZES.items():
        lines = [json.dumps({"text": text, "label": label, "id": f"{split}-{i}"})
                 for i, (text, label) in enumerate(rows[start:start + size])]
        (directory / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        start += size


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    pairs = aclsum_sentences()
    random.Random(0).shuffle(pairs)
    rows = pairs[:sum(SIZES.values())]
    labels = random.Random(1).choices(["good", "bad"], k=len(rows))
    cue_rows = [(f"{'excellent' if label == 'good' else 'terrible'} {text}", label)
                for (text, _), label in zip(rows, labels)]
    root = tmp_path_factory.mktemp("data")
    write_task(root, "test", SECTIONS.key, rows)
    write_task(root, "test", CUE.key, cue_rows)
    return root


def recipe(data_dir: Path, task: Task, **overrides) -> FinetuneRecipe:
    quick = {"model": "bundled:bert-tiny", "epochs": 2, "lr": 1e-4, "max_length": 64}
    return FinetuneRecipe(task=task.key, suite="test", data_dir=str(data_dir), **{**quick, **overrides})


@pytest.fixture(scope="module")
def finished_run(data_dir, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("run") / "seed_0"
    pretraining = [{"name": "tapt-sections", "steps": 3}]
    metrics = run_finetune(recipe(data_dir, CUE), out, task=CUE, condition="tapt",
                           lineage="tapt-sections", pretraining=pretraining)
    return out, metrics


def comparable(metrics: MetricsRecord) -> dict:
    return {k: v for k, v in asdict(metrics).items() if k not in ("wall_time_s", "timings")}


def test_metrics_json_holds_every_contract_field(finished_run, data_dir):
    out, metrics = finished_run
    on_disk = json.loads((out / "metrics.json").read_text())
    assert MetricsRecord.read(out / "metrics.json") == metrics
    assert set(on_disk["dev"]) == set(on_disk["test"]) == SCORES
    assert all(0 <= v <= 1 for split in ("dev", "test") for v in on_disk[split].values())
    assert (on_disk["suite"], on_disk["task"], on_disk["condition"], on_disk["lineage"]) == (
        "test", "cue", "tapt", "tapt-sections")
    assert on_disk["pretraining"] == [{"name": "tapt-sections", "steps": 3}]
    assert on_disk["train_examples"] == SIZES["train"] and on_disk["epochs_run"] == 2
    assert len(on_disk["dev_curve"]) == 2 and on_disk["dev_metric"] == max(on_disk["dev_curve"])
    assert on_disk["dev_curve"][on_disk["best_epoch"] - 1] == on_disk["dev_metric"]
    task_dir = data_dir / "test" / "tasks" / "cue"
    assert on_disk["data_sha256"] == {s: sha256_file(task_dir / f"{s}.jsonl") for s in SIZES}
    assert set(on_disk["versions"]) == {"python", "torch", "transformers"}
    assert on_disk["git_commit"] is None or len(on_disk["git_commit"]) == 40
    config = json.loads((out / "config.json").read_text())
    assert config == on_disk["config"]
    assert config["schedule"] == "constant" and config["device"] != "auto"  # low-resource profile


def test_same_seed_same_metrics_other_seed_differs(finished_run, data_dir, tmp_path):
    _, first = finished_run
    again = run_finetune(recipe(data_dir, CUE), tmp_path / "again", task=CUE,
                         condition="tapt", lineage="tapt-sections",
                         pretraining=[{"name": "tapt-sections", "steps": 3}])
    other = run_finetune(recipe(data_dir, CUE, seed=1), tmp_path / "other", task=CUE)
    assert comparable(again) == comparable(first)
    assert (other.dev_curve, other.test) != (first.dev_curve, first.test)


def test_metric_follows_the_task(data_dir, tmp_path):
    for metric in ("micro_f1", "macro_f1"):
        task = replace(SECTIONS, metric=metric)
        run = run_finetune(recipe(data_dir, task, epochs=1), tmp_path / metric, task=task)
        assert run.metric == metric and run.test_metric == run.test[metric]
        assert run.dev_curve == [run.dev[metric]]
        # the sections are imbalanced, so the two F1s differ and the choice is visible
        assert run.test["micro_f1"] == run.test["accuracy"] != run.test["macro_f1"]


def test_a_model_learns_an_easy_task(data_dir, tmp_path):
    metrics = run_finetune(recipe(data_dir, CUE, lr=3e-4), tmp_path / "run", task=CUE)
    assert metrics.test["macro_f1"] > 0.85   # chance is about 0.5


def test_head_is_dropout_dense_tanh_out_proj_on_the_first_token():
    torch.manual_seed(0)
    model, tokenizer = load_classifier("bundled:bert-tiny", num_labels=3, dropout=0.1)
    assert (model.dense.in_features, model.dense.out_features) == (128, 128)
    assert (model.out_proj.in_features, model.out_proj.out_features) == (128, 3)
    assert model.dropout.p == 0.1
    batch = tokenizer(["a short sentence", "a rather longer sentence of a few more words"],
                      padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        logits = model(batch["input_ids"], batch["attention_mask"])
        states = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        expected = model.out_proj(torch.tanh(model.dense(states.last_hidden_state[:, 0])))
    assert logits.shape == (2, 3) and torch.allclose(logits, expected)


def test_length_grouped_batches_cover_every_example_once_with_similar_lengths():
    lengths = [random.Random(i).randint(3, 300) for i in range(1000)]
    fresh_starts = [length_grouped_batches(lengths, 16, torch.Generator().manual_seed(0)) for _ in range(2)]
    generator = torch.Generator().manual_seed(0)
    first, second = (length_grouped_batches(lengths, 16, generator) for _ in range(2))
    assert fresh_starts[0] == fresh_starts[1] == first and first != second  # seeded, new every epoch
    for batches in (first, second):
        assert sorted(i for batch in batches for i in batch) == list(range(1000))
        assert sorted(len(batch) for batch in batches) == [1000 % 16] + [16] * (1000 // 16)
        spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
        assert sum(spread) / len(spread) < 60   # random batches of 16 spread about 250


def test_a_finished_run_is_never_overwritten(finished_run, data_dir):
    out, metrics = finished_run
    before = (out / "metrics.json").read_bytes()
    with pytest.raises(UserError, match="already finished"):
        run_finetune(recipe(data_dir, CUE), out, task=CUE)
    assert run_finetune(recipe(data_dir, CUE), out, task=CUE, reuse_finished=True) == metrics
    assert (out / "metrics.json").read_bytes() == before


def test_cli_runs_a_registry_task_and_refuses_to_redo_it(data_dir, tmp_path, capsys):
    shutil.copytree(data_dir / "test/tasks/cue", tmp_path / "data/mini/tasks/rt-polarity")  # a registry key
    argv = ["finetune", "--suite", "mini", "--task", "rt-polarity", "--model", "bundled:bert-tiny",
            "--seed", "3", "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path / "data"),
            "--epochs", "1", "--max-train-examples", "50", "--max-length", "32", "--no-wandb"]
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train_examples"] == 50 and metrics["seed"] == 3 and metrics["condition"] is None
    # the suite's recipe under the flags, as `run` gives it (a mini cell redone by hand ran at 2e-5, not 2e-4)
    assert metrics["config"]["lr"] == load_suite("mini").finetune["lr"] == 2e-4
    assert main(argv) == 2 and "already finished" in capsys.readouterr().err
    assert main(argv + ["--skip-finished"]) == 0
    # a finished run of another seed was kept as this one, exit 0
    assert main([*argv, "--skip-finished", "--seed", "4"]) == 2
    assert capsys.readouterr().err.strip().endswith("a finished run, but not the one asked (seed 3, asked 4); "
                                                    "choose another --out")
    # and one of another recipe: the 1-epoch run was returned for 2 epochs
    assert main([*argv, "--skip-finished", "--epochs", "2"]) == 2
    assert capsys.readouterr().err.strip().endswith("a finished run, but not the one asked (epochs: finished "
                                                    "with 1, asked 2); choose another --out")
    # --out a model's folder: its config.json was replaced by the run's, and it loaded no more (a
    # sharded model's too: only model.safetensors and pytorch_model.bin were looked for)
    for weights in ("model.safetensors", "model-00001-of-00002.safetensors", "adapter_config.json"):
        model = tmp_path / weights
        model.mkdir()
        (model / weights).write_bytes(b"weights")
        (model / "config.json").write_text('{"model_type": "bert"}')
        assert main([*argv[:argv.index("--out")], "--out", str(model), *argv[argv.index("--out") + 2:]]) == 2
        assert "holds a model, whose config.json the run's would replace" in capsys.readouterr().err
        assert (model / "config.json").read_text() == '{"model_type": "bert"}'


def test_dev_label_unseen_in_train_is_a_one_line_error(data_dir, tmp_path):
    directory = shutil.copytree(data_dir / "test/tasks/sections", tmp_path / "test/tasks/sections")
    with open(directory / "dev.jsonl", "a") as f:
        f.write(json.dumps({"text": "a new kind of sentence", "label": "appendix"}) + "\n")
    with pytest.raises(UserError, match=r"dev\.jsonl:81: field 'label': 'appendix' is not in the label"):
        run_finetune(recipe(tmp_path, SECTIONS), tmp_path / "run", task=SECTIONS)
    assert not (tmp_path / "run").exists()


def test_wandb_offline_logs_a_local_run(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    run_finetune(recipe(data_dir, CUE, epochs=1), tmp_path / "run", task=CUE, condition="baseline",
                 wandb=True)
    assert list((tmp_path / "wandb_dir" / "wandb").glob("offline-run-*"))
    assert not (tmp_path / "run" / "wandb").exists()  # never inside the results tree


def test_tiny_roberta_checkpoint_fine_tunes(tiny_roberta_dir, data_dir, tmp_path):
    metrics = run_finetune(recipe(data_dir, CUE, model=str(tiny_roberta_dir), epochs=1),
                           tmp_path / "run", task=CUE)
    bert_tiny = run_finetune(recipe(data_dir, CUE, epochs=1), tmp_path / "bert", task=CUE)
    assert metrics.model == str(tiny_roberta_dir) and metrics.config["model"] == str(tiny_roberta_dir)
    assert metrics.test_metric == metrics.test["macro_f1"] and len(metrics.dev_curve) == 1
    # Same seed, same data: only the starting checkpoint differs, and so must the scores.
    assert (metrics.dev, metrics.test) != (bert_tiny.dev, bert_tiny.test)
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_probe_is_deterministic_and_sees_the_checkpoint(data_dir, tiny_roberta_dir, tmp_path):
    from dontstop.finetune.probe import run_probe
    from dontstop.records import ProbeRecord

    first = run_probe(recipe(data_dir, CUE), tmp_path / "a", CUE, condition="baseline", lineage="base")
    again = run_probe(recipe(data_dir, CUE), tmp_path / "b", CUE, condition="baseline", lineage="base")
    assert ProbeRecord.read(tmp_path / "a" / "probe.json") == first
    assert (first.dev, first.test) == (again.dev, again.test)            # no seeds: one number per cell
    assert first.features == 128 and first.train_examples == SIZES["train"]
    assert first.test["macro_f1"] > 0.8    # the cue words are linearly visible in BERT-tiny's features
    other = run_probe(recipe(data_dir, CUE, model=str(tiny_roberta_dir)), tmp_path / "c", CUE,
                      condition="baseline", lineage="base")
    assert other.features == 64 and other.test != first.test


def test_a_seed_fixes_the_head_and_the_dropout_stream_whatever_the_checkpoint(data_dir, tmp_path, monkeypatch):
    """Why the findings may pair conditions by seed (docs/mini_study.md): the same seed gives the
    same head and the same dropout draws from any checkpoint, one that stores a pooler (a released
    encoder) or not (our MLM checkpoints: loading one makes transformers initialise a pooler from
    torch's global stream), and two conditions on one checkpoint give identical metrics (r = 1)."""
    from transformers import AutoModel, AutoTokenizer

    from dontstop.finetune import trainer
    from dontstop.models import resolve_model

    with_pooler = tmp_path / "with-pooler"
    AutoModel.from_pretrained(resolve_model("bundled:bert-tiny")).save_pretrained(with_pooler)
    AutoTokenizer.from_pretrained(resolve_model("bundled:bert-tiny")).save_pretrained(with_pooler)
    starts = []   # (head weights, the first dropout draws) at the start of training, per run

    def recording_train(model, *args, **kwargs):
        head = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("encoder.")}
        state = torch.get_rng_state()
        starts.append((head, torch.rand(8)))
        torch.set_rng_state(state)
        return real_train(model, *args, **kwargs)

    real_train = trainer.train
    monkeypatch.setattr(trainer, "train", recording_train)
    runs = [run_finetune(recipe(data_dir, CUE, model=model, seed=3), tmp_path / f"{condition}-{i}", task=CUE,
                         condition=condition)
            for i, (model, condition) in enumerate([("bundled:bert-tiny", "baseline"), ("bundled:bert-tiny", "tapt"),
                                                    (str(with_pooler), "baseline")])]
    assert runs[0].test == runs[1].test and runs[0].dev_curve == runs[1].dev_curve   # two conditions, r = 1
    for head, draws in starts[1:]:
        assert head.keys() == starts[0][0].keys() and {"dense.weight", "out_proj.weight"} <= head.keys()
        assert all(torch.equal(head[k], starts[0][0][k]) for k in head)
        assert torch.equal(draws, starts[0][1])
    other_seed, _ = load_classifier("bundled:bert-tiny", 2, 0.1, seed=4)
    assert not torch.equal(other_seed.dense.weight, starts[0][0]["dense.weight"])   # the seed does decide


def test_a_diverged_fine_tuning_stops_with_one_line_and_no_metrics(data_dir, tmp_path):
    """An absurd lr overflows the weights: the loss turns NaN or infinite, and the run must not end
    as a normal-looking metrics.json of one-class predictions that later runs skip as done."""
    with pytest.raises(UserError) as error:
        run_finetune(recipe(data_dir, CUE, lr=1e38), tmp_path / "run", task=CUE)
    message = str(error.value)
    assert message.startswith(f"{CUE.key} seed 0: fine-tuning diverged: loss ") and "\n" not in message
    assert "(recipe lr 1e+38); no metrics.json written" in message
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_batches_padded_to_a_multiple_compute_what_unpadded_batches_compute(data_dir):
    """FinetuneRecipe.pad_to_multiple_of (32 on a GPU: a few shapes, no attention re-planning per
    batch) adds masked positions only: logits, loss and the step it takes equal the unpadded
    batch's up to float rounding."""
    from transformers import DataCollatorWithPadding

    from dontstop.data.formats import load_split
    from dontstop.finetune.classifier import encode
    from dontstop.finetune.trainer import build_optimizer, train_step

    examples = load_split(data_dir / "test" / "tasks" / "sections" / "train.jsonl")[:16]
    labels = {label: i for i, label in enumerate(sorted({e.label for e in examples}))}
    results = []
    for multiple in (1, 32):
        model, tokenizer = load_classifier("bundled:bert-tiny", len(labels), dropout=0.0, seed=0)
        for module in model.modules():   # no dropout anywhere: the two batches' draws would differ
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        batch = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple, return_tensors="pt")(
            encode(tokenizer, examples, labels, 64))
        step_recipe = recipe(data_dir, SECTIONS, device="cpu", precision="fp32")
        model.eval()
        with torch.no_grad():
            logits = model(batch["input_ids"], batch["attention_mask"])
        model.train()
        loss = train_step(model, batch, build_optimizer(model, step_recipe), step_recipe)
        results.append((batch["input_ids"].shape[1], logits, loss, model.dense.weight.detach().clone()))
    (width, logits, loss, dense), (padded_width, padded_logits, padded_loss, padded_dense) = results
    assert padded_width % 32 == 0 and padded_width > width   # the padding really was added
    assert torch.allclose(logits, padded_logits, atol=1e-5)
    assert padded_loss == pytest.approx(loss, abs=1e-5)
    assert torch.allclose(dense, padded_dense, atol=1e-6)
