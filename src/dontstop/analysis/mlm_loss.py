"""Held-out masked-LM loss of every model on every corpus (the paper's Tables 1 and 12).

Every model scores the same documents with the same masks (pretrain.mlm.heldout_mlm_loss);
the loss is in nats per masked token.
"""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from ..fileio import atomic_output, atomic_write_json
from ..models import check_available, load_pretrained
from . import vocab

MLM_OUTPUT_FILES = ("mlm_loss.csv", "mlm_loss_before_after.csv", "mlm_loss.md", "mlm_loss.json")
# Table 1's model rows: (name prefix, model column, loss column); DAPT (LoRA) when it was scored
LOSS_COLUMNS = (("dapt", "dapt_model", "loss_after"), ("dapt_lora", "lora_model", "loss_after_lora"))


def mlm_loss_matrix(models: dict[str, str], corpora: dict[str, str | Path], documents: int = 500,
                    max_length: int = 128, seed: int = 0) -> pd.DataFrame:
    """Held-out MLM loss (nats per masked token) of every model (rows) on a seeded sample of
    `documents` documents of every corpus (columns)."""
    samples = {name: vocab.sample_corpus(path, documents, seed, name)
               for name, path in corpora.items()}
    return score_models(models, samples, max_length, seed)


def score_models(models: dict[str, str], samples: dict[str, list[str]], max_length: int,
                 seed: int) -> pd.DataFrame:
    """Every model scores the same texts and, through `heldout_mlm_loss`, the same masks
    (models that share a tokenizer)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from ..pretrain.mlm import heldout_mlm_loss

    for model_name in models.values():   # a mistyped last model was found after the others had scored
        check_available(model_name)
    matrix = pd.DataFrame(index=pd.Index(list(models), name="model"), columns=list(samples),
                          dtype=float)
    cells, started = len(models) * len(samples), time.time()
    for name, model_name in models.items():
        model = load_pretrained(AutoModelForMaskedLM, model_name)
        tokenizer = load_pretrained(AutoTokenizer, model_name)
        for corpus, texts in samples.items():
            matrix.at[name, corpus] = heldout_mlm_loss(model, tokenizer, texts, max_length, seed)
            done = int(matrix.notna().sum().sum())
            eta = (time.time() - started) / done * (cells - done)
            print(f"[{done}/{cells}] {name} on {corpus} ({len(texts)} docs): "
                  f"loss {matrix.at[name, corpus]:.3f} | ETA {eta:.0f} s", flush=True)
    return matrix


def before_after(matrix: pd.DataFrame) -> pd.DataFrame:
    """Table 1's columns: for each domain with a DAPT model (row `dapt-<domain>`), the base's
    loss (first row) and the DAPT model's own, on <domain>; when a DAPT (LoRA) model (row
    `dapt_lora-<domain>`) was scored too, its loss beside them: how much of the shift the
    adapters capture. A model that was not built is a missing cell (NaN)."""
    base, rows = matrix.index[0], []
    lora = any(str(model).startswith("dapt_lora-") for model in matrix.index)
    domains = dict.fromkeys(str(model).split("-", 1)[1] for model in matrix.index[1:]
                            if str(model).startswith(("dapt-", "dapt_lora-")))
    for domain in (d for d in domains if d in matrix.columns):
        row = {"domain": domain, "base_model": base, "loss_before": matrix.at[base, domain]}
        for prefix, model_column, loss_column in LOSS_COLUMNS[:2 if lora else 1]:
            model = f"{prefix}-{domain}"
            row |= {model_column: model if model in matrix.index else None,
                    loss_column: matrix.at[model, domain] if model in matrix.index else float("nan")}
        rows.append(row)
    columns = ["domain", "base_model", "dapt_model", "loss_before", "loss_after"]
    columns += ["lora_model", "loss_after_lora"] if lora else []
    return pd.DataFrame(rows, columns=columns).set_index("domain")


def markdown_table(frame: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub Markdown table: the index as first column, floats to `digits` places."""
    def cell(value) -> str:
        if value is None or isinstance(value, float) and value != value:   # None or NaN: not built
            return "—"
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    header = [frame.index.name or ""] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, row in frame.iterrows():
        lines.append("| " + " | ".join([str(label)] + [cell(v) for v in row]) + " |")
    return "\n".join(lines) + "\n"


def measure_mlm_loss(models: dict[str, str], corpora: dict[str, str | Path],
                     samples: dict[str, list[str]], out_dir: Path, *, documents: int,
                     max_length: int, seed: int) -> pd.DataFrame:
    """Score every model on every sample, write the outputs, print the matrix."""
    started = time.time()
    matrix = score_models(models, samples, max_length, seed)
    sizes = {name: len(texts) for name, texts in samples.items()}
    write_mlm_outputs(matrix, models, corpora, sizes, out_dir, documents_requested=documents,
                      max_length=max_length, seed=seed, wall_time_s=time.time() - started)
    print("held-out MLM loss (rows: models, columns: corpora):")
    print(matrix.round(3).to_string())
    print(f"wrote {', '.join(str(out_dir / name) for name in MLM_OUTPUT_FILES)}")
    return matrix


def write_mlm_outputs(matrix: pd.DataFrame, models: dict[str, str], corpora: dict[str, str | Path],
                      documents: dict[str, int], out_dir: Path, *, documents_requested: int,
                      max_length: int, seed: int, wall_time_s: float) -> None:
    """mlm_loss.csv (Table 12), mlm_loss_before_after.csv (Table 1), both as Markdown, and a
    JSON record of what was scored."""
    table1 = before_after(matrix)
    scored = ", ".join(f"{name} {count}" for name, count in documents.items())
    with atomic_output(out_dir / "mlm_loss.csv") as f:
        matrix.to_csv(f, float_format="%.4f")
    with atomic_output(out_dir / "mlm_loss_before_after.csv") as f:
        table1.to_csv(f, float_format="%.4f")
    with atomic_output(out_dir / "mlm_loss.md") as f:
        f.write(f"Held-out MLM loss (like the paper's Table 12); documents scored: {scored}; "
                f"at most {max_length} tokens each; seed {seed}\n\n"
                + markdown_table(matrix) + "\nBefore and after DAPT (like Table 1; with DAPT (LoRA) "
                "when it was built)\n\n"
                + markdown_table(table1))
    atomic_write_json(out_dir / "mlm_loss.json", {
        "models": models, "corpora": {name: str(path) for name, path in corpora.items()},
        "documents_requested": documents_requested, "documents": documents,
        "max_length": max_length, "seed": seed,
        "loss": matrix.round(4).to_dict(orient="index"), "wall_time_s": round(wall_time_s, 1)})
