"""What each kind of job does, as a function: build a pretraining stage (with its kNN / RAND
selection first), fine-tune one (plan, seed), or probe one plan's checkpoint; and the checks an
unfinished job needs before any work. Every launcher calls these (runner/jobs.py schedules them
locally, runner/slurm_job.py on a Slurm node); no CLI in between.

The only module that knows conditions, lineage, seeds, caching and W&B together.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import AbstractSet, Any, Callable, Iterable

from ..data.formats import load_split
from ..data.leakage import LeakageGuard, leakage_keys
from ..data.sentences import task_queries
from ..suites import Suite
from ..fileio import UserError, file_sha256, job_lock, sha256_text
from ..recipes import FinetuneRecipe, PretrainRecipe
from ..records import (METRICS_FILE, PRETRAIN_RECORD_FILE, SELECT_RECORD_FILE, SELECTED_CORPUS_FILE,
                       MetricsRecord, PretrainRecord, SelectRecord)
from ..stage_identity import record_difference
from .plan import RunPlan, Stage, input_sha256
from .selection_settings import selection_asked, selection_differences
from .stage_guard import check_stage_guard, tasks_on


def build_stage(stage: Stage, suite: Suite, guard: LeakageGuard, wandb: bool) -> None:
    from ..pretrain.trainer import run_pretraining

    corpora = list(stage.corpora)
    if stage.selection:
        corpora.append(_select(stage, suite, guard.keys))
    recipe = PretrainRecipe(**{**stage.recipe, "base_model": stage.parent, "corpora": corpora,
                               "output_dir": stage.checkpoint_dir, "seed": suite.pretrain_seed})
    # W&B: pretraining runs grouped by recipe kind (comparable loss curves); the checkpoint folder
    # (<lineage>-<hash8>) names the run and its model artifact, whose parent is stage.parent's
    run_pretraining(recipe, wandb=wandb, guard=guard, name=stage.lineage, group=f"pretrain/{stage.kind}",
                    wandb_config={"suite": suite.name, "stage": stage.name, "kind": stage.kind,
                                  "stage_key": stage.key, "selection": stage.selection})


def _select(stage: Stage, suite: Suite, exclude: AbstractSet[bytes]) -> str:
    from ..select.selection import select_corpus

    queries_path, pool, embedding, asked = selection_asked(stage, suite)
    out_dir = stage.selection_dir
    index_dir = _index_dir(suite, queries_path, pool, embedding, exclude)
    # Two workers may select 50NN and 150NN at once: the first builds the index, the other waits.
    with job_lock(index_dir.with_suffix(".lock"), wait=True):
        if not (out_dir / SELECT_RECORD_FILE).exists():
            select_corpus([e.text for e in load_split(queries_path)], pool, out_dir,
                          exclude=frozenset(exclude), index_dir=index_dir, **embedding, **asked)
    return str(out_dir / SELECTED_CORPUS_FILE)


# The largest pool whose selection `reproduce` makes again for the notebook alone: the mini cs pool
# (8.7 MB, 17,644 documents) takes 5 s; a paper-size pool (GBs) would take hours of embedding.
NOTEBOOK_POOL_MAX_MB = 100


def build_missing_selections(plans: list[RunPlan], suite: Suite) -> None:
    """The selection (the documents picked, the saved embedder and faiss index) of each kNN stage
    of `plans` with a finished run that the cache lacks (a clean clone of finished results): what
    the results notebook shows of kNN-TAPT, which `reproduce` executes next. The selection alone,
    exactly as the stage makes it (its pretraining is not needed), and only from a pool of at
    most NOTEBOOK_POOL_MAX_MB; from a larger one the notebook says the selection is not there."""
    missing = {stage.key: stage for plan in plans
               if any((plan.run_dir(seed) / METRICS_FILE).exists() for seed in plan.seeds)
               for stage in plan.stages
               if stage.selection and stage.selection["method"] == "knn"
               and not (stage.selection_dir / SELECT_RECORD_FILE).exists()}
    exclude = leakage_keys(suite.leakage_task_dirs(running={plan.task.key for plan in plans})) if missing else set()
    for stage in missing.values():
        megabytes = Path(stage.selection["pool"]).stat().st_size / 1e6
        if megabytes > NOTEBOOK_POOL_MAX_MB:
            print(f"note: selection {stage.lineage}: not in the cache, and its pool of {megabytes:,.0f} MB is "
                  "too large to select from again for the notebook alone: it skips the nearest neighbours", flush=True)
            continue
        print(f"selection {stage.lineage}: not in the cache; made again for the notebook", flush=True)
        _select(stage, suite, exclude)


def _index_dir(suite: Suite, queries_path: str, pool: str, embedding: dict[str, Any],
               exclude: AbstractSet[bytes]) -> Path:
    """One fitted embedder + faiss index per (task text, pool, embedding settings, held-out text
    kept out of the index), shared by 50NN, 150NN and 500NN: only the search differs between
    them. Everything select_corpus keys the folder by names it: another leakage guard (a task
    downloaded since, a dev file edited) gets a folder of its own, not a refusal mid-run."""
    identity = json.dumps([file_sha256(queries_path, suite.cache_dir), file_sha256(pool, suite.cache_dir),
                           embedding, sha256_text(b"".join(sorted(exclude)).hex())], sort_keys=True)
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


def check_models_available(jobs) -> None:
    """Every model an unfinished job starts from can be loaded (a hub id offline must be in the
    cache), and one a pretraining starts from has an MLM head: one line naming the first that
    cannot, before any work."""
    from ..models import check_available
    from ..pretrain.start_model import check_mlm_head

    pretraining = {job.stage.parent for job in jobs if job.kind == "pretrain" and not job.done()}
    starts = set(pretraining)
    starts |= {job.plan.model for job in jobs if job.kind == "finetune" and not job.done()}
    starts |= {job.stage.selection.get("encoder_model", "bundled:minilm") for job in jobs   # kNN's encoder
               if job.kind == "pretrain" and not job.done() and (job.stage.selection or {}).get("embedder") == "encoder"}
    ours = {job.stage.checkpoint_dir for job in jobs if job.kind == "pretrain"}  # built by earlier jobs
    for name in sorted(starts - ours):
        check_available(name)
    for name in sorted(pretraining - ours):
        check_mlm_head(name)


def check_finished_stages(jobs, suite: Suite) -> None:
    """Every finished stage that an unfinished job builds on is whole and is the stage asked
    (check_finished_stage), before any work; where a job starts from it, its weights and tokenizer
    too; and it held out the dev and test text of the tasks to be fine-tuned on it."""
    unfinished = [job for job in jobs if not job.done()]
    needed = {path for job in unfinished for path in job.needs}
    starts = {job.stage.parent if job.kind == "pretrain" else job.plan.model for job in unfinished}
    sha = input_sha256(suite, planning_only=False)
    for stage in (job.stage for job in jobs if job.kind == "pretrain" and job.done() and job.done_file in needed):
        check_finished_stage(stage, suite, sha, load=stage.checkpoint_dir in starts,
                             tasks=tasks_on(stage, unfinished))


def check_finished_stage(stage: Stage, suite: Suite, sha: Callable[[str], str], load: bool,
                         tasks: Iterable[str]) -> None:
    """One finished stage is whole and is the stage asked: its record readable and made from the
    stage's recipe, inputs (`sha`: path -> sha256, runner/plan.input_sha256) and seed (not a folder
    copied or renamed from another stage: stage_identity.record_difference), and, with `load`, its
    weights those the record lists and a tokenizer with a vocabulary; and it held out the dev and
    test text of the `tasks` to be fine-tuned on it (stage_guard). A finished stage is never built
    over, so the one line says to remove the folder. `dontstop status` shows the same line."""
    from transformers import AutoTokenizer

    from ..models import load_pretrained

    try:
        inputs = {path: sha(path) for path in stage.corpora}   # "missing": not on disk (status), not compared
        difference = record_difference(PretrainRecord.read(stage.record_path), recipe=stage.recipe,
                                       inputs={path: digest for path, digest in inputs.items() if digest != "missing"},
                                       seed=suite.pretrain_seed)
        if difference:
            raise UserError(f"{stage.checkpoint_dir}: built from other settings than its stage asks "
                            f"({difference}; a folder copied or renamed from another stage?)")
        if load:
            load_pretrained(AutoTokenizer, stage.checkpoint_dir)   # and the weights, by their hash
    except UserError as e:
        raise UserError(f"{e}; a finished stage is never built over: remove its folder to build it again") from None
    check_stage_guard(stage, tasks, suite)   # its line says to remove the folder itself


def check_stages_to_build(jobs, suite: Suite) -> None:
    """Every stage still to build (check_stage_to_build), before any work."""
    for job in jobs:
        if job.kind == "pretrain" and not job.done():
            check_stage_to_build(job.stage, suite)


def check_stage_to_build(stage: Stage, suite: Suite) -> None:
    """A stage still to build can be built in its folder, and the finished selection it would
    pretrain on is whole and its own (check_finished_selection): a folder holding other files
    (weights whose pretrain_record.json was deleted, a copy) failed pretraining's own check
    (pretrain/outcome.check_output_dir) after the jobs before it had run. `dontstop status` shows
    the same line."""
    if Path(stage.checkpoint_dir).is_dir():
        from ..pretrain.outcome import check_output_dir   # imports torch: only when there is a folder to check

        check_output_dir(Path(stage.checkpoint_dir), "its stage is built in this folder: move it away to build the stage")
    if stage.selection:
        check_finished_selection(stage, suite)


def check_finished_selection(stage: Stage, suite: Suite) -> None:
    """A finished selection of a stage is whole and the one asked: one whose corpus.jsonl is gone or
    cut, or one copied from another stage (another k, method or embedding), failed or was pretrained
    on once the stages before it were built."""
    folder = stage.selection_dir
    if not (folder / SELECT_RECORD_FILE).is_file():
        return
    recorded = dataclasses.asdict(SelectRecord.read(folder / SELECT_RECORD_FILE))
    differences = selection_differences(recorded, stage, suite)
    queries_path, pool, _, _ = selection_asked(stage, suite)   # another pool's or task's, copied in
    if Path(recorded["pool"]).name != Path(pool).name:
        differences.append(f"pool {Path(recorded['pool']).name}, asked {Path(pool).name}")
    texts = len(task_queries([e.text for e in load_split(queries_path)], "text"))
    if recorded["task_texts"] not in (None, texts):
        differences.append(f"{recorded['task_texts']} task texts, {queries_path} has {texts}")
    corpus = folder / SELECTED_CORPUS_FILE
    size = corpus.stat().st_size if corpus.is_file() else None
    if size != recorded["bytes"]:
        differences.append(f"{SELECTED_CORPUS_FILE} " + ("missing" if size is None else f"of {size} bytes")
                           + f", recorded {recorded['bytes']}")
    if differences:
        raise UserError(f"{folder}: a finished selection, not the one its stage asks ({'; '.join(differences)}"
                        "; copied from another stage, or damaged?); remove the folder to select again")


def check_stage_models(jobs, suite: Suite) -> None:
    """Every unfinished stage and fine-tuning run fits the model it starts from, before any work:
    its max_length within the model's positions, and a LoRA stage's target modules among its
    Linear layers (one line listing them). A checkpoint not built yet has the suite's base model's
    architecture (every stage of a suite does)."""
    from ..models import check_sequence_length, model_sequence_limit

    limits: dict[str, int | None] = {}   # model -> sequence limit: most jobs start from the base model

    def fits(max_length: int, start: str, where: str, multiple: int | None = None) -> str:
        model = start if (Path(start) / PRETRAIN_RECORD_FILE).is_file() else suite.base_model
        if model not in limits:
            limits[model] = model_sequence_limit(model)
        check_sequence_length(max_length, limits[model], model, where, multiple)
        return model

    for job in (job for job in jobs if not job.done()):
        if job.kind == "pretrain":
            where = f"suite {suite.name}: recipes.{job.stage.kind}"
            model = fits(job.stage.recipe.get("max_length", PretrainRecipe.max_length), job.stage.parent, where)
            if job.stage.recipe.get("adapter"):
                from ..pretrain.adapter import check_target_modules   # torch: only for a LoRA stage

                check_target_modules(job.stage.recipe["adapter"], model, f"{where}: adapter")
        else:   # a fine-tuning run or probe (the roberta-base tokenizer sets no limit: it crashed mid-run)
            recipe = finetune_recipe(job.plan, suite)   # padded to a multiple past the positions: crashed mid-run
            fits(recipe.max_length, job.plan.model, f"suite {suite.name}: finetune", recipe.pad_to_multiple_of)


def check_data_consistency(plan: RunPlan, suite: Suite, allow_mixed: bool,
                           redone: set[Path] = frozenset()) -> None:
    """Refuse to add runs made from other data than the finished runs of the plan's task
    (every condition's, so one plan per task is enough), but those about to be `redone`."""
    if allow_mixed:
        return
    finished = sorted(set(plan.cell_dir.parent.glob(f"*/seed_*/{METRICS_FILE}")) - set(redone))
    if not finished:
        return
    splits = suite.task_dir(plan.task.key)
    current = {split: file_sha256(splits / f"{split}.jsonl", suite.cache_dir)
               for split in ("train", "dev", "test")}
    for metrics_path in finished:
        recorded = MetricsRecord.read(metrics_path).data_sha256
        changed = [split for split, sha in current.items() if recorded.get(split) not in (None, sha)]
        if changed:
            raise UserError(f"{metrics_path}: made from different {'/'.join(changed)} data than "
                            "the files on disk now; rerun with --allow-mixed, or a new --results-dir "
                            "(or redo it: run its condition with --rerun-stale)")


