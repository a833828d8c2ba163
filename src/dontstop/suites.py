"""Suites: what a study runs on (model, tasks, seeds, data, recipes), built-in or a study file.

    experiments/suites/<suite>.yaml       -> Suite (its tasks and domains from tasks.py's registry)
    a user's study.yaml                   -> Suite (its own tasks, or `extends` a suite; study_file.py)

Every command loads one with `load_suite`, which takes the command line's overrides (`--set KEY=VALUE`,
the folder and NAME=PATH flags: overrides.py) into the YAML before it is checked, so a value given
on the command line passes the same checks as one in the file.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import study_file
from .conditions import EXPERIMENTS_DIR
from .config import NOT_YAML, from_dict, read_yaml_mapping
from .fileio import UserError, raise_problems
from .overrides import Override, apply_overrides, override_problems
from .recipes import RECIPE_KINDS
from .suite_roots import DATA_HOLDS, check_root_given
from .suite_checks import check_sections
from .tasks import QUICK_FOLDER, Domain, SuiteTasks, Task

CHECKPOINT_NAME = re.compile(r"^(?P<lineage>.+)-[0-9a-f]{8}$")
# Suite keys renamed in this release (the glossary of docs/CONTRACTS.md): old -> new.
RENAMED_KEYS = {"published": "from_released", "published_dapt": "from_released_dapt"}


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
    from_released_dapt: bool = False  # start DAPT from the released allenai/<domain>_roberta_base
    from_released: bool = False    # start every condition the authors released from its released checkpoint
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
    released: dict[str, dict[str, str]] = field(default_factory=dict, metadata=NOT_YAML)  # its released checkpoints
    registry: str | None = field(default=None, metadata=NOT_YAML)  # the built-in its tasks are from, if one
    own_tasks: bool = field(default=False, metadata=NOT_YAML)     # a study file's own tasks (study_file.py)
    data_name: str = field(default="", metadata=NOT_YAML)   # folder under data_dir of relative paths ("": name)
    source: str = field(default="", metadata=NOT_YAML)      # the YAML file it was loaded from

    @property
    def dapt_from_released(self) -> bool:
        """DAPT starts from the released DAPT model of its domain (with --from-released-dapt, and
        with --from-released, since those models are among the released ones)."""
        return self.from_released_dapt or self.from_released


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


def load_suite(name_or_path: str, root: str | Path = EXPERIMENTS_DIR, overrides: list[Override] = (),
               _chain: tuple[str, ...] = ()) -> Suite:
    """A built-in suite (`mini`, `paper`: experiments/suites/<name>.yaml, its tasks from tasks.py)
    or a study file (a path: its own tasks, or `extends` a suite; study_file.py), with the command
    line's `overrides` written into its mapping first (overrides.py) and checked with it."""
    path = Path(name_or_path)
    if not path.suffix:
        known = sorted(p.stem for p in (Path(root) / "suites").glob("*.yaml"))
        builtin = len(path.parts) == 1 and (Path(root) / "suites" / f"{name_or_path}.yaml").is_file()
        if not builtin and (path / "study.yaml").is_file():   # the study's folder, as `init-study DIR` made it
            raise UserError(f"--suite {name_or_path}: a folder; give its study file, {path / 'study.yaml'}")
        if len(path.parts) > 1:   # a folder, or a file without its suffix: `/a/study` read /a/study.yaml
            raise UserError(f"--suite {name_or_path}: {'a folder' if path.is_dir() else 'no suite file'}; give a "
                            f"suite's name ({', '.join(known)}) or the path of a suite YAML")
        path = Path(root) / "suites" / f"{name_or_path}.yaml"
        if not path.is_file():
            raise UserError(f"--suite {name_or_path}: unknown suite; known: {', '.join(known)} "
                            "or a path to a suite YAML")
    data, lines = read_yaml_mapping(path)
    written = [override for override in overrides if override.in_file]
    own_tasks = isinstance(data.get("tasks"), dict)   # a study's own: `tasks` and `domains` are mappings
    for override in written if own_tasks else []:   # a field of a task not there: "missing data, domain"
        if len(override.keys) > 2 and override.keys[0] == "tasks" and override.keys[1] not in data["tasks"]:
            raise UserError(f"{override.given}: key 'tasks.{override.keys[1]}': {path} has no such task; "
                            f"known: {', '.join(map(str, data['tasks']))}")
        if override.keys == ("tasks",) and not isinstance(override.value, dict):   # checked as mini's tasks
            raise UserError(f"{override.given}: key 'tasks': {path} declares its own tasks, a mapping; to run some "
                            "of them give --tasks KEY ...")
    data = apply_overrides(_renamed_keys(path, data, lines), written)
    # a study's own tasks and domains are checked as the study file's (study_tasks.py), not as the Suite's
    # list of keys: `--set tasks.T.metric=accuracy` was "key 'tasks' is not a mapping"
    # (a whole `tasks` given is a mapping here: anything else was refused above)
    raise_problems(override_problems(Suite, data, [override for override in written if not (
        own_tasks and override.keys[0] in ("tasks", "domains"))]))
    lines = {**lines, **{override.keys[0]: override.given for override in written}}   # where each was given
    study = study_file.is_study(data)
    if study:   # its own tasks, or a subset of the extended suite's, with its keys over that suite's
        parent = data.get("extends") is not None and load_suite(
            study_file.extends_ref(path, data, lines, root, _chain), root, _chain=_chain + (str(path.resolve()),))
        data, facts = study_file.study_fields(path, data, lines, parent or None,
                                              {override.keys: override.given for override in written})
    suite = from_dict(Suite, data, str(path), lines)
    if not study:
        facts = study_file.builtin_facts(path, suite.name, suite.tasks, root, lines)
    folders = {override.keys[0]: override.value for override in overrides if not override.in_file}
    suite = replace(suite, source=str(path), **facts, **folders)
    if "data_dir" in folders:   # a suite file's own data_dir is relative to it, checked with its paths
        check_root_given(folders["data_dir"], suite.name, [], "--data-dir", holds=DATA_HOLDS)
    check_sections(suite, path, written)
    if study and not _chain:   # the study run, not one it extends
        study_file.check_no_outputs_left_behind(suite, given=set(folders))
    # a curated pool given to a task whose registry entry has none (`--curated-corpus rt-subjectivity=P`,
    # a study extending a suite): Curated-TAPT runs on it, so it is a Curated task (Table 7 left its runs out)
    return replace(suite, task_table={key: task if task.curated or key not in suite.curated
                                      else replace(task, curated=suite.curated[key])
                                      for key, task in suite.task_table.items()})


def _renamed_keys(path: Path, data: dict[str, Any], lines: dict[str, int]) -> dict[str, Any]:
    """The file's mapping with the keys renamed in this release under their new names (read
    for one more release, with a one-line note on stderr)."""
    for old, new in RENAMED_KEYS.items():
        if old in data:
            print(f"dontstop: note: {path}:{lines.get(old, 1)}: key '{old}' is deprecated and will not be "
                  f"read in the next release; write '{new}'", file=sys.stderr)
            data = {new if key == old else key: value for key, value in data.items()}
            lines[new] = lines.get(old, 1)
    return data


def with_quick(suite: Suite, overrides: list[Override] = ()) -> Suite:
    """The suite with its `quick` overrides applied (shortened recipes for smoke tests).

    Quick results go to <results_dir>/quick so they never mix with a full run's tables. A
    command line's `overrides` (--set) that a quick key replaces are refused, one line each: they
    would be ignored without a word (`--set seeds=[0,1,2] --quick` ran seed 0 alone).
    """
    raise_problems([f"{o.given}: --quick runs {found[0]} ({found[1]}) instead; set {found[0]} for a quick run"
                    for o in overrides if (found := quick_counterpart(suite, o))])
    recipes = {kind: {**suite.recipes.get(kind, {}), **suite.quick.get(kind, {})}
               for kind in set(suite.recipes) | (set(suite.quick) & set(RECIPE_KINDS))}
    return replace(suite, recipes=recipes, seeds=list(suite.quick_seeds),
                   results_dir=str(Path(suite.results_dir) / QUICK_FOLDER),
                   finetune={**suite.finetune, **suite.quick.get("finetune", {})},
                   selection={**suite.selection, **suite.quick.get("selection", {})},
                   probe=suite.probe and suite.quick_probe)


def quick_counterpart(suite: Suite, override: Override) -> tuple[str, Any] | None:
    """The quick key, with its value, that replaces what `override` sets under --quick; None
    where no quick key does (seeds: quick_seeds; finetune.epochs: quick.finetune.epochs;
    recipes.dapt.max_steps: quick.dapt.max_steps)."""
    keys = override.keys
    if keys == ("seeds",):
        return None if override.value == suite.quick_seeds else ("quick_seeds", suite.quick_seeds)
    if keys == ("probe",):   # a quick run probes when both say so
        return None if suite.quick_probe or not override.value else ("quick_probe", False)
    if keys[0] == "recipes" and len(keys) > 1:
        section, rest = keys[1], keys[2:]
    elif keys[0] in ("finetune", "selection"):
        section, rest = keys[0], keys[1:]
    else:
        return None
    quick = suite.quick.get(section, {})
    if rest:   # finetune.epochs=3 (a deeper path: shadowed whatever its value)
        asked = {rest[0]: override.value if len(rest) == 1 else None}
    else:      # finetune={epochs: 3, lr: 1e-4}
        asked = override.value if isinstance(override.value, dict) else {}
    shadowed = [name for name, value in asked.items() if name in quick and quick[name] != value]
    return (f"quick.{section}.{shadowed[0]}", quick[shadowed[0]]) if shadowed else None
