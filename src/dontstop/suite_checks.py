"""A suite's sections checked as one: recipe keys, types and ranges (recipes.py), seeds, and
the task and domain keys of its maps, every problem at once, one line each with its file and
line. experiment.load_suite calls it on every suite it loads, built-in or study file.
"""
from __future__ import annotations

from pathlib import Path

from .config import nested_key_lines
from .fileio import UserError, raise_problems
from .recipes import SEED, range_violations, section_problems


def check_sections(suite, path: Path) -> None:
    """Every mistake in the suite's sections at once, one line each with its file and line,
    now rather than an hour into a run: recipe keys, types and ranges (recipes.py), seeds,
    and the task and domain keys of its maps (the suite's lookups name the known ones)."""
    lines = nested_key_lines(path)

    def where(keys: tuple[str, ...]) -> str:
        while keys and keys not in lines:
            keys = keys[:-1]
        return f"{path}:{lines[keys]}" if keys else str(path)

    problems = section_problems(suite.recipes, suite.finetune, suite.quick, where)
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
