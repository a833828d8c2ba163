"""A `--set` that the run it is given to never reads, refused in one line before any work.

    --set quick.tapt.epochs=2               (no --quick)       a full run reads recipes.tapt.epochs
    --set selection.encoder_model=M         (embedder bow)     the bag-of-words embedder loads no model
    --set recipes.base.max_steps=5          (base_corpus null) the suite has no base stage
    --set recipes.tapt_large_lora.lr=1e-3   (mini)             no mini task's TAPT is tapt_large
    --set finetune.warmup_ratio=0.1         (constant schedule on every task) no warm-up to shape
    --set quick_probe=true --quick          (probe false)      a quick run probes only where a full one does
    --pool reviews=P                        (mini)             mini's kNN- and RAND-TAPT run on aclsum-roles (cs)
    --set selection.k_scale=0.5             (no pools)         a study without pools selects nothing
    --set recipes.dapt.lr=1e-4 --from-released-dapt (paper)    DAPT is released, DAPT (LoRA) has its own lr

Each was accepted without a word, exit 0: the researcher believed the run made with it, and
where the key is part of a stage's key or a run's recorded recipe (selection, warmup_ratio) the
run rebuilt kNN stages or redid every fine-tuning run, to the same numbers, calling the finished
ones stale. The opposite of the first, a full-run key that --quick replaces, is suites.with_quick's.

Only the command line's settings: a suite or study file holds the values of several runs on
purpose (its `quick` block beside the full recipes, an encoder model for the day its embedder is
switched). And only what no run of this suite reads: a `--conditions` or `--tasks` that leaves a
stage or task out narrows one run, and the same `--set` serves the others. Every condition folder
is one such run (`conditions`: those of --experiments-dir, and `run`'s folders): a folder of one's
own that selects on every task (`stages: [knn:50]`, `applies_to: all`) reads every domain's pool, and
one that pretrains DAPT after TAPT (`stages: [tapt, dapt]`) builds DAPT from recipes.dapt whatever
from_released_dapt says; they were refused as read by no run.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

from .conditions import Condition, load_conditions
from .config import MERGED_SECTIONS
from .overrides import Override
from .suite_checks import SelectionSettings
from .suites import Suite
from .tasks import Task

QUICK_ONLY = {"quick_seeds": ("seeds",), "quick_probe": ("probe",)}   # top-level quick keys -> the full run's
# The TAPT recipes -> the Task.tapt_recipe of the tasks whose TAPT (or TAPT (LoRA)) stage reads them
TAPT_READERS = {"tapt": "tapt", "tapt_lora": "tapt", "tapt_large_lora": "tapt_large"}
# A selection setting -> (the setting that decides whether it is read, the value it must have, who reads it)
SELECTION_READERS = {"encoder_model": ("embedder", "encoder", "the encoder embedder reads it"),
                     "dim": ("embedder", "bow", "the bow embedder reads it (the encoder's vectors are its model's "
                                            "hidden size)"),
                     "bow_tokens": ("embedder", "bow", "the bow embedder reads it"),
                     "nprobe": ("index", "ivf", "the ivf index reads it (a flat index compares every vector)")}


def unused_settings(suite: Suite, overrides: list[Override], quick: bool,
                    conditions: Iterable[Condition] | None = None) -> list[str]:
    """One line per command-line setting (`overrides`, --set and the flags standing for suite keys)
    that no run of `suite` reads, with or without --quick (`quick`), under any of `conditions`
    (default: experiments/'s); `suite` is as loaded, before suites.with_quick. A setting is a path
    into the suite (a mapping given to a section merged key by key is each of its keys)."""
    conditions = list(load_conditions() if conditions is None else conditions)
    problems = []
    for override in overrides:
        found = next(filter(None, (_unused(suite, path, quick, conditions)
                                   for path in _paths(override.keys, override.value))), None)
        if found:
            problems.append(f"{override.given}: {found}")
    return problems


def _paths(keys: tuple[str, ...], value: Any) -> Iterator[tuple[str, ...]]:
    """The leaf keys a setting sets: `finetune={lr: 1e-4}` sets finetune.lr (merged, not replaced)."""
    if keys[0] in MERGED_SECTIONS and isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from _paths(keys + (str(key),), inner)
    else:
        yield keys


def _unused(suite: Suite, path: tuple[str, ...], quick: bool, conditions: list[Condition]) -> str | None:
    """Why no run reads the setting at `path`, or None."""
    if not quick and (path[0] in QUICK_ONLY or path[0] == "quick"):
        full = QUICK_ONLY.get(path[0]) or _full_counterpart(path)
        if not full:
            return ("a run without --quick reads none of it; set the full run's recipes, finetune or selection, "
                    "or add --quick")
        value = _value(suite, full)
        return (f"a run without --quick runs {'.'.join(full)} ({'not set' if value is None else value}) instead; "
                f"set {'.'.join(full)}, or add --quick")
    if quick and path[0] == "quick_probe" and suite.quick_probe and not suite.probe:
        return ("a quick run probes where probe and quick_probe both say so, and probe is false; set probe=true "
                "too, or leave it out")
    # under --quick, quick.<section> is merged over the full one: the same rules read it
    section = path[1:] if quick and path[0] == "quick" and len(path) > 1 else path
    if section[0] == "selection" and not _selecting(suite, conditions):
        return _no_task_selects(suite)
    if section[0] == "selection" and len(section) > 1 and section[1] in SELECTION_READERS:
        decider, needed, reader = SELECTION_READERS[section[1]]
        settings = {**suite.selection, **(suite.quick.get("selection", {}) if quick else {})}
        now = settings.get(decider, getattr(SelectionSettings, decider))
        if now != needed:
            return (f"only {reader}, and selection.{decider} is {now}; set selection.{decider}="
                    f"{needed} too, or leave it out")
    stage = section[1] if section[0] == "recipes" and len(section) > 1 else section[0]   # quick.base: recipes.base's
    if stage == "base" and not suite.base_corpus:
        return (f"the base stage's recipe, and suite {suite.name} has no base stage (base_corpus is null); "
                "give base_corpus a corpus file to add one, or leave it out")
    prefix = "quick." if path[0] == "quick" else "recipes."   # where a recipe key to set instead is
    if stage in TAPT_READERS:
        return _no_tapt_reads(suite, stage, prefix)
    rest = section[2:] if section[0] == "recipes" else section[1:]
    if stage == "dapt" and rest:
        return _no_dapt_reads(suite, rest[0], quick, prefix, conditions)
    if section[:2] == ("finetune", "warmup_ratio"):
        return _no_linear_schedule(suite, quick)
    if path[0] == "pools" and len(path) == 2:
        return _no_selection_from(suite, path[1], conditions)
    return None


def _selecting(suite: Suite, conditions: list[Condition]) -> list[Task]:
    """The suite's tasks a kNN- or RAND-TAPT stage runs on: the selection study's (Task.knn), and
    any that a condition with a knn:<k> or random:<k> stage applies to (one's own, `applies_to: all`)."""
    selectors = [c for c in conditions if any(spec.startswith(("knn:", "random:")) for spec in c.stages)]
    return [task for task in map(suite.task, suite.tasks)
            if task.knn or any(condition.applies(task, suite) for condition in selectors)]


def _no_task_selects(suite: Suite) -> str:
    """Why no stage reads a selection setting: no task of the suite selects (Task.knn)."""
    if suite.own_tasks:
        return (f"no task of suite {suite.name} selects: kNN- and RAND-TAPT run on the tasks of a domain given a "
                "pool (pools, or --pool), and it gives none; leave it out")
    study = [task.key for task in suite.task_table.values() if task.knn]
    return (f"no task of suite {suite.name} selects: kNN- and RAND-TAPT run on the tasks of its selection study "
            f"({', '.join(study)}), and none of them is among its tasks; leave it out")


def _no_selection_from(suite: Suite, domain: str, conditions: list[Condition]) -> str | None:
    """Why no stage selects from the pool of `domain`, or None: kNN- and RAND-TAPT run on the tasks
    of the automated-selection study (Task.knn: a built-in suite's Table 8 tasks, a study's tasks
    of a domain with a pool) and of any condition of one's own that selects (_selecting), from the
    pool of each one's domain; nothing else reads a pool."""
    tasks, selectors = [suite.task(key) for key in suite.tasks], _selecting(suite, conditions)
    if any(task.domain == domain for task in selectors):
        return None
    if not any(task.domain == domain for task in tasks):
        return f"no task of suite {suite.name} is of domain {domain}, so none selects from its pool; leave it out"
    selecting = ", ".join(task.key for task in selectors) or "none"
    return (f"no task of suite {suite.name} selects from a pool of domain {domain}: kNN- and RAND-TAPT run on the "
            f"tasks of its selection study alone ({selecting}); leave it out")


def _no_tapt_reads(suite: Suite, kind: str, section: str) -> str | None:
    """Why no TAPT stage of the suite reads recipes.`kind`, or None: each task's TAPT runs one
    recipe (Task.tapt_recipe: the paper's tasks of 5K examples or more, tapt_large), Transfer-TAPT
    its partner's; no other stage reads tapt, tapt_lora or tapt_large_lora. `section`: where the
    key to set instead is (recipes. or quick.)."""
    lora = kind.endswith("_lora")
    used = set()
    for key in suite.tasks:
        task = suite.task(key)
        used.add(task.tapt_recipe)
        if task.transfer and not lora and task.transfer in suite.task_table:   # Transfer-TAPT has no LoRA twin
            used.add(suite.task(task.transfer).tapt_recipe)
    needed = TAPT_READERS[kind]
    if needed in used:
        return None
    other = sorted(used)[0]   # tapt or tapt_large: every task runs the one that is not `needed`
    instead = other + ("_lora" if lora else "")
    return (f"no stage of suite {suite.name} reads it: the TAPT of each of its tasks runs recipes.{other}, not "
            f"recipes.{needed}; set {section}{instead}, or leave it out")


def _no_dapt_reads(suite: Suite, key: str, quick: bool, section: str, conditions: list[Condition]) -> str | None:
    """Why no stage reads recipes.dapt.`key`, or None: with from_released_dapt every DAPT model
    of the suite's domains (¬DAPT's too) is a released one, and DAPT (LoRA), which runs the dapt
    recipe with its own keys on top (stage_identity.stage_recipe), gives `key` itself. A DAPT stage
    after another (a condition's `stages: [tapt, dapt]`) is built from the recipe (runner/plan.py)."""
    after_another = any(spec in ("dapt", "dapt:irrelevant") for c in conditions for spec in c.stages[1:])
    if not suite.dapt_from_released or after_another:
        return None
    domains = {suite.task(task).domain for task in suite.tasks}
    domains |= {suite.domain(domain).irrelevant for domain in domains if suite.domain(domain).irrelevant}
    lora = {**suite.recipes.get("dapt_lora", {}), **(suite.quick.get("dapt_lora", {}) if quick else {})}
    if key not in lora or not all(suite.domain(domain).dapt_checkpoint for domain in domains):
        return None
    return (f"no stage of suite {suite.name} reads it: DAPT starts from the released models (from_released_dapt), "
            f"and DAPT (LoRA) runs recipes.dapt_lora.{key} ({lora[key]}) in its place; set {section}dapt_lora.{key}, "
            "or leave it out")


def _full_counterpart(path: tuple[str, ...]) -> tuple[str, ...] | None:
    """The full run's key of a `quick.*` path: quick.finetune.epochs -> finetune.epochs,
    quick.tapt.epochs -> recipes.tapt.epochs; None for `quick` itself."""
    if len(path) == 1:
        return None
    return path[1:] if path[1] in ("finetune", "selection") else ("recipes",) + path[1:]


def _value(suite: Suite, keys: tuple[str, ...]) -> Any:
    """The suite's value at `keys` (None where it is not set)."""
    node: Any = getattr(suite, keys[0])
    for key in keys[1:]:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _no_linear_schedule(suite: Suite, quick: bool) -> str | None:
    """Why finetune.warmup_ratio is read by no run, or None: it shapes the linear schedule's
    warm-up alone, and every task of the suite fine-tunes on the constant one."""
    finetune = {**suite.finetune, **(suite.quick.get("finetune", {}) if quick else {})}
    if finetune.get("schedule"):
        chosen = {finetune["schedule"]}
        why = f"finetune.schedule is {finetune['schedule']}"
    else:
        chosen = {suite.task(key).schedule for key in suite.tasks}
        why = "finetune.schedule is not set: each task's profile chooses it"
    if "linear" in chosen:
        return None
    return (f"only the linear schedule reads it, and every task of suite {suite.name} fine-tunes on the constant "
            f"one ({why}); set finetune.schedule=linear too, or leave it out")
