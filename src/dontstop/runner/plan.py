"""Resolve (suite, condition, task) into pretraining stages and fine-tuning jobs, without running.

A stage's identity is a hash of everything that determines its checkpoint: the parent
(base model or the previous stage), the kind, the sha256 of every input file, the
selection settings and the resolved recipe, defaults included (stage_identity.stage_key).
So a DAPT checkpoint is built once and shared
by every task and condition that needs it (DAPT, not-DAPT of another domain, DAPT+TAPT),
and Transfer-TAPT reuses the partner task's TAPT checkpoint. A LoRA stage (`dapt:lora`,
`tapt:lora`) is named and hashed as its own kind (`dapt_lora-cs`), so DAPT (LoRA) is shared the
same way (by TAPT (LoRA) after it) and never mistaken for full DAPT.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..conditions import Condition
from ..data.sentences import DEFAULT_POOL_UNIT, DEFAULT_QUERY_UNIT
from ..suites import Suite, checkpoint_name, checkpoints_dir
from ..fileio import UserError, file_sha256, raise_problems
from ..recipes import PretrainRecipe, violations
from ..records import PRETRAIN_RECORD_FILE
from ..stage_identity import dapt_domain, keyed_path, released_id, stage_key, stage_name, stage_recipe, tapt_source
from ..models import in_local_cache
from ..tasks import NO_HUB_PAGE, Task


@dataclass(frozen=True)
class Stage:
    name: str                     # "dapt-cs", "tapt-aclsum-roles", "knn50-aclsum-roles", ...
    kind: str                     # recipe kind: recipes.RECIPE_KINDS (base, dapt, tapt, ...)
    parent: str                   # base model name, or the parent stage's checkpoint dir
    corpora: tuple[str, ...]      # input files; a selection stage adds its output at build time
    recipe: dict[str, Any]        # the suite's recipe section (its key covers the resolved recipe)
    key: str                      # sha256 of the resolved inputs, recipe and parent
    lineage: str                  # "dapt-cs+tapt-aclsum-roles"
    checkpoint_dir: str
    selection: dict[str, Any] | None = None   # {"method", "k", "pool", "queries", ...}
    released: str | None = None   # hub id: start from the authors' released checkpoint instead of training

    @property
    def record_path(self) -> Path:
        return Path(self.checkpoint_dir) / PRETRAIN_RECORD_FILE

    @property
    def selection_dir(self) -> Path:
        """Where a selection stage's corpus and select_record.json go: cache/<suite>/selections/."""
        return Path(self.checkpoint_dir).parents[1] / "selections" / f"{self.name}-{self.key[:8]}"


@dataclass
class RunPlan:
    suite: str
    task: Task
    condition: str
    stages: list[Stage]
    seeds: list[int]
    results_root: Path
    base_model: str

    @property
    def model(self) -> str:
        """The checkpoint fine-tuning starts from."""
        if not self.stages:
            return self.base_model
        last = self.stages[-1]
        return last.released or last.checkpoint_dir

    @property
    def from_released(self) -> bool:
        """Whether fine-tuning starts from a released (hub) checkpoint."""
        return bool(self.stages) and self.stages[-1].released is not None

    @property
    def lineage(self) -> str:
        return self.stages[-1].lineage if self.stages else "base"

    @property
    def cell_dir(self) -> Path:
        """results/<suite>/<task>/<condition>/: its seeds' run folders and its probe."""
        return self.results_root / self.suite / self.task.key / self.condition

    def run_dir(self, seed: int) -> Path:
        return self.cell_dir / f"seed_{seed}"


def plan_runs(suite: Suite, condition: Condition, task_keys: list[str] | None = None,
              seeds: list[int] | None = None, planning_only: bool = False) -> list[RunPlan]:
    """One RunPlan per task the condition applies to (tasks not covered are skipped).

    `planning_only` (--dry-run) plans with input files that do not exist yet (not downloaded):
    their hash is "missing", so such a plan is for reading, never for running."""
    plans = []
    for key in task_keys or suite.tasks:
        task = suite.task(key)
        if not condition.applies(task, suite):
            continue
        released = _released_stage(suite, task, condition.stages) if suite.from_released else None
        # One released checkpoint stands for all the condition's stages; else build them in order.
        stages = [released] if released else _resolve_stages(suite, task, condition.stages, planning_only)
        plans.append(RunPlan(suite.name, task, condition.condition, stages,
                             list(seeds if seeds is not None else suite.seeds),
                             Path(suite.results_dir), suite.base_model))
    return plans


def unique_stages(plans: list[RunPlan]) -> list[Stage]:
    """Every stage the plans need, once each, parents before children."""
    stages: dict[str, Stage] = {}
    for plan in plans:
        for stage in plan.stages:
            stages.setdefault(stage.key, stage)
    return list(stages.values())


def domain_stages(suite: Suite, specs: tuple[str, ...], planning_only: bool = False) -> list[Stage]:
    """The stages of `specs` ("dapt", "dapt:lora") on each domain corpus that a task of the suite
    belongs to, after the suite's base stage, parents first: the very stages (same keys) that
    every condition with those stages builds; released ones stand as they are. What the domain
    analysis of `reproduce` reads (runner/jobs.analysis_stages)."""
    stages: dict[str, Stage] = {}
    for key in suite.tasks:
        task = suite.task(key)
        if suite.domain(task.domain).key in suite.domain_corpora:
            for spec in specs:
                for stage in _resolve_stages(suite, task, [spec], planning_only):
                    stages.setdefault(stage.key, stage)
    return list(stages.values())


def _resolve_stages(suite: Suite, task: Task, specs: list[str], planning_only: bool) -> list[Stage]:
    """The condition's stages in order, after the suite's base stage if it has one (the mini
    suite's "RoBERTa": BERT-tiny after MLM on general text), each the parent of the next."""
    stages: list[Stage] = []
    parent, parent_key = suite.base_model, ""
    for spec in (["base"] if suite.base_corpus else []) + specs:
        stage = _resolve_stage(suite, task, spec, parent, parent_key, stages, planning_only)
        stages.append(stage)
        parent, parent_key = stage.released or stage.checkpoint_dir, stage.key
    return stages


def never_on_the_hub(hub_id: str | None) -> bool:
    """A released id the hub never showed (tasks.NO_HUB_PAGE) that the local cache lacks too: built here."""
    return hub_id in NO_HUB_PAGE and not in_local_cache(hub_id)


def _released_stage(suite: Suite, task: Task, specs: list[str]) -> Stage | None:
    """The authors' released checkpoint standing for all of `specs` on this task (`--from-released`),
    or None: built here (DAPT alone is from_released_dapt's stage)."""
    source, shape, hub_id = released_id(suite, task, specs)
    if hub_id is None or never_on_the_hub(hub_id):
        return None
    domain = suite.domain(task.domain).key
    names = {"dapt": f"dapt-{domain}", "tapt": f"tapt-{source.key}", "curated": f"curated-{task.key}"}
    lineage = "+".join(names[kind] for kind in shape.split("+"))
    key = hashlib.sha256(json.dumps({"published": hub_id}).encode()).hexdigest()   # the key's format since v1
    return Stage(names[shape.split("+")[-1]], "released", suite.base_model, (), {}, key, lineage,
                 checkpoint_dir="", released=hub_id)


def _resolve_stage(suite: Suite, task: Task, spec: str, parent: str, parent_key: str,
                   earlier: list[Stage], planning_only: bool) -> Stage:
    kind, _, arg = spec.partition(":")
    selection, released, name = None, None, stage_name(suite, task, spec)
    if kind == "base":
        recipe_kind, corpora = "base", [suite.data_path(suite.base_corpus)]
    elif kind == "dapt":
        domain = dapt_domain(suite, task, arg)
        recipe_kind, corpora = "dapt_lora" if arg == "lora" else "dapt", []
        if suite.dapt_from_released and domain.dapt_checkpoint and all(s.kind == "base" for s in earlier) \
                and arg != "lora":
            released = domain.dapt_checkpoint
        else:
            corpora = [suite.data_path(_required(suite, "domain_corpora", domain.key, "domain corpus",
                                                 "--domain-corpus", released=arg != "lora"))]
    elif kind == "tapt":
        source = tapt_source(suite, task, arg)
        # the paper's large tasks: tapt_large, and TAPT (LoRA) beside it tapt_large_lora (same batches)
        recipe_kind = source.tapt_recipe + ("_lora" if arg == "lora" else "")
        corpora = [str(suite.task_dir(source.key) / "train.jsonl")]
    elif kind == "curated":
        recipe_kind = "tapt_large"
        corpora = [str(suite.task_dir(task.key) / "train.jsonl"), _curated_pool(suite, task)]
    else:  # knn:<k> or random:<k>
        k, scale = int(arg), suite.selection.get("k_scale", 1.0)
        recipe_kind, corpora = "tapt_large", []
        if scaled_k(k, scale) < 1:   # it was taken as 1: 50NN, 150NN, 500NN and RAND all one selection
            raise UserError(f"suite {suite.name}: selection.k_scale {scale}: stage {name} would select {k} x {scale} "
                            f"= {k * scale:g} neighbours per query, under 1; give at least {1 / k:g}")
        pool = suite.data_path(suite.pools.get(task.domain) or _required(
            suite, "domain_corpora", task.domain, "candidate pool", "--pool"))
        # the units always named: the stage key of a selection from whole lines (before units), or
        # of one that queried with whole task texts (before query units), differs
        selection = {"method": kind, "k": k, "pool": pool, "unit": DEFAULT_POOL_UNIT,
                     "query_unit": DEFAULT_QUERY_UNIT, **suite.selection,
                     "queries": str(suite.task_dir(task.key) / "train.jsonl")}
    recipe = stage_recipe(suite, recipe_kind)
    # the suite checks read the recipes given: one a study without `extends` lacks has no steps or
    # epochs, which its stage found once the jobs before it had run
    raise_problems([f"{suite.source}: recipes.{recipe_kind} (stage {name}): {v.as_key()}"
                    for v in violations(PretrainRecipe, recipe, whole=True)])
    sha = input_sha256(suite, planning_only)
    keyed_selection = selection and {**selection, "pool_sha256": sha(selection["pool"]),
                                     "queries_sha256": sha(selection["queries"]),
                                     **{part: keyed_path(suite, selection[part]) for part in ("pool", "queries")}}
    key = stage_key(parent=parent_key or keyed_path(suite, parent), name=name, kind=recipe_kind,
                    inputs={keyed_path(suite, p): sha(p) for p in corpora}, recipe=recipe,
                    seed=suite.pretrain_seed, released=released, selection=keyed_selection)
    lineage = "+".join([s.name for s in earlier] + [name])
    checkpoint_dir = checkpoints_dir(suite) / checkpoint_name(lineage, key)
    return Stage(name, recipe_kind, parent, tuple(corpora), recipe, key, lineage,
                 str(checkpoint_dir), selection, released)


def scaled_k(k: int, scale: float) -> int:
    """The candidates per query a knn:<k> or random:<k> stage selects: k x the suite's k_scale."""
    return round(k * scale)


def _curated_pool(suite: Suite, task: Task) -> str:
    if task.key in suite.curated:
        return suite.data_path(suite.curated[task.key])
    if task.curated_from:
        return str(suite.task_dir(task.curated_from) / "train.jsonl")
    raise UserError(f"task {task.key}: no curated pool; pass --curated-corpus {task.key}=PATH")


def _required(suite: Suite, section: str, key: str, what: str, flag: str, released: bool = True) -> str:
    """`released`: the stage could start from the released DAPT model instead (not a LoRA one)."""
    mapping = getattr(suite, section)
    if key in mapping:
        return mapping[key]
    if suite.own_tasks:   # a study: the file should say it, or a task's domain is a typo of one it gives
        fields = ", ".join(f"tasks.{task}.domain" for task in suite.tasks if suite.task_table[task].domain == key)
        other = f", or give the task a domain that has one: {', '.join(mapping)}" if fields and mapping else ""
        raise UserError(f"{suite.source}: key '{section}': no {what} for domain {key!r}"
                        + (f" ({fields})" if fields else "") + ", which a chosen condition needs; "
                        f"add `{key}: PATH` there (or pass {flag} {key}=PATH){other}")
    raise UserError(f"no {what} for domain {key!r}: pass {flag} {key}=PATH"
                    + (" or --from-released-dapt" if flag == "--domain-corpus" and released else ""))


def input_sha256(suite: Suite, planning_only: bool) -> Callable[[str], str]:
    """path -> its sha256 (memoised in the suite's cache); with `planning_only` (--dry-run,
    status), "missing" for a file that does not exist yet (not downloaded)."""
    def sha(path: str) -> str:
        missing = planning_only and not Path(path).is_file()
        return "missing" if missing else file_sha256(path, suite.cache_dir)
    return sha
