"""Benchmarks: the fast fine-tuning path computes what the padded baseline computes, and
every bench script runs end to end in its --smoke configuration (no timing is asserted).

The masked-only MLM loss against the stock loss is tested in test_pretrain.py.
"""
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import DataCollatorWithPadding

from dontstop.finetune.classifier import encode, load_classifier
from dontstop.data.formats import Example

from conftest import check_lora_cost_row

BENCH = Path(__file__).resolve().parents[1] / "bench"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}


@pytest.mark.parametrize("model_kind", ["bert", "roberta"])
def test_dynamic_padding_logits_equal_padded_to_max_logits(model_kind, tiny_roberta_dir, tiny_corpus):
    name = str(tiny_roberta_dir) if model_kind == "roberta" else "bundled:bert-tiny"
    torch.manual_seed(0)
    model, tokenizer = load_classifier(name, num_labels=3, dropout=0.1)
    model.eval()
    texts = tiny_corpus.read_text(encoding="utf-8").splitlines()[:12]
    features = encode(tokenizer, [Example(t, "a", None, i) for i, t in enumerate(texts)], {"a": 0}, 512)
    max_length = min(512, tokenizer.model_max_length)
    lengths = [len(f["input_ids"]) for f in features]
    assert max(lengths) < max_length and min(lengths) < max(lengths) / 2  # padding really differs
    dynamic = DataCollatorWithPadding(tokenizer)(features)
    padded = DataCollatorWithPadding(tokenizer, padding="max_length", max_length=max_length)(features)
    assert padded["input_ids"].shape[1] == max_length > dynamic["input_ids"].shape[1]
    with torch.no_grad():
        fast = model(dynamic["input_ids"], dynamic["attention_mask"])
        slow = model(padded["input_ids"], padded["attention_mask"])
        alone = torch.cat([model(torch.tensor([f["input_ids"]]), torch.ones(1, n, dtype=torch.long))
                           for f, n in zip(features, lengths)])
    assert (fast - slow).abs().max() < 1e-5
    assert (fast - alone).abs().max() < 1e-5


def run_script(name: str, *arguments: str) -> list[dict]:
    results = Path(arguments[arguments.index("--results") + 1])
    completed = subprocess.run([sys.executable, str(BENCH / name), "--smoke", *arguments], env=ENV,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]


def test_mlm_throughput_smoke(tiny_corpus, tmp_path):
    rows = run_script("mlm_throughput.py", "--corpus", str(tiny_corpus), "--threads", "1",
                      "--results", str(tmp_path / "mlm.jsonl"))
    assert [r["row"].split(":")[0] for r in rows] == ["stock", "ours", "loop", "loop"]
    stock, ours = rows[0], rows[1]
    assert stock["speedup"] == 1.0 and stock["steps"] == ours["steps"] == 2
    assert 0 < ours["tokens"] <= 2 * 4 * 32 and 0 < stock["tokens"] <= 2 * 4 * 32  # packed sequences
    assert rows[3]["tokens"] < rows[2]["tokens"] * 2    # line by line: padding is not counted
    for row in rows:
        assert row["tokens_per_s"] > 0 and 0 < row["heldout_loss"] < 20 and row["peak_memory_mb"] > 0
        assert row["run"] == stock["run"] and row["versions"]["torch"] == torch.__version__


def write_task(data_dir: Path, sentences: list[str]) -> None:
    """A mini-suite aclsum-sections task of `sentences` with two arbitrary labels."""
    directory = data_dir / "mini" / "tasks" / "aclsum-sections"
    directory.mkdir(parents=True)
    rng = random.Random(0)
    for split, chunk in (("train", sentences[:40]), ("dev", sentences[40:50]), ("test", sentences[50:60])):
        lines = [json.dumps({"text": text, "label": rng.choice(["intro", "method"]), "id": f"{split}-{i}"})
                 for i, text in enumerate(chunk)]
        (directory / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_finetune_padding_smoke(tiny_corpus, tmp_path):
    write_task(tmp_path / "data", tiny_corpus.read_text(encoding="utf-8").splitlines())
    rows = run_script("finetune_padding.py", "--data-dir", str(tmp_path / "data"), "--threads", "1",
                      "--results", str(tmp_path / "finetune.jsonl"))
    baseline, dynamic, ours = rows
    assert baseline["speedup"] == 1.0 and baseline["examples"] == ours["examples"] == 32
    assert baseline["tokens_per_example"] == 64                  # --smoke pads to 64
    assert ours["tokens_per_example"] <= dynamic["tokens_per_example"] < 64
    assert ours["real_tokens_per_example"] == baseline["real_tokens_per_example"]


def test_main_job_smoke(mini_build, tmp_path):
    data_dir, _ = mini_build
    rows = run_script("main_job.py", "--data-dir", str(data_dir), "--results", str(tmp_path / "job.jsonl"))
    assert rows[0]["job"] == "dontstop reproduce --quick --dry-run" and rows[0]["returncode"] == 0


def test_select_scale_smoke(tmp_path):
    rows = run_script("select_scale.py", "--results", str(tmp_path / "select.jsonl"))
    ivf, embed = rows
    assert ivf["row"] == "ivf" and ivf["pool"] == 10_000 and 0 < ivf["recall_at_k"] <= 1
    assert embed["row"] == "embed" and embed["documents"] == 300 and embed["bow_docs_per_s"] > 0
    # recall rises (weakly) with the lists probed, and probing every list is exact search
    recalls = [ivf["recall_by_nprobe"][n] for n in sorted(ivf["recall_by_nprobe"], key=int)]
    assert recalls == sorted(recalls) and max(recalls) > 0.9
    assert ivf["ivf_ms_per_query"] > 0 and ivf["exact_ms_per_query"] > 0 and ivf["peak_rss_mb"] > 0
    assert embed["encoder_minilm_docs_per_s"] > 0 and embed["encoder_documents"] > 0


def test_lora_cost_smoke(mini_build, tmp_path):
    """--device cpu: the mini model through the trainer; --device cuda --smoke (the GPU path's
    code: a random-weight model, our optimizer step, on the CPU at a tiny shape) runs in
    test_gpu_bench.py::test_smoke_rows_of_the_device_script, with these checks."""
    [row] = run_script("lora_cost.py", "--device", "cpu", "--data-dir", str(mini_build[0]),
                       "--results", str(tmp_path / "lora.jsonl"))
    check_lora_cost_row(row)


def test_lora_defaults_smoke(mini_build, tmp_path):
    rows = run_script("lora_defaults.py", "--base", "bundled:bert-tiny", "--data-dir", str(mini_build[0]),
                      "--results", str(tmp_path / "defaults.jsonl"))
    full, lora = rows
    assert (full["row"], full["lora"], lora["lora"]) == ("dapt full", False, True) and full["steps"] == lora["steps"] == 3
    assert full["heldout_loss_before"] == lora["heldout_loss_before"]       # the same held-out documents and masks
    assert lora["trainable_params"] < full["trainable_params"] / 20 and lora["adapter"]["target_modules"] == ["query", "value"]


def test_select_scale_split_row_counts_sentences_against_whole_lines(tmp_path):
    pool = tmp_path / "pool.jsonl"
    lines = [{"text": "One sentence here. Another one follows! A third?", "source": "cs"},
             {"text": "A single sentence without an end", "source": "general"}]
    pool.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    [row] = run_script("select_scale.py", "--rows", "split", "--split-pool", str(pool),
                       "--results", str(tmp_path / "split.jsonl"))
    assert (row["row"], row["lines"], row["sentences"], row["words_per_line"]) == ("split", 2, 4, 7.0)


def test_lora_merge_smoke(mini_build, tmp_path):
    """Loads of a full checkpoint, one adapter and an adapter on an adapter, each row against the
    full checkpoint's load in the same run (no timing asserted)."""
    rows = run_script("lora_merge.py", "--data-dir", str(mini_build[0]), "--results", str(tmp_path / "merge.jsonl"))
    assert [r["row"] for r in rows] == ["full", "one adapter", "two adapters"]
    assert rows[0]["merge_s"] == 0 and rows[0]["load_ratio"] == 1 and len({r["run"] for r in rows}) == 1
    assert all(r["load_s_min"] <= r["load_s_median"] <= r["load_s_max"] for r in rows)


def test_base_threads_smoke(mini_build, tmp_path):
    rows = run_script("base_threads.py", "--data-dir", str(mini_build[0]), "--threads", "1", "2",
                      "--results", str(tmp_path / "threads.jsonl"))
    assert [(r["threads"], r["recipe"]["threads"]) for r in rows] == [(1, 1), (2, 2)]
    assert rows[0]["speedup"] == 1 and rows[0]["tokens"] == rows[1]["tokens"] > 0 and rows[1]["steps"] == 2


def test_lora_cost_counts_the_default_adapter_on_the_paper_shape(tmp_path):
    """No timing: the figures docs/lora.md quotes for roberta-base (1,919,232 trainable of 124.7M)."""
    results = tmp_path / "count.jsonl"
    completed = subprocess.run([sys.executable, str(BENCH / "lora_cost.py"), "--count-paper-shape", "--results",
                                str(results)], env=ENV, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    [row] = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    assert (row["trainable_params"], row["full_params"]) == (1_919_232, 124_697_433)


def test_the_sizes_the_lora_docs_quote_are_the_recorded_ones_in_mib(monkeypatch):
    """bench/lora_cost.py and lora_defaults.py record checkpoint sizes and peak memory as bytes /
    2**20 (their `*_mb` keys, kept for the rows recorded): MiB. docs/lora.md's tables called them MB
    (5% smaller), and `python bench/common.py`, whose tables docs/benchmarks.md shows, said no unit."""
    import re

    monkeypatch.syspath_prepend(str(BENCH))
    from common import markdown_table

    rows = [json.loads(line) for name in ("lora_cost", "lora_defaults")
            for line in (BENCH / "results" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
    recorded = [value for row in rows for key, value in row.items()
                if key.endswith("_mb") and isinstance(value, (int, float))]
    doc = (BENCH.parent / "docs" / "lora.md").read_text(encoding="utf-8")
    cells = re.findall(r"\| ([\d,]+(?:\.(\d+))?) ([KMG]i?B) ", doc)   # a table cell: a size and its unit
    assert len(cells) >= 15 and {unit for *_, unit in cells} == {"MiB"}
    for number, decimals, _ in cells:   # each a recorded figure, as the table rounds it
        assert any(round(value, len(decimals)) == float(number.replace(",", "")) for value in recorded), number
    assert markdown_table([{"checkpoint_mb": 0.21}], ["checkpoint_mb"]).splitlines()[0] == "| checkpoint_mb (MiB) |"
