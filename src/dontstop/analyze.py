"""dontstop analyze vocab | mlm-loss: how far apart the domains are (Figure 2, Tables 1 and 12).

    dontstop analyze vocab --suite mini
    dontstop analyze vocab pt.txt news.txt --names PT News --top 10000 --sample-docs 50000
    dontstop analyze mlm-loss --suite mini
    dontstop analyze mlm-loss --models base=roberta-base dapt-cs=allenai/cs_roberta_base \\
        --corpora cs=cs.txt news=news.txt --documents 500 --max-length 128

With no paths, both compare the suite's domain corpora and general.txt (Wikipedia, standing
in for RoBERTa's pretraining data, the paper's "PT"); mlm-loss evaluates the suite's base
model and every DAPT checkpoint the runner built under <cache>/<suite>/checkpoints/.
Outputs go to paper_tables/<suite>/analysis/ and are never replaced without --overwrite.
"""
from __future__ import annotations

import argparse
import dataclasses
import random
import re
import time
from pathlib import Path

import pandas as pd

from . import vocab
from .data import heldout_keys, task_dir
from .experiment import Suite, load_suite
from .fileio import UserError, atomic_output, atomic_write_json, read_json, sha256_file
from .models import load_pretrained

GENERAL = "general"
DAPT_CHECKPOINT = re.compile(r"^(?P<lineage>dapt-[^+]+)-[0-9a-f]{8}$")  # dapt-cs-1a2b3c4d
MLM_OUTPUT_FILES = ("mlm_loss.csv", "mlm_loss_before_after.csv", "mlm_loss.md", "mlm_loss.json")


def register(subparsers: argparse._SubParsersAction) -> None:
    analyze = subparsers.add_parser("analyze", help="vocabulary overlap and MLM loss across domains")
    commands = analyze.add_subparsers(dest="analyze_command", required=True)

    overlap = commands.add_parser("vocab", help="top-K unigram overlap between corpora (Figure 2)")
    overlap.add_argument("corpora", nargs="*", help="corpus files (default: the suite's)")
    overlap.add_argument("--names", nargs="+", help="one name per corpus (default: file names)")
    overlap.add_argument("--top", type=positive_int, default=10000, help="words per vocabulary")
    overlap.add_argument("--sample-docs", type=positive_int, default=10000,
                         help="documents sampled from each corpus")
    _common_arguments(overlap)
    overlap.set_defaults(func=_vocab)

    loss = commands.add_parser("mlm-loss", help="held-out MLM loss of each model on each corpus "
                               "(Tables 1 and 12)")
    loss.add_argument("--models", nargs="+", metavar="NAME=PATH", help="the first is the base "
                      "model (default: base=<suite base model> and the suite's DAPT checkpoints)")
    loss.add_argument("--corpora", nargs="+", metavar="NAME=PATH", help="default: the suite's")
    loss.add_argument("--documents", type=positive_int, default=500, help="documents per corpus")
    loss.add_argument("--max-length", type=positive_int, default=128, help="tokens per document")
    _common_arguments(loss)
    loss.set_defaults(func=_mlm_loss)


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", default="mini", help="mini | paper | path to a suite YAML")
    parser.add_argument("--seed", type=int, default=0, help="document sample (and mask) seed")
    parser.add_argument("--out", type=Path, help="default: paper_tables/<suite>/analysis")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--data-dir", help="default: the suite's (data)")
    parser.add_argument("--cache-dir", help="default: the suite's (cache), where DAPT checkpoints are")


def _suite(args: argparse.Namespace) -> Suite:
    suite = load_suite(args.suite)
    changes = {"data_dir": args.data_dir, "cache_dir": args.cache_dir}
    return dataclasses.replace(suite, **{k: v for k, v in changes.items() if v})


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


def _vocab(args: argparse.Namespace) -> int:
    if args.corpora:
        names = args.names or [Path(path).stem for path in args.corpora]
        if len(names) != len(args.corpora) or len(set(names)) != len(names):
            raise UserError(f"--names: need {len(args.corpora)} distinct name(s), one per corpus file")
        corpora = dict(zip(names, args.corpora))
    elif args.names:
        raise UserError("--names needs corpus paths, one name per path")
    else:
        corpora = suite_corpora(_suite(args))
    out_dir = _writable_out_dir(args, vocab.OUTPUT_FILES)
    vocab.run(corpora, args.top, args.sample_docs, args.seed, out_dir)
    return 0


def _mlm_loss(args: argparse.Namespace) -> int:
    suite = None if args.corpora and args.models else _suite(args)
    if args.corpora:
        corpora = parse_pairs(args.corpora, "--corpora")
        samples = {name: vocab.sample_corpus(path, args.documents, args.seed, name)
                   for name, path in corpora.items()}
    else:
        corpora = suite_corpora(suite)
        samples = suite_samples(suite, corpora, args.documents, args.seed)
    models = parse_pairs(args.models, "--models") if args.models else suite_models(suite)
    out_dir = _writable_out_dir(args, MLM_OUTPUT_FILES)
    started = time.time()
    matrix = score_models(models, samples, args.max_length, args.seed)
    sizes = {name: len(texts) for name, texts in samples.items()}
    write_mlm_outputs(matrix, models, corpora, sizes, args, time.time() - started, out_dir)
    print("held-out MLM loss (rows: models, columns: corpora):")
    print(matrix.round(3).to_string())
    print(f"wrote {', '.join(str(out_dir / name) for name in MLM_OUTPUT_FILES)}")
    return 0


def _writable_out_dir(args: argparse.Namespace, files: tuple[str, ...]) -> Path:
    """Fail before any work if a finished output would be replaced without --overwrite."""
    out_dir = args.out or Path("paper_tables") / Path(args.suite).stem / "analysis"
    existing = [str(out_dir / name) for name in files if (out_dir / name).exists()]
    if existing and not args.overwrite:
        raise UserError(f"{existing[0]}: already exists; pass --overwrite to replace it")
    return out_dir


def parse_pairs(pairs: list[str], flag: str) -> dict[str, str]:
    """["cs=data/cs.txt", ...] -> {"cs": "data/cs.txt"}, in the order given."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise UserError(f"{flag} {pair}: expected NAME=PATH")
        if name in parsed:
            raise UserError(f"{flag} {pair}: name {name!r} given twice")
        parsed[name] = value
    return parsed


def suite_corpora(suite: Suite) -> dict[str, str]:
    """general.txt ("PT") first, then each domain corpus of the suite, as in Figure 2."""
    root = Path(suite.data_dir) / suite.name  # suite paths are relative to <data_dir>/<suite>/
    if not suite.domain_corpora:
        raise UserError(f"suite {suite.name}: no domain corpora configured; give corpus paths")
    corpora = {GENERAL: root / "corpora" / f"{GENERAL}.txt"} | {
        domain: root / path for domain, path in suite.domain_corpora.items()}
    for path in corpora.values():
        if not path.is_file():
            raise UserError(f"{path}: corpus file not found (run `dontstop data build-mini` "
                            "or give corpus paths)")
    return {name: str(path) for name, path in corpora.items()}


def suite_models(suite: Suite) -> dict[str, str]:
    """The suite's base model, then the DAPT checkpoint of each domain the runner has built."""
    models = {"base": suite.base_model}
    checkpoints = checkpoints_dir(suite)
    for lineage, directory in sorted(dapt_checkpoints(checkpoints).items()):
        models[lineage] = str(directory)
    if len(models) == 1:
        print(f"note: no finished DAPT checkpoint under {checkpoints}; only the base model is scored")
    return models


def checkpoints_dir(suite: Suite) -> Path:
    return Path(suite.cache_dir) / suite.name / "checkpoints"


def dapt_checkpoints(checkpoints: Path) -> dict[str, Path]:
    """lineage ("dapt-cs") -> its finished checkpoint; of several recipes, the longest trained."""
    found: dict[str, list[Path]] = {}
    for record in sorted(checkpoints.glob("dapt-*/pretrain_record.json")):
        match = DAPT_CHECKPOINT.match(record.parent.name)
        if match:
            found.setdefault(match["lineage"], []).append(record)
    chosen = {}
    for lineage, records in found.items():
        longest = max(records, key=lambda r: (read_json(r).get("steps", 0), r.stat().st_mtime))
        if len(records) > 1:
            print(f"note: {len(records)} {lineage} checkpoints; using the longest trained, "
                  f"{longest.parent.name}")
        chosen[lineage] = longest.parent
    return chosen


def suite_samples(suite: Suite, corpora: dict[str, str], documents: int,
                  seed: int) -> dict[str, list[str]]:
    """A seeded sample of each corpus. From a corpus that a DAPT checkpoint was trained on,
    only the documents its pretraining held out: no model is scored on its training text."""
    checkpoints = dapt_checkpoints(checkpoints_dir(suite))
    samples = {}
    for name, path in corpora.items():
        checkpoint = checkpoints.get(f"dapt-{name}")
        held_out = pretraining_heldout(checkpoint, path, suite) if checkpoint else []
        if held_out:
            samples[name] = random.Random(seed).sample(held_out, min(documents, len(held_out)))
            print(f"note: {name}: scoring {len(samples[name])} of the {len(held_out)} documents "
                  f"that {checkpoint.name} held out of its training")
        else:
            samples[name] = vocab.sample_corpus(path, documents, seed, name)
    return samples


def pretraining_heldout(checkpoint: Path, corpus: str, suite: Suite) -> list[str]:
    """The documents a DAPT run on `corpus` held out, re-derived the way pretraining split them
    (same corpus, same leakage guard, same seed); [] if the checkpoint was trained on other files."""
    from .config import from_dict
    from .pretrain import PretrainRecipe, scan_corpus

    record_path = checkpoint / "pretrain_record.json"
    record = read_json(record_path)
    if record.get("corpus_files") != [corpus]:
        return []
    if sha256_file(corpus) != record["corpus_sha256"][corpus]:
        raise UserError(f"{corpus}: changed since {checkpoint.name} was pretrained on it; "
                        "its held-out documents cannot be recovered (give --corpora)")
    recipe = from_dict(PretrainRecipe, record["recipe"], str(record_path))
    runner_exclude = heldout_keys(task_dir(suite.data_dir, suite.name, key) for key in suite.tasks)
    return scan_corpus(recipe, runner_exclude).heldout_documents()


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

    from .mlm import heldout_mlm_loss

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
    """Table 1's columns: for each model `dapt-<domain>`, the base's (first row) and its own
    loss on <domain>."""
    base, rows = matrix.index[0], []
    for model in matrix.index[1:]:
        domain = model.removeprefix("dapt-")
        if model.startswith("dapt-") and domain in matrix.columns:
            rows.append({"domain": domain, "base_model": base, "dapt_model": model,
                         "loss_before": matrix.at[base, domain], "loss_after": matrix.at[model, domain]})
    columns = ["domain", "base_model", "dapt_model", "loss_before", "loss_after"]
    return pd.DataFrame(rows, columns=columns).set_index("domain")


def markdown_table(frame: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub Markdown table: the index as first column, floats to `digits` places."""
    def cell(value) -> str:
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    header = [frame.index.name or ""] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, row in frame.iterrows():
        lines.append("| " + " | ".join([str(label)] + [cell(v) for v in row]) + " |")
    return "\n".join(lines) + "\n"


def write_mlm_outputs(matrix: pd.DataFrame, models: dict[str, str], corpora: dict[str, str | Path],
                      documents: dict[str, int], args: argparse.Namespace, wall_time_s: float,
                      out_dir: Path) -> None:
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
                f"at most {args.max_length} tokens each; seed {args.seed}\n\n"
                + markdown_table(matrix) + "\nBefore and after DAPT (like Table 1)\n\n"
                + markdown_table(table1))
    atomic_write_json(out_dir / "mlm_loss.json", {
        "models": models, "corpora": {name: str(path) for name, path in corpora.items()},
        "documents_requested": args.documents, "documents": documents,
        "max_length": args.max_length, "seed": args.seed,
        "loss": matrix.round(4).to_dict(orient="index"), "wall_time_s": round(wall_time_s, 1)})
