"""The study around the jobs: the plan and its estimate, the mini data, the record of each
call, the domain analysis and the tables, and the README's results block.

`dontstop reproduce` (runner/cli.py) calls these in order; each is a plain function.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

from ..analysis.domains import analyze_suite
from ..experiment import EXPERIMENTS_DIR, Experiment, Suite, analysis_dir
from ..fileio import atomic_write_json, atomic_write_text, read_json
from ..provenance import git_commit, software_versions
from ..report.write import aggregate
from ..records import METRICS_FILE
from .estimate import Estimator, MissingInput
from .finished import Stale
from .jobs import make_jobs
from .plan import RunPlan, unique_stages

REPO_README = EXPERIMENTS_DIR.parent / "README.md"
NOTEBOOK = EXPERIMENTS_DIR.parent / "notebooks" / "results.ipynb"


def print_plan(plans: list[RunPlan], suite: Suite, stale: list[Stale], analysis: set[str]) -> None:
    """Every stage to build, reuse or skip (nothing needs it), the fine-tuning runs left (stale ones
    included), and what they cost here; `analysis`: the checkpoints the domain analysis reads."""
    estimator, total, bounded = Estimator.for_suite(suite), 0.0, False
    print(f"suite {suite.name}: {len(plans)} (task, condition) pairs")
    redo = {item.path for item in stale}
    kept = {job.stage.key for job in make_jobs(plans, suite.probe, analysis, redo) if job.kind == "pretrain"}
    for stage in unique_stages(plans):
        state = "published" if stage.published else "reuse" if stage.record_path.exists() else \
            "build" if stage.key in kept else "skip"
        if state == "skip":
            print(f"  stage {state:9s} {stage.lineage:48s} not needed: every run and probe from it is finished")
            continue
        try:
            seconds, tokens, steps, exact = (0.0, 0, 0, True) if state != "build" else estimator.stage_seconds(stage)
        except MissingInput as missing:
            print(f"  stage {state:9s} {stage.lineage:48s} cost unknown: {missing} not found")
            continue
        total, bounded = total + seconds, bounded or not exact
        print(f"  stage {state:9s} {stage.lineage:48s} steps{'~' if exact else '<'}{steps:>9,d} "
              f"tokens{'~' if exact else '<'}{tokens:>14,d} time~{_duration(seconds)}")
    todo = [(p, s) for p in plans for s in p.seeds
            if not (p.run_dir(s) / "metrics.json").exists() or p.run_dir(s) / "metrics.json" in redo]
    runs = [estimator.finetune_seconds(p) for p, _ in todo]
    finetune_seconds, bounded = sum(s for s, _ in runs), bounded or not all(e for _, e in runs)
    total += finetune_seconds
    stale_runs = [item for item in stale if item.path.name == METRICS_FILE]
    print(f"  fine-tuning: {len(todo)} run(s) to do"
          + (f" ({len(stale_runs)} of them stale: finished from other settings, first "
             f"{stale_runs[0].path}: {stale_runs[0].reason})" if stale_runs else "")
          + f", {sum(len(p.seeds) for p in plans) - len(todo)} finished; time~{_duration(finetune_seconds)}")
    device = "GPU" if suite.estimate_bench else "on this machine"
    print(f"estimated total {device}: {_duration(total)}"
          + (" (an upper bound: task files not downloaded yet count as full 512-token sequences, or a "
             "rate slower than what will run; '<' above)" if bounded else ""))
    print(f"  pretraining at {estimator.pretrain.value:,.0f} tokens/s ({estimator.pretrain.source})")
    if estimator.finetune_run_s is not None:
        print(f"  fine-tuning runs at the median of the finished ones ({estimator.finetune_run_s:,.0f} s)")
    elif estimator.finetune is not None:
        print(f"  fine-tuning at {estimator.finetune.value:,.0f} training tokens/s ({estimator.finetune.source}"
              + (", an upper bound" if estimator.finetune.upper_bound else "") + ")")


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:7.1f} h" if seconds >= 7200 else f"{seconds / 60:7.1f} min"


def print_skipped(suite: Suite, experiments: list[Experiment], task_keys: list[str] | None) -> None:
    """A study's own tasks: one line per condition that its inputs leave out on some task, and
    why (a built-in suite's tasks follow the paper's design, which says where each applies)."""
    if not suite.own_tasks:
        return
    for experiment in experiments:
        why = {key: experiment.missing_input(suite.task(key), suite) for key in task_keys or suite.tasks}
        skipped = {key: reason for key, reason in why.items() if reason}
        if skipped:
            print(f"skipped {experiment.condition} ({experiment.display}) on {', '.join(skipped)}: "
                  f"{'; '.join(dict.fromkeys(skipped.values()))}", flush=True)


def needs_mini_data(suite: Suite) -> bool:
    """The mini suite, or a study extending it that keeps one of its tasks or relative paths."""
    paths = [suite.base_corpus, *suite.domain_corpora.values(), *suite.pools.values(), *suite.curated.values()]
    relative = any(path and not Path(path).is_absolute() for path in paths)
    return suite.data_folder.name == "mini" and (suite.registry == "mini" or relative)


def ensure_mini_data(suite: Suite) -> None:
    if not needs_mini_data(suite) or (Path(suite.data_dir) / "mini" / "manifest.json").exists():
        return
    from ..data.mini import build_mini

    print("mini benchmark data missing: building it (dontstop data build-mini)")
    build_mini(Path(suite.data_dir))


def record_invocation(suite: Suite, args: argparse.Namespace, seconds: float,
                       plans: list[RunPlan], finished: int) -> list[dict]:
    """Append this call to results/<suite>/RUN.json: a resumed study keeps every part's time."""
    path = Path(suite.results_dir) / suite.name / "RUN.json"
    history = read_json(path)["invocations"] if path.exists() else []
    history.append({
        "command": "dontstop " + " ".join(sys.argv[1:]),
        "finished_at": datetime.datetime.now().isoformat(timespec="seconds"),
        "wall_time_s": round(seconds, 1), "jobs_finished": finished, "quick": args.quick,
        "runs": sum(len(p.seeds) for p in plans), "git_commit": git_commit(),
        "machine": f"{platform.machine()}, {cpu_count()} CPU cores, {platform.system()}",
        "versions": software_versions()})
    atomic_write_json(path, {"suite": suite.name, "invocations": history})
    print(f"run record: {path} ({seconds / 60:.1f} min, {finished} jobs finished)")
    return history


def analyze_and_aggregate(suite: Suite, tables_root: Path, experiments: Path, wandb: bool = False) -> Path:
    """The domain analysis (Figure 2, Tables 1 and 12) on what the suite has, then the paper's
    tables and plots; what the analysis cannot compute is a note in the tables' README."""
    print(f"domain analysis -> {analysis_dir(tables_root, suite.name)}", flush=True)
    notes = analyze_suite(suite, analysis_dir(tables_root, suite.name))
    tables = aggregate(suite, Path(suite.results_dir), tables_root, experiments=experiments,
                       notes=notes, wandb=wandb)
    print(f"tables and plots: {tables}/README.md")
    return tables


def is_the_repo_study(suite: Suite, args: argparse.Namespace) -> bool:
    """Whether this run is the repository's own mini study (whole, in results/), whose tables the
    README shows; a run into another results directory (a benchmark, a copy) or of a study file
    (even one that extends mini) leaves it alone."""
    in_repo_results = Path(suite.results_dir).resolve() == REPO_README.parent / "results"
    return (suite.name == "mini" and not suite.is_study and in_repo_results
            and not (args.quick or args.tasks or args.conditions))


def update_readme(readme: Path, history: list[dict], tables: Path) -> None:
    """Put the study's main table, findings and one plot into the README, between markers."""
    begin, end = "<!-- generated:results -->", "<!-- /generated:results -->"
    text = readme.read_text(encoding="utf-8")
    if begin not in text or end not in text:
        return
    table5 = (tables / "table5.md").read_text(encoding="utf-8").split("\n", 1)[1].strip()
    findings = (tables / "findings.md").read_text(encoding="utf-8").split("\n", 1)[1].strip()
    run, minutes = history[-1], sum(h["wall_time_s"] for h in history) / 60
    block = (f"{begin}\nGenerated by `{run['command']}` on {run['finished_at']} "
             f"({run['machine']}; {run['runs']} fine-tuning runs; {minutes:.1f} min of wall time in "
             f"{len(history)} call(s), see results/mini/RUN.json; git {str(run['git_commit'])[:10]}). "
             f"Test macro-F1 × 100, mean ± std (n seeds); every table is in "
             f"[{tables}/]({tables}/README.md).\n\n{table5}\n\n"
             f"{findings}\n\n![every condition per task]({tables}/plots/bars.png)\n{end}")
    head, rest = text.split(begin, 1)
    atomic_write_text(readme, head + block + rest.split(end, 1)[1])
    print(f"updated the results in {readme}")


def refresh_notebook(suite: Suite, tables_root: Path, out: Path | None = None) -> None:
    """Execute notebooks/results.ipynb on the study just aggregated: in place (the repository's
    study, outputs committed), or into `out` (a study file's own copy)."""
    from ..report.notebook import execute_notebook

    name = str(Path(suite.source).resolve()) if suite.is_study else suite.name
    path = execute_notebook(NOTEBOOK, results=Path(suite.results_dir), suite=name,
                            tables=tables_root, cache=Path(suite.cache_dir), out=out)
    print(f"executed {path} on {Path(suite.results_dir) / suite.name}")


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

