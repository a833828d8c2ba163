"""What `--dry-run` prints: every stage to build, reuse or skip with its cost, the fine-tuning
runs left, and the estimated total (runner/estimate.py measures the rates); and, before any
run, the conditions a study's inputs leave out on some task.
"""
from __future__ import annotations

from pathlib import Path

from ..conditions import Condition
from ..provenance import cpu_count
from ..recipes import FinetuneRecipe
from ..records import METRICS_FILE
from ..stage_identity import released_id
from ..suites import Suite
from .estimate import Estimator, MissingInput, wall_seconds
from .selection_size import knn_overlap_note, whole_pool
from .text_size import count_lines
from .finished import Stale
from .jobs import Job
from .plan import RunPlan, never_on_the_hub, unique_stages


def print_plan(plans: list[RunPlan], suite: Suite, stale: list[Stale], jobs: list[Job],
               workers: int | None = None) -> None:
    """Every stage to build, reuse or skip (nothing needs it), the fine-tuning runs left (stale ones
    included), and what they cost here; `jobs`: the plans' jobs (jobs.make_jobs, with the stages
    the domain analysis reads), whose stages are those to build. `workers` (the local launcher):
    the wall time on that many workers too."""
    estimator, total, guessed, unknown = Estimator.for_suite(suite), 0.0, False, False
    seconds: dict[Path, float] = {}   # each job to do: its estimated seconds, by its done file
    print(f"suite {suite.name}: {len(plans)} (task, condition) pairs")
    redo = {item.path for item in stale}
    kept = {job.stage.key: job.stage for job in jobs if job.kind == "pretrain"}
    # the plans' stages, then those only the domain analysis reads (DAPT (LoRA) for its rows)
    for stage in ({stage.key: stage for stage in unique_stages(plans)} | kept).values():
        state = "released" if stage.released else "reuse" if stage.record_path.exists() else \
            "build" if stage.key in kept else "skip"
        if state == "skip":
            print(f"  stage {state:9s} {stage.lineage:48s} not needed: every run and probe from it is finished")
            continue
        try:
            stage_s, tokens, steps, exact = (0.0, 0, 0, True) if state != "build" else estimator.stage_seconds(stage)
        except MissingInput as missing:
            print(f"  stage {state:9s} {stage.lineage:48s} cost unknown: {missing} not found")
            unknown = True
            continue
        total, guessed = total + stage_s, guessed or not exact
        seconds[stage.record_path] = stage_s
        mark = "~" if exact else "?"   # ?: sizes guessed for files not there yet, no bound either way
        print(f"  stage {state:9s} {stage.lineage:48s} steps{mark}{steps:>9,d} "
              f"tokens{mark}{tokens:>14,d} time~{_duration(stage_s)}")
        if state == "build" and (note := knn_overlap_note(stage, estimator.counter)):
            print(f"    {note}")
        if state == "build" and (whole := whole_pool(stage, estimator.counter)) is not None:
            print(f"    note: its k per query is at least the {whole:,d} candidates of "
                  f"{Path(stage.selection['pool']).name}: it selects the whole pool, as a larger k would (the same corpus)")
    todo = [(p, s) for p in plans for s in p.seeds
            if not (p.run_dir(s) / METRICS_FILE).exists() or p.run_dir(s) / METRICS_FILE in redo]
    try:
        runs = [estimator.finetune_seconds(p) for p, _ in todo]
        finetune_seconds, guessed = sum(s for s, _ in runs), guessed or not all(e for _, e in runs)
        seconds |= {p.run_dir(seed) / METRICS_FILE: run_s for (p, seed), (run_s, _) in zip(todo, runs)}
        cost = f"time~{_duration(finetune_seconds)}"
    except MissingInput as missing:   # a task of no known size, not built or downloaded yet
        finetune_seconds, unknown, cost = 0.0, True, f"cost unknown: {missing} not found"
    total += finetune_seconds
    stale_runs = [item for item in stale if item.path.name == METRICS_FILE]
    print(f"  fine-tuning: {len(todo)} run(s) to do"
          + (f" ({len(stale_runs)} of them stale: finished from other settings, first "
             f"{stale_runs[0].path}: {stale_runs[0].reason})" if stale_runs else "")
          + f", {sum(len(p.seeds) for p in plans) - len(todo)} finished; {cost}")
    print_finetune_recipe(suite, plans)
    device = "GPU" if suite.estimate_bench else "on this machine"
    print(f"estimated total {device}: {_duration(total)}"
          + (" without the costs marked unknown" if unknown else "")
          + (" (files not there yet guessed: a task's registry size of texts, each one full max_length "
             "sequence, and a pool's k candidates a query each as long; '?' above: no bound, as a longer "
             "text fills more sequences; a fine-tuning run, which cuts texts at max_length, reads at most "
             "the tokens counted)" if guessed else ""))
    if workers and not unknown:   # workers beyond the cores share them: no faster than one a core
        sharing = f" sharing {cpu_count()} CPU cores" if workers > cpu_count() else ""
        print(f"  on {workers} worker(s) (--workers){sharing}, in the runner's order: about "
              f"{_duration(wall_seconds(jobs, seconds, min(workers, cpu_count()))).strip()} of wall time")
    print(f"  pretraining at {estimator.pretrain.value:,.0f} tokens/s ({estimator.pretrain.source})")
    if estimator.counted:
        print(f"  tokens {estimator.counter.source}")
    if estimator.finetune_run_s is not None:
        print(f"  fine-tuning runs at the median of the finished ones ({estimator.finetune_run_s:,.1f} s)")
    elif estimator.finetune is not None:
        print(f"  fine-tuning at {estimator.finetune.value:,.0f} training tokens/s ({estimator.finetune.source})")
    else:
        share = estimator.finetune_share
        per_token = (f" at {share:.2f} of its cost per token (a classifier runs no masked-LM head; "
                     "from the model's shape)" if share else "")
        print(f"  fine-tuning guessed from the pretraining rate{per_token}, every epoch run (early stopping "
              "usually ends runs sooner); finished runs replace the guess by their median time")


def print_finetune_recipe(suite: Suite, plans: list[RunPlan]) -> None:
    """What every fine-tuning run gets (the suite's `finetune` over FinetuneRecipe's defaults), and
    which tasks `max_train_examples` cuts: a study that `extends: mini` has mini's recipe, its
    first 200 training examples of a task at 64 tokens, which no line said."""
    recipe = FinetuneRecipe(**{**suite.finetune, "model": "", "task": "", "suite": suite.name})
    epochs = (f"{recipe.epochs} epoch{'s' * (recipe.epochs > 1)}" if recipe.epochs
              else "the task profile's epochs (low 10, high 3)")
    line = (f"  fine-tuning recipe (the suite's finetune): lr {recipe.lr:g}, batch {recipe.batch_size}, "
            f"at most {epochs}, patience {recipe.patience}, texts cut at {recipe.max_length} tokens")
    if cut := recipe.max_train_examples:
        files = {plan.task.key: suite.task_dir(plan.task.key) / "train.jsonl" for plan in plans}
        sizes = {key: count_lines(path) if path.is_file() else 0 for key, path in files.items()}   # 0: not there yet
        cuts = [f"{key} ({size:,})" for key, size in sizes.items() if size > cut]
        line += (f", the first {cut:,} training examples of a task (finetune.max_train_examples; null: all)"
                 + (f": fewer than in {', '.join(cuts)}" if cuts else ""))
    print(line)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:7.1f} h" if seconds >= 7200 else f"{seconds / 60:7.1f} min"


def print_skipped(suite: Suite, conditions: list[Condition], task_keys: list[str] | None) -> None:
    """A study's own tasks: one line per condition that its inputs leave out on some task, and
    why (a built-in suite's tasks follow the paper's design, which says where each applies).
    With --from-released: a line per cell whose released checkpoint is built here instead."""
    print_built_for_released(suite, conditions, task_keys)
    if not suite.own_tasks:
        return
    for condition in conditions:
        if skipped := skipped_tasks(suite, condition, task_keys):
            print(f"skipped {condition.condition} ({condition.display}) on {', '.join(skipped)}: "
                  f"{'; '.join(dict.fromkeys(skipped.values()))}", flush=True)


def skipped_tasks(suite: Suite, condition: Condition, task_keys: list[str] | None) -> dict[str, str]:
    """The chosen tasks (default: the suite's) a condition does not run on, and why (its input missing)."""
    why = {key: condition.missing_input(suite.task(key), suite) for key in task_keys or suite.tasks}
    return {key: reason for key, reason in why.items() if reason}


def print_built_for_released(suite: Suite, conditions: list[Condition], task_keys: list[str] | None) -> None:
    """--from-released: the cells whose released checkpoint the hub never showed, nor the local
    cache holds, are built here (plan.never_on_the_hub): one line each, before any work."""
    if not suite.from_released:
        return
    for condition in conditions:
        for task in map(suite.task, task_keys or suite.tasks):
            hub_id = released_id(suite, task, condition.stages)[2] if condition.applies(task, suite) else None
            if never_on_the_hub(hub_id):
                print(f"note: {condition.display} on {task.name}: {hub_id}, in the authors' list, was never "
                      "on the hub and is not in the local cache: built here, TAPT on the released DAPT model, "
                      "and not marked as released (a copy put in the cache is used instead)", flush=True)
