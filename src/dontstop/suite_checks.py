"""A suite's sections checked as one: recipe keys, types and ranges (recipes.py), the
selection settings, seeds, and the task and domain keys of its maps, every problem at once, one
line each with its file and line. suites.load_suite calls it on every suite it loads, built-in or
study file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import from_dict, nested_key_lines
from .fileio import UserError, raise_problems
from .overrides import Override, given_for
from .recipes import SEED, range_violations, section_problems


@dataclass
class SelectionSettings:
    """The keys a suite's `selection` (and `quick.selection`) may give: select_corpus's keywords
    (select/selection.py), and the runner's scale of each condition's k."""
    embedder: str = "bow"
    encoder_model: str = "bundled:minilm"
    dim: int = 128
    index: str = "flat"
    nprobe: int = 32
    k_scale: float = 1.0        # k of a knn:<k> / random:<k> stage x this (the mini pools are small)


def check_sections(suite, path: Path, overrides: list[Override] = ()) -> None:
    """Every mistake in the suite's sections at once, one line each with its file and line (or
    the command-line flag that gave the value: `overrides`), now rather than an hour into a run:
    recipe keys, types and ranges (recipes.py), seeds, and the task and domain keys of its maps
    (the suite's lookups name the known ones)."""
    lines = nested_key_lines(path)

    def where(keys: tuple[str, ...]) -> str:
        flag = given_for(list(overrides), keys)
        if flag:
            return flag
        while keys and keys not in lines:
            keys = keys[:-1]
        return f"{path}:{lines[keys]}" if keys else str(path)

    problems = section_problems(suite.recipes, suite.finetune, suite.quick, where)
    for keys, settings in ((("selection",), suite.selection), (("quick", "selection"), suite.quick.get("selection"))):
        try:
            from_dict(SelectionSettings, settings or {}, f"{where(keys)}: {'.'.join(keys)}")
        except UserError as e:
            problems.append(str(e))
    seeds = {"seeds": suite.seeds, "quick_seeds": suite.quick_seeds, "pretrain_seed": suite.pretrain_seed}
    problems += [f"{where((v.field,))}: {v.as_key()}" for v in range_violations(dict.fromkeys(seeds, SEED), seeds)]
    problems += [f"{where((key,))}: key '{key}': seed {seed} given twice" for key in ("seeds", "quick_seeds")
                 for seed in sorted({s for s in getattr(suite, key) if getattr(suite, key).count(s) > 1})]
    lookups = [("tasks", suite.task, suite.tasks), ("domain_corpora", suite.domain, suite.domain_corpora),
               ("pools", suite.domain, suite.pools), ("curated", suite.task, suite.curated)]
    for key, lookup, names in lookups:
        for name in names:
            try:
                lookup(name)
            except UserError as e:
                problems.append(f"{where((key, name) if isinstance(names, dict) else (key,))}: key '{key}': {e}")
    raise_problems(problems)
