"""The condition folders named to `dontstop run` (anywhere, not only experiments/'s), checked
against each other and against the conditions of the experiments folder whose results they share."""
from __future__ import annotations

import os
from pathlib import Path

from .conditions import (EXPERIMENTS_DIR, Condition, check_claim_tables, load_condition,
                         referenced_conditions)
from .fileio import UserError


def _nearest_condition(given: str, experiments_dir: Path) -> str:
    """The hint for a condition folder that is not there: the folder of that name in the
    experiments folder, or the names there."""
    if (experiments_dir / Path(given).name / "config.yaml").is_file():
        return f"did you mean {experiments_dir / Path(given).name}?"
    known = sorted(p.parent.name for p in experiments_dir.glob("*/config.yaml"))
    return f"the condition folders of {experiments_dir}: {', '.join(known)}"


def load_condition_folders(paths: list[str], experiments_dir: str | Path = EXPERIMENTS_DIR) -> list[Condition]:
    """The conditions of `dontstop run`'s folders (a folder given twice, once). Refused: a file
    for a folder; two folders of one key (or of keys differing only in case); a folder whose key
    is a condition of `experiments_dir` with other stages. Each pair would write one
    results/<suite>/<task>/<key>/, which the tables read as the condition of that name."""
    loaded: dict[Path, Condition] = {}
    for given in paths:
        folder = Path(os.path.abspath(given))   # `dontstop run .` in a condition folder: its name
        if folder.is_file():
            raise UserError(f"{given}: a file; give the condition's folder ({folder.parent}), "
                            "which holds its config.yaml")
        if not folder.exists():   # `run tapt` for `run experiments/tapt`, or a typo of a key
            raise UserError(f"{given}: no such condition folder; " + _nearest_condition(given, Path(experiments_dir)))
        loaded.setdefault(folder, load_condition(folder))
    first = {condition.condition.casefold(): folder for folder, condition in reversed(loaded.items())}
    for folder, condition in loaded.items():
        key, twin = condition.condition, first[condition.condition.casefold()]
        writes = f"both would write results/<suite>/<task>/{key}/"
        if twin != folder:
            same = loaded[twin].condition
            raise UserError(f"{folder / 'config.yaml'}: condition {key!r} is given twice (also {twin}); {writes}: "
                            "give one, or rename one folder and its key" if same == key else
                            f"{folder / 'config.yaml'}: condition {key!r} differs from {same!r} of {twin} only in "
                            f"case; on macOS and Windows {writes}: rename one folder and its key")
        shipped = Path(experiments_dir) / key
        if (shipped / "config.yaml").is_file() and shipped.resolve() != folder.resolve():
            stages = load_condition(shipped).stages
            if stages != condition.stages:
                raise UserError(f"{folder / 'config.yaml'}: condition {key!r} is also {shipped}, with stages "
                                f"{stages} there and {condition.stages} here; {writes}, which the tables "
                                "read as the one there: rename this folder and its key")
    known = {path.parent.name for path in Path(experiments_dir).glob("*/config.yaml")} | {
        condition.condition for condition in loaded.values()}
    for folder, condition in loaded.items():   # a claim on a typo of a condition was never tested
        for key in referenced_conditions(condition):
            if key not in known:
                raise UserError(f"{folder / 'config.yaml'}: condition {key!r} is not a folder of {experiments_dir} "
                                "nor one given")
        given = {c.condition: c for c in loaded.values()}
        by_key = {key: given.get(key) or load_condition(Path(experiments_dir) / key)
                  for key in referenced_conditions(condition)}
        check_claim_tables(condition, by_key, folder / "config.yaml")
    return list(loaded.values())
