"""The checks the runner makes before any work, on every job of a plan: the models they start
from can be loaded and fit, finished stages are whole and built as asked, a stage still to build
can be built (or resumed) in its folder, and finished runs share the data on disk. Each says the
first problem in one line (`dontstop status` shows the same lines); runner/jobs.py calls them
before it starts a worker, and every launcher goes through it.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Iterable

from ..data.formats import load_split
from ..data.sentences import task_queries
from ..suites import Suite
from ..fileio import UserError, file_sha256
from ..recipes import PretrainRecipe
from ..records import (METRICS_FILE, PRETRAIN_RECORD_FILE, SELECT_RECORD_FILE, SELECTED_CORPUS_FILE,
                       MetricsRecord, PretrainRecord, SelectRecord)
from ..stage_identity import record_difference
from .job_actions import finetune_recipe, pretrain_recipe
from .plan import RunPlan, Stage, input_sha256
from .selection_settings import selection_asked, selection_differences
from .stage_guard import check_stage_guard, tasks_on


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
        _check_weights(name)
    for name in sorted(pretraining - ours):
        check_mlm_head(name)


def _check_weights(name: str) -> None:
    """A local model folder holds whole weights (weights_files.weights_problem: config.json alone, a
    shard its index names missing, a link to a blob that is gone), and so does the cache's copy of a
    hub id offline: each passed every check and the dry run, then failed the first job to load it,
    once the runner had started. Nothing of the weights is read."""
    from huggingface_hub import constants, try_to_load_from_cache

    from .. import adapters
    from ..models import resolve_model
    from ..weights_files import weights_problem

    path = Path(resolve_model(name))
    if path.is_dir():
        if not adapters.is_adapter_checkpoint(path) and (problem := weights_problem(path)):
            raise UserError(f"{name}: {problem}; give a whole checkpoint")
        return
    # offline only: online, the hub fetches what is missing
    config = try_to_load_from_cache(str(path), "config.json") if constants.HF_HUB_OFFLINE else None
    if isinstance(config, str) and (problem := weights_problem(Path(config).parent)):
        raise UserError(f"{name}: its copy in the Hugging Face cache ({Path(config).parent}) is not whole: "
                        f"{problem}; fetch it again where there is network: hf download {name}")


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
        record = PretrainRecord.read(stage.record_path)
        if record.one_step_at_lr_0():   # built before mlm.warmup_steps skipped a 1-step stage's warmup
            raise UserError(f"{stage.checkpoint_dir}: its one optimizer step ran at lr 0 (all warmup: it was built "
                            "before a stage of one step skipped the warmup), so its model is its parent's unchanged")
        difference = record_difference(record, recipe=stage.recipe,
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
    """A stage still to build can be built in its folder (resumed there if it was cut short), and
    the finished selection it would pretrain on is whole and its own (check_finished_selection): a
    folder holding other files (weights whose pretrain_record.json was deleted, a copy) or a saved
    state of another recipe failed pretraining's own checks (pretrain/outcome.py) after the jobs
    before it had run. `dontstop status` shows the same line."""
    if Path(stage.checkpoint_dir).is_dir():
        # imports torch: only when there is a folder to check
        from ..pretrain.outcome import check_output_dir, check_resumable, recipe_json

        remedy = "its stage is built in this folder: move it away to build the stage"
        check_output_dir(Path(stage.checkpoint_dir), remedy)
        check_resumable(Path(stage.checkpoint_dir) / "resume", recipe_json(pretrain_recipe(stage, suite)), remedy)
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


