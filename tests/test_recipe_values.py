"""Training values a researcher gets wrong (a suite's recipes, `--set`, `dontstop pretrain` and
`finetune` flags), found by trying them: each is one line naming where it was given, exit 2,
before any work and with nothing written. Before, an infinite lr or LoRA alpha passed every check
and diverged after the base stage, `betas: [0.9]` and `device: gpu` ended in tracebacks after
it, `finetune: {seed: 3}` silently ran seed 0, and a hub id missing offline was two lines, exit 1."""

import pytest
import torch

from dontstop.cli import main
from dontstop.fileio import UserError
from dontstop.finetune.trainer import run_finetune
from dontstop.recipes import FinetuneRecipe

from conftest import refused


@pytest.mark.parametrize("given, message", [
    ("finetune.lr=.inf", "finetune: key 'lr': inf; must be a finite number"),
    ("finetune.weight_decay=.inf", "finetune: key 'weight_decay': inf; must be a finite number"),
    ("recipes.tapt.lr=.nan", "recipes.tapt: key 'lr': nan; must be a finite number"),
    ("recipes.tapt_lora.adapter.alpha=.inf", "recipes.tapt_lora: adapter: key 'alpha': inf; must be a finite number"),
    ("selection.k_scale=.inf", "selection: key 'k_scale': inf; must be a finite number"),
    ("recipes.tapt.betas=[0.9]", "recipes.tapt: key 'betas': [0.9]; expected tuple[float, float]"),
    ("recipes.tapt_lora.adapter=lora", "recipes.tapt_lora: key 'adapter': 'lora'; expected dict[str, Any] | None"),
    ("finetune.device=gpu", "finetune: key 'device': 'gpu'; must be auto, cpu, mps, cuda or cuda:<index>"),
    ("finetune.max_length=1", "finetune: key 'max_length': 1; must be >= 8"),   # 1 did not cut at all
    # 10^20 passed the dry run, tokenized the corpus, then was a torch traceback; 10^6 built 13 GB in 90 s
    ("recipes.dapt.batch_size=100000000000000000000",
     "recipes.dapt: key 'batch_size': 100000000000000000000; must be in [1, 65536]"),
    ("finetune.batch_size=1000000", "finetune: key 'batch_size': 1000000; must be in [1, 65536]"),
    ("finetune.seed=3", "finetune: key 'seed': the runner sets it for every run; set seeds (or --seeds) instead"),
    ("finetune.model=roberta-base", "finetune: key 'model': the runner sets it for every run; set base_model"),
    ("recipes.tapt.seed=7", "recipes.tapt: key 'seed': the runner sets it for every stage; set pretrain_seed instead"),
    ("recipes.tapt.output_dir=elsewhere", "recipes.tapt: key 'output_dir': the runner sets it for every stage; "
                                          "set cache_dir"),
])
def test_a_bad_training_value_is_refused_before_any_work(given, message, tmp_path, capsys):
    line = refused(capsys, "run", "experiments/tapt_lora", "--quick", "--set", given,
                   "--results-dir", tmp_path / "results", "--cache-dir", tmp_path / "cache", "--dry-run")
    assert line.startswith(f"--set {given}: {message}"), line
    assert not (tmp_path / "results").exists()


def test_a_study_file_names_the_line_of_each_value_the_runner_would_replace_or_choke_on(tmp_path, capsys):
    study = tmp_path / "study.yaml"
    study.write_text("name: knobs\nextends: mini\nfinetune:\n  seed: 3\nrecipes:\n  tapt:\n    betas: [0.9]\n")
    assert main(["status", "--suite", str(study), "--results-dir", str(tmp_path / "results")]) == 2
    lines = sorted(capsys.readouterr().err.strip().splitlines())
    assert lines == [f"dontstop: error: {study}:4: finetune: key 'seed': the runner sets it for every run; "
                     "set seeds (or --seeds) instead",
                     f"dontstop: error: {study}:7: recipes.tapt: key 'betas': [0.9]; expected tuple[float, float]"]


def test_a_gpu_device_passes_the_suite_checks_on_a_machine_without_one(tmp_path, capsys):
    """A Slurm login node has no GPU: the suite's `device: cuda` is checked where the run runs; a
    dry run of the local launcher says it would be refused here, and plans."""
    from conftest import write_tiny_mini_tasks

    write_tiny_mini_tasks(tmp_path / "data")   # a clean clone has no data/mini
    assert main(["run", "experiments/tapt", "--quick", "--set", "finetune.device=cuda:63", "--dry-run",
                 "--results-dir", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache"),
                 "--data-dir", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "note: fine-tuning recipe: key 'device': 'cuda:63', but torch sees " in out and "fine-tuning: " in out
    assert not (tmp_path / "results").exists()   # the run itself: test_bad_inputs.py (finetune.device=cuda:63)


def test_a_gpu_device_on_a_machine_without_one_is_one_line_and_no_run_folder(mini_build, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    recipe = FinetuneRecipe(model="bundled:bert-tiny", task="rt-polarity", suite="mini", data_dir=str(mini_build[0]),
                            epochs=1, max_train_examples=8, device="cuda")
    with pytest.raises(UserError, match=r"^fine-tuning recipe: key 'device': 'cuda', but torch sees 0 CUDA "
                                        r"device\(s\) here \(CUDA_VISIBLE_DEVICES="):
        run_finetune(recipe, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_fine_tuning_max_length_past_the_models_positions_is_one_line_and_no_run_folder(
        tiny_roberta_dir, mini_build, tmp_path):
    """The roberta-base tokenizer sets no length limit, so a --max-length past the model's 512
    positions crashed in the embedding, mid-run; the model's config says what it can hold."""
    data_dir, _ = mini_build
    recipe = FinetuneRecipe(model=str(tiny_roberta_dir), task="rt-polarity", suite="mini", data_dir=str(data_dir),
                            epochs=1, max_train_examples=8, max_length=200)
    with pytest.raises(UserError, match=rf"^fine-tuning recipe: key 'max_length': 200; {tiny_roberta_dir} takes "
                                        r"at most 128 tokens a sequence$"):
        run_finetune(recipe, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, message", [
    (["--lr", "inf"], "--lr inf: must be a finite number"),
    (["--lr", "nan"], "--lr nan: must be a finite number"),
    (["--lora", "alpha=.inf"], "pretrain recipe: adapter: alpha inf: must be a finite number"),
    (["--lora", "rank=2", "rank=4"], "--lora rank=4: key 'rank' given twice"),   # the last one was kept
    (["--batch-size", "100000000000000000000"], "--batch-size 100000000000000000000: must be in [1, 65536]"),
    (["--model", "roberta-base"], "roberta-base: not in the local cache and offline (HF_HUB_OFFLINE=1"),
])
def test_a_bad_pretrain_value_or_a_model_missing_offline_is_one_line_before_anything_is_written(
        argv, message, tiny_corpus, tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    out = tmp_path / "ckpt"
    line = refused(capsys, "pretrain", "--model", "bundled:bert-tiny", "--corpus", tiny_corpus, "--out", out,
                   "--steps", "2", "--batch-size", "4", "--per-device-batch-size", "4", "--no-wandb", *argv)
    assert line.startswith(message), line
    assert not out.exists()


def test_a_model_that_cannot_load_leaves_no_run_folder(mini_build, tmp_path, capsys):
    """config.json was written before the model was loaded: a refused run left a run folder."""
    from transformers import BertConfig

    config_only = tmp_path / "config-only"
    BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
               intermediate_size=16).save_pretrained(config_only)
    for model, message in ((config_only, f"{config_only}: cannot load checkpoint, corrupt or truncated?"),
                           (tmp_path, f"{tmp_path}: not a model directory (no config.json)")):
        out = tmp_path / "adhoc" / "seed_0"
        line = refused(capsys, "finetune", "--suite", "mini", "--task", "rt-polarity", "--model", model,
                       "--out", out, "--data-dir", mini_build[0], "--epochs", "1", "--no-wandb")
        assert line.startswith(message), line
        assert not (tmp_path / "adhoc").exists()
