"""What each kind of job does, as a function: build a pretraining stage (with its kNN / RAND
selection first), fine-tune one (plan, seed), or probe one plan's checkpoint. Every launcher calls
these (runner/jobs.py schedules them locally, runner/slurm_job.py on a Slurm node); no CLI in
between. The checks an unfinished job needs before any work: runner/job_checks.py.

The only module that knows conditions, lineage, seeds, caching and W&B together.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import AbstractSet, Any

from ..data.formats import load_split
from ..data.leakage import LeakageGuard, guarded_files, selection_exclude
from ..suites import Suite
from ..fileio import atomic_write_json, file_sha256, job_lock, read_memo, sha256_file, sha256_text
from ..recipes import FinetuneRecipe, PretrainRecipe
from ..stage_identity import selection_rule
from ..records import (INDEX_KEY_FILE, METRICS_FILE, SELECT_RECORD_FILE, SELECTED_CORPUS_FILE, PretrainRecord,
                       SelectRecord)
from .plan import RunPlan, Stage
from .scratch import index_scratch, remove_scratch, selection_lock, selection_scratch
from .selection_settings import selection_asked


def build_stage(stage: Stage, suite: Suite, guard: LeakageGuard, wandb: bool) -> None:
    from ..pretrain.trainer import run_pretraining

    if stage.selection:
        _select(stage, suite, selection_exclude(guard.files))   # the corpus that pretrain_recipe adds
    recipe = pretrain_recipe(stage, suite)
    # W&B: pretraining runs grouped by recipe kind (comparable loss curves); the checkpoint folder
    # (<lineage>-<hash8>) names the run and its model artifact, whose parent is stage.parent's
    run_pretraining(recipe, wandb=wandb, guard=guard, name=stage.lineage, group=f"pretrain/{stage.kind}",
                    wandb_config={"suite": suite.name, "stage": stage.name, "kind": stage.kind,
                                  "stage_key": stage.key, "selection": stage.selection})


def pretrain_recipe(stage: Stage, suite: Suite) -> PretrainRecipe:
    """The recipe a stage is built with: a selection stage's corpora end with its selection's."""
    selected = [str(stage.selection_dir / SELECTED_CORPUS_FILE)] if stage.selection else []
    return PretrainRecipe(**{**stage.recipe, "base_model": stage.parent, "corpora": [*stage.corpora, *selected],
                             "output_dir": stage.checkpoint_dir, "seed": suite.pretrain_seed})


def _select(stage: Stage, suite: Suite, exclude: AbstractSet[bytes], index_too: bool = False) -> None:
    """The stage's selection, unless made; `index_too`: and its saved index (what the notebook
    reads), unless saved (a stage's pretraining reads the selection alone)."""
    from ..select.selection import select_corpus

    queries_path, pool, embedding, asked = selection_asked(stage, suite)
    out_dir = stage.selection_dir
    index_dir = _index_dir(suite, queries_path, pool, embedding, exclude)

    def select_into(folder: str | Path) -> None:
        select_corpus([e.text for e in load_split(queries_path)], pool, folder,
                      exclude=frozenset(exclude), index_dir=index_dir, **embedding, **asked)

    # Two workers may select 50NN and 150NN at once: the first builds the index, the other waits.
    # The selection's own lock first: every writer of its folder and scratch holds it, whichever index.
    with job_lock(selection_lock(out_dir), wait=True), job_lock(index_dir.with_suffix(".lock"), wait=True):
        remove_scratch([*selection_scratch(out_dir), *index_scratch(index_dir)], f"selection {stage.lineage}",
                       out_dir.parent.parent)   # what a killed earlier attempt left (runner/scratch.py)
        if not (out_dir / SELECT_RECORD_FILE).exists():
            select_into(out_dir)
        elif index_too and not (index_dir / INDEX_KEY_FILE).exists() and not _known_to_differ(stage, suite, index_dir):
            # the selection is there and its index is not (indexes/ removed to free the disk): the index
            # alone, made by the same selection into a scratch folder, so the one made is left as it is
            with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}-") as scratch:
                select_into(scratch)
                if sha256_file(Path(scratch) / SELECTED_CORPUS_FILE) != sha256_file(out_dir / SELECTED_CORPUS_FILE):
                    shutil.rmtree(index_dir)   # the pool or task changed since: its neighbours were not selected
                    _remember_differs(stage, suite, index_dir)
                    print(f"note: selection {stage.lineage}: its inputs changed since it was made; {DIFFERS_NOTE}",
                          flush=True)


DIFFERS_NOTE = "its index is not made again, and the notebook skips its nearest neighbours"


def _differs_file(index_dir: Path) -> Path:
    """Where _select remembers the selections that, made again from this index's inputs, differ
    from the one made: {selection folder: sha256 of its corpus.jsonl}. Beside the index, whose name
    is a hash of the pool's and task text's sha256 and the settings: a pool changed again has
    another index, which no record names, and its selection is made again once more."""
    return index_dir.with_suffix(".differs.json")


def _known_to_differ(stage: Stage, suite: Suite, index_dir: Path) -> bool:
    """Whether an earlier `reproduce` made this selection again from the index's inputs and found it
    differs from the one made (the pool or task edited since): each reproduce redid it (embedding up
    to NOTEBOOK_POOL_MAX_MB of pool) only to drop the index again."""
    made = stage.selection_dir / SELECTED_CORPUS_FILE
    recorded = read_memo(_differs_file(index_dir)).get(stage.selection_dir.name)
    return made.is_file() and recorded == file_sha256(made, suite.cache_dir)


def _remember_differs(stage: Stage, suite: Suite, index_dir: Path) -> None:
    """Record (under the index's lock) that this selection, made again, differs from the one made."""
    record = read_memo(_differs_file(index_dir))
    record[stage.selection_dir.name] = file_sha256(stage.selection_dir / SELECTED_CORPUS_FILE, suite.cache_dir)
    atomic_write_json(_differs_file(index_dir), record)


# The largest pool whose selection `reproduce` makes again for the notebook alone: the mini cs pool
# (8.7 MB, 17,644 documents) takes 5 s; a paper-size pool (GBs) would take hours of embedding.
NOTEBOOK_POOL_MAX_MB = 100


def build_missing_selections(plans: list[RunPlan], suite: Suite) -> None:
    """The selection (the documents picked, the saved embedder and faiss index) of each kNN stage
    of `plans` with a finished run that the cache lacks (a clean clone of finished results; or its
    index alone, the cache's indexes/ removed): what the results notebook shows of kNN-TAPT, which
    `reproduce` executes next. The selection alone, exactly as the stage makes it (its pretraining
    is not needed), and only from a pool of at most NOTEBOOK_POOL_MAX_MB; from a larger one the
    notebook says the selection is not there."""
    knn = {stage.key: stage for plan in plans
           if any((plan.run_dir(seed) / METRICS_FILE).exists() for seed in plan.seeds)
           for stage in plan.stages if stage.selection and stage.selection["method"] == "knn"}
    exclude = (selection_exclude(guarded_files(suite.leakage_task_dirs(running={plan.task.key for plan in plans})))
               if knn else set())
    for stage in knn.values():
        # asked here, not before the loop: 50NN, 150NN and 500NN share one index, which the first makes
        index_dir = _index_dir(suite, *selection_asked(stage, suite)[:3], exclude)
        if (stage.selection_dir / SELECT_RECORD_FILE).exists() and (index_dir / INDEX_KEY_FILE).exists():
            continue
        if (stage.selection_dir / SELECT_RECORD_FILE).exists() and _known_to_differ(stage, suite, index_dir):
            print(f"note: selection {stage.lineage}: its inputs changed since it was made (an earlier reproduce "
                  f"made it again); {DIFFERS_NOTE}", flush=True)
            continue
        megabytes = Path(stage.selection["pool"]).stat().st_size / 1e6
        if megabytes > NOTEBOOK_POOL_MAX_MB:
            print(f"note: selection {stage.lineage}: not in the cache, and its pool of {megabytes:,.0f} MB is "
                  "too large to select from again for the notebook alone: it skips the nearest neighbours", flush=True)
            continue
        print(f"selection {stage.lineage}: not in the cache (or its index); made again for the notebook", flush=True)
        _select(stage, suite, exclude, index_too=True)


def _index_dir(suite: Suite, queries_path: str, pool: str, embedding: dict[str, Any],
               exclude: AbstractSet[bytes]) -> Path:
    """One fitted embedder + faiss index per (task text, pool, embedding settings, held-out text
    kept out of the index, selection rule), shared by 50NN, 150NN and 500NN: only the search
    differs between them. Everything select_corpus keys the folder by names it: another leakage
    guard (a task downloaded since, a dev file edited) gets a folder of its own, not a refusal
    mid-run; so does an index built under another rule (stage_identity.selection_rule)."""
    identity = json.dumps([file_sha256(queries_path, suite.cache_dir), file_sha256(pool, suite.cache_dir),
                           embedding, sha256_text(b"".join(sorted(exclude)).hex()),
                           selection_rule({"method": "knn", **embedding})], sort_keys=True)
    return Path(suite.cache_dir) / suite.name / "indexes" / hashlib.sha256(identity.encode()).hexdigest()[:16]


def stage_record(stage: Stage) -> dict[str, Any]:
    """What metrics.json keeps of a stage: its PretrainRecord, selection record and lineage."""
    if stage.released:
        return {"name": stage.name, "lineage": stage.lineage, "kind": stage.kind, "released": stage.released}
    record = dataclasses.asdict(PretrainRecord.read(stage.record_path))
    selection_record = stage.selection_dir / SELECT_RECORD_FILE
    if stage.selection and selection_record.exists():
        record = {**record, "selection": dataclasses.asdict(SelectRecord.read(selection_record))}
    return {**record, "name": stage.name, "lineage": stage.lineage, "kind": stage.kind}


def finetune_job(plan: RunPlan, seed: int, suite: Suite, wandb: bool) -> None:
    from ..finetune.trainer import run_finetune

    metrics = run_finetune(finetune_recipe(plan, suite, seed), plan.run_dir(seed), task=plan.task,
                           condition=plan.condition, lineage=plan.lineage, wandb=wandb,
                           pretraining=[stage_record(s) for s in plan.stages],
                           from_released=plan.from_released)
    print(f"    {plan.task.key}/{plan.condition} seed {seed}: {metrics.metric} dev "
          f"{metrics.dev_metric:.3f} test {metrics.test_metric:.3f} "
          f"({metrics.epochs_run} epochs, {metrics.wall_time_s:.1f}s)", flush=True)


def finetune_recipe(plan: RunPlan, suite: Suite, seed: int = 0) -> FinetuneRecipe:
    """What a fine-tuning run of `plan` (and, seed aside, its probe) runs: the suite's recipe on
    the plan's checkpoint and task."""
    return FinetuneRecipe(**{**suite.finetune, "model": plan.model, "task": plan.task.key,
                             "suite": plan.suite, "data_dir": suite.data_dir, "seed": seed})


def run_job(job, suite: Suite, guard: LeakageGuard, wandb: bool) -> None:
    """One job of runner/jobs.py (any launcher): build a stage, fine-tune a seed, or probe."""
    if job.kind == "pretrain":
        build_stage(job.stage, suite, guard, wandb)
    elif job.kind == "probe":
        probe_job(job.plan, suite)
    else:
        finetune_job(job.plan, job.seed, suite, wandb)


def probe_job(plan: RunPlan, suite: Suite) -> None:
    from ..finetune.probe import run_probe

    record = run_probe(finetune_recipe(plan, suite), plan.cell_dir, plan.task, condition=plan.condition,
                       lineage=plan.lineage)
    print(f"    {plan.task.key}/{plan.condition} probe: {record.metric} test {record.test_metric:.3f} "
          f"({record.wall_time_s:.1f}s)", flush=True)
