"""bench/gpu_paper.py: the --smoke run on the CPU (what CI runs, through bench/gpu_device_run.sh),
its peak table and FLOPs formula by hand, the precision its fine-tuning row reads back, and, on a
machine with CUDA only, the real mode with few steps."""
import functools
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import check_lora_cost_row

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_paper.py"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}


@functools.cache
def load_bench(name: str = "gpu_paper"):
    """bench/<name>.py as a module (the bench modules import each other and common.py by name)."""
    if str(SCRIPT.parent) not in sys.path:
        sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location(name, SCRIPT.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # @dataclass looks its class's module up there
    spec.loader.exec_module(module)
    return module


def run_bench(results: Path, *arguments: str, timeout: int = 600) -> list[dict]:
    """Run the script in a subprocess and return the rows it appended to `results`."""
    completed = subprocess.run([sys.executable, str(SCRIPT), *arguments, "--results", str(results)],
                               env=ENV, capture_output=True, text=True, timeout=timeout)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]


def check_rows(rows: list[dict]) -> tuple[dict, dict, dict]:
    assert [r["row"] for r in rows] == ["dapt vs stock", "finetune step", "finetune real path"]
    assert len({r["run"] for r in rows}) == 1
    for row in rows:
        assert row["versions"]["torch"] == torch.__version__ and row["date"]
    dapt, step, real = rows
    assert dapt["tokens_per_s"] > 0 and dapt["stock_eager_tokens_per_s"] > 0 and dapt["peak_memory_mb"] > 0
    assert dapt["ratio_vs_stock_eager"] == pytest.approx(dapt["tokens_per_s"] / dapt["stock_eager_tokens_per_s"],
                                                         rel=1e-2)
    assert all(math.isfinite(loss) for loss in dapt["final_losses"].values() if loss is not None)
    assert dapt["effective_batch"] == 2048 and dapt["projected_dapt_hours"] > 0
    assert dapt["tokens"] == dapt["steps"] * dapt["accumulation"] * dapt["micro_batch"] * dapt["seq"]
    assert dapt["seconds_per_paper_step"] == pytest.approx(2048 * dapt["seq"] / dapt["tokens_per_s"], rel=1e-2)
    assert dapt["flops_per_token"]["total"] == dapt["flops_per_token"]["dense"] + dapt["flops_per_token"]["attention"]
    assert step["batch"] == 16 and step["sequences"] == 16 * step["steps"] and step["sequences_per_s"] > 0
    assert step["precision"] in ("bf16", "fp32") and step["mix_real_tokens_per_s"] > 0
    assert str(step["mix_pad_to_multiple_of"]) in step["mix_by_pad_multiple"]
    for key in ("import_s", "load_s", "tokenize_s", "train_s", "eval_s", "epoch_s", "predicted_epoch_s"):
        assert real[key] >= 0, key
    assert real["epoch_s"] == pytest.approx(real["train_s"] + real["eval_s"], abs=0.02)
    assert real["predicted_epoch_s"] == pytest.approx(   # both rounded to 0.01 s
        real["train_tokens"] / step["mix_real_tokens_per_s"] + real["eval_s"], rel=1e-2, abs=0.011)
    assert real["precision"] == step["precision"]   # the command ran what the step row measured
    return dapt, step, real


def test_smoke_rows_of_the_device_script(tmp_path):
    """bench/gpu_device_run.sh, the one command a lent GPU runs, in its --smoke mode: gpu_paper's
    three rows and lora_cost's GPU row in one file, and the machine's facts beside them."""
    completed = subprocess.run(["bash", str(SCRIPT.parent / "gpu_device_run.sh"), str(tmp_path), "--smoke"],
                               env={**ENV, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "gpu_paper.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 4
    check_lora_cost_row(rows[3])
    assert f"torch {torch.__version__} |" in (tmp_path / "machine.txt").read_text()
    assert (tmp_path / "gpu_paper.log").stat().st_size and (tmp_path / "lora_cost.log").stat().st_size
    seconds = dict(line.split() for line in (tmp_path / "seconds.txt").read_text().splitlines())
    assert list(seconds) == ["gpu_paper", "lora_cost"] and all(int(value) >= 0 for value in seconds.values())
    dapt, step, real = check_rows(rows[:3])
    assert dapt["steps"] == 1 and dapt["micro_batch"] == 4 and dapt["accumulation"] == 2 and dapt["seq"] == 64
    assert dapt["tokens"] == 1 * 2 * 4 * 64
    assert dapt["compiled"] is False and dapt["stock_compile_tokens_per_s"] is None   # not compiled on a CPU
    assert step["precision"] == "fp32" and step["seq"] == 64            # "auto" on a CPU
    assert real["train_examples"] == 48 and real["device"] == "cpu"
    shape = dapt["config"]["shape"]
    assert (shape["num_hidden_layers"], shape["hidden_size"], shape["vocab_size"]) == (2, 64, 50265)
    for row in rows[:3]:   # no peak for a CPU: MFU null, and said so; the python that ran it, from the repo root
        assert row["device"] == "cpu" and row.get("mfu") is None
        python, script = row["command"].split()[:2]
        assert (SCRIPT.parents[1] / python).resolve() == Path(sys.executable).resolve() and script == "bench/gpu_paper.py"
        assert "MFU null" in row["peak_note"]


def test_a_row_names_the_python_that_ran_it(monkeypatch, tmp_path):
    """A row's command starts with the interpreter a reader would type: the repository's venv
    relative to it, a GPU image's python3 by name (rows once all said .venv/bin/python)."""
    common = load_bench("common")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "executable", str(tmp_path / ".venv" / "bin" / "python"))
    assert common.interpreter() == ".venv/bin/python"
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3")
    assert common.interpreter() == "python3"


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_the_finetune_row_reports_the_precision_that_ran(precision):
    """The fine-tuning row reads the precision back from the activations of a real train_step
    (a recipe's bf16 once ran in fp32 while the row said bf16)."""
    from transformers import RobertaConfig, RobertaModel

    from dontstop.finetune.classifier import SequenceClassifier
    from dontstop.finetune.trainer import resolve_recipe
    from dontstop.recipes import FinetuneRecipe
    from dontstop.tasks import PAPER_TASKS

    finetune = load_bench("gpu_finetune")
    encoder = RobertaModel(RobertaConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=32, max_position_embeddings=40))
    model = SequenceClassifier(encoder, 13, 0.1)
    recipe = resolve_recipe(FinetuneRecipe("m", "chemprot", "paper", device="cpu", precision=precision),
                            PAPER_TASKS["chemprot"])
    ids = torch.randint(5, 100, (4, 12))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.tensor([0, 1, 2, 3])}
    assert finetune.observed_precision(model, recipe, batch) == precision


def test_refusals(tmp_path, capsys):
    paper = load_bench()
    with pytest.raises(SystemExit) as smoke_without_results:
        paper.main(["--smoke"])
    assert smoke_without_results.value.code == 2 and "--results" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert paper.main(["--results", str(tmp_path / "x.jsonl")]) == 2
        assert capsys.readouterr().err.strip() == "no CUDA device; run with --smoke on CPU"
        assert not (tmp_path / "x.jsonl").exists()


def test_a_row_is_written_as_soon_as_it_is_measured(monkeypatch, tmp_path):
    """A device call cut off by its time limit still brings back the rows it finished: here the
    fine-tuning row fails and the DAPT row is already in the file."""
    paper, finetune = load_bench(), load_bench("gpu_finetune")

    def cut_off(*arguments):
        raise TimeoutError("the device call's limit")

    monkeypatch.setattr(finetune, "finetune_step_row", cut_off)
    monkeypatch.setitem(sys.modules, "gpu_finetune", finetune)
    results = tmp_path / "rows.jsonl"
    with pytest.raises(TimeoutError):
        paper.main(["--smoke", "--results", str(results)])
    assert [json.loads(line)["row"] for line in results.read_text(encoding="utf-8").splitlines()] == ["dapt vs stock"]


def test_the_smoke_compiles_only_when_asked():
    """--smoke skips the compiled DAPT paths (minutes on a CPU) unless --compile rehearses them;
    a GPU run always compiles."""
    paper = load_bench()
    assert paper.parse_arguments(["--smoke", "--results", "x"]).compile is False
    settings = paper.build_settings(paper.parse_arguments(["--smoke", "--compile", "--results", "x"]))
    assert settings.compile is True and settings.device == "cpu"
    assert paper.build_settings(paper.parse_arguments(["--smoke", "--results", "x"])).compile is False


def test_peak_tflops_by_device_name():
    peak = load_bench("gpu_common").peak_tflops
    assert peak("NVIDIA H100 80GB HBM3") == 989.0       # SXM
    assert peak("NVIDIA H100 PCIe") == 756.0
    assert peak("NVIDIA H200") == 989.0
    assert peak("NVIDIA A100-SXM4-80GB") == peak("NVIDIA A100 80GB PCIe") == 312.0
    assert peak("NVIDIA L40S") == 362.0
    assert peak("NVIDIA A10G") == 125.0
    assert peak("NVIDIA GeForce RTX 4090") == 165.0
    assert peak("Tesla T4") is None and peak("NVIDIA L40") is None and peak("cpu") is None


def test_flops_estimate_by_hand():
    bench = load_bench("gpu_common")
    # roberta-base-sized: 125M params, 12 layers, hidden 768, 512 tokens
    flops = bench.training_flops_per_token(125_000_000, 12, 768, 512)
    assert flops["dense"] == 750_000_000                 # 6 x 125M
    assert flops["attention"] == 56_623_104              # 12 x 12 x 768 x 512
    assert flops["total"] == 806_623_104
    # 300K tokens/s on a 989 TFLOPS card: 806.6M x 300K = 242 TFLOPS achieved, MFU 24.5%
    figures = bench.utilisation(flops["total"], 300_000, 989.0)
    assert figures["achieved_tflops"] == pytest.approx(241.99, abs=0.01)
    assert figures["mfu"] == pytest.approx(0.2447, abs=1e-4)
    assert bench.utilisation(flops["total"], 300_000, None)["mfu"] is None


@pytest.mark.gpu
def test_gpu_mode_few_steps(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rows = run_bench(tmp_path / "gpu.jsonl", "--steps", "1", "--accumulation", "4", "--warmup-micro-batches", "2",
                     "--finetune-steps", "3", "--finetune-warmup", "1", "--mix-steps", "10", timeout=600)
    dapt, step, real = check_rows(rows)
    assert dapt["seq"] == 512 and dapt["micro_batch"] == 32 and dapt["tokens"] == 4 * 32 * 512
    assert dapt["config"]["shape"]["hidden_size"] == 768 and dapt["full_accumulation"] == 64
    assert dapt["params"] > 120_000_000 and dapt["compiled"] is True   # roberta-base's 125M
    assert step["precision"] == "bf16" and real["precision"] == "bf16" and real["device"] == "cuda"
    for row in rows:
        assert row["device"] == "cuda" and row["device_name"] == torch.cuda.get_device_name()
    for row in (dapt, step):
        if row["peak_tflops"] is None:
            assert row["mfu"] is None and "not in the peak table" in row["peak_note"]
        else:
            assert 0 < row["mfu"] < 1
