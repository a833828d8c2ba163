"""Which finished results a run, a reproduce or a status may count: each results file in the folder
of the suite, task, condition and seed it names (records.finished_runs), and each planned run
finished from what is asked now.

A finished run is stale when its resolved fine-tuning recipe, its starting checkpoint (a stage of
ours by its stage key, wherever the cache lies; else the model name), whether it is a released one, or, unless
--allow-mixed, its task data differ from what the plan asks; a probe, when its checkpoint or
max_length do. A stale result is refused before any work, one line naming the field and the file,
unless --rerun-stale: then it is redone, its old file kept beside the new one as
metrics.stale-<n>.json (probe.stale-<n>.json), which nothing reads. Either way it is never
counted as finished nor mixed into the tables.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..suites import Suite, checkpoint_lineage
from ..fileio import FILE_MODE, UserError, file_sha256
from ..stage_identity import in_suite_folder
from ..records import METRICS_FILE, PROBE_FILE, MetricsRecord, ProbeRecord, one_step_at_lr_0
from ..results_tree import finished_runs
from ..tasks import SPLITS
from .plan import RunPlan
from .job_actions import finetune_recipe
from .selection_settings import selection_differences

@dataclass(frozen=True)
class Stale:
    path: Path      # the finished metrics.json or probe.json
    reason: str     # "lr: finished with 0.0001, asked 2e-05"


def stale_results(plans: list[RunPlan], suite: Suite, allow_mixed: bool) -> list[Stale]:
    """Every finished run and probe of `plans` that was made from something else than they ask;
    reads (and so checks) every results file of the suite first."""
    runs, probes = finished_runs(Path(suite.results_dir) / suite.name)
    stale = []
    for plan in plans:
        at_lr_0 = None   # a seed's stage that trained at lr 0: the cell's probe, of the same checkpoint, is stale too
        for seed in plan.seeds:
            path = plan.run_dir(seed) / METRICS_FILE
            reason = path in runs and run_difference(runs[path], plan, seed, suite, allow_mixed)
            stale += [Stale(path, reason)] if reason else []
            at_lr_0 = at_lr_0 or (path in runs and trained_at_lr_0(runs[path]))
        path = plan.cell_dir / PROBE_FILE
        reason = suite.probe and path in probes and (probe_difference(probes[path], plan, suite) or at_lr_0)
        stale += [Stale(path, reason)] if reason else []
    return stale


def trained_at_lr_0(record: MetricsRecord) -> str | None:
    """Why a run's starting checkpoint is its parent's model: a stage of its lineage of one optimizer
    step built before that step skipped the warmup (pretrain/mlm.warmup_steps) ran it at lr 0."""
    for stage in record.pretraining or []:
        if one_step_at_lr_0(stage):
            return (f"starting checkpoint: its stage {stage.get('name')} ran its one optimizer step at lr 0 "
                    "(built before a stage of one step skipped the warmup), so it fine-tuned its parent's model")
    return None


def run_difference(record: MetricsRecord, plan: RunPlan, seed: int, suite: Suite,
                   allow_mixed: bool) -> str | None:
    """The first field in which a finished run differs from what `plan` asks for `seed`, or None."""
    from ..finetune.resolve import recipe_difference   # torch, not the trainer's transformers and sklearn

    if difference := recipe_difference(record.config, finetune_recipe(plan, suite, seed), plan.task):
        return difference
    if not same_model(record.model, plan.model, suite):
        return (f"starting checkpoint: finished from {record.model}, asked {plan.model}"
                + _rebuilt(record, plan, suite))
    if at_lr_0 := trained_at_lr_0(record):
        return at_lr_0
    if record.published != plan.from_released:   # metrics.json's `published`: from a released checkpoint
        return f"released checkpoint: finished with {record.published}, asked {plan.from_released}"
    if not allow_mixed:
        splits = suite.task_dir(plan.task.key)
        for split in (split for split in SPLITS if (splits / f"{split}.jsonl").is_file()):
            current = file_sha256(splits / f"{split}.jsonl", suite.cache_dir)
            if record.data_sha256.get(split, current) != current:
                return (f"{split} data: finished from sha256 {record.data_sha256[split][:8]}, the file "
                        f"now has {current[:8]} (or keep it with --allow-mixed)")
    return None


def _rebuilt(record: MetricsRecord, plan: RunPlan, suite: Suite) -> str:
    """Which stage of the lineage the run's checkpoint was built otherwise than asked now, and for a
    selection stage the setting: its key (`<lineage>-<key8>`) changed, or the stage was not in it."""
    built = {stage.get("name"): stage for stage in record.pretraining or []}
    for stage in plan.stages:
        was = built.get(stage.name, {})
        checkpoint = Path(was.get("recipe", {}).get("output_dir") or "").name
        if stage.released or checkpoint == Path(stage.checkpoint_dir).name:
            continue
        if not was:
            return f" (its lineage had no stage {stage.name})"
        differences = (was.get("selection") and stage.selection
                       and selection_differences(was["selection"], stage, suite))
        return (f" (stage {stage.name}'s selection: {'; '.join(differences)})" if differences
                else f" (stage {stage.name} was built from other settings or inputs)")
    return ""


def probe_difference(record: ProbeRecord, plan: RunPlan, suite: Suite) -> str | None:
    asked = finetune_recipe(plan, suite)
    if not same_model(record.model, plan.model, suite):
        return f"starting checkpoint: probed {record.model}, asked {plan.model}"
    if record.max_length != asked.max_length:
        return f"max_length: probed with {record.max_length}, asked {asked.max_length}"
    return None


def same_model(finished: str, asked: str, suite: Suite) -> bool:
    """Whether a result was made from the starting checkpoint asked: the same model_identity, or,
    for a model folder in the study's own folder, the same place in it (the result names the folder
    where the study lay then: a study moved, renamed or copied to a cluster called its runs stale)."""
    inside = in_suite_folder(suite, asked)
    return (model_identity(finished) == model_identity(asked)
            or inside is not None and Path(finished).parts[-len(inside.parts):] == inside.parts)


def model_identity(model: str) -> str:
    """A checkpoint folder of ours by its name, `<lineage>-<key8>` (its stage key), wherever the
    cache lies; any other model (a hub id, bundled:bert-tiny, a folder) by the name given."""
    path = Path(model)
    ours = path.parent.name == "checkpoints" and checkpoint_lineage(path.name) is not None
    return path.name if ours else model


def refuse(stale: list[Stale]) -> None:
    """The one line for stale results, naming the first."""
    first, more = stale[0], len(stale) - 1
    raise UserError(f"{first.path}: finished from other settings than asked now ({first.reason})"
                    + (f"; {more} more result(s) like it" if more else "")
                    + "; redo them with --rerun-stale (the old files are kept as *.stale-<n>.json) "
                    "or choose another --results-dir")


def retire(stale: list[Stale]) -> None:
    """Rename each stale file to <name>.stale-<n>.json (the first n free, claimed so that another
    runner retiring at the same time never takes the same n: _keep_aside), saying so: the run is
    then unfinished and redone, and its old result kept for comparison, never read as a result."""
    for item in stale:
        kept = _keep_aside(item.path)
        if kept is None:   # another runner on this results folder set it aside first
            print(f"stale, to redo: {item.path} ({item.reason}); already set aside by another runner", flush=True)
            continue
        print(f"stale, to redo: {item.path} ({item.reason}); kept as {kept.name}", flush=True)


def _keep_aside(path: Path) -> Path | None:
    """Rename `path` to <stem>.stale-<n><suffix> for the first n whose name is free, replacing
    nothing: each name is claimed by creating it exclusively (O_EXCL: atomic on a local file
    system) and only then renamed onto, so two runners retiring at once never pick the same name
    (an exists() check before the rename let both pick n, and one rename replaced the other's kept
    file). None when `path` is gone (another runner moved it first); a kill between the claim and
    the rename leaves an empty file under the claimed name, which nothing reads."""
    n = 0
    while True:
        claimed = path.with_name(f"{path.stem}.stale-{n}{path.suffix}")
        try:
            os.close(os.open(claimed, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
        except FileExistsError:
            n += 1
            continue
        try:
            os.replace(path, claimed)
        except FileNotFoundError:
            claimed.unlink()
            return None
        return claimed
