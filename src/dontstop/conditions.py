"""Conditions: the folders of experiments/, one condition each (its config.yaml is a Condition).

    experiments/<condition>/config.yaml   -> Condition  (stages, display name, tables, claims)
    experiments/<condition>/README.md     rendered from it (`render_readme`; dontstop readmes)

A condition is its folder: the directory name is its key, its results path and its W&B
group; `display` is its table row; `tables` says which of the paper's tables it appears in;
`claims` are the paper's claims that compare it. Adding a folder adds a condition to
`reproduce`, the tables, the findings and the notebook; nothing else names conditions.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from .config import as_shown, from_dict, located, read_yaml_mapping, shared_names, unprintable
from .fileio import UserError, unicode_twins
from .tasks import SuiteTasks, Task

EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "experiments"
# The stages of a condition's chain: "dapt", "dapt:irrelevant" (the not-DAPT control), "tapt",
# "tapt:transfer", "curated", "knn:<k>" and "random:<k>" (selection, then TAPT on task + selected
# text); "dapt:lora" and "tapt:lora": the same corpora through LoRA adapters (recipes dapt_lora,
# tapt_lora; tapt_large_lora on the paper's large tasks).
STAGE_SPEC = re.compile(r"^(dapt(:irrelevant|:lora)?|tapt(:transfer|:lora)?|curated|(knn|random):[1-9]\d*)$")
APPLIES_TO_TEXT = {"all": "every task", "transfer": "tasks with a partner task in the same domain",
                   "curated": "tasks with a curated unlabeled pool",
                   "knn": "the tasks of the automated-selection study (Table 8)"}
APPLIES_TO = tuple(APPLIES_TO_TEXT)
PAPER_TABLES = ("3", "5", "6", "7", "8", "9")
TABLES = PAPER_TABLES + ("lora",)   # "lora": ours, beside the paper's (report/tables.py)
CLAIM_TABLES = ("3", "5", "6", "7", "8", "lora")   # those whose tasks a claim is tested on
                                                   # (report/tables.py); Table 9 is the cost of one task's conditions
CLAIM_TESTS = ("welch", "farthest_domain")
# Tables 3 and 5 are one file here (table5: Table 5's rows beside Table 3's ¬DAPT): one table to a claim.
SAME_FILE = {"3": ("3", "5"), "5": ("3", "5")}
# Stages that read an input only some tasks have, and the applies_to that skips the others.
STAGE_NEEDS = {"tapt:transfer": "transfer", "curated": "curated"}
BEST_OTHER = "best_other"   # Claim.worse: each other condition of the claim's table (better beats them all)
NOT_CONDITIONS = ("suites",)   # the folder of experiments/ that holds no condition


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
class Condition:
    """One folder of experiments/: how its models are made (`stages`) and where it is reported."""
    condition: str                 # its key: results/<suite>/<task>/<condition>/; equals the folder name
    display: str                   # the paper's name: the table row or column ("DAPT + TAPT")
    description: str
    order: float                   # position among the conditions in tables and listings
    tables: list[str] = field(default_factory=list)   # tables it appears in: "3" ... "9", "lora"
    stages: list[str] = field(default_factory=list)   # its chain of pretraining stages (STAGE_SPEC)
    applies_to: str = "all"        # which tasks have this condition in the paper
    claims: list[Claim] = field(default_factory=list)
    significance_against: list[str] = field(default_factory=list)  # tested besides the baseline
    default: bool = True           # runs in `dontstop reproduce` without --conditions

    def applies(self, task: Task, suite: SuiteTasks) -> bool:
        return self.missing_input(task, suite) is None

    def missing_input(self, task: Task, suite: SuiteTasks) -> str | None:
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
    members: tuple[Condition, ...]
    root: Path = EXPERIMENTS_DIR    # the experiments directory they are the folders of

    def __iter__(self):
        return iter(self.members)

    def __contains__(self, key: str) -> bool:
        return key in self.display

    @property
    def display(self) -> dict[str, str]:
        return {e.condition: e.display for e in self.members}

    @property
    def baseline(self) -> str:
        """The condition with no pretraining: every other one is tested against it."""
        return next(e.condition for e in self.members if not e.stages)

    def in_tables(self, *tables: str) -> list[str]:
        return [e.condition for e in self.members if set(tables) & set(e.tables)]

    def knn(self) -> list[tuple[str, int]]:
        """(condition, k) of every kNN-TAPT condition, by k."""
        return sorted(((e.condition, e.knn_k) for e in self.members if e.knn_k),
                      key=lambda pair: pair[1])

    def claims(self) -> list[Claim]:
        return sorted((c for e in self.members for c in e.claims), key=lambda c: c.order)

    def get(self, key: str) -> Condition:
        for condition in self.members:
            if condition.condition == key:
                return condition
        raise UserError(f"unknown condition {key!r}; known: {', '.join(self.display)}")


def load_condition(directory: str | Path) -> Condition:
    """The condition of one folder (its config.yaml), checked: stages, choices, its key."""
    directory = Path(directory)
    config_path = directory / "config.yaml"
    data, lines = read_yaml_mapping(config_path)
    condition = from_dict(Condition, data, str(config_path), lines)
    for spec in condition.stages:
        if not STAGE_SPEC.match(spec):
            raise UserError(f"{config_path}: key 'stages': unknown stage {spec!r}; expected dapt, dapt:irrelevant, "
                            "dapt:lora, tapt, tapt:transfer, tapt:lora, curated, knn:<k> or random:<k>")
    _check_choice(config_path, "applies_to", [condition.applies_to], APPLIES_TO)
    _check_choice(config_path, "tables", condition.tables, TABLES)
    _check_choice(config_path, "claims: test", [c.test for c in condition.claims], CLAIM_TESTS)
    _check_choice(config_path, "claims: table", [c.table for c in condition.claims], CLAIM_TABLES)
    for claim in condition.claims:   # a condition against itself differs by 0 on every seed
        if claim.better == claim.worse:
            raise UserError(f"{config_path}: key 'claims': {claim.claim!r} compares {claim.better!r} with itself")
    _check_values(condition, lambda key: located(str(config_path), lines, key))
    if condition.condition != directory.name:
        same_letters = bool(unicode_twins(condition.condition, [directory.name]))
        raise UserError(f"{config_path}: key 'condition': {condition.condition!r} must equal "
                        f"the directory name {directory.name!r}" + (
                            " (the same letters in another Unicode form, NFC and NFD: a name copied from macOS? "
                            "retype one)" if same_letters else ""))
    return condition


def _check_values(condition: Condition, where) -> None:
    """What the types allow but no table can show: a nameless row, an order that sorts nowhere
    (NaN), a test against itself or twice, a stage whose input the tasks of `applies_to` lack."""
    if not condition.display.strip():
        raise UserError(f"{where('display')}: key 'display': empty; it is the condition's table row")
    if character := unprintable(condition.display):
        raise UserError(f"{where('display')}: key 'display': holds {character!r}; it is the condition's table "
                        "row, one line")
    if not math.isfinite(condition.order):
        raise UserError(f"{where('order')}: key 'order': {condition.order}; must be a finite number")
    against = condition.significance_against
    for key in dict.fromkeys(k for k in against if k == condition.condition or against.count(k) > 1):
        raise UserError(f"{where('significance_against')}: key 'significance_against': {key!r} "
                        + ("is this condition (a test against itself)" if key == condition.condition else "given twice"))
    for spec, applies_to in STAGE_NEEDS.items():
        if spec in condition.stages and condition.applies_to != applies_to:
            raise UserError(f"{where('applies_to')}: key 'applies_to': {condition.applies_to!r}, but stage {spec!r} "
                            f"runs only on {APPLIES_TO_TEXT[applies_to]}; set applies_to: {applies_to}")


def _check_choice(path: Path, key: str, values: list[str], known: tuple[str, ...]) -> None:
    for value in values:
        if value not in known:
            raise UserError(f"{path}: key '{key}': {value!r} is not one of {', '.join(known)}")


def _looked_at(folder: Path) -> bool:
    """Whether a folder of the experiments folder is taken for a condition's."""
    return folder.name not in NOT_CONDITIONS and not folder.name.startswith((".", "_"))


def check_outside_conditions(folder: str | Path, root: str | Path, flag: str) -> None:
    """A folder a command writes (`flag`'s) is not, nor lies in, a folder of `root` taken for a
    condition's without being one: experiments/mini (`--tables-dir experiments`) or experiments/res
    (`--results-dir`) had no config.yaml, and every later command refused it. suites/ and a condition
    folder of its own are fine (a study file in suites/ keeps its tables/ there)."""
    folder, root = Path(folder).resolve(), Path(root).resolve()
    if folder != root and root not in folder.parents:
        return
    top = root / folder.relative_to(root).parts[0] if folder != root else root
    if folder == root or (_looked_at(top) and not (top / "config.yaml").is_file()):
        raise UserError(f"{flag} {folder}: among the condition folders of {root}, where {top} would be a "
                        "folder without config.yaml, which every command refuses; give it a folder of its own")


def load_conditions(root: str | Path = EXPERIMENTS_DIR) -> Conditions:
    """Every condition folder under `root` (a folder holding */config.yaml), checked together."""
    root = Path(root)
    found = [load_condition(p.parent) for p in sorted(root.glob("*/config.yaml"))]
    if not found:
        raise UserError(f"{root}: no condition folders (*/config.yaml)")
    for folder in sorted(root.iterdir()):   # else a condition no command would run, report or name
        if _looked_at(folder) and (folder.is_dir() or folder.is_symlink()) and not (folder / "config.yaml").is_file():
            raise UserError(f"{folder}: a folder of {root} without config.yaml ({_contents(folder)}); "
                            "every folder there but suites/ is a condition (copy another's config.yaml)")
    clash = shared_names({e.condition: e.condition.casefold() for e in found})
    if clash:   # one results folder, results/<suite>/<task>/<key>/, on a disk that ignores case
        key, _, first = clash[0]
        raise UserError(f"{root / key / 'config.yaml'}: condition {key!r} differs from condition {first!r} "
                        "only in case; their results folders would be one on macOS or Windows: rename one")
    conditions = Conditions(tuple(sorted(found, key=lambda e: (e.order, e.condition))), root)
    if sum(not e.stages for e in found) != 1:
        raise UserError(f"{root}: exactly one condition must have no stages (the baseline)")
    # two table columns of one name
    shared = shared_names({key: as_shown(name) for key, name in conditions.display.items()})
    if shared:
        key, name, first = shared[0]
        raise UserError(f"{root / key / 'config.yaml'}: key 'display': {name!r} names condition {first!r} too; "
                        "every condition needs a name of its own")
    for condition in found:
        for key in referenced_conditions(condition):
            if key not in conditions:
                raise UserError(f"{root / condition.condition / 'config.yaml'}: condition {key!r} is not a folder "
                                f"of {root}")
        check_claim_tables(condition, {e.condition: e for e in found}, root / condition.condition / "config.yaml")
    return conditions


def check_claim_tables(condition: Condition, by_key: dict[str, Condition], config_path: Path) -> None:
    """Each claim compares conditions its table shows: tested where a table left one out (its
    `tables` edited), the findings gave a difference no table had the scores of."""
    for claim in condition.claims:
        shown = SAME_FILE.get(claim.table, (claim.table,))
        for key in (claim.better, claim.worse):
            if key in by_key and not set(shown) & set(by_key[key].tables):
                tables = ", ".join(by_key[key].tables) or "none"
                raise UserError(f"{config_path}: key 'claims': {claim.claim!r} is tested on table {claim.table!r}, "
                                f"which does not show condition {key!r} (its tables: {tables}); add {claim.table!r} "
                                "to its tables, or test the claim on a table that shows it")


def referenced_conditions(condition: Condition) -> list[str]:
    """The conditions a condition's claims and significance tests compare it with."""
    return ([c.better for c in condition.claims] + [c.worse for c in condition.claims if c.worse != BEST_OTHER]
            + condition.significance_against)


def _contents(folder: Path) -> str:
    if not folder.exists():
        return "a link to nothing"
    held = sorted(p.name for p in folder.iterdir())
    return f"it holds {', '.join(held[:5])}" if held else "empty"


def select_conditions(conditions: Conditions, keys: list[str] | None) -> list[Condition]:
    """The named conditions (without names: every one whose folder says `default: true`),
    with a one-line error for an unknown name."""
    if not keys:
        return [e for e in conditions if e.default]
    return [conditions.get(key) for key in dict.fromkeys(keys)]


