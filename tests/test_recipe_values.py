"""Training values a researcher gets wrong (a suite's recipes, `--set`, `dontstop pretrain` and
`finetune` flags), found by trying them: each is one line naming where it was given, exit 2,
before any work and with nothing written. Before, an infinite lr or LoRA alpha passed every check
and diverged after the base stage, `betas: [0.9]` and `device: gpu` ended in tracebacks after
it, and `finetune: {seed: 3}` silently ran seed 0."""
import pytest

from dontstop.cli import main


def refused(capsys, *argv) -> str:
    """Run `dontstop argv`: exit 2, one line on stderr, no traceback; the line without its prefix."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("dontstop: error: "), err
    return err[0].removeprefix("dontstop: error: ")


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
