"""Read finished runs: results/<suite>/**/metrics.json -> one tidy frame, one row per run.

The report's only reader of results/. Cells are `mean ± std (n)` with the sample standard
deviation over seeds (ddof=1; the paper prints a std over 5 seeds without saying which); a
missing run is `—`.
The test metric is in percent from here on.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..conditions import Conditions
from ..fileio import UserError, file_sha256
from ..recipes import MACHINE_FIELDS, MACHINE_PRETRAIN_FIELDS, RECIPE_KINDS, with_added_fields
from ..record_checks import check_cells, check_costs
from ..records import METRICS_FILE, MetricsRecord, read_run
from ..results_tree import result_files
from ..stage_identity import PER_STAGE_FIELDS, built_lineage, recipe_difference, released_checkpoints, stage_recipe
from ..suites import Suite, load_suite

OWN_FINETUNE_FIELDS = ("seed", "model", "suite", "task", "data_dir")   # a run's own, or compared elsewhere
RUN_COLUMNS = ["task", "condition", "seed", "score", "dev_score", "metric", "data", "git_commit",
               "versions", "pretraining", "published", "path"]
# Scores are percent; below this, per-seed scores or differences are equal up to float rounding.
EQUAL_WITHIN = 1e-9


def p_without_spread(difference: float) -> float:
    """The p-value of a difference with no spread over seeds (t has nothing to divide by): no
    difference at all is not significant (1); any other is certain (0, t infinite)."""
    return 1.0 if abs(difference) <= EQUAL_WITHIN else 0.0


def as_suite(suite: Suite | str) -> Suite:
    """The suite itself, or the one a name (mini, paper) or a study file's path names."""
    return load_suite(suite) if isinstance(suite, str) else suite


def read_runs(results_dir: str | Path, suite: Suite | str) -> dict[Path, MetricsRecord]:
    """Every metrics.json of `suite` under `results_dir`, read (and checked: each in its folder) once."""
    root = Path(results_dir) / as_suite(suite).name
    return {path: read_run(path) for path in result_files(root, METRICS_FILE)}


def load_runs(results_dir: str | Path, suite: Suite | str, conditions: Conditions,
              records: dict[Path, MetricsRecord] | None = None) -> pd.DataFrame:
    """Every finished run of `suite` under `results_dir`, one row each (score in percent);
    `records`: those read_runs read already."""
    suite = as_suite(suite)
    records = read_runs(results_dir, suite) if records is None else records
    rows = [_run_row(path, record, suite, conditions) for path, record in records.items()]
    _one_lineage_per_cell(records, suite, conditions)
    check_cells(records)
    mixed = mixed_settings(records)
    if mixed:
        raise UserError(f"{mixed}: runs made from other settings (a --set, or an edited suite, between "
                        "them) never share a table; keep each setting's runs in a --results-dir of its own")
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def _run_row(path: Path, record: MetricsRecord, suite: Suite, conditions: Conditions) -> dict:
    checks = {"suite": (record.suite == suite.name, f"expected {suite.name!r}"),
              "task": (record.task in suite.tasks, f"not a task of the {suite.name} suite (its tasks: "
                                                   f"{', '.join(suite.tasks)})"),   # `--set tasks=[...]` narrows them
              "condition": (record.condition in conditions,
                            f"not a condition folder of {conditions.root}/ (known: {', '.join(conditions.display)})")}
    task = suite.task_table.get(record.task)
    if task is not None:   # an accuracy run in a macro-F1 row was its bold best
        checks["metric"] = (record.metric == task.metric, f"the suite scores {record.task} by {task.metric}")
    for name, (ok, problem) in checks.items():
        if not ok:
            raise UserError(f"{path}: field {name!r} is {getattr(record, name)!r}: {problem}")
    check_costs(path, record.pretraining)
    return {"task": record.task, "condition": record.condition, "seed": record.seed,
            "score": 100 * record.test_metric, "dev_score": 100 * record.dev_metric,
            "metric": record.metric, "data": data_version(record.data_sha256),
            "git_commit": record.git_commit or "unknown",
            "versions": " ".join(f"{k} {v}" for k, v in sorted(record.versions.items())),
            "pretraining": record.pretraining, "published": record.published, "path": str(path)}


def _one_lineage_per_cell(records: dict[Path, MetricsRecord], suite: Suite, conditions: Conditions) -> None:
    """Every seed of a (task, condition) cell was fine-tuned from one pretraining lineage, the one
    its condition builds: a TAPT run copied into the baseline's folder (its condition edited) was
    tabled as a baseline seed."""
    first: dict[tuple[str, str | None], tuple[str, Path]] = {}
    for path, record in records.items():
        if record.published:   # a released checkpoint's lineage is named by its shape, no base stage
            _check_released(path, record, suite, conditions)
        else:
            check_lineage(path, record.lineage, record.task, record.condition, suite, conditions)
        lineage, seen = first.setdefault((record.task, record.condition), (record.lineage, path))
        if record.lineage != lineage:
            raise UserError(f"{seen} and {path}: runs of one cell fine-tuned from two lineages, {lineage!r} and "
                            f"{record.lineage!r} (a run copied from another condition?); `dontstop status` names "
                            "the stale one")


def _check_released(path: Path, record: MetricsRecord, suite: Suite, conditions: Conditions) -> None:
    """A run `published` (fine-tuned from a released checkpoint) was from one the suite has for its cell: a mini
    TAPT run so edited was tabled † "fine-tuned from the authors' released checkpoint"; `status` called it stale."""
    condition, task = conditions.get(record.condition), suite.task(record.task)
    released = released_checkpoints(suite, task, condition.stages) if condition.applies(task, suite) else []
    if record.model not in released:
        raise UserError(f"{path}: field 'published' is True, but {record.model!r} is no released checkpoint of the {suite.name} "
                        f"suite for {record.condition} on {record.task} (it has {' or '.join(released) or 'none'}; edited by hand?)")


def check_lineage(path: Path, lineage: str, task: str, condition: str | None, suite: Suite,
                  conditions: Conditions, released_too: bool = False) -> None:
    """A run's or probe's lineage is the one its condition's stages build on its task now: the runs
    of a condition whose `stages` were edited since (stale, `status` said) were tabled as its row, as
    was a cell copied from another condition with `condition` edited in each file. `released_too`:
    a released checkpoint's lineage (no base stage) passes too."""
    if condition not in conditions or task not in suite.task_table \
            or not conditions.get(condition).applies(suite.task(task), suite):   # Transfer-TAPT without a partner
        return
    expected = built_lineage(suite, suite.task(task), conditions.get(condition).stages)
    if lineage != expected and not (released_too and lineage == expected.removeprefix("base+")):
        raise UserError(f"{path}: fine-tuned from lineage {lineage!r}, but {conditions.root}/{condition}/config.yaml "
                        f"builds {expected!r} on {task} (its stages edited since, or a cell copied from another "
                        "condition?); `dontstop status` names the stale runs, `run --rerun-stale` redoes them")


def mixed_settings(records: dict[Path, MetricsRecord]) -> str | None:
    """Where two runs of one table were made from different settings (a --set, or an edited suite,
    between them), else None: every run of a task must share its resolved fine-tuning recipe, and
    every stage of a recipe kind its resolved recipe. What a run or stage has of its own (seed,
    starting checkpoint, input files) and what the machine resolves is not compared."""
    first: dict[tuple[str, ...], tuple[Path, object]] = {}
    for path, record in records.items():
        for where, value in _settings(record):
            seen_path, seen = first.setdefault(where, (path, value))
            if seen != value:
                name = f"finetune.{where[2]} of {where[1]}" if where[0] == "finetune" else f"recipes.{where[1]}.{where[2]}"
                return f"{path}: {name} is {value!r} here and {seen!r} in {seen_path}"
    return None


def asked_settings_difference(records: dict[Path, MetricsRecord], suite: Suite, quick: bool) -> str | None:
    """Where a finished run of `suite` (`records`: read_runs) was fine-tuned otherwise than `suite`'s
    fine-tuning section asks (`dontstop aggregate` builds the tables of the suite it is given), a
    full suite's tables would show a --quick run (its shortened values, where the full suite
    leaves them to the task), or a run's pretraining stage was built with another recipe than the
    suite's now, else None. Without it, `aggregate --results-dir results/quick` replaced the full
    tables with those of 1-epoch smoke runs, and a suite's recipes.dapt edited after its runs
    titled their tables."""
    quick_values = {} if quick else {key: value for key, value in suite.quick.get("finetune", {}).items()
                                     if suite.finetune.get(key) is None}
    for path, record in records.items():
        config = record.config
        for key, value in suite.finetune.items():
            if value is not None and key not in MACHINE_FIELDS and key in config and config[key] != value:
                return f"{path}: finetune.{key} is {config.get(key)!r} here, the suite asks {value!r}"
        if quick_values and all(config.get(key) == value for key, value in quick_values.items()):
            return f"{path}: a --quick run ({', '.join(f'finetune.{k} {v!r}' for k, v in quick_values.items())})"
        for stage in record.pretraining:   # a suite's recipe edited since: `status` calls the run stale
            kind = stage.get("kind")
            if difference := (kind in RECIPE_KINDS and isinstance(stage.get("recipe"), dict)
                              and recipe_difference(stage["recipe"], stage_recipe(suite, kind))):
                return f"{path}: its stage {stage.get('name')} (recipes.{kind}) {difference}"
            if own := _own_setting_difference(stage, suite):
                return f"{path}: its stage {stage.get('name')} {own}"
    return None


def _own_setting_difference(stage: dict, suite: Suite) -> str | None:
    """A stage's pretraining seed (every stage's: suite.pretrain_seed) and the base stage's start
    model (suite.base_model, a hub or bundled id) against the suite's now, or None: `status` calls
    a run of other ones stale; aggregate tabled it (`--set pretrain_seed=5`, `--set base_model=...`)."""
    recipe = stage.get("recipe")
    if stage.get("kind") not in RECIPE_KINDS or not isinstance(recipe, dict):
        return None   # a released checkpoint: nothing was trained here
    if recipe.get("seed", suite.pretrain_seed) != suite.pretrain_seed:
        return f"pretrain_seed: built with {recipe['seed']!r}, the suite asks {suite.pretrain_seed!r}"
    base = suite.base_model   # a local folder is named by its path, which moves with the study
    if stage.get("kind") == "base" and not Path(base).expanduser().exists() and stage.get("base_model") != base:
        return f"base_model: built from {stage.get('base_model')!r}, the suite asks {base!r}"
    return None


def _settings(record: MetricsRecord):
    for key, value in record.config.items():
        if key not in OWN_FINETUNE_FIELDS and key not in MACHINE_FIELDS:
            yield ("finetune", record.task, key), value
    for stage in record.pretraining:   # a released checkpoint has no recipe: nothing was trained here
        if stage.get("kind") in RECIPE_KINDS and isinstance(stage.get("recipe"), dict):
            yield from ((("recipes", stage["kind"], key), value)
                        for key, value in with_added_fields(stage["recipe"]).items()
                        if key not in PER_STAGE_FIELDS and key not in MACHINE_PRETRAIN_FIELDS)


def filter_runs(runs: pd.DataFrame, tasks: list[str] | None = None,
                conditions: list[str] | None = None) -> pd.DataFrame:
    """The runs of the given tasks and conditions; an empty or None list keeps all."""
    keep = pd.Series(True, index=runs.index)
    if tasks:
        keep &= runs.task.isin(tasks)
    if conditions:
        keep &= runs.condition.isin(conditions)
    return runs[keep]


def other_data_than_on_disk(records: dict[Path, MetricsRecord], suite: Suite) -> list[str]:
    """"<metrics.json>: <split> data ..." for each run made from other task data than the split
    files on disk now, or whose base or DAPT stage was built from another corpus than the file
    the suite names for it now (`status` calls it stale, `run` refuses it); a file not on disk
    (tables made where the data is not) is not compared. Each file hashed once a process."""
    found = []
    for path, record in records.items():
        task_dir = suite.task_dir(record.task) if record.task in suite.tasks else None
        for split, recorded in sorted(record.data_sha256.items()):
            file = task_dir / f"{split}.jsonl" if task_dir else None
            if file is not None and file.is_file() and file_sha256(file) != recorded:
                found.append(f"{path}: {split} data sha256 {recorded[:8]}, the file now {file_sha256(file)[:8]}")
                break
        else:
            found += [f"{path}: {other}" for stage in record.pretraining if (other := _other_corpus(stage, suite))][:1]
    return found


def _other_corpus(stage: dict, suite: Suite) -> str | None:
    """"stage dapt-cs corpus sha256 ..., domain_corpora.cs (<path>) now ..." where a base or DAPT
    stage was built from another corpus than the suite's base_corpus or domain_corpora.<domain>
    now (`--set`, `--domain-corpus`). Memoised in the suite's cache if there is one (gigabytes)."""
    kind, domain = stage.get("kind"), str(stage.get("name", "")).partition("-")[2]
    if kind == "base" and suite.base_corpus:
        key, given = "base_corpus", suite.base_corpus
    elif kind in ("dapt", "dapt_lora") and domain in suite.domain_corpora:
        key, given = f"domain_corpora.{domain}", suite.domain_corpora[domain]
    else:
        return None
    recorded, file = list((stage.get("corpus_sha256") or {}).values()), Path(suite.data_path(given))
    memo = suite.cache_dir if Path(suite.cache_dir).is_dir() else None
    if recorded and file.is_file() and (now := file_sha256(file, memo)) not in recorded:
        return f"stage {stage.get('name')} corpus sha256 {recorded[0][:8]}, {key} ({file}) now {now[:8]}"
    return None


def data_version(data_sha256: dict[str, str]) -> str:
    """A short, readable fingerprint of a run's task data: `dev=1a2b3c4d test=... train=...`."""
    return " ".join(f"{split}={sha[:8]}" for split, sha in sorted(data_sha256.items())) or "unknown"


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """mean, std (ddof=1) and n of the test score per (task, condition)."""
    grouped = runs.groupby(["task", "condition"])["score"]
    return grouped.agg(mean="mean", std="std", n="count")


def scores(runs: pd.DataFrame, task: str, condition: str) -> list[float]:
    return runs.loc[(runs.task == task) & (runs.condition == condition), "score"].tolist()


def welch(a: list[float], b: list[float]) -> tuple[float, float]:
    """Welch's t-test (scipy, unequal variances, two-sided) of mean(a) - mean(b) over seeds.

    Returns (t, p); both NaN when either side has fewer than 2 seeds. When both sides have the
    same score on every seed (a task nothing learns: the majority class on every run) t has no
    spread to divide by; as the paired test (paired.py): equal means are not significant
    (t 0, p 1), different ones are (t ±inf, p 0). scipy said NaN, with a RuntimeWarning.
    """
    if len(a) < 2 or len(b) < 2:
        return float("nan"), float("nan")
    if max(np.ptp(a), np.ptp(b)) <= EQUAL_WITHIN:
        difference = float(np.mean(a) - np.mean(b))
        p = p_without_spread(difference)
        return (0.0 if p == 1.0 else float(np.copysign(np.inf, difference))), p
    with warnings.catch_warnings():   # one side of one score: its variance 0 is exact, not "precision loss"
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def mixed_data(runs: pd.DataFrame) -> dict[str, list[str]]:
    """Tasks whose runs were made from more than one version of the task data."""
    versions = runs.groupby("task")["data"].unique()
    return {task: sorted(found) for task, found in versions.items() if len(found) > 1}


def provenance_markdown(runs: pd.DataFrame, mixed: dict[str, list[str]]) -> str:
    """Which data hashes, code commits and library versions went into the tables."""
    lines = ["# Provenance", "", f"{len(runs)} runs (metrics.json files).", ""]
    if mixed:
        lines += ["**Mixed inputs**: these tasks were run on more than one data version: "
                  + ", ".join(f"`{task}`" for task in mixed) + ".", ""]
    for column, title in (("data", "Task data (sha256 prefixes)"), ("git_commit", "Code commits"),
                          ("versions", "Library versions")):
        counts = runs.groupby(["task", column] if column == "data" else [column]).size()
        lines += [f"## {title}", "", "| " + " | ".join(counts.index.names) + " | runs |",
                  "|" + "---|" * (counts.index.nlevels + 1)]
        lines += ["| " + " | ".join(key if isinstance(key, tuple) else (key,)) + f" | {n} |"
                  for key, n in counts.items()]
        lines.append("")
    return "\n".join(lines)
