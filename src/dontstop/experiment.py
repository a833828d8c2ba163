"""The YAML schemas of the study: an experiment (one condition, one folder) and a suite.

    experiments/<condition>/config.yaml   -> Experiment  (stages, display name, tables, claims)
    experiments/suites/<suite>.yaml       -> Suite       (model, tasks, seeds, data, recipes)

A condition is its folder: the directory name is its key, its results path and its W&B
group; `display` is its table row; `tables` says which of the paper's tables it appears in;
`claims` are the paper's claims that compare it. Adding a folder adds a condition to
`reproduce`, the tables, the findings and the notebook; nothing else names conditions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import study_file
from .config import NOT_YAML, from_dict, load_yaml_dataclass, read_yaml_mapping
from .fileio import UserError
from .recipes import RECIPE_KINDS
from .suite_checks import check_sections
from .tasks import Domain, SuiteTasks, Task

EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "experiments"
# Stage specs: "dapt", "dapt:irrelevant" (the not-DAPT control), "tapt", "tapt:transfer",
# "curated", "knn:<k>" and "random:<k>" (selection, then TAPT on task + selected text);
# "dapt:lora" and "tapt:lora": the same corpora through LoRA adapters (recipes dapt_lora, tapt_lora).
STAGE_SPEC = re.compile(r"^(dapt(:irrelevant|:lora)?|tapt(:transfer|:lora)?|curated|(knn|random):[1-9]\d*)$")
APPLIES_TO = ("all", "transfer", "curated", "knn")
PAPER_TABLES = ("3", "5", "6", "7", "8", "9")
TABLES = PAPER_TABLES + ("lora",)   # "lora": ours, beside the paper's (report/tables.py)
CLAIM_TABLES = ("3", "5", "6", "7", "8", "lora")   # those whose tasks a claim is tested on
                                                   # (report/tables.py); Table 9 is the cost of one task's conditions
CLAIM_TESTS = ("welch", "farthest_domain")
BEST_OTHER = "best_other"   # Claim.worse: the strongest other condition of the claim's table
CHECKPOINT_NAME = re.compile(r"^(?P<lineage>.+)-[0-9a-f]{8}$")


@dataclass
class Claim:
    """One of the paper's claims, checked per task against this suite's runs (report/findings)."""
    claim: str                     # the sentence in the findings table
    better: str                    # the condition that should score higher
    worse: str                     # the other condition, or "best_other"
    table: str                     # tested on the tasks of this paper table
    test: str = "welch"            # "welch": over seeds, per task; "farthest_domain": see findings
    order: int = 1000              # position in the findings table (the paper's narrative order)


@dataclass
class Experiment:
    condition: str                 # results/<suite>/<task>/<condition>/; equals the folder name
    display: str                   # the paper's name: the table row or column ("DAPT + TAPT")
    description: str
    order: float                   # position among the conditions in tables and listings
    tables: list[str] = field(default_factory=list)   # tables it appears in: "3" ... "9", "lora"
    stages: list[str] = field(default_factory=list)   # pretraining stages, in order
    applies_to: str = "all"        # which tasks have this condition in the paper
    claims: list[Claim] = field(default_factory=list)
    significance_against: list[str] = field(default_factory=list)  # tested besides the baseline
    default: bool = True           # runs in `dontstop reproduce` without --conditions

    def applies(self, task: Task, suite: "Suite") -> bool:
        return self.missing_input(task, suite) is None

    def missing_input(self, task: Task, suite: "Suite") -> str | None:
        """Why this condition does not run on `task` (the input it needs is not given), else None."""
        if "dapt:irrelevant" in self.stages and suite.domain(task.domain).irrelevant is None:
            return "no second domain corpus (the irrelevant domain of ¬DAPT)"
        return {"all": None, "transfer": task.transfer is None and "no other task of its domain",
                "curated": not (task.key in suite.curated or task.curated_from) and "no curated pool",
                "knn": not task.knn and "no kNN candidate pool for its domain"}[self.applies_to] or None

    @property
    def knn_k(self) -> int | None:
        """k of a kNN-TAPT condition (its `knn:<k>` stage), else None."""
        ks = [int(spec.split(":")[1]) for spec in self.stages if spec.startswith("knn:")]
        return ks[-1] if ks else None


@dataclass(frozen=True)
class Conditions:
    """Every condition folder of an experiments directory, in `order`."""
    experiments: tuple[Experiment, ...]

    def __iter__(self):
        return iter(self.experiments)

    def __contains__(self, key: str) -> bool:
        return key in self.display

    @property
    def display(self) -> dict[str, str]:
        return {e.condition: e.display for e in self.experiments}

    @property
    def baseline(self) -> str:
        """The condition with no pretraining: every other one is tested against it."""
        return next(e.condition for e in self.experiments if not e.stages)

    def in_tables(self, *tables: str) -> list[str]:
        return [e.condition for e in self.experiments if set(tables) & set(e.tables)]

    def knn(self) -> list[tuple[str, int]]:
        """(condition, k) of every kNN-TAPT condition, by k."""
        return sorted(((e.condition, e.knn_k) for e in self.experiments if e.knn_k),
                      key=lambda pair: pair[1])

    def claims(self) -> list[Claim]:
        return sorted((c for e in self.experiments for c in e.claims), key=lambda c: c.order)

    def get(self, key: str) -> Experiment:
        for experiment in self.experiments:
            if experiment.condition == key:
                return experiment
        raise UserError(f"unknown condition {key!r}; known: {', '.join(self.display)}")


@dataclass
class Suite(SuiteTasks):
    name: str
    base_model: str                # models.resolve_model name
    tasks: list[str]
    seeds: list[int]               # fine-tuning seeds of a full run
    quick_seeds: list[int] = field(default_factory=lambda: [0])
    data_dir: str = "data"
    results_dir: str = "results"
    cache_dir: str = "cache"
    pretrain_seed: int = 0         # one pretraining per lineage, shared by every fine-tuning seed
    published_dapt: bool = False   # start DAPT from the hub's allenai/<domain>_roberta_base
    published: bool = False        # start every condition the authors released from its checkpoint
    base_corpus: str | None = None  # if set, "RoBERTa" is base_model after MLM on it (recipes.base)
    domain_corpora: dict[str, str] = field(default_factory=dict)  # domain -> DAPT corpus file
    pools: dict[str, str] = field(default_factory=dict)           # domain -> kNN candidate pool
    curated: dict[str, str] = field(default_factory=dict)         # task -> curated unlabeled pool
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)  # RECIPE_KINDS -> overrides
    finetune: dict[str, Any] = field(default_factory=dict)        # FinetuneRecipe overrides
    selection: dict[str, Any] = field(default_factory=dict)       # select_corpus keyword args
    quick: dict[str, dict[str, Any]] = field(default_factory=dict)  # --quick overrides per section
    probe: bool = False            # also a frozen-encoder linear probe per (task, condition)
    quick_probe: bool = False      # and in --quick runs (off in the mini suite: the 3-minute budget)
    estimate_tokens_per_s: float = 20000.0  # for --dry-run, until a measured record exists
    estimate_bench: str | None = None  # for --dry-run: a bench results file (repo-relative) of GPU rates
    extends: str | None = None     # a study file's starting suite (study_file.py), already applied
    # Filled by load_suite, never YAML keys: the facts that travel with the suite (tasks.SuiteTasks).
    task_table: dict[str, Task] = field(default_factory=dict, metadata=NOT_YAML)
    domain_table: dict[str, Domain] = field(default_factory=dict, metadata=NOT_YAML)
    released: dict[str, dict[str, str]] = field(default_factory=dict, metadata=NOT_YAML)  # tasks.RELEASED
    registry: str | None = field(default=None, metadata=NOT_YAML)  # the built-in its tasks are from, if one
    own_tasks: bool = field(default=False, metadata=NOT_YAML)     # a study file's own tasks (study_file.py)
    data_name: str = field(default="", metadata=NOT_YAML)   # folder under data_dir of relative paths ("": name)
    source: str = field(default="", metadata=NOT_YAML)      # the YAML file it was loaded from


def checkpoints_dir(suite: Suite) -> Path:
    """Where the runner builds pretraining stages: <cache>/<suite>/checkpoints/<lineage>-<hash8>."""
    return Path(suite.cache_dir) / suite.name / "checkpoints"


def checkpoint_name(lineage: str, key: str) -> str:
    """`dapt-cs+tapt-aclsum-roles-1a2b3c4d`: the lineage, then 8 hex digits of the stage's hash."""
    return f"{lineage}-{key[:8]}"


def checkpoint_lineage(name: str) -> str | None:
    """The lineage of a checkpoint folder named by `checkpoint_name`, else None."""
    match = CHECKPOINT_NAME.match(name)
    return match["lineage"] if match else None


def analysis_dir(tables_root: str | Path, suite_name: str) -> Path:
    """Where the domain analysis (Figure 2, Tables 1 and 12) goes: <tables>/<suite>/analysis."""
    return Path(tables_root) / suite_name / "analysis"


def load_experiment(directory: str | Path) -> Experiment:
    directory = Path(directory)
    config_path = directory / "config.yaml"
    experiment = load_yaml_dataclass(Experiment, config_path)
    for spec in experiment.stages:
        if not STAGE_SPEC.match(spec):
            raise UserError(f"{config_path}: key 'stages': unknown stage {spec!r}; expected dapt, dapt:irrelevant, "
                            "dapt:lora, tapt, tapt:transfer, tapt:lora, curated, knn:<k> or random:<k>")
    _check_choice(config_path, "applies_to", [experiment.applies_to], APPLIES_TO)
    _check_choice(config_path, "tables", experiment.tables, TABLES)
    _check_choice(config_path, "claims: test", [c.test for c in experiment.claims], CLAIM_TESTS)
    _check_choice(config_path, "claims: table", [c.table for c in experiment.claims], CLAIM_TABLES)
    if experiment.condition != directory.name:
        raise UserError(f"{config_path}: key 'condition': {experiment.condition!r} must equal "
                        f"the directory name {directory.name!r}")
    return experiment


def _check_choice(path: Path, key: str, values: list[str], known: tuple[str, ...]) -> None:
    for value in values:
        if value not in known:
            raise UserError(f"{path}: key '{key}': {value!r} is not one of {', '.join(known)}")


def load_conditions(root: str | Path = EXPERIMENTS_DIR) -> Conditions:
    """Every condition folder under `root` (a folder holding */config.yaml), checked together."""
    root = Path(root)
    found = [load_experiment(p.parent) for p in sorted(root.glob("*/config.yaml"))]
    if not found:
        raise UserError(f"{root}: no condition folders (*/config.yaml)")
    conditions = Conditions(tuple(sorted(found, key=lambda e: (e.order, e.condition))))
    if sum(not e.stages for e in found) != 1:
        raise UserError(f"{root}: exactly one condition must have no stages (the baseline)")
    for experiment in found:
        where = root / experiment.condition / "config.yaml"
        referenced = [c.better for c in experiment.claims] + [
            c.worse for c in experiment.claims if c.worse != BEST_OTHER] + experiment.significance_against
        for key in referenced:
            if key not in conditions:
                raise UserError(f"{where}: condition {key!r} is not a folder of {root}")
    return conditions


def select_conditions(conditions: Conditions, keys: list[str] | None) -> list[Experiment]:
    """The named conditions (without names: every one whose folder says `default: true`),
    with a one-line error for an unknown name."""
    if not keys:
        return [e for e in conditions if e.default]
    return [conditions.get(key) for key in dict.fromkeys(keys)]


def load_suite(name_or_path: str, root: str | Path = EXPERIMENTS_DIR, _chain: tuple[str, ...] = ()) -> Suite:
    """A built-in suite (`mini`, `paper`: experiments/suites/<name>.yaml, its tasks from tasks.py)
    or a study file (a path: its own tasks, or `extends` a suite; study_file.py)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = Path(root) / "suites" / f"{name_or_path}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in (Path(root) / "suites").glob("*.yaml"))
            raise UserError(f"--suite {name_or_path}: unknown suite; known: {', '.join(known)} "
                            "or a path to a suite YAML")
    data, lines = read_yaml_mapping(path)
    study = study_file.is_study(data)
    if study:   # its own tasks, or a subset of the extended suite's, with its keys over that suite's
        parent = data.get("extends") is not None and load_suite(
            study_file.extends_ref(path, data, lines, root, _chain), root, _chain + (str(path.resolve()),))
        data, facts = study_file.study_fields(path, data, lines, parent or None)
    suite = from_dict(Suite, data, str(path), lines)
    if not study:
        facts = study_file.builtin_facts(path, suite.name, suite.tasks, root, lines)
    suite = replace(suite, source=str(path), **facts)
    check_sections(suite, path)
    return suite


def override_suite(suite: Suite, *, data_dir: str | None = None, results_dir: str | None = None,
                   cache_dir: str | None = None, published_dapt: bool = False, published: bool = False,
                   domain_corpora: dict[str, str] | None = None, pools: dict[str, str] | None = None,
                   curated: dict[str, str] | None = None) -> Suite:
    """The suite with command-line overrides: directories replace, NAME=PATH maps add to the
    suite's. Paths given on the command line are made absolute (suite paths are data-relative)."""
    changes: dict[str, Any] = {name: value for name, value in (
        ("data_dir", data_dir), ("results_dir", results_dir), ("cache_dir", cache_dir)) if value}
    if published_dapt or published:  # the released DAPT models are among the released ones
        changes["published_dapt"] = True
    if published:
        changes["published"] = True
    for name, given in (("domain_corpora", domain_corpora), ("pools", pools), ("curated", curated)):
        if given:
            changes[name] = {**getattr(suite, name), **{k: str(Path(v).resolve()) for k, v in given.items()}}
    if suite.own_tasks:   # a study's own tasks: kNN and Curated follow the pools given
        changes["task_table"] = study_file.refresh_tasks(suite.task_table, changes.get("pools", suite.pools),
                                                         changes.get("curated", suite.curated))
    return replace(suite, **changes)


def with_quick(suite: Suite) -> Suite:
    """The suite with its `quick` overrides applied (shortened recipes for smoke tests).

    Quick results go to <results_dir>/quick so they never mix with a full run's tables.
    """
    recipes = {kind: {**suite.recipes.get(kind, {}), **suite.quick.get(kind, {})}
               for kind in set(suite.recipes) | (set(suite.quick) & set(RECIPE_KINDS))}
    return replace(suite, recipes=recipes, seeds=list(suite.quick_seeds),
                   results_dir=str(Path(suite.results_dir) / "quick"),
                   finetune={**suite.finetune, **suite.quick.get("finetune", {})},
                   selection={**suite.selection, **suite.quick.get("selection", {})},
                   probe=suite.probe and suite.quick_probe)
