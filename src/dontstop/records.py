"""The record files that pass between the pipeline's phases, one typed class each, and every
file name they live under (docs/CONTRACTS.md): no other module spells these names.

    results/<suite>/<task>/<condition>/seed_<n>/metrics.json   -> MetricsRecord (finetune writes,
                                                                   the runner and report read)
    cache/<suite>/checkpoints/<lineage>-<hash8>/pretrain_record.json -> PretrainRecord (pretrain
                                                                   writes, runner, analysis read)
    results/<suite>/<task>/<condition>/probe.json              -> ProbeRecord (finetune/probe.py
                                                                   writes, report reads)
    cache/<suite>/selections/<name>-<hash8>/select_record.json -> SelectRecord (select writes,
                                                                   the runner copies it into metrics.json)
    results/<suite>/RUN.json                                   -> RunHistory (reproduce appends,
                                                                   the README block and bench read)

Writer, readers and tests all go through these classes, so a field is named in one place.
Reading checks every key and type (config.from_dict) and fails with one line naming the file;
reading from a results tree (results_tree.py) also checks that each file sits in the folder of
the suite, task, condition and seed it names.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .config import from_dict
from .fileio import UserError, atomic_write_json, read_json
from .record_checks import bound, check_folder, check_scores, check_written, iso_time, seconds

METRICS_FILE = "metrics.json"
PRETRAIN_RECORD_FILE = "pretrain_record.json"
PROBE_FILE = "probe.json"
SELECT_RECORD_FILE = "select_record.json"
SELECTED_CORPUS_FILE = "corpus.jsonl"     # beside it: task text, then the selected documents
INDEX_KEY_FILE = "index_key.json"         # what a saved kNN index was built for; written last (select/selection.py)
RUN_CONFIG_FILE = "config.json"           # beside metrics.json: the resolved recipe, written first
RUN_HISTORY_FILE = "RUN.json"
SLURM_FOLDER, SLURM_LOGS_FOLDER = "slurm", "slurm-logs"   # the launcher's job registry and logs
# What a suite's results folder holds beside its task folders: no task may be named so
SUITE_RESULTS_OWN = (RUN_HISTORY_FILE, SLURM_FOLDER, SLURM_LOGS_FOLDER)


class _RecordFile:
    """Write and read a record as FILE in a folder, its fields checked on reading (_read)."""
    FILE: ClassVar[str]

    def write(self, directory: str | Path) -> Path:
        path = Path(directory) / self.FILE
        atomic_write_json(path, dataclasses.asdict(self))
        return path

    @classmethod
    def read(cls, path: str | Path):
        return _read(cls, path)


@dataclass
class MetricsRecord(_RecordFile):
    """One finished fine-tuning run; scores are fractions in [0, 1]."""
    FILE = METRICS_FILE

    suite: str
    task: str
    condition: str | None             # None when `dontstop finetune` ran outside the runner
    seed: int
    model: str                        # the checkpoint fine-tuning started from (dir or hub id)
    lineage: str                      # "base", "dapt-cs", "dapt-cs+tapt-aclsum-roles"
    metric: str                       # "micro_f1" | "macro_f1": the task's metric
    dev: dict[str, float]             # accuracy, macro_f1, micro_f1 at the best dev epoch
    test: dict[str, float]            # the same, of the best-dev weights on test
    dev_metric: float
    test_metric: float
    best_epoch: int                   # 1-based
    epochs_run: int
    dev_curve: list[float]            # the task metric on dev after each epoch
    train_examples: int
    wall_time_s: float
    config: dict[str, Any]            # the resolved FinetuneRecipe
    versions: dict[str, str]
    git_commit: str | None
    data_sha256: dict[str, str]       # split -> sha256 of its jsonl file
    pretraining: list[dict[str, Any]] = field(default_factory=list)  # stage records, in order
    published: bool = False           # fine-tuned from a released checkpoint (the name predates the glossary)
    timings: dict[str, float] = field(default_factory=dict)  # seconds: load_s, tokenize_s, train_s, eval_s

    @classmethod
    def read(cls, path: str | Path) -> "MetricsRecord":
        record = _read(cls, path)
        check_scores(path, record, dev_curve=record.dev_curve, dev_metric=record.dev_metric)
        # what a run writes of itself (the notebook plots dev curves and early stops; a seed of 10^14
        # or -1 in a copied folder was tabled as one more seed; so were more epochs than its recipe's)
        epochs, budget = (bound(record.config.get(key)) for key in ("epochs", "max_train_examples"))
        check_written(path, record, "run", {
            "seed": (0 <= record.seed < 2**32, "a seed is in [0, 2^32)"),
            "epochs_run": (len(record.dev_curve) == record.epochs_run and record.epochs_run <= epochs,
                           "one dev_curve point per epoch run, at most config.epochs"),
            "best_epoch": (1 <= record.best_epoch <= record.epochs_run, "from 1 to epochs_run"),
            "train_examples": (1 <= record.train_examples <= budget, "at least 1, at most config.max_train_examples"),
            "wall_time_s": (seconds(record.wall_time_s), "seconds, >= 0")})
        for name in ("seed", "task", "suite"):   # a copy of another run whose seed was edited counted as that seed
            if record.config.get(name, getattr(record, name)) != getattr(record, name):
                raise UserError(f"{path}: field {name!r} is {getattr(record, name)!r}, but config.{name} is "
                                f"{record.config[name]!r} (a copy of another run, edited by hand?)")
        return record


@dataclass
class PretrainRecord(_RecordFile):
    """One finished pretraining stage (continued masked-LM)."""
    FILE = PRETRAIN_RECORD_FILE

    name: str
    base_model: str
    corpus_files: list[str]
    corpus_sha256: dict[str, str]
    recipe: dict[str, Any]            # the resolved PretrainRecipe
    steps: int                        # optimizer steps
    resumed_from_step: int
    epochs: float
    sequences: int
    tokens: int
    documents: int                    # training documents streamed in the first epoch
    heldout_documents: int
    excluded_documents: int           # dropped as task dev/test text (leakage guard)
    bytes: int
    wall_time_s: float
    tokens_per_s: float
    final_train_loss: float | None
    heldout_loss_before: float | None  # nats per masked token
    heldout_loss_after: float | None
    versions: dict[str, str]
    git_commit: str | None
    # file name -> sha256 of each weights file as written; loading checks it (models.load_pretrained)
    weights_sha256: dict[str, str] = field(default_factory=dict)
    # A LoRA stage: the same of its base folder's weights, which its adapter was trained on (loading
    # checks them: models._check_base_unchanged). None: a full stage, a hub id, or an older record.
    base_weights_sha256: dict[str, str] | None = None
    processes: int = 1                # training processes (GPUs) that shared each optimizer step
    device: str = "cpu"               # "cpu", "cuda:NVIDIA H200", ...
    # The leakage guard it was built under (data/leakage.py): each task dev/test file held out ->
    # its sha256, and the text_key (hex) of each corpus document dropped as one of their texts.
    # None: built before dontstop recorded them (runner/stage_guard.py then compares counts).
    guarded_sha256: dict[str, str] | None = None
    excluded_keys: list[str] | None = None
    # Optimizer steps of linear warmup from lr 0 (pretrain/mlm.warmup_steps). None: a record older
    # than the field, whose stage of 1 step ran that step at lr 0 (runner/job_checks refuses it).
    warmup_steps: int | None = None

    def one_step_at_lr_0(self) -> bool:
        # its three fields, not dataclasses.asdict, which deep-copies every field (excluded_keys too)
        return one_step_at_lr_0({"steps": self.steps, "warmup_steps": self.warmup_steps, "recipe": self.recipe})


def one_step_at_lr_0(stage: dict[str, Any]) -> bool:
    """Whether a stage (a PretrainRecord's fields, as metrics.json's `pretraining` keeps them) of one
    optimizer step ran it at lr 0, all warmup: its model is its parent's. A record older than
    `warmup_steps` warmed up ceil(warmup_ratio x steps) steps, so its one step was warmup unless its
    recipe's warmup_ratio was 0 (that step ran at the full lr, as it does now)."""
    if stage.get("steps") != 1:
        return False
    if stage.get("warmup_steps") is None:
        return (stage.get("recipe") or {}).get("warmup_ratio") != 0
    return stage["warmup_steps"] != 0


@dataclass
class ProbeRecord(_RecordFile):
    """A frozen-encoder linear probe of one (checkpoint, task); scores are fractions in [0, 1]."""
    FILE = PROBE_FILE

    suite: str
    task: str
    condition: str
    model: str
    lineage: str
    metric: str
    dev: dict[str, float]
    test: dict[str, float]
    test_metric: float
    train_examples: int
    features: int                     # the encoder's hidden size
    max_length: int                   # tokens per text
    wall_time_s: float
    versions: dict[str, str]
    git_commit: str | None

    @classmethod
    def read(cls, path: str | Path) -> "ProbeRecord":
        record = _read(cls, path)
        check_scores(path, record)
        check_written(path, record, "probe", {   # a negative size or time passed into the probe table
            "train_examples": (record.train_examples >= 1, "at least 1"),
            "features": (record.features >= 1, "the encoder's hidden size, at least 1"),
            "max_length": (record.max_length >= 1, "tokens per text, at least 1"),
            "wall_time_s": (seconds(record.wall_time_s), "seconds, >= 0")})
        return record


@dataclass
class SelectRecord(_RecordFile):
    """One kNN-TAPT or RAND-TAPT selection (select/selection.py); the embedding fields are
    None for a random one."""
    FILE = SELECT_RECORD_FILE

    method: str                       # "knn" | "random"
    k: int                            # candidates per query
    seed: int
    embedder: str | None              # "bow" | "encoder"
    index: str | None                 # "flat" | "ivf"
    recall_at_k: float | None         # of the approximate index against exact search
    pool: str
    pool_size: int                    # pool candidates (of the unit) after the scan's exclusions
    queries: int                      # distinct queries: task sentences, or texts (query_unit)
    candidates_before_dedup: int
    selected: int
    duplicates_removed: int
    pool_duplicates_skipped: int
    excluded_heldout: int             # pool candidates equal to a task's dev/test text (leakage keys)
    bytes: int                        # of corpus.jsonl
    selected_by_source: dict[str, int]
    pool_by_source: dict[str, int]
    wall_time_s: float
    dim: int | None = None
    encoder_model: str | None = None
    nprobe: int | None = None
    nlist: int | None = None
    unit: str = "line"                # a candidate: "sentence" of a pool line, or the "line" (records before units)
    query_unit: str = "text"          # a query: "sentence" of a task text, or the "text" (records before it)
    task_texts: int | None = None     # distinct task texts, written first in corpus.jsonl (None: before query_unit)
    bow_tokens: str | None = None     # the bow embedder's words, "sklearn" | "scripts" (None: another
                                      # embedder, or a record from before 2026-12-08)


@dataclass
class Invocation:
    """One call of `dontstop reproduce` that ran jobs."""
    command: str                      # "dontstop reproduce --no-wandb"
    finished_at: str                  # ISO time, seconds
    wall_time_s: float
    jobs_finished: int
    quick: bool
    runs: int                         # fine-tuning runs planned
    git_commit: str | None
    machine: str                      # "x86_64, 2 CPU cores, Linux"
    versions: dict[str, str]


@dataclass
class RunHistory(_RecordFile):
    """results/<suite>/RUN.json: every call on a suite's results, in order, so that a resumed
    study keeps the time of each part."""
    FILE = RUN_HISTORY_FILE

    suite: str
    invocations: list[Invocation] = field(default_factory=list)

    @classmethod
    def read(cls, suite_results: str | Path, suite: str) -> "RunHistory":
        """The history under <results>/<suite>/, empty when none was written yet; one of another
        suite (a copied RUN.json) is refused."""
        path = Path(suite_results) / RUN_HISTORY_FILE
        if not path.exists():
            return cls(suite)
        history = _read(cls, path)
        if history.suite != suite:
            raise UserError(f"{path}: field 'suite' is {history.suite!r} but this is the history of "
                            f"{suite!r} (a copied file?); move it back or remove it")
        for i, call in enumerate(history.invocations):   # the README's line gives their times and dates
            check_written(path, call, "reproduce call", {
                "finished_at": (iso_time(call.finished_at), "an ISO time, 2026-12-07T08:02:44"),
                "wall_time_s": (seconds(call.wall_time_s), "seconds, >= 0"),
                "jobs_finished": (call.jobs_finished >= 0, "a count"), "runs": (call.runs >= 0, "a count")},
                within=f"invocations[{i}].")
        return history


def read_run(path: str | Path) -> MetricsRecord:
    """A metrics.json of a results tree, which must sit where it says it belongs:
    <results>/<suite>/<task>/<condition>/seed_<seed>/metrics.json (a copied or moved run folder
    would count a run twice, or in the wrong cell)."""
    record = MetricsRecord.read(path)
    check_folder(Path(path), record, {"seed": (1, f"seed_{record.seed}"), "condition": (2, record.condition),
                                      "task": (3, record.task), "suite": (4, record.suite)})
    return record


def read_probe(path: str | Path) -> ProbeRecord:
    """A probe.json of a results tree: <results>/<suite>/<task>/<condition>/probe.json."""
    record = ProbeRecord.read(path)
    check_folder(Path(path), record, {"condition": (1, record.condition), "task": (2, record.task),
                                      "suite": (3, record.suite)})
    return record


def _read(cls: type, path: str | Path):
    data = read_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object (docs/CONTRACTS.md)")
    return from_dict(cls, data, str(path))
