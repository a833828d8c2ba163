"""A suite's sections checked as one: recipe keys, types and ranges (recipes.py), the
selection settings, seeds, and the task and domain keys of its maps, every problem at once, one
line each with its file and line. suites.load_suite calls it on every suite it loads, built-in or
study file.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .conditions import EXPERIMENTS_DIR
from .config import as_shown, from_dict, nested_key_lines, shared_names
from .fileio import UserError, raise_problems, same_text, wrong_kind
from .models import BUNDLED
from .overrides import Override, given_for
from .recipes import (LORA_RECIPES, RECIPE_KINDS, SET_BY_THE_RUNNER, AdapterRecipe, FinetuneRecipe, PretrainRecipe,
                      adapter_violations, violations)
from .tasks import GENERAL_TEXT, RELEASED_BASE_IDS
from .value_rules import AT_LEAST_1, POSITIVE, SEED, OneOf, Range, Violation, range_violations


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
    bow_tokens: str = "sklearn"  # how the bow embedder finds words (select/embed.BOW_TOKENS)
    unit: str = "sentence"       # a candidate: a sentence of a pool line, or the line (data/sentences.py)
    query_unit: str = "sentence"  # a query: a sentence of a task text, or the text (data/sentences.py)


# The values a selection setting takes (a dim of 0 failed inside scikit-learn, mid-run; an
# unknown embedder or index in select_corpus, once the stages before it were built). The
# choices are select/embed.EMBEDDERS, select/index.INDEX_TYPES and data/sentences.POOL_UNITS and
# QUERY_UNITS (a test holds them equal; a shared basic imports no phase).
# dim: the bow embedder's SVD size (VAMPIRE's 81, ours 128); 100,000 was killed for memory (22 GB) after the pool scan
SELECTION_RANGES = {"dim": Range(1, 1024), "nprobe": AT_LEAST_1, "k_scale": POSITIVE,
                    "embedder": OneOf(("bow", "encoder")), "index": OneOf(("flat", "ivf")),
                    "bow_tokens": OneOf(("sklearn", "scripts")), "unit": OneOf(("sentence", "line")),
                    "query_unit": OneOf(("sentence", "text"))}
# What a corpus key given empty is told to give instead
CORPUS_KEYS = {"base_corpus": "a corpus file, or null for no base stage", "domain_corpora": "the domain's corpus file",
               "pools": "a pool file, or leave the domain out of pools",
               "curated": "a curated file, or leave the task out of curated"}


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
            continue
        problems += [f"{where(keys + (v.field,))}: {'.'.join(keys)}: {v.as_key()}"
                     for v in range_violations(SELECTION_RANGES, settings or {})]
    seeds = {"seeds": suite.seeds, "quick_seeds": suite.quick_seeds, "pretrain_seed": suite.pretrain_seed}
    # the dry run's rate: 0 was a ZeroDivisionError, a negative or NaN one a cost of -7001.2 min
    problems += [f"{where((v.field,))}: {v.as_key()}" for v in range_violations(
        {"estimate_tokens_per_s": POSITIVE}, {"estimate_tokens_per_s": suite.estimate_tokens_per_s})]
    bench = suite.estimate_bench and EXPERIMENTS_DIR.parent / suite.estimate_bench
    if bench and not bench.is_file():   # its GPU rates were replaced by the CPU default, still called GPU
        problems.append(f"{where(('estimate_bench',))}: key 'estimate_bench': {bench}: no such file")
    problems += [f"{where((v.field,))}: {v.as_key()}" for v in range_violations(dict.fromkeys(seeds, SEED), seeds)]
    problems += [f"{where((key,))}: key '{key}': seed {seed} given twice" for key in ("seeds", "quick_seeds")
                 for seed in sorted({s for s in getattr(suite, key) if getattr(suite, key).count(s) > 1})]
    problems += [f"{where(('tasks',))}: key 'tasks': task {key} given twice" for key in dict.fromkeys(suite.tasks)
                 if suite.tasks.count(key) > 1]
    # Nothing to fine-tune: refused before the pretraining stages, which would run for nothing.
    problems += [f"{where((key,))}: key '{key}': empty; give at least one" for key in ("seeds", "quick_seeds", "tasks")
                 if isinstance(getattr(suite, key), list) and not getattr(suite, key)]
    if not suite.base_model.strip():   # it was ".: not a model directory", naming no key or flag
        problems.append(f"{where(('base_model',))}: key 'base_model': empty; give a hub id, bundled:<name> or a model folder")
    elif suite.base_model.startswith("bundled:") and suite.base_model.removeprefix("bundled:") not in BUNDLED:
        problems.append(f"{where(('base_model',))}: key 'base_model': {suite.base_model!r}: unknown bundled model; "
                        f"known: {', '.join(f'bundled:{name}' for name in BUNDLED)}")   # it named no key
    problems += _shared_display_names(suite, where)
    problems += _released_problems(suite, where)
    lookups = [("tasks", suite.task, suite.tasks), ("domain_corpora", suite.domain, suite.domain_corpora),
               ("pools", suite.domain, suite.pools), ("curated", suite.task, suite.curated)]
    unknown = set()   # a name the suite has not: its path is not looked at
    for key, lookup, names in lookups:
        for name in names:
            try:
                lookup(name)
            except UserError as e:
                problems.append(f"{where((key, name) if isinstance(names, dict) else (key,))}: key '{key}': {e}")
                unknown.add((key, name))
    if GENERAL_TEXT in suite.domain_corpora:   # its corpus replaced the base corpus in Figure 2 and the findings
        problems.append(f"{where(('domain_corpora', GENERAL_TEXT))}: key 'domain_corpora.{GENERAL_TEXT}': "
                        f"'{GENERAL_TEXT}' names the general text (base_corpus) in the domain analysis; "
                        "give the domain another name")
    wrong = _corpus_problems(suite, where, unknown)
    problems += wrong.values()
    corpora = {domain: str(Path(suite.data_path(path)).resolve()) for domain, path in suite.domain_corpora.items()
               if ("domain_corpora", domain) not in wrong}
    # one text (one file, or a copy) as two domains: ¬DAPT was DAPT, and the claim that it is worse
    # compared a corpus with itself
    domains = list(corpora)
    for later, (domain, corpus) in enumerate(corpora.items()):
        if first := next((earlier for earlier in domains[:later] if same_text(corpora[earlier], corpus)), None):
            problems.append(f"{where(('domain_corpora', domain))}: key 'domain_corpora.{domain}': {corpus} "
                            f"{_is_or_copy(corpus, corpora[first])} the corpus of domain {first!r} too; "
                            "each domain needs its own")
    # the base stage trained on a domain's text: "RoBERTa" had seen the domain, and DAPT differed only in steps
    base = (suite.base_corpus and ("base_corpus",) not in wrong
            and str(Path(suite.data_path(suite.base_corpus)).resolve()))
    for domain in [domain for domain, corpus in corpora.items() if base and same_text(base, corpus)]:
        if given := given_for(list(overrides), ("base_corpus",)):   # the flag that made them one
            key, corpus, other, what = "base_corpus", base, corpora[domain], f"corpus of domain {domain!r}"
        else:
            given, key, what = where(("domain_corpora", domain)), f"domain_corpora.{domain}", "base_corpus"
            corpus, other = corpora[domain], base
        problems.append(f"{given}: key '{key}': {corpus} {_is_or_copy(corpus, other)} the {what} too (the base "
                        "stage trains on general text); a domain needs text of its own")
    raise_problems(problems)


def _corpus_problems(suite, where: Callable[[tuple[str, ...]], str], unknown: set[tuple[str, str]]
                     ) -> dict[tuple[str, ...], str]:
    """The line of each corpus, pool or curated path that is empty, or a folder, a fifo or a device,
    by its keys (("pools", "cs")), naming its file line or flag. Neither was named: "" was the study's
    own folder (a built-in suite's data folder), `dontstop: error: /my/study: a folder, not a file`,
    and a folder given by `--set`, `--domain-corpus`, `--pool` or `--curated-corpus` that line too."""
    given = [(("base_corpus",), suite.base_corpus)]
    given += [((key, name), path) for key in ("domain_corpora", "pools", "curated")
              for name, path in getattr(suite, key).items() if (key, name) not in unknown]
    problems = {}
    for keys, path in given:
        if not isinstance(path, str):   # null: no base stage
            continue
        found = Path(suite.data_path(path))
        if not path.strip():
            problems[keys] = f"{where(keys)}: key '{'.'.join(keys)}': empty; give {CORPUS_KEYS[keys[0]]}"
        elif found.exists() and (what := wrong_kind(found)):   # not there: the plan's input checks say so
            problems[keys] = f"{where(keys)}: key '{'.'.join(keys)}': {found}: {what}"
    return problems


def _is_or_copy(path: str, other: str) -> str:
    """How `path` is another key's text: the same file, or a copy of it (named)."""
    return "is" if path == other else f"(a copy of {other}) is"


def _released_problems(suite, where: Callable[[tuple[str, ...]], str]) -> list[str]:
    """--from-released(-dapt) (or its suite key) where none of the suite's tasks has a released
    checkpoint (the mini suite, a study's own tasks): it would change nothing, silently."""
    tasks = [suite.task_table[key] for key in suite.tasks if key in suite.task_table]
    domains = [suite.domain_table.get(task.domain) for task in tasks]
    released_dapt = any(domain and domain.dapt_checkpoint for domain in domains)
    released = {"from_released": ("checkpoint", released_dapt or any(suite.released.get(t.key) for t in tasks)),
                "from_released_dapt": ("DAPT model", released_dapt)}
    problems = [f"{where((key,))}: key '{key}': no task of suite {suite.name!r} has a released {what} "
                "(the paper suite's tasks have them); it would change nothing, so it is refused"
                for key, (what, found) in released.items() if getattr(suite, key) and not found]
    given = [key for key, (_, found) in released.items() if getattr(suite, key) and found]
    if given and not _is_roberta_base(suite.base_model):
        # a study extending paper with base_model roberta-large: its TAPT and DAPT rows were the
        # authors' roberta-base models, its baseline (and kNN, LoRA rows) roberta-large, without a word
        problems.append(f"{where(('base_model',))}: key 'base_model': {suite.base_model!r}, but the authors' "
                        f"released checkpoints ({given[0]}) were pretrained from roberta-base: their rows would "
                        f"stand beside this model's baseline; leave {given[0]} out, or give base_model roberta-base")
    elif given and suite.base_corpus:
        problems.append(f"{where(('base_corpus',))}: key 'base_corpus': the suite's RoBERTa is a base stage built "
                        f"on {suite.base_corpus}, but the authors' released checkpoints ({given[0]}) start from "
                        f"roberta-base itself; leave {given[0]} or base_corpus out")
    return problems


def _is_roberta_base(model: str) -> bool:
    """roberta-base by its hub id, or a local folder of its shape (12 layers of 768, 50,265 tokens)."""
    config = Path(model).expanduser() / "config.json"
    if model in RELEASED_BASE_IDS or not config.is_file():
        return model in RELEASED_BASE_IDS
    try:
        shape = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True   # an unreadable config is the model loader's to name
    return isinstance(shape, dict) and (shape.get("model_type"), shape.get("hidden_size"),
                                        shape.get("num_hidden_layers"), shape.get("vocab_size")) == ("roberta", 768, 12, 50265)


def section_problems(recipes: Mapping[str, Any], finetune: Mapping[str, Any], quick: Mapping[str, Any],
                     where: Callable[[tuple[str, ...]], str]) -> list[str]:
    """One line per mistake in a suite's `recipes`, `finetune` and `quick` sections: an unknown
    recipe, section or key, a value of the wrong type or out of range, and then each whole
    pretraining recipe the runner would build from them (alone, and with its quick overrides).
    `where(keys)` is "file:line" of a key, e.g. ("recipes", "base", "batch_size")."""
    problems, sections = [], []
    for kind, overrides in recipes.items():
        if kind in RECIPE_KINDS:
            sections.append((("recipes", kind), PretrainRecipe, overrides))
        else:
            problems.append(f"{where(('recipes', kind))}: key 'recipes': unknown recipe {kind!r}; "
                            f"known: {', '.join(RECIPE_KINDS)}")
    sections.append((("finetune",), FinetuneRecipe, finetune))
    for section, overrides in quick.items():
        if section in RECIPE_KINDS or section == "finetune":
            sections.append((("quick", section), FinetuneRecipe if section == "finetune" else PretrainRecipe,
                             overrides))
        elif section != "selection":
            problems.append(f"{where(('quick', section))}: key 'quick': unknown section {section!r}")
    for keys, cls, overrides in sections:
        runners = SET_BY_THE_RUNNER[cls]
        name, known = ".".join(keys), [f.name for f in dataclasses.fields(cls) if f.name not in runners]
        problems += [f"{where(keys + (key,))}: {name}: key '{key}': unknown; known keys: {', '.join(sorted(known))}"
                     for key in overrides if key not in known and key not in runners]
        each = "stage" if cls is PretrainRecipe else "run"
        problems += [f"{where(keys + (key,))}: {name}: key '{key}': the runner sets it for every {each}; set "
                     f"{runners[key]} instead" for key in overrides if key in runners]
        problems += [f"{where(keys + (v.field,))}: {name}: {v.as_key()}"
                     for v in violations(cls, {k: v for k, v in overrides.items() if k not in runners})]
        problems += _adapter_problems(keys, overrides, where) if cls is PretrainRecipe else []
    if problems:
        return problems
    seen: dict[str, list[Violation]] = {}
    for kind in RECIPE_KINDS:   # a LoRA kind is its full kind's recipe with its own keys on top:
        base = recipes.get(LORA_RECIPES.get(kind), {})   # what that one inherits is said there, once
        inherited = seen.get(LORA_RECIPES.get(kind), [])
        alone = violations(PretrainRecipe, {**base, **recipes[kind]}, whole=True) if kind in recipes else []
        quick_too = (violations(PretrainRecipe, {**base, **recipes.get(kind, {}), **quick[kind]}, whole=True)
                     if kind in quick else [])
        seen[kind] = alone + quick_too
        problems += [f"{where(('recipes', kind))}: recipes.{kind}: {v.as_key()}" for v in alone if v not in inherited]
        problems += [f"{where(('quick', kind))}: quick.{kind}: {v.as_key()}" for v in quick_too   # said once
                     if v.field not in {w.field for w in alone + inherited}]
    return problems


def _adapter_problems(keys: tuple[str, ...], overrides: Mapping[str, Any],
                      where: Callable[[tuple[str, ...]], str]) -> list[str]:
    """An `adapter` section only where a stage trains adapters, with AdapterRecipe's keys and types."""
    adapter = overrides.get("adapter")
    if not isinstance(adapter, dict):   # None: no adapter; not a mapping: the type check's line says so
        return []
    at = f"{where(keys + ('adapter',))}: {'.'.join(keys)}"
    if keys[-1] not in LORA_RECIPES:
        return [f"{at}: key 'adapter': the {keys[-1]} stage trains every weight and takes no adapter; only "
                f"{', '.join(LORA_RECIPES)} do"]
    try:
        checked = from_dict(AdapterRecipe, adapter, f"{at}: adapter")
    except UserError as e:
        return [str(e)]
    return [f"{at}: adapter: {v.as_key()}" for v in adapter_violations(checked)]


def _shared_display_names(suite, where: Callable[[tuple[str, ...]], str]) -> list[str]:
    """Two tasks with one display name (config.shared_names); an unknown task key is the lookups' to say."""
    names = {key: as_shown(suite.task_table[key].name) for key in suite.tasks if key in suite.task_table}
    return [f"{where(('tasks', key, 'display'))}: key 'tasks.{key}.display': {name!r} names task {first!r} too; "
            "every task's table row needs a name of its own" for key, name, first in shared_names(names)]
