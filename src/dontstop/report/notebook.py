"""What notebooks/results.ipynb reads, as frames, and the function that executes it.

    path = execute_notebook(Path("notebooks/results.ipynb"), results=Path("results"), suite="mini",
                            tables=Path("paper_tables"), cache=Path("cache"), data=Path("data"))

Everything comes from the record files (metrics.json, probe.json, the stage and selection
records inside metrics.json), the analysis outputs and, for the nearest-neighbour lookup,
the runner's cache (the saved embedder and faiss index of a kNN selection); nothing from W&B.
Scores are ×100 like the tables. Figures are in report/notebook_plots.py.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from ..conditions import Conditions
from ..suites import Suite
from ..fileio import atomic_write_text, read_json, sha256_text
from ..records import INDEX_KEY_FILE, SELECTED_CORPUS_FILE, MetricsRecord
from ..data.sentences import task_queries
from ..select.embed import load_embedder
from ..select.index import load_index, search
from ..select.pool import fetch_candidates, load_scan
from .plots import stage_losses
from .pool_place import find_pool
from .runs import load_runs, summarize
from .tables import Layout, pretraining_cost

KERNEL = "dontstop-notebook"   # the private kernel spec: this interpreter, wherever it lives
CELL_TIMEOUT_S = 600
QUIET_KERNEL = ["--IPKernelApp.log_level=ERROR"]   # not its "TCP without encryption" notice


def execute_notebook(notebook: Path, *, results: Path, suite: str, tables: Path, cache: Path, data: Path,
                     out: Path | None = None) -> Path:
    """Run `notebook` top to bottom on the given results tree and write it, outputs embedded,
    to `out` (default: in place, atomically). The kernel runs this interpreter in the
    notebook's folder with MPLBACKEND=Agg; no execution timestamps are kept, so two runs on
    the same records write the same file. `data`: the data folder given now, where a kNN
    selection's pool is looked for when the path its record names is gone (a moved project)."""
    import nbclient
    import nbformat

    notebook, out = Path(notebook), Path(out or notebook)
    folders = {"DONTSTOP_RESULTS": results, "DONTSTOP_TABLES": tables, "DONTSTOP_CACHE": cache,
               "DONTSTOP_WORKDIR": Path.cwd(),   # where the runs' relative paths (data/...) start
               "DONTSTOP_DATA": data}
    env = {**os.environ, **{name: _seen_from(notebook.parent, path) for name, path in folders.items()},
           "DONTSTOP_SUITE": suite, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    nb = nbformat.read(notebook, as_version=4)
    with tempfile.TemporaryDirectory(prefix="dontstop-kernel-") as jupyter, _jupyter_path(jupyter):
        spec = Path(jupyter) / "kernels" / KERNEL
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3", "language": "python"}))
        client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT_S,
                                         record_timing=False, extra_arguments=QUIET_KERNEL,
                                         resources={"metadata": {"path": str(notebook.parent)}})
        client.execute(env={**env, "JUPYTER_PATH": jupyter})
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    # Keep the committed kernel name (not the private one) and no interpreter-specific paths.
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    atomic_write_text(out, nbformat.writes(nb) + "\n")
    return out


def _seen_from(folder: Path, path: Path) -> str:
    """`path` as the kernel (cwd `folder`) should read it: relative inside the checkout
    (`../results`, the same in every clone), else absolute."""
    path, checkout = Path(path).resolve(), folder.resolve().parent
    return os.path.relpath(path, folder.resolve()) if path.is_relative_to(checkout) else str(path)


@contextlib.contextmanager
def _jupyter_path(folder: str) -> Iterator[None]:
    """JUPYTER_PATH=folder while inside: where jupyter_client looks kernel specs up."""
    previous = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = folder
    try:
        yield
    finally:
        if previous is None:
            del os.environ["JUPYTER_PATH"]
        else:
            os.environ["JUPYTER_PATH"] = previous


def load_records(results: Path, suite: Suite | str, conditions: Conditions) -> pd.DataFrame:
    """load_runs's frame plus each run's dev curve (×100), best epoch, epochs run and lineage."""
    runs = load_runs(results, suite, conditions)
    records = [MetricsRecord.read(path) for path in runs.path]
    return runs.assign(dev_curve=[[100 * v for v in r.dev_curve] for r in records],
                       best_epoch=[r.best_epoch for r in records],
                       epochs_run=[r.epochs_run for r in records],
                       epochs=[r.config.get("epochs", r.epochs_run) for r in records],
                       lineage=[r.lineage for r in records])


def dev_curves(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, epoch): the dev score ×100 and whether it is the run's best epoch."""
    rows = [{"task": r.task, "condition": r.condition, "seed": r.seed, "epoch": epoch,
             "dev": value, "best": epoch == r.best_epoch}
            for r in records.itertuples() for epoch, value in enumerate(r.dev_curve, start=1)]
    return pd.DataFrame(rows, columns=["task", "condition", "seed", "epoch", "dev", "best"])


def convergence_note(records: pd.DataFrame) -> str:
    """How many runs peaked on dev at their last epoch (still rising when training stopped)."""
    last = records[(records.best_epoch == records.epochs_run) & (records.epochs_run >= records.epochs)]
    early = records[records.epochs_run < records.epochs]
    return (f"{len(last)} of {len(records)} runs had their best dev score at the last of the recipe's "
            f"{_epochs(records)}: their curve may still have been rising when training stopped. "
            f"{len(early)} stopped early on patience.")


def _epochs(records: pd.DataFrame) -> str:
    budgets = sorted(set(records.epochs))
    return f"{budgets[0]} epoch{'s' * (budgets[0] != 1)}" if len(budgets) == 1 else f"{budgets} epochs"


def stage_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per pretraining stage (keyed by lineage): kind, held-out MLM loss before and
    after it (nats per masked token), and the drop."""
    losses = stage_losses(runs)
    if losses.empty:
        return pd.DataFrame(columns=["stage", "kind", "before", "after", "drop"])
    wide = losses.pivot(index="stage", columns="when", values="loss").reindex(columns=["before", "after"])
    wide = wide.reset_index().rename_axis(columns=None)
    wide.insert(1, "kind", [stage_kind(s) for s in wide.stage])
    return wide.assign(drop=wide.before - wide.after)


def stage_kind(lineage: str) -> str:
    """`dapt-cs+knn50-aclsum-roles` -> `knn`: the last stage's kind, from its name."""
    return lineage.split("+")[-1].split("-")[0].rstrip("0123456789")


def selections(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per selection stage of a (task, condition): its select_record fields and the
    stage record it came with (first seed: every seed starts from the same checkpoint)."""
    rows = []
    for run in runs.sort_values("seed").drop_duplicates(["task", "condition"]).itertuples():
        for stage in run.pretraining:
            selection = stage.get("selection")
            if selection:
                rows.append({"task": run.task, "condition": run.condition, "stage": stage.get("lineage"),
                             **{k: selection.get(k) for k in ("method", "k", "unit", "query_unit", "queries",
                                                              "pool_size", "candidates_before_dedup", "selected",
                                                              "duplicates_removed", "embedder", "index")},
                             "selected_by_source": selection.get("selected_by_source", {}),
                             "pool_by_source": selection.get("pool_by_source", {}), "record": stage})
    frame = pd.DataFrame(rows, columns=["task", "condition", "stage", "method", "k", "unit", "query_unit", "queries",
                                       "pool_size", "candidates_before_dedup", "selected",
                                       "duplicates_removed", "embedder", "index",
                                       "selected_by_source", "pool_by_source", "record"])
    return frame.sort_values(["task", "method", "k"], ignore_index=True)   # kNN by k, then RAND


def source_mix(chosen: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Share (%) of each source among the selected candidates of every selection, and in the
    pool itself (row `pool`, once per task); long format."""
    rows = []
    for task, group in chosen.groupby("task", sort=False):
        entries = [("pool", group.pool_by_source.iloc[0])]
        entries += [(f"{names[c]} (k={k})", mix) for c, k, mix in
                    zip(group.condition, group.k, group.selected_by_source)]
        for label, mix in entries:
            total = sum(mix.values()) or 1
            rows += [{"task": task, "selection": label, "source": source, "candidates": n,
                      "share": 100 * n / total} for source, n in sorted(mix.items())]
    return pd.DataFrame(rows, columns=["task", "selection", "source", "candidates", "share"])


def nearest_neighbours(cache: Path, suite: str, stage: dict, sentences: int = 3, neighbours: int = 3,
                       workdir: Path = Path("."), data: Path | None = None) -> tuple[pd.DataFrame | None, str]:
    """Re-run a kNN selection's saved embedder and faiss index on its first `sentences` task
    sentences: (their nearest pool candidates, sentences or lines, at most `neighbours` and the
    selection's k, all of them selected; ""), or (None, why not). `workdir`: where the run started, from which a
    relative pool path of its record (`data/mini/pools/cs.jsonl`) is read; `data`: the data folder
    given now, where the pool is looked for when that path is gone (report/pool_place.py)."""
    folders = [Path(f).parent for f in stage.get("corpus_files", []) if Path(f).name == SELECTED_CORPUS_FILE]
    if not folders:
        return None, f"{stage.get('lineage')}: no selection corpus in its stage record"
    selection = Path(cache) / suite / "selections" / folders[0].name
    if not (selection / SELECTED_CORPUS_FILE).is_file():
        return None, f"{selection}: not in the cache (rerun the study with this --cache-dir)"
    with open(selection / SELECTED_CORPUS_FILE, encoding="utf-8") as f:
        task_texts = [row["text"] for row in map(json.loads, f) if row.get("source") == "task"]
    # the queries as the selection made them (a record from before query units: whole texts)
    queries = task_queries(task_texts, stage.get("selection", {}).get("query_unit", "text"))
    indexes = _index_dirs(Path(cache) / suite / "indexes", sha256_text("\n".join(queries)))
    if not indexes:
        return None, f"{Path(cache) / suite / 'indexes'}: no saved index built for {selection.name}'s task text"
    pool, index_dir, why = find_pool(stage.get("selection", {}).get("pool") or "", workdir=Path(workdir), data=data,
                                     indexes=indexes, unit=stage.get("selection", {}).get("unit", "line"),
                                     selection=selection, settings=stage.get("selection"))   # keyed by its content
    if pool is None:
        return None, why
    embedder, scan = load_embedder(index_dir / "embedder"), load_scan(index_dir / "pool_scan.npz")
    vectors = embedder.transform(queries[:sentences])
    # Never more than the selection's own k: every neighbour shown was selected.
    k = min(neighbours, stage.get("selection", {}).get("k") or neighbours)
    ids = search(load_index(index_dir / "index.faiss"), vectors, k)
    wanted = np.unique(ids[ids >= 0])
    texts = dict(zip(wanted.tolist(), fetch_candidates(pool, scan, wanted)))
    rows = []
    for query, vector, row in zip(queries, vectors, ids):
        found = [texts[int(i)] for i in row if i >= 0]
        similarity = embedder.transform([text for text, _ in found]) @ vector if found else []
        rows += [{"task sentence": query, "rank": rank, "cosine": float(sim), "source": source,
                  "neighbour": text} for rank, ((text, source), sim) in enumerate(zip(found, similarity), 1)]
    return pd.DataFrame(rows), ""


def neighbours_markdown(found: pd.DataFrame, width: int = 220) -> str:
    """Each task sentence as a quote, then its neighbours as a table (cut to `width` characters)."""
    def cut(text: str) -> str:
        text = " ".join(text.split()).replace("|", "\\|")
        return text if len(text) <= width else text[:width - 1] + "…"

    lines = []
    for sentence, rows in found.groupby("task sentence", sort=False):
        lines += ["", f"> {cut(sentence)}", "", "| rank | cosine | source | neighbour |", "|---|---|---|---|"]
        lines += [f"| {r.rank} | {r.cosine:.2f} | {r.source} | {cut(r.neighbour)} |" for r in rows.itertuples()]
    return "\n".join(lines[1:])


def _index_dirs(indexes: Path, queries_sha: str) -> dict[Path, dict]:
    """The saved indexes built for this task text (by its sha256), each with its key."""
    keys = {path.parent: read_json(path) for path in sorted(indexes.glob(f"*/{INDEX_KEY_FILE}"))}
    return {folder: key for folder, key in keys.items()
            if key.get("queries") == queries_sha and (folder / "index.faiss").is_file()}


def cost_gain(runs: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """Table 9's cost columns for every (task, condition) with runs: pretraining tokens summed
    over the lineage's stages (report.tables.pretraining_cost), mean ± std, and the gain over
    the baseline of the same task."""
    if runs.empty:
        return pd.DataFrame(columns=["task", "condition", "tokens", "wall_time_s", "mean", "std", "n", "gain"])
    cells = summarize(runs).reset_index()
    costs = pd.DataFrame([pretraining_cost(runs, r.task, r.condition) for r in cells.itertuples()])
    cells = pd.concat([cells, costs[["tokens", "wall_time_s"]]], axis=1)
    baseline = cells[cells.condition == layout.conditions.baseline].set_index("task")["mean"]
    return cells.assign(gain=cells["mean"] - cells.task.map(baseline))


def read_matrix(path: Path) -> pd.DataFrame | None:
    """An analysis matrix (vocab_overlap.csv, mlm_loss.csv): first column is the row index."""
    return pd.read_csv(path, index_col=0) if Path(path).is_file() else None
