"""The two YAML schemas of the study: an experiment (one paper condition) and a suite.

    experiments/<condition>/config.yaml   -> Experiment  (what is pretrained, in which order)
    experiments/suites/<suite>.yaml       -> Suite       (model, tasks, seeds, data, recipes)

A condition's directory name is also its results path, its W&B job type and its table row.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import from_dict, load_yaml_dataclass
from .fileio import UserError
from .tasks import Task

EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "experiments"
# Stage specs: "dapt", "dapt:irrelevant" (the not-DAPT control), "tapt", "tapt:transfer",
# "curated", "knn:<k>" and "random:<k>" (selection, then TAPT on task + selected text).
STAGE_SPEC = re.compile(r"^(dapt(:irrelevant)?|tapt(:transfer)?|curated|(knn|random):[1-9]\d*)$")
APPLIES_TO = ("all", "transfer", "curated", "knn")
RECIPE_KINDS = ("dapt", "tapt", "tapt_large")


@dataclass
class Experiment:
    condition: str                 # results/<suite>/<task>/<condition>/
    table: str                     # the paper table this condition fills
    description: str
    stages: list[str] = field(default_factory=list)  # pretraining stages, in order
    applies_to: str = "all"        # which tasks have this condition in the paper

    def applies(self, task: Task, suite: "Suite") -> bool:
        return {"all": True, "transfer": task.transfer is not None,
                "curated": task.key in suite.curated or task.curated_from is not None,
                "knn": task.knn}[self.applies_to]


@dataclass
class Suite:
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
    domain_corpora: dict[str, str] = field(default_factory=dict)  # domain -> DAPT corpus file
    pools: dict[str, str] = field(default_factory=dict)           # domain -> kNN candidate pool
    curated: dict[str, str] = field(default_factory=dict)         # task -> curated unlabeled pool
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)  # dapt | tapt | tapt_large
    finetune: dict[str, Any] = field(default_factory=dict)        # FinetuneRecipe overrides
    selection: dict[str, Any] = field(default_factory=dict)       # select_corpus keyword args
    quick: dict[str, dict[str, Any]] = field(default_factory=dict)  # --quick overrides per section
    estimate_tokens_per_s: float = 20000.0  # for --dry-run, until a measured record exists


def load_experiment(directory: str | Path) -> Experiment:
    directory = Path(directory)
    config_path = directory / "config.yaml"
    experiment = load_yaml_dataclass(Experiment, config_path)
    for spec in experiment.stages:
        if not STAGE_SPEC.match(spec):
            raise UserError(f"{config_path}: key 'stages': unknown stage {spec!r}; expected dapt, "
                            "dapt:irrelevant, tapt, tapt:transfer, curated, knn:<k> or random:<k>")
    if experiment.applies_to not in APPLIES_TO:
        raise UserError(f"{config_path}: key 'applies_to': expected one of {', '.join(APPLIES_TO)}")
    if experiment.condition != directory.name:
        raise UserError(f"{config_path}: key 'condition': {experiment.condition!r} must equal "
                        f"the directory name {directory.name!r}")
    return experiment


def all_experiments(root: str | Path = EXPERIMENTS_DIR) -> list[Experiment]:
    """Every condition directory under experiments/, in the order of CONDITION_ORDER."""
    root = Path(root)
    found = {p.parent.name: load_experiment(p.parent) for p in root.glob("*/config.yaml")}
    return [found[name] for name in sorted(found, key=condition_rank)]


CONDITION_ORDER = ("baseline", "dapt", "not_dapt", "tapt", "dapt_tapt", "transfer_tapt",
                   "curated_tapt", "dapt_curated_tapt", "rand_tapt", "knn_tapt_50",
                   "knn_tapt_150", "knn_tapt_500")


def condition_rank(name: str) -> tuple[int, str]:
    return (CONDITION_ORDER.index(name) if name in CONDITION_ORDER else len(CONDITION_ORDER), name)


def load_suite(name_or_path: str, root: str | Path = EXPERIMENTS_DIR) -> Suite:
    path = Path(name_or_path)
    if not path.suffix:
        path = Path(root) / "suites" / f"{name_or_path}.yaml"
    suite = load_yaml_dataclass(Suite, path)
    _check_sections(suite, path)
    return suite


def _check_sections(suite: Suite, path: Path) -> None:
    """Reject misspelled recipe keys now, not an hour into a run."""
    from .finetune import FinetuneRecipe
    from .pretrain import PretrainRecipe

    for kind, overrides in suite.recipes.items():
        if kind not in RECIPE_KINDS:
            raise UserError(f"{path}: key 'recipes': unknown recipe {kind!r}; known: {', '.join(RECIPE_KINDS)}")
        _check_keys(PretrainRecipe, overrides, f"{path}: recipes.{kind}")
    _check_keys(FinetuneRecipe, suite.finetune, f"{path}: finetune")
    for section, overrides in suite.quick.items():
        if section in RECIPE_KINDS:
            _check_keys(PretrainRecipe, overrides, f"{path}: quick.{section}")
        elif section == "finetune":
            _check_keys(FinetuneRecipe, overrides, f"{path}: quick.finetune")
        elif section != "selection":
            raise UserError(f"{path}: key 'quick': unknown section {section!r}")


def _check_keys(cls: type, overrides: dict[str, Any], where: str) -> None:
    known = set(cls.__dataclass_fields__)
    for key in overrides:
        if key not in known:
            raise UserError(f"{where}: key '{key}': unknown; known keys: {', '.join(sorted(known))}")


def with_quick(suite: Suite) -> Suite:
    """The suite with its `quick` overrides applied (shortened recipes for smoke tests).

    Quick results go to <results_dir>/quick so they never mix with a full run's tables.
    """
    recipes = {kind: {**suite.recipes.get(kind, {}), **suite.quick.get(kind, {})}
               for kind in set(suite.recipes) | (set(suite.quick) & set(RECIPE_KINDS))}
    return from_dict(Suite, {**vars(suite), "recipes": recipes, "seeds": suite.quick_seeds,
                             "results_dir": str(Path(suite.results_dir) / "quick"),
                             "finetune": {**suite.finetune, **suite.quick.get("finetune", {})},
                             "selection": {**suite.selection, **suite.quick.get("selection", {})}},
                     "quick")
