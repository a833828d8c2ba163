"""LoRA conditions (peft): a stage trains and stores only its adapter (and resumes after a kill),
the merged model equals base + adapter, fine-tuning and probes start from it, the runner shares
DAPT (LoRA), W&B links it to its base, and bad input is one line before any work."""
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from peft import PeftModel
from safetensors import safe_open
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

from dontstop import wandb_log
from dontstop.adapters import adapter_base
from dontstop.cli import main
from dontstop.data.leakage import LeakageGuard
from dontstop.fileio import UserError
from dontstop.models import load_pretrained, resolve_model, weights_sha256
from dontstop.pretrain.trainer import PretrainRun, run_pretraining
from dontstop.recipes import PretrainRecipe
from dontstop.records import PRETRAIN_RECORD_FILE, MetricsRecord, PretrainRecord
from conftest import write_tiny_mini_tasks

REPO = Path(__file__).resolve().parents[1]
TASK = "rt-polarity"
SMALL = {"batch_size": 8, "per_device_batch_size": 4, "max_length": 32, "heldout_documents": 20, "lr": 1e-2}
ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors", PRETRAIN_RECORD_FILE}
# Merging adds (alpha / rank) * B @ A into W once; unmerged, peft adds x @ A^T @ B^T on the fly:
# the same numbers in another order, so float32 rounding apart (|diff| ~1e-6 on hidden states).
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def lora_recipe(model, corpus, out, **overrides):
    return PretrainRecipe(**{"base_model": str(model), "corpora": [str(corpus)], "output_dir": str(out),
                             "max_steps": 4, **SMALL, "adapter": {"rank": 4, "alpha": 8.0, "target_modules": ["query", "value"]}, **overrides})


@pytest.fixture(scope="module")
def lora_chain(tiny_roberta_dir, tiny_corpus, tmp_path_factory):
    """DAPT (LoRA) on the tiny RoBERTa, then TAPT (LoRA) on top of it: (dapt_dir, tapt_dir)."""
    root = tmp_path_factory.mktemp("lora")
    run_pretraining(lora_recipe(tiny_roberta_dir, tiny_corpus, root / "dapt_lora"))
    run_pretraining(lora_recipe(root / "dapt_lora", tiny_corpus, root / "tapt_lora", seed=1))
    return root / "dapt_lora", root / "tapt_lora"


def test_a_lora_stage_stores_only_its_adapter_and_names_its_base(lora_chain, tiny_roberta_dir):
    dapt, tapt = lora_chain
    for folder, base in ((dapt, tiny_roberta_dir), (tapt, dapt)):
        files = {p.name for p in folder.iterdir()}
        assert ADAPTER_FILES <= files and not {"model.safetensors", "config.json", "README.md"} & files
        assert files - ADAPTER_FILES <= {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                                         "special_tokens_map.json"}
        config = json.loads((folder / "adapter_config.json").read_text())
        assert config["base_model_name_or_path"].startswith("../")          # relative: moved together, it loads
        assert (folder / config["base_model_name_or_path"]).resolve() == Path(adapter_base(folder)).resolve() == base.resolve()
        record = PretrainRecord.read(folder / PRETRAIN_RECORD_FILE)
        assert record.base_model == str(base) and record.recipe["adapter"]["rank"] == 4
        assert record.base_weights_sha256 == weights_sha256(base) and len(record.base_weights_sha256) == 2
        with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
            stored = list(f.keys())
        # the adapters of query and value in both layers, and the MLM head's transform: nothing else
        assert sum(".lora_A." in k for k in stored) == sum(".lora_B." in k for k in stored) == 4
        assert {k for k in stored if "lora_" not in k} == {
            f"base_model.model.lm_head.{m}.{p}" for m in ("dense", "layer_norm") for p in ("weight", "bias")}


def test_an_adapter_whose_bases_come_back_to_it_is_one_line(lora_chain, tmp_path):
    """A base of "./", or two adapters naming each other: a RecursionError of 2000 lines, exit 1."""
    from dontstop.fileio import UserError
    from dontstop.models import resolve_model

    dapt, _ = lora_chain
    pair = [shutil.copytree(dapt, tmp_path / name) for name in ("a", "b")]
    for folder, base in ((pair[0], "../b"), (pair[1], "../a")):
        config = json.loads((folder / "adapter_config.json").read_text())
        (folder / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": base}))
    with pytest.raises(UserError, match=re.escape(f"{pair[0]}: LoRA checkpoint whose chain of bases comes back "
                                                  f"to {pair[0]} (adapter_config.json base_model_name_or_path: a cycle)")):
        resolve_model(str(pair[0]))
    (pair[1] / "adapter_model.safetensors").unlink()   # peft said "Repo id must be in the form ..."
    with pytest.raises(UserError, match=re.escape(f"{pair[1]}: LoRA checkpoint without its weights "
                                                  "(adapter_model.safetensors missing)")):
        resolve_model(str(pair[1]))


def test_an_adapter_saved_inside_its_base_folder_loads_from_anywhere(tiny_roberta_dir, tiny_corpus, tmp_path,
                                                                     monkeypatch):
    """`--out base/lora`: adapter_config.json names its base "..", which was read as a hub id and
    looked up from the working folder: "missing or broken" elsewhere, and another model where the
    working folder's parent is one."""
    base = shutil.copytree(tiny_roberta_dir, tmp_path / "base")
    run_pretraining(lora_recipe(base, tiny_corpus, base / "lora"))
    assert json.loads((base / "lora" / "adapter_config.json").read_text())["base_model_name_or_path"] == ".."
    monkeypatch.chdir(tmp_path)
    assert Path(adapter_base(base / "lora")) == base
    merged = load_pretrained(AutoModelForMaskedLM, str(base / "lora")).eval()
    unmerged = PeftModel.from_pretrained(load_pretrained(AutoModelForMaskedLM, str(base)), str(base / "lora")).eval()
    ids = torch.tensor([[0, 5, 6, 7, 2]])
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=ids).logits, unmerged(input_ids=ids).logits, **TOLERANCE)


def test_the_optimizer_gets_only_the_adapters_and_the_head_transform(tiny_roberta_dir, tiny_corpus, tmp_path):
    run = PretrainRun(lora_recipe(tiny_roberta_dir, tiny_corpus, tmp_path / "out"), LeakageGuard(), "lora")
    optimized = {id(p) for group in run.optimizer.param_groups for p in group["params"]}
    trainable = {name for name, p in run.model.named_parameters() if id(p) in optimized}
    assert trainable == {name for name, p in run.model.named_parameters() if p.requires_grad}
    assert all("lora_" in name or ".modules_to_save." in name for name in trainable) and len(trainable) == 12
    assert not run.model.get_input_embeddings().weight.requires_grad      # tied to the decoder: frozen
    assert run.peft_model.get_base_model() is run.model                   # the loss runs through peft's layers


def test_the_mlm_loss_analysis_scores_a_lora_checkpoint_beside_the_full_one(lora_chain, tiny_roberta_dir,
                                                                            tiny_corpus, tmp_path):
    import pandas as pd

    out = tmp_path / "analysis"
    assert main(["analyze", "mlm-loss", "--models", f"base={tiny_roberta_dir}", f"dapt-acl={tiny_roberta_dir}",
                 f"dapt_lora-acl={lora_chain[0]}", "--corpora", f"acl={tiny_corpus}", "--documents", "20",
                 "--max-length", "32", "--out", str(out)]) == 0
    matrix = pd.read_csv(out / "mlm_loss.csv", index_col=0)
    table1 = pd.read_csv(out / "mlm_loss_before_after.csv", index_col=0)
    assert table1.loc["acl", "lora_model"] == "dapt_lora-acl"
    assert table1.loc["acl", "loss_after_lora"] == matrix.loc["dapt_lora-acl", "acl"] != matrix.loc["base", "acl"]


class Killed(Exception):
    """Stands for SIGKILL right after a resumable state was written (test_pretrain.py kills for real)."""


def test_a_killed_lora_stage_resumes_to_the_uninterrupted_result(tiny_corpus, tmp_path, monkeypatch):
    recipe = lora_recipe("bundled:bert-tiny", tiny_corpus, tmp_path / "killed", max_steps=6, checkpoint_every=2)
    save_state = PretrainRun._save_resume_state

    def save_then_die(run):
        save_state(run)
        raise Killed

    monkeypatch.setattr(PretrainRun, "_save_resume_state", save_then_die)
    with pytest.raises(Killed):
        run_pretraining(recipe)
    monkeypatch.undo()
    assert [p.name for p in (tmp_path / "killed" / "resume").glob("step-*")] == ["step-000000002"]
    resumed = run_pretraining(recipe)                                      # the same recipe again
    whole = run_pretraining(dataclasses.replace(recipe, output_dir=str(tmp_path / "whole")))
    assert (resumed.resumed_from_step, whole.resumed_from_step) == (2, 0)
    assert resumed.final_train_loss == whole.final_train_loss and resumed.heldout_loss_after == whole.heldout_loss_after
    tensors = []
    for folder in (tmp_path / "killed", tmp_path / "whole"):
        with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
            tensors.append({key: f.get_tensor(key) for key in f.keys()})
    assert tensors[0].keys() == tensors[1].keys() and all(torch.equal(v, tensors[1][k]) for k, v in tensors[0].items())


@pytest.mark.parametrize("auto_class", [AutoModelForMaskedLM, AutoModel])
def test_merged_model_equals_base_plus_adapter(lora_chain, tiny_roberta_dir, tiny_corpus, auto_class):
    dapt, tapt = lora_chain
    tokenizer = load_pretrained(AutoTokenizer, str(tapt))
    batch = tokenizer(tiny_corpus.read_text().splitlines()[:6], padding=True, truncation=True, max_length=32,
                      return_tensors="pt")
    for folder, base in ((dapt, str(tiny_roberta_dir)), (tapt, str(dapt))):   # TAPT (LoRA): the base merged first
        merged = load_pretrained(auto_class, str(folder)).eval()
        unmerged = PeftModel.from_pretrained(load_pretrained(AutoModelForMaskedLM, base), str(folder)).eval()
        lora_b = [p for name, p in unmerged.named_parameters() if "lora_B" in name]
        assert all(p.abs().max() > 0 for p in lora_b)                          # the adapter learned something
        with torch.no_grad():
            if auto_class is AutoModel:
                ours = merged(**batch).last_hidden_state
                theirs = unmerged.get_base_model().roberta(**batch).last_hidden_state
            else:
                ours, theirs = merged(**batch).logits, unmerged(**batch).logits
        torch.testing.assert_close(ours, theirs, **TOLERANCE)
        without = load_pretrained(auto_class, base).eval()                     # and the adapter matters
        with torch.no_grad():
            plain = without(**batch).last_hidden_state if auto_class is AutoModel else without(**batch).logits
        assert (plain - ours).abs().max() > 100 * TOLERANCE["atol"]


def test_a_full_temporary_folder_while_merging_a_lora_checkpoint_is_one_line_naming_it(lora_chain, tmp_path,
                                                                                      monkeypatch):
    """Each job that loads a LoRA checkpoint saves it merged into a temporary folder ($TMPDIR): a
    full one was safetensors' traceback (`SafetensorError: ... (os error 28)`), naming no folder."""
    import tempfile

    import transformers.modeling_utils
    from safetensors import SafetensorError

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", full)
    with pytest.raises(OSError) as raised:
        load_pretrained(AutoModel, str(lora_chain[0]))
    assert raised.value.strerror == "No space left on device"
    assert re.fullmatch(rf"{re.escape(str(tmp_path))}/dontstop-merged-\w+", raised.value.filename)   # what cli.main prints
    assert not list(tmp_path.glob("dontstop-merged-*"))   # removed


def test_a_lora_checkpoint_whose_base_is_missing_is_one_line(lora_chain, tiny_corpus, tmp_path, capsys):
    moved = tmp_path / "tapt_lora"
    shutil.copytree(lora_chain[1], moved)                      # without the DAPT (LoRA) stage it names
    for load in (resolve_model, lambda name: load_pretrained(AutoModel, name)):
        with pytest.raises(UserError, match=r"tapt_lora: LoRA checkpoint whose base .*/dapt_lora is missing"):
            load(str(moved))
    code = main(["pretrain", "--model", str(moved), "--corpus", str(tiny_corpus), "--out", str(tmp_path / "out"),
                 "--steps", "2", "--no-wandb"])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and error[0].startswith(f"dontstop: error: {moved}: LoRA checkpoint whose base")
    assert not (tmp_path / "out" / "resume" / "tokens.bin").exists()      # before any work


def test_a_lora_checkpoint_whose_base_was_built_again_is_one_line(tiny_roberta_dir, tiny_corpus, tmp_path, capsys):
    """TAPT (LoRA) trained on one DAPT (LoRA), whose folder then holds another build (another
    seed): its adapter was merged onto the new weights, a model nobody trained, without a word."""
    dapt, tapt = tmp_path / "dapt_lora", tmp_path / "tapt_lora"
    run_pretraining(lora_recipe(tiny_roberta_dir, tiny_corpus, dapt))
    run_pretraining(lora_recipe(dapt, tiny_corpus, tapt, seed=1))
    shutil.rmtree(dapt)
    run_pretraining(lora_recipe(tiny_roberta_dir, tiny_corpus, dapt, seed=2))
    message = (f"{tapt}: LoRA checkpoint trained on other weights than its base {dapt} holds now "
               "(adapter_model.safetensors: not the sha256 its pretrain_record.json recorded); put that base "
               "back, or build this stage again")
    for load in (resolve_model, lambda name: load_pretrained(AutoModel, name)):
        with pytest.raises(UserError, match=re.escape(message)):
            load(str(tapt))
    capsys.readouterr()
    write_tiny_mini_tasks(tmp_path / "data")   # a clean clone has no data/mini
    assert main(["finetune", "--task", TASK, "--suite", "mini", "--model", str(tapt), "--out",
                 str(tmp_path / "run"), "--data-dir", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err.strip() == f"dontstop: error: {message}"
    assert not (tmp_path / "run").exists()
    load_pretrained(AutoModel, str(dapt))   # the rebuilt base itself loads


def test_an_unknown_target_module_lists_the_models_names(tiny_corpus, tmp_path, capsys):
    code = main(["pretrain", "--model", "bundled:bert-tiny", "--corpus", str(tiny_corpus), "--out",
                 str(tmp_path / "out"), "--steps", "2", "--lora", "target_modules=[query, attn]", "--no-wandb"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and error == ("dontstop: error: pretrain recipe: adapter: target module 'attn' is not a "
                                   "Linear layer of BertForMaskedLM's encoder; its Linear layers: "
                                   "dense, key, query, value")
    assert not (tmp_path / "out" / "resume" / "tokens.bin").exists()       # before any work
    with pytest.raises(UserError, match="adapter: rank 0: must be >= 1"):
        run_pretraining(lora_recipe("bundled:bert-tiny", tiny_corpus, tmp_path / "x", adapter={"rank": 0}))
    # BERT-tiny's hidden size is 128: rank 100000 trained on, a 1.8 GB adapter at 17 s a step
    with pytest.raises(UserError, match=re.escape("pretrain recipe: adapter: key 'rank': 129; the adapted layers "
                                                  "of BertForMaskedLM take a rank of at most 128 (a higher one "
                                                  "adds weights, not capacity)")):
        run_pretraining(lora_recipe("bundled:bert-tiny", tiny_corpus, tmp_path / "x", adapter={"rank": 129}))
    assert not (tmp_path / "x" / "resume" / "tokens.bin").exists()


def test_an_adapter_the_trainer_would_refuse_is_refused_by_the_suite_first(tiny_corpus, tmp_path):
    """The suite's checks and the trainer's ask the same rules (recipes.adapter_violations)."""
    from dontstop.suites import load_suite

    cases = [({"target_modules": []}, "key 'target_modules': []; must name layers, each once",
              "target_modules []: must name layers, each once"),
             ({"target_modules": ["query", "query"]},   # accepted, and a stage key of its own
              "key 'target_modules': ['query', 'query']; must name layers, each once",
              "target_modules ['query', 'query']: must name layers, each once"),
             ({"rank": 0}, "key 'rank': 0; must be >= 1", "rank 0: must be >= 1")]
    for adapter, in_suite, in_trainer in cases:
        with pytest.raises(UserError, match=re.escape(f"recipes.dapt_lora: adapter: {in_suite}")):
            load_suite(str(write_suite(tmp_path, dapt_lora={"adapter": adapter})))
        with pytest.raises(UserError, match=re.escape(f"pretrain recipe: adapter: {in_trainer}")):
            run_pretraining(lora_recipe("bundled:bert-tiny", tiny_corpus, tmp_path / "x", adapter=adapter))


def write_suite(tmp_path: Path, **recipes: dict) -> Path:
    """A study on the mini suite with `recipes` merged into its recipe sections (kind -> keys)."""
    path = tmp_path / "mini-lora.yaml"
    path.write_text(yaml.safe_dump({"name": "mini-lora", "extends": "mini", "recipes": recipes}))
    return path


def dontstop(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dontstop", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", **(env or {})})


def test_an_adapter_on_a_stage_that_trains_every_weight_is_one_line(tmp_path):
    suite = write_suite(tmp_path, dapt_lora={"adapter": {"rank": 4}}, tapt={"adapter": {"rank": 4}})
    result = dontstop("reproduce", "--suite", str(suite), "--dry-run")
    assert result.returncode == 2 and re.fullmatch(
        rf"dontstop: error: {re.escape(str(suite))}:\d+: recipes.tapt: key 'adapter': the tapt stage trains every "
        "weight and takes no adapter; only dapt_lora, tapt_lora, tapt_large_lora do", result.stderr.strip()), result.stderr
    wrong = write_suite(tmp_path, dapt_lora={"adapter": {"ranks": 4}})
    result = dontstop("reproduce", "--suite", str(wrong), "--dry-run")
    assert result.returncode == 2 and "recipes.dapt_lora: adapter: key 'ranks': unknown" in result.stderr


def test_the_runner_refuses_an_unknown_target_module_or_a_rank_past_the_layers_before_any_work(mini_build, tmp_path,
                                                                                                capsys):
    (tmp_path / "rank").mkdir()
    rank = write_suite(tmp_path / "rank", dapt_lora={"adapter": {"rank": 200}})
    assert main(["run", "experiments/dapt_lora", "--suite", str(rank), "--tasks", TASK, "--quick", "--dry-run",
                 "--data-dir", str(mini_build[0]), "--results-dir", str(tmp_path / "results"),
                 "--cache-dir", str(tmp_path / "cache")]) == 2
    assert capsys.readouterr().err.strip() == ("dontstop: error: suite mini-lora: recipes.dapt_lora: adapter: key "
                                               "'rank': 200; the adapted layers of BertForMaskedLM take a rank of at "
                                               "most 128 (a higher one adds weights, not capacity)")
    suite = write_suite(tmp_path, dapt_lora={"adapter": {"target_modules": ["query", "q_proj"]}})
    result = dontstop("run", "experiments/dapt_lora", "--suite", str(suite), "--tasks", TASK, "--quick",
                      "--data-dir", str(mini_build[0]), "--results-dir", str(tmp_path / "results"),
                      "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "dontstop: error: suite mini-lora: recipes.dapt_lora: adapter: target module 'q_proj' is not a Linear "
        "layer of BertForMaskedLM's encoder; its Linear layers: dense, key, query, value"]
    assert not list((tmp_path / "cache").rglob(PRETRAIN_RECORD_FILE)) and not list((tmp_path / "results").rglob("*.json"))


@pytest.fixture(scope="module")
def runner(wandb_study):
    """The shared W&B study (conftest.py) with its DAPT (LoRA) and DAPT + TAPT (LoRA) runs on one task:
    (root, {lineage: checkpoint} of the base and LoRA stages, {run name: W&B run})."""
    root, runs, checkpoints = wandb_study
    return root, {lineage: folder for lineage, folder in checkpoints.items() if lineage == "base" or "lora" in lineage}, runs


def test_an_adapter_setting_is_in_the_stage_key_and_a_whole_number_for_a_float_is_the_same_stage(mini_suite):
    """`--set recipes.dapt_lora.adapter.rank=4` is a new DAPT (LoRA) stage and a new TAPT (LoRA)
    after it; `alpha=16` (read as an int) is the default 16.0: it was hashed apart, so the same
    stage was built again and every run on it called stale (so was `recipes.tapt.warmup_ratio=0`)."""
    from dontstop.conditions import EXPERIMENTS_DIR, load_condition
    from dontstop.overrides import parse_set
    from dontstop.runner.plan import plan_runs
    from dontstop.suites import load_suite

    def keys(*settings, condition="dapt_tapt_lora"):
        suite = load_suite("mini", overrides=parse_set(list(settings)))
        suite.data_dir, suite.cache_dir = mini_suite.data_dir, mini_suite.cache_dir
        suite.domain_corpora = mini_suite.domain_corpora
        [found] = plan_runs(suite, load_condition(EXPERIMENTS_DIR / condition), ["aclsum-roles"], planning_only=True)
        return [stage.key for stage in found.stages]

    default = keys()
    assert keys("recipes.dapt_lora.adapter.alpha=16", "recipes.dapt_lora.adapter.dropout=0.1") == default
    base, dapt_lora, tapt_lora = default
    for setting in ("rank=4", "alpha=8", "dropout=0", "target_modules=[query,value]", "train_head=false"):
        changed = keys(f"recipes.dapt_lora.adapter.{setting}")
        assert changed[0] == base and changed[1] != dapt_lora and changed[2] != tapt_lora, setting
    assert keys("recipes.dapt_lora.adapter.dropout=0") == keys("recipes.dapt_lora.adapter.dropout=0.0")
    assert keys("recipes.tapt.warmup_ratio=0", condition="tapt") == keys("recipes.tapt.warmup_ratio=0.0",
                                                                         condition="tapt")


def test_dapt_lora_is_built_once_and_fine_tuning_starts_from_the_merged_adapter(runner):
    root, checkpoints, _ = runner
    assert set(checkpoints) == {"base", "base+dapt_lora-reviews", "base+dapt_lora-reviews+tapt_lora-rt-polarity"}
    metrics = {c: MetricsRecord.read(root / "results" / "quick" / "mini" / TASK / c / "seed_0" / "metrics.json")
               for c in ("dapt_lora", "dapt_tapt_lora")}
    assert metrics["dapt_lora"].model == str(checkpoints["base+dapt_lora-reviews"])
    assert metrics["dapt_tapt_lora"].pretraining[1] == metrics["dapt_lora"].pretraining[1]   # the shared stage
    assert metrics["dapt_tapt_lora"].lineage == "base+dapt_lora-reviews+tapt_lora-rt-polarity"
    for lineage, folder in checkpoints.items():
        if "lora" in lineage:
            assert not (folder / "model.safetensors").exists() and (folder / "adapter_model.safetensors").exists()


def test_a_probe_reads_a_lora_checkpoint(runner, mini_build, tmp_path):
    from dontstop.finetune.probe import run_probe
    from dontstop.recipes import FinetuneRecipe
    from dontstop.tasks import get_task

    _, checkpoints, _ = runner
    model = str(checkpoints["base+dapt_lora-reviews+tapt_lora-rt-polarity"])
    recipe = FinetuneRecipe(model=model, task=TASK, suite="mini", data_dir=str(mini_build[0]),
                            max_train_examples=60, max_length=32)
    record = run_probe(recipe, tmp_path, get_task("mini", TASK), condition="dapt_tapt_lora", lineage="x")
    assert record.model == model and record.features == 128 and 0 < record.test_metric <= 1


def test_wandb_logs_a_lora_checkpoint_as_a_model_whose_parent_is_its_base(runner):
    _, checkpoints, runs = runner
    for lineage, parent in (("base+dapt_lora-reviews", "base"),
                            ("base+dapt_lora-reviews+tapt_lora-rt-polarity", "base+dapt_lora-reviews")):
        folder = checkpoints[lineage]
        run = runs[folder.name]
        [produced] = [a for a in run.artifacts_logged if not a.use_after_commit]
        assert (produced.name, produced.type) == (wandb_log.artifact_name(folder.name), "model")
        assert sorted(produced.references) == sorted(p.resolve().as_uri() for p in folder.iterdir())
        assert [a.name for a in run.artifacts_used] == [wandb_log.artifact_name(checkpoints[parent].name)]
