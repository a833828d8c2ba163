"""notebooks/results.ipynb, executed by report.notebook.execute_notebook on synthetic trees:
every section shows something, nothing errs, and the paper suite shows the published numbers.

The mini tree has what a real run leaves: dev curves, pretraining stage records with held-out
losses, kNN and RAND selections made by select_corpus itself (so the cache holds a real saved
embedder and faiss index), probe.json files and the domain analysis CSVs.
"""
import dataclasses
import json
from pathlib import Path

import nbformat
import pytest

from conftest import built_lineage_of
from dontstop.records import MetricsRecord, ProbeRecord
from dontstop.report.notebook import execute_notebook, nearest_neighbours
from dontstop.select.selection import select_corpus

pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "results.ipynb"

# Planted test scores ×100 per (task, condition): three seeds each.
PLANTED = {
    ("aclsum-roles", "baseline"): [60, 61, 62], ("aclsum-roles", "dapt"): [70, 71, 72],
    ("aclsum-roles", "tapt"): [55, 56, 57], ("aclsum-roles", "knn_tapt_50"): [61, 62, 63],
    ("aclsum-roles", "knn_tapt_500"): [66, 67, 68], ("aclsum-roles", "rand_tapt"): [60, 61, 63],
    ("rt-polarity", "baseline"): [80, 82, 81], ("rt-polarity", "dapt"): [81, 83, 84],
    ("rt-polarity", "tapt"): [79, 80, 82],
}
CS_WORDS = "parser treebank citation corpus annotation syntax semantic embedding lexicon dependency".split()
GENERAL_WORDS = "river mountain village football election painter harbour festival cathedral island".split()


def write_run(root: Path, suite: str, task: str, condition: str, seed: int, score: float,
              stages: list, metric: str = "macro_f1") -> None:
    scores = {"accuracy": score / 100, "macro_f1": score / 100, "micro_f1": score / 100}
    curve = [score / 100 - 0.1, score / 100 - 0.02 * (seed == 0), score / 100 - 0.01 * (seed != 0)]
    MetricsRecord(suite=suite, task=task, condition=condition, seed=seed, model="m",
                  lineage=built_lineage_of({"suite": suite, "task": task, "condition": condition}), metric=metric,
                  dev={**scores, metric: max(curve)}, test=scores, dev_metric=max(curve), test_metric=score / 100,
                  best_epoch=curve.index(max(curve)) + 1, epochs_run=3, dev_curve=curve,
                  train_examples=10, wall_time_s=1.0, config={"epochs": 3}, versions={},
                  git_commit="abc1234", data_sha256={"train": "a" * 64}, pretraining=stages,
                  ).write(root / suite / task / condition / f"seed_{seed}")


def stage(lineage: str, tokens: int, before: float, **extra) -> dict:
    return {"name": lineage.split("+")[-1], "lineage": lineage, "kind": lineage.split("-")[0],
            "steps": tokens // 1000, "documents": tokens // 50, "bytes": tokens * 5, "tokens": tokens,
            "wall_time_s": tokens / 1e4, "heldout_loss_before": before,
            "heldout_loss_after": before - 1.5, **extra}


def selection_stages(tmp_path: Path, cache: Path) -> dict[str, dict]:
    """kNN (k 2 and 6, one shared index) and RAND selections of a 40-document pool."""
    pool = tmp_path / "data" / "cs.jsonl"
    pool.parent.mkdir(parents=True)
    with open(pool, "w") as f:
        for i in range(40):
            words, source = (CS_WORDS, "cs") if i % 2 else (GENERAL_WORDS, "general")
            text = " ".join(words[(i * j) % 10] for j in range(1, 9)) + f" item{i}"
            f.write(json.dumps({"text": text, "source": source}) + "\n")
    queries = [" ".join(CS_WORDS[(i + j) % 10] for j in range(5)) for i in range(6)]
    stages = {}
    for condition, method, k in (("knn_tapt_50", "knn", 2), ("knn_tapt_500", "knn", 6), ("rand_tapt", "random", 2)):
        name = f"{'knn' if method == 'knn' else 'rand'}{k}-aclsum-roles"
        out = cache / "mini" / "selections" / f"{name}-0123abcd"
        record = select_corpus(queries, pool, out, method=method, k=k, dim=8,
                               index_dir=cache / "mini" / "indexes" / "00000000cafe0000")
        # the pool as a run records it: relative to where it started (tmp_path, the test's cwd)
        stages[condition] = stage(name, 20_000 * k, 8.0, corpus_files=[str(out / "corpus.jsonl")],
                                  selection=dataclasses.replace(record, pool="data/cs.jsonl"))
    return stages


@pytest.fixture
def mini_study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # where the study's runs started (the notebook reads the pool from it)
    results, tables, cache = tmp_path / "results", tmp_path / "tables", tmp_path / "cache"
    stages = {"baseline": [], "dapt": [stage("dapt-cs", 500_000, 8.2)],
              "tapt": [stage("tapt-aclsum-roles", 100_000, 8.4)],
              **{c: [s] for c, s in selection_stages(tmp_path, cache).items()}}
    for (task, condition), values in PLANTED.items():
        for seed, value in enumerate(values):
            write_run(results, "mini", task, condition, seed, value, stages[condition])
        probe = 40 + values[0] / 2
        ProbeRecord(suite="mini", task=task, condition=condition, model="m",
                    lineage=built_lineage_of({"task": task, "condition": condition}), metric="macro_f1",
                    dev={}, test={"macro_f1": probe / 100}, test_metric=probe / 100, train_examples=10, features=8,
                    max_length=64, wall_time_s=0.1, versions={}, git_commit=None).write(results / "mini" / task / condition)
    analysis = tables / "mini" / "analysis"
    analysis.mkdir(parents=True)
    (analysis / "vocab_overlap.csv").write_text(
        "corpus,general,cs,reviews\ngeneral,100,37.2,36.1\ncs,37.2,100,30.9\nreviews,36.1,30.9,100\n")
    (analysis / "mlm_loss.csv").write_text("model,general,cs\nbase,8.0,8.2\ndapt-cs,5.2,4.4\n")
    return results, tables, cache


def outputs(notebook: Path) -> list[tuple[str, dict]]:
    """(the heading of the section a code cell is in, one of its outputs), for every output."""
    found, section = [], ""
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            section = cell.source.splitlines()[0]
        elif cell.cell_type == "code":
            found += [(section, output) for output in cell.outputs]
    return found


def text_of(output: dict) -> str:
    data = output.get("data", {})
    return output.get("text", "") + data.get("text/markdown", "") + data.get("text/plain", "")


def test_every_section_of_the_notebook_shows_the_mini_study(mini_study, tmp_path, monkeypatch):
    """...executed from another working folder than the runs' (`cd sub && dontstop reproduce
    --data-dir ../data ...`): the kNN pool their records name relatively (`data/cs.jsonl`) is found
    under the data folder given. It was skipped, `sub/data/cs.jsonl: the pool file is gone`."""
    results, tables, cache = mini_study
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    out = execute_notebook(NOTEBOOK, results=results, suite="mini", tables=tables, cache=cache,
                           data=Path("../data"), out=tmp_path / "executed.ipynb")
    found = outputs(out)
    assert not [o for _, o in found if o.output_type == "error" or o.get("name") == "stderr"]
    sections = [cell.source.splitlines()[0] for cell in nbformat.read(NOTEBOOK, as_version=4).cells
                if cell.cell_type == "markdown" and cell.source.startswith("## ")]
    assert len(sections) == 10 and set(sections) <= {s for s, _ in found}   # each shows something
    images = [s for s, o in found if "image/png" in o.get("data", {})]
    assert len(images) >= 9   # seeds, dev curves, stage losses, 2 heatmaps, source mix, cost, probe, findings
    text = "\n".join(text_of(o) for _, o in found)
    assert "71.0 ± 1.0 (3)" in text                                   # Table 5, DAPT on ACL-Roles
    assert "| rank | cosine | source | neighbour |" in text           # the saved index, re-run
    assert "Representation probe" in text and "Pearson r" in text
    assert "MDD" in text and "underpowered" in text
    assert "| paired |" in text and "after Holm's adjustment" in text  # same seeds: paired by seed
    assert "have been rising" in text and "skipped: published numbers" in text
    assert "skipped" not in text.replace("skipped: published numbers", "")
    executed = nbformat.read(out, as_version=4)
    assert executed.metadata.kernelspec.name == "python3"
    assert not any("execution" in cell.metadata for cell in executed.cells)


def test_the_paper_suite_shows_the_published_numbers_and_skips_what_is_missing(tmp_path):
    results = tmp_path / "results"
    for condition, values in (("baseline", [81.0, 82.0, 83.0]), ("dapt", [84.0, 84.5, 85.0])):
        for seed, value in enumerate(values):
            write_run(results, "paper", "chemprot", condition, seed, value,
                      [] if condition == "baseline" else [stage("dapt-biomed", 10**9, 2.0)], metric="micro_f1")
    out = execute_notebook(NOTEBOOK, results=results, suite="paper", tables=tmp_path / "none",
                           cache=tmp_path / "none", data=tmp_path / "none", out=tmp_path / "paper.ipynb")
    found = outputs(out)
    assert not [o for _, o in found if o.output_type == "error"]
    text = "\n".join(text_of(o) for _, o in found)
    assert "Paper (5 seeds)" in text and "agrees" in text   # the agreement table
    assert "RoBERTa: paper (Δ)" in text                      # Table 5 with the published column
    assert text.count("skipped: no") >= 3                   # no analysis, no probes
    assert any("image/png" in o.get("data", {}) for s, o in found if s.startswith("## 10."))


@pytest.mark.parametrize("recorded", ["relative", "absolute"])
def test_the_nearest_neighbours_find_a_moved_projects_pool_under_the_data_folder_given_now(tmp_path, recorded):
    """A selection record names its pool as its run gave it (`data/cs.jsonl` from the folder it
    started in, or an absolute path). The project moved (or the notebook run from another folder),
    the pool is looked for under the data folder given now, and taken only when it is the pool the
    saved index was built on (sha256): never neighbours from another pool of the same name."""
    old, cache = tmp_path / "old", tmp_path / "old" / "cache"
    made = selection_stages(old, cache)["knn_tapt_500"]
    pool = "data/cs.jsonl" if recorded == "relative" else str(old / "data" / "cs.jsonl")
    record = {**made, "selection": {**dataclasses.asdict(made["selection"]), "pool": pool}}
    shown, why = nearest_neighbours(cache, "mini", record, workdir=old)
    assert why == "" and len(shown) > 0
    new = tmp_path / "new"
    old.rename(new)   # the whole project moved: the recorded path names nothing now
    cache = new / "cache"
    found, why = nearest_neighbours(cache, "mini", record, workdir=new / "sub")
    gone = new / "sub" / "data" / "cs.jsonl" if recorded == "relative" else old / "data" / "cs.jsonl"
    assert found is None and why == f"{gone}: the pool file is gone; the index alone cannot show its text"
    found, why = nearest_neighbours(cache, "mini", record, workdir=new / "sub", data=new / "data")
    assert why == "" and found.equals(shown)
    if recorded == "relative":   # a file at the recorded path, but another pool: the data folder's is taken
        (new / "sub" / "data").mkdir(parents=True)
        gone.write_text("another pool\n")
        found, why = nearest_neighbours(cache, "mini", record, workdir=new / "sub", data=new / "data")
        assert why == "" and found.equals(shown)
        found, why = nearest_neighbours(cache, "mini", record, workdir=new / "sub")
        assert found is None and why.startswith(f"{gone}: not the pool the saved index ")
        gone.unlink()
    (new / "elsewhere").mkdir()   # nothing of that name under the data folder either: both places said
    found, why = nearest_neighbours(cache, "mini", record, workdir=new / "sub", data=new / "elsewhere")
    assert found is None and why == (f"{gone}: the pool file is gone (nor under the data folder {new / 'elsewhere'}); "
                                     "the index alone cannot show its text")
    other = new / "elsewhere" / "cs.jsonl"   # another pool of the same name: its lines are other text
    other.write_text((new / "data" / "cs.jsonl").read_text().replace("item", "other item"))
    found, why = nearest_neighbours(cache, "mini", record, workdir=new / "sub", data=new / "elsewhere")
    assert found is None and why.startswith(f"{other}: found under the data folder for the gone {gone}, but not "
                                            "the pool the saved index ")
    assert "its sha256 differs; no neighbours shown from another pool" in why


def test_the_nearest_neighbours_are_searched_in_the_index_the_selection_was_made_with(tmp_path):
    """The cache holds an index per embedding of one pool and task text (a study whose settings
    changed: the encoder, then bow; bow's words under an earlier rule too). The first (sorted) was
    taken whichever the selection was made with, and its neighbours shown as that selection's."""
    from dontstop.fileio import file_sha256
    from dontstop.report.pool_place import find_pool
    from dontstop.stage_identity import SCRIPTS_WORDS_RULE, SELECTION_RULE

    pool = tmp_path / "data" / "cs.jsonl"
    pool.parent.mkdir()
    pool.write_text('{"text": "a line"}\n')
    key = {"pool_sha256": file_sha256(pool), "queries": "q", "embedder": "bow", "encoder_model": "bundled:minilm",
           "dim": 8, "index": "flat", "seed": 0, "unit": "sentence", "selection_rule": SELECTION_RULE}
    indexes = {tmp_path / "a": {**key, "embedder": "encoder"},
               tmp_path / "b": {**key, "bow_tokens": "scripts", "selection_rule": SCRIPTS_WORDS_RULE - 1},
               tmp_path / "c": {**key, "bow_tokens": "scripts", "selection_rule": SCRIPTS_WORDS_RULE},
               tmp_path / "d": key}

    def index_of(**record):
        record = {"method": "knn", "embedder": "bow", "encoder_model": None, "index": "flat", "seed": 0,
                  "bow_tokens": None, **record}
        return find_pool("data/cs.jsonl", workdir=tmp_path, data=None, indexes=indexes, unit="sentence",
                         selection=tmp_path / "selection", settings=record)[1]

    assert index_of(embedder="encoder", encoder_model="bundled:minilm") == tmp_path / "a"
    assert index_of(bow_tokens="scripts") == tmp_path / "c"
    assert index_of(bow_tokens="sklearn") == tmp_path / "d"
    assert index_of() == tmp_path / "d"   # a record from before bow_tokens: sklearn's words, the rule of then
    assert index_of(seed=1) is None       # no index of this selection's seed: none shown
