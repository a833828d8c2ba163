"""What makes a pretraining stage what it is, in one place: its key.

A stage's key is the sha256 of its parent (the base model, or the parent stage's key), its name and
kind, the content (sha256) of every input file, the selection settings, the pretraining seed, the
rule that decides which texts are one (TEXT_KEY_RULE), a selection's rule (SELECTION_RULE) and the
*resolved* recipe: every field of recipes.PretrainRecipe, defaults included, so that changing a
default in recipes.py builds a new checkpoint instead of silently reusing an old one (a field added
later is left out at the value every earlier stage was built with: recipes.ADDED_PRETRAIN_FIELDS).
The runner names checkpoint folders by it (runner/plan.py: `<lineage>-<key8>`); the domain
analysis finds the suite's own base and DAPT checkpoints by it (`domain_checkpoints`), never by what
happens to lie in the cache; and before a finished stage is built on, its record must be that of the
stage its folder is named for (`record_difference`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Callable

from .suites import Suite, checkpoint_name, checkpoints_dir
from .tasks import Domain, Task
from .fileio import file_sha256
from .config import from_dict
from .recipes import (ADDED_PRETRAIN_FIELDS, LORA_RECIPES, MACHINE_PRETRAIN_FIELDS, AdapterRecipe, PretrainRecipe,
                      whole_floats, with_added_fields)
from .records import PretrainRecord

# What deduplication and the leakage guard take for one text (data/formats.normalize), in every key:
# a stage built under another rule may have pretrained on text the rule now drops. 2 (2026-12-06):
# its letters, marks and digits (a tokenized copy of raw text is the same text, and a dev sentence
# so copied into a corpus is dropped); before, whitespace-collapsed text, and no entry in the key.
TEXT_KEY_RULE = 2
# How a kNN or RAND selection picks its candidates, in every selection stage's key: a corpus selected
# under another rule is another corpus. 2 (2026-12-07): each sentence of a dev/test text is kept out
# of the pool (data/leakage.selection_exclude), a kNN query of no word the embedder knows takes no
# neighbours (it took the pool's first k), and embedding and search run on one thread (on more
# they depended on the cores); before, none of these, and no entry in the key.
SELECTION_RULE = 2
# 3 (2026-12-07), only where a kNN selection's bow embedder finds words in every script
# (`selection.bow_tokens: scripts`, a study's default): it compares them in one Unicode form
# (data/scripts.word_form: NFC, full-width as ASCII), as the vocabulary overlap does; before, an NFD
# pool shared no accented word with an NFC task. The sklearn words (the built-in suites') are unchanged.
# 4 (2026-12-08): that form also drops Arabic and Hebrew vowel points, tatweel, joiners, direction
# marks and soft hyphens and reads presentation forms and halfwidth katakana as their letters, and
# "々", "〆" are letters of their own; before, a vowelled pool shared no word with a bare task
# ("كَتَبَ" and "كتب" were two words).
# 5 (2026-12-08): that form reads Persian and Urdu's own yeh, kaf and heh as Arabic's
# (data/scripts.KEYBOARD_LETTERS: "ی" is "ي", "ک" is "ك"); before, a Persian corpus typed on two
# keyboards held each word twice ("کتاب" and "كتاب"), and a pool typed on one shared no such word
# with a task typed on the other.
SCRIPTS_WORDS_RULE = 5


def selection_rule(selection: dict[str, Any]) -> int:
    """The rule a selection of these settings (method, embedder, bow_tokens; select's defaults where
    absent) was made under: SCRIPTS_WORDS_RULE where its words are the scripts ones, else SELECTION_RULE."""
    scripts_words = (selection.get("method", "knn") == "knn" and selection.get("embedder", "bow") == "bow"
                     and selection.get("bow_tokens") == "scripts")
    return SCRIPTS_WORDS_RULE if scripts_words else SELECTION_RULE

# Given per stage, not by the suite's recipe: the parent, the input files, the checkpoint folder
# (named by the key itself) and the suite's `pretrain_seed`; each is in the key on its own.
PER_STAGE_FIELDS = ("base_model", "corpora", "output_dir", "seed")
DEFAULT_DATA_DIR = Suite.data_dir   # how keys spell the data folder, wherever it is (keyed_path)


def resolved_recipe(overrides: dict[str, Any]) -> dict[str, Any]:
    """A suite's recipe section with recipes.PretrainRecipe's defaults filled in; a field added
    later (ADDED_PRETRAIN_FIELDS) is left out at the value stages were built with before it."""
    given = {key: value for key, value in overrides.items() if key not in PER_STAGE_FIELDS}
    recipe = whole_floats(PretrainRecipe, dataclasses.asdict(PretrainRecipe(base_model="", corpora=[], output_dir="",
                                                                           **given)))
    added_at_old_value = {key for key, old in ADDED_PRETRAIN_FIELDS.items() if recipe[key] == old}
    return {key: value for key, value in recipe.items()
            if key not in PER_STAGE_FIELDS and key not in added_at_old_value}


def keyed_path(suite: Suite, path: str) -> str:
    """An input file (or a local base model) as a stage key names it: one the suite names under its
    data folder as under the default `data` (`--data-dir /home/me/repo/data` is that folder, yet its
    stages were all built again, each "built from other settings or inputs"); an absolute path in
    the suite file's folder (a study's own tasks, corpora, pools, model) relative to that folder, so
    a study folder moved, renamed or copied to a cluster keeps its stages (every one was built
    again, every run stale); any other as given. Its content is in the key on its own (sha256)."""
    if not suite.own_tasks and Path(path).is_relative_to(suite.data_dir):
        return str(Path(DEFAULT_DATA_DIR) / Path(path).relative_to(suite.data_dir))
    inside = in_suite_folder(suite, path)
    return path if inside is None else f"<suite file's folder>/{inside.as_posix()}"


def in_suite_folder(suite: Suite, path: str) -> Path | None:
    """An absolute path's place in the suite file's folder (a study's own files), else None."""
    folder = Path(suite.source).resolve().parent if suite.source else None
    if folder and Path(path).is_absolute() and Path(path).resolve().is_relative_to(folder):
        return Path(path).resolve().relative_to(folder)
    return None


def stage_key(*, parent: str, name: str, kind: str, inputs: dict[str, str], recipe: dict[str, Any],
              seed: int, released: str | None = None, selection: dict[str, Any] | None = None) -> str:
    """The stage's identity (hex sha256); `inputs`: input file -> its sha256, `recipe`: the suite's
    recipe section of `kind` (resolved here); `released`: the hub id standing for it, if any (kept
    under the key "published", as every existing checkpoint folder was named by)."""
    identity = {"parent": parent, "name": name, "kind": kind, "inputs": inputs,
                "recipe": resolved_recipe(recipe), "seed": seed, "published": released,
                "selection": selection, "text_key_rule": TEXT_KEY_RULE}
    if selection:
        identity["selection_rule"] = selection_rule(selection)
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def record_difference(record: PretrainRecord, *, recipe: dict[str, Any], inputs: dict[str, str],
                      seed: int) -> str | None:
    """The first way a finished stage's record differs from the stage its folder is named for (the
    resolved `recipe` of stage_recipe, the content of its `inputs`: file -> sha256, the pretraining
    `seed`), or None. The folder name is the key, so only a folder copied or renamed from another
    stage differs; what says how fast it trained (threads, compile) is not compared."""
    difference = recipe_difference(record.recipe, recipe)
    if difference:
        return difference
    if record.recipe.get("seed") != seed:
        return f"seed: built with {record.recipe.get('seed')!r}, the stage asks {seed!r}"
    built_from = set(record.corpus_sha256.values())
    for path, sha in inputs.items():
        if sha not in built_from:
            return f"input {path}: built from other content (sha256 {sha[:8]} now)"
    return None


def recipe_difference(built: dict[str, Any], recipe: dict[str, Any]) -> str | None:
    """The first field where a stage's saved recipe (`built`: its record's) differs from the
    resolved `recipe` of stage_recipe, or None; what says how fast it trained (threads, compile)
    is not compared."""
    asked = with_added_fields(json.loads(json.dumps(resolved_recipe(recipe))))   # lists, not tuples
    built = with_added_fields(built)
    for name, value in asked.items():
        if name not in MACHINE_PRETRAIN_FIELDS and built.get(name) != value:
            return f"{name}: built with {built.get(name)!r}, the stage asks {value!r}"
    return None


def stage_recipe(suite: Suite, kind: str) -> dict[str, Any]:
    """The recipe overrides a stage of recipe `kind` runs with: the suite's section; for a LoRA
    kind, its full-parameter kind's section with the LoRA section on top (the same data seen)
    and the adapter with every default filled in (a changed default is a new stage)."""
    if kind not in LORA_RECIPES:
        return dict(suite.recipes.get(kind, {}))
    recipe = {**suite.recipes.get(LORA_RECIPES[kind], {}), **suite.recipes.get(kind, {})}
    adapter = from_dict(AdapterRecipe, recipe.get("adapter") or {}, f"suite {suite.name}: recipes.{kind}: adapter")
    return {**recipe, "adapter": whole_floats(AdapterRecipe, dataclasses.asdict(adapter))}


def dapt_domain(suite: Suite, task: Task, arg: str) -> Domain:
    """The domain a `dapt[:<arg>]` stage pretrains on for `task`: the task's own, or for
    `dapt:irrelevant` (¬DAPT) its domain's irrelevant one."""
    domain = suite.domain(task.domain)
    return suite.domain(domain.irrelevant) if arg == "irrelevant" else domain


def tapt_source(suite: Suite, task: Task, arg: str) -> Task:
    """The task whose training text a `tapt[:<arg>]` stage pretrains on for `task`: its own, or
    for `tapt:transfer` (Transfer-TAPT) its partner task's."""
    return suite.task(task.transfer) if arg == "transfer" else task


def released_id(suite: Suite, task: Task, specs: list[str]) -> tuple[Task, str, str | None]:
    """(source task, shape, hub id) of the authors' released checkpoint standing for all of `specs`
    on this task: TAPT, DAPT + TAPT, Curated-TAPT, DAPT + Curated-TAPT, and Transfer-TAPT (the
    partner task's released TAPT model: TAPT on the partner's text); hub id None where none was."""
    source, shape = task, "+".join(spec.partition(":")[0] for spec in specs)
    if specs == ["tapt:transfer"]:
        source, shape = suite.task(task.transfer), "tapt"
    lora = any(spec.endswith(":lora") for spec in specs)   # no LoRA checkpoint was released: built here
    return source, shape, None if lora or shape == "dapt" else suite.released.get(source.key, {}).get(shape)


def released_checkpoints(suite: Suite, task: Task, specs: list[str]) -> list[str]:
    """Every released checkpoint a run of these stages on `task` may be fine-tuned from (its
    metrics.json `published`): the one standing for all of them (`--from-released`), or for DAPT
    alone (¬DAPT too) its domain's released DAPT model (`--from-released-dapt`), as runner/plan.py
    starts them; none: [] (the mini suite's, and any LoRA condition's)."""
    found = [hub_id] if (hub_id := released_id(suite, task, specs)[2]) else []
    *earlier, (kind, _, arg) = [spec.partition(":") for spec in ["base", *specs]]
    if kind == "dapt" and arg != "lora" and all(spec[0] == "base" for spec in earlier):
        found += [checkpoint] if (checkpoint := dapt_domain(suite, task, arg).dapt_checkpoint) else []
    return found


def stage_name(suite: Suite, task: Task, spec: str) -> str:
    """A stage's part of a lineage on `task`: "base", "dapt-<domain>" (¬DAPT: the irrelevant
    domain), "tapt-<task>" (Transfer-TAPT: the partner's), "curated-<task>", "knn50-<task>",
    "rand50-<task>"; a LoRA stage's kind is dapt_lora or tapt_lora."""
    kind, _, arg = spec.partition(":")
    if kind == "dapt":
        return f"{'dapt_lora' if arg == 'lora' else 'dapt'}-{dapt_domain(suite, task, arg).key}"
    if kind == "tapt":
        return f"{'tapt_lora' if arg == 'lora' else 'tapt'}-{tapt_source(suite, task, arg).key}"
    if kind in ("knn", "random"):
        return f"{'knn' if kind == 'knn' else 'rand'}{int(arg)}-{task.key}"
    return "base" if kind == "base" else f"{kind}-{task.key}"


def built_lineage(suite: Suite, task: Task, specs: list[str]) -> str:
    """The lineage a condition of these stages fine-tunes `task` from when its stages are built
    here (after the suite's base stage, if it has one); "base" for none."""
    names = [stage_name(suite, task, spec) for spec in (["base"] if suite.base_corpus else []) + list(specs)]
    return "+".join(names) or "base"


def domain_checkpoints(suite: Suite, sha: Callable[[str], str] | None = None) -> dict[str, Path]:
    """"base" (the suite's base stage, if it has one), "dapt-<domain>" (DAPT alone, on each of the
    suite's domain corpora, after the base stage) and "dapt_lora-<domain>" (DAPT through LoRA
    adapters, the same way) -> the checkpoint folder the runner builds for it, finished or not.
    Resolved as runner/plan.py resolves them (tests/test_plan.py checks they agree); with
    `from_released_dapt` the released DAPT models stand for the (full) DAPT stages, so none is listed.
    `sha`: file -> sha256 (default: memoised in the suite's cache)."""
    sha = sha or (lambda path: file_sha256(path, suite.cache_dir))
    found: dict[str, Path] = {}
    parent, lineage = keyed_path(suite, suite.base_model), ""
    if suite.base_corpus:
        corpus = suite.data_path(suite.base_corpus)
        parent = stage_key(parent=parent, name="base", kind="base",
                           inputs={keyed_path(suite, corpus): sha(corpus)},
                           recipe=suite.recipes.get("base", {}), seed=suite.pretrain_seed)
        found["base"] = checkpoints_dir(suite) / checkpoint_name("base", parent)
        lineage = "base+"
    for kind in ("dapt", "dapt_lora"):
        for domain, path in ({} if suite.dapt_from_released and kind == "dapt" else suite.domain_corpora).items():
            corpus, name = suite.data_path(path), f"{kind}-{domain}"
            key = stage_key(parent=parent, name=name, kind=kind,
                            inputs={keyed_path(suite, corpus): sha(corpus)},
                            recipe=stage_recipe(suite, kind), seed=suite.pretrain_seed)
            found[name] = checkpoints_dir(suite) / checkpoint_name(f"{lineage}{name}", key)
    return found
