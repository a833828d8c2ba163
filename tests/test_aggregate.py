"""dontstop aggregate: results tree -> the paper's tables, significance, findings, plots, notebook."""
import argparse
import json
import re
import shutil
import shlex
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import built_lineage_of, file_bytes
from dontstop.conditions import EXPERIMENTS_DIR, load_conditions
from dontstop.fileio import UserError
from dontstop.records import MetricsRecord
from dontstop.tasks import get_task
from dontstop.report import cli as report_cli
from dontstop.report.findings import findings_frame, verdict
from dontstop.report.published import load_published, published_cell
from dontstop.report.render import format_cell
from dontstop.report.runs import load_runs, welch
from dontstop.report.write import build_tables, make_layout

CONDITIONS = load_conditions()

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "results.ipynb"
TABLES = ("table5", "table6", "table7", "table8", "table9", "significance", "findings")


def write_run(root, task, condition, seed, score, suite="mini", data="a", stages=None, lineage=None):
    """A run as the runner writes one: a time of its own, and its stages' records (the same in every
    seed of a cell; aggregate refuses a copied run, and a cell whose seeds hold other stages)."""
    scores = {"accuracy": score / 100, "macro_f1": score / 100, "micro_f1": score / 100}
    lineage = lineage or built_lineage_of({"suite": suite, "task": task, "condition": condition})
    if stages is None:
        stages = [] if lineage == "base" else [stage(f"{condition}-{task}", 100_000)]
    MetricsRecord(suite=suite, task=task, condition=condition, seed=seed, model="m", lineage=lineage,
                  metric=get_task(suite, task).metric, dev=scores, test=scores, dev_metric=score / 100,
                  test_metric=score / 100, best_epoch=1, epochs_run=1, dev_curve=[score / 100],
                  train_examples=10, wall_time_s=1.0 + seed, config={}, versions={"python": "3.11"},
                  git_commit="abc1234", data_sha256={"train": data * 64, "dev": "d" * 64, "test": "e" * 64},
                  pretraining=list(stages)).write(root / suite / task / condition / f"seed_{seed}")


def stage(name, tokens):
    return {"name": name, "steps": tokens // 1000, "documents": tokens // 50, "bytes": tokens * 5,
            "tokens": tokens, "wall_time_s": tokens / 1e4, "heldout_loss_before": 4.0,
            "heldout_loss_after": 3.0}


# Planted scores (×100) of the mini task aclsum-roles: DAPT wins, TAPT loses, kNN rises with k.
PLANTED = {
    "baseline": [60.0, 61.0, 62.0], "dapt": [70.0, 71.0, 72.0, 73.0],  # DAPT seed 4 is missing
    "tapt": [55.0, 56.0, 57.0], "dapt_tapt": [69.0, 71.0, 73.0], "not_dapt": [58.0, 60.0, 59.0],
    "knn_tapt_50": [61.0, 62.0, 63.0], "knn_tapt_500": [66.0, 67.0, 68.0], "rand_tapt": [60.0, 61.0, 62.0],
    "curated_tapt": [64.0, 64.0, 65.0],
}


@pytest.fixture
def mini_results(tmp_path):
    root = tmp_path / "results"
    for condition, values in PLANTED.items():
        stages = [] if condition == "baseline" else [stage(f"{condition}-aclsum-roles", 100_000)]
        for seed, value in enumerate(values):
            write_run(root, "aclsum-roles", condition, seed, value, stages=stages)
    for seed, value in enumerate([80.0, 82.0]):  # a second domain for the farthest-domain claim
        write_run(root, "rt-polarity", "baseline", seed, value)
        write_run(root, "rt-polarity", "dapt", seed, value + 1)
    return root


def aggregate_args(results, out, *extra):
    parser = argparse.ArgumentParser()
    report_cli.register(parser.add_subparsers())
    return parser.parse_args(["aggregate", "--results-dir", str(results), "--tables-dir", str(out), *extra])


def test_cells_mean_sample_std_and_count(mini_results):
    runs = load_runs(mini_results, "mini", CONDITIONS)
    cells = build_tables(runs, make_layout("mini", CONDITIONS), None)["table5"][1].set_index(["task", "condition"])
    dapt = cells.loc[("aclsum-roles", "dapt")]
    assert dapt["n"] == 4 and dapt["mean"] == pytest.approx(71.5)
    assert dapt["std"] == pytest.approx(np.sqrt(5 / 3))  # sample std (ddof=1) of 70..73
    assert dapt["best"] and not cells.loc[("aclsum-roles", "dapt_tapt"), "best"]
    assert cells.loc[("aclsum-sections", "dapt"), "n"] == 0
    assert format_cell(71.5, np.sqrt(5 / 3), 4) == "71.5 ± 1.3 (4)"
    assert format_cell(np.nan, np.nan, 0) == "— (0)"
    assert format_cell(60.0, np.nan, 1) == "60.0 ± — (1)"


def test_welch_p_value_of_a_planted_case():
    # By hand: means 71.5 vs 61, sample variances 5/3 and 1 -> t = 10.5 / sqrt(5/12 + 1/3)
    # = 12.1244, Welch-Satterthwaite df = 0.75**2 / ((5/12)**2 / 3 + (1/3)**2 / 2) = 4.9592;
    # two-sided p = I_{df/(df+t^2)}(df/2, 1/2) (regularized incomplete beta) = 7.1145e-05.
    t, p = welch(PLANTED["dapt"], PLANTED["baseline"])
    assert t == pytest.approx(12.1244, abs=1e-4)
    assert p == pytest.approx(7.1145e-05, rel=1e-4)
    assert np.isnan(welch([1.0], [1.0, 2.0])[1])


def test_csv_p_values_keep_their_size_below_four_decimals(mini_results, tmp_path):
    """The CSVs print numbers to 4 decimals: the planted Welch p of 7.1e-05 was written `0.0001`,
    and any p below 5e-05 `0.0000`, which findings.csv's contract keeps for an exact 0 (the same
    gain on every seed)."""
    from dontstop.report.write import write_table

    tables = build_tables(load_runs(mini_results, "mini", CONDITIONS), make_layout("mini", CONDITIONS), None)
    for name in ("significance", "findings"):
        write_table(tmp_path, name, *tables[name])
    significance = pd.read_csv(tmp_path / "significance.csv").set_index(["task", "condition", "reference"])
    assert significance.loc[("aclsum-roles", "dapt", "baseline"), "p_value"] == pytest.approx(7.1145e-05, rel=1e-3)
    findings = pd.read_csv(tmp_path / "findings.csv").set_index(["claim", "task"])
    dapt = findings.loc[("DAPT beats the baseline", "aclsum-roles")]
    assert dapt.p_value == pytest.approx(7.1145e-05, rel=1e-3)
    assert dapt.p_paired == 0.0                   # +10 on each of the 3 shared seeds: exactly 0
    assert dapt.difference == pytest.approx(10.0) and dapt.mdd_paired == 0.0
    assert "0.0000" in (tmp_path / "findings.csv").read_text()   # an exact 0 is still written so
    assert significance.p_value.max() <= 1.0


def test_significance_is_paired_by_seed_where_seeds_are_shared_else_welch(mini_results):
    """The significance table tested every pair with Welch's test, though the findings of the same
    runs were paired by seed: DAPT + TAPT vs RoBERTa on ACL-Roles is p = 0.0033 paired (per-seed
    differences 9, 10, 11), 0.0048 by Welch. Now its rows are tested as findings are: paired over
    the shared seeds where there are at least 3, else Welch over all seeds; Welch's p on every row."""
    table = build_tables(load_runs(mini_results, "mini", CONDITIONS), make_layout("mini", CONDITIONS), None)
    _, frame, grid = table["significance"]
    rows = frame.set_index(["task", "condition", "reference"])
    both = rows.loc[("aclsum-roles", "dapt_tapt", "baseline")]
    assert (both.test, both.n_pairs, both.difference) == ("paired", 3, pytest.approx(10.0))
    assert both.p_paired == pytest.approx(stats.ttest_rel([69, 71, 73], [60, 61, 62]).pvalue)
    assert both.p_value == pytest.approx(welch([69, 71, 73], [60, 61, 62])[1])
    dapt = rows.loc[("aclsum-roles", "dapt", "baseline")]   # 4 seeds against 3: paired over the 3 shared
    assert (dapt.test, dapt.n, dapt.n_pairs, dapt.difference, dapt.p_paired) == ("paired", 4, 3, 10.0, 0.0)
    two_seeds = rows.loc[("rt-polarity", "dapt", "baseline")]   # fewer than 3 shared: Welch's
    assert (two_seeds.test, two_seeds.n_pairs, two_seeds.difference) == ("welch", 2, 1.0)
    assert np.isnan(two_seeds.p_paired) and np.isnan(two_seeds.r_seeds)
    assert grid.header[6:8] == ["p (paired)", "p (Welch)"]
    line = frame.index.get_loc(frame.index[(frame.task == "aclsum-roles") & (frame.condition == "dapt_tapt")
                                           & (frame.reference == "baseline")][0])
    assert grid.rows[line][5:8] == ["paired", "0.003", "0.005"] and (line, 6) in grid.bold
    assert not any(row[5] == "welch" and (i, 6) in grid.bold for i, row in enumerate(grid.rows))


def test_welch_of_conditions_with_the_same_score_on_every_seed_decides_without_a_warning():
    """A task the model does not learn (every run predicts one class of three: 33.3 on every
    seed): scipy's Welch test gave NaN (the table's p `—`, the finding `missing` as if no run were
    there) and a RuntimeWarning a pair; decided as the paired test decides the same case."""
    majority, spread = [100 / 3] * 3, [30.0, 40.0, 35.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = stats.ttest_ind(majority, spread, equal_var=False).pvalue   # one side constant: defined
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert welch(majority, [100 / 3] * 4) == (0.0, 1.0)
        assert welch([50.0] * 3, majority) == (np.inf, 0.0)
        assert welch(majority, [50.0] * 2) == (-np.inf, 0.0)
        assert welch(majority, spread)[1] == pytest.approx(expected)


def test_findings_report_holds_reversed_and_missing(mini_results, tmp_path):
    runs = load_runs(mini_results, "mini", CONDITIONS)
    layout = make_layout("mini", CONDITIONS)
    findings = findings_frame(runs, layout, {"cs": 20.0, "reviews": 40.0}).set_index(["claim", "task"])
    assert findings.loc[("DAPT beats the baseline", "aclsum-roles"), "verdict"] == "holds"
    assert findings.loc[("TAPT beats the baseline", "aclsum-roles"), "verdict"] == "reversed"
    assert findings.loc[("kNN-TAPT rises with k", "aclsum-roles"), "difference"] == pytest.approx(5.0)
    assert findings.loc[("Transfer-TAPT is worse than TAPT", "aclsum-roles"), "verdict"] == "missing"
    no_overlap = findings_frame(runs, layout, None)
    assert no_overlap.verdict.iloc[-1].startswith("missing")
    write_run(mini_results, "bbc-topic", "baseline", 0, 70.0)
    write_run(mini_results, "bbc-topic", "dapt", 0, 72.0)
    runs = load_runs(mini_results, "mini", CONDITIONS)
    findings = findings_frame(runs, layout, {"cs": 20.0, "reviews": 40.0, "news": 30.0}).set_index(["claim", "task"])
    farthest = findings.loc["DAPT gains most on the domain farthest from the base model's data"]
    # +10.5 vs +1 and +2, one gain per domain: no test over seeds, so a sign, never `holds` (p < 0.05 elsewhere)
    assert farthest.index[0].startswith("cs") and farthest.verdict.iloc[0] == "in direction (no test)"
    assert farthest.test.iloc[0] == "none" and np.isnan(farthest.p_holm.iloc[0])
    against = findings_frame(runs, layout, {"cs": 20.0, "reviews": 40.0, "news": 10.0}).set_index("claim")
    assert against.loc["DAPT gains most on the domain farthest from the base model's data", "verdict"] == "against (no test)"
    # an overlap of other domains (`reviews` renamed): the farthest of the others was the verdict
    partial = findings_frame(runs, layout, {"cs": 20.0, "news": 10.0})
    farthest = partial.set_index("claim").loc["DAPT gains most on the domain farthest from the base model's data"]
    assert farthest.verdict == "missing (no vocabulary overlap for reviews)"


def test_the_farthest_domain_claim_is_missing_where_a_domain_has_no_gain(mini_results):
    """The farthest domain (reviews, the lowest overlap) without DAPT runs: the claim named the next
    farthest (cs, 20%) farthest and gave it a verdict; a domain of the table's tasks without a gain
    (no runs on one side of any of its tasks) makes it `missing`, as a domain without an overlap does."""
    shutil.rmtree(mini_results / "mini" / "rt-polarity" / "dapt")
    write_run(mini_results, "bbc-topic", "baseline", 0, 70.0)
    write_run(mini_results, "bbc-topic", "dapt", 0, 90.0)
    layout, overlap = make_layout("mini", CONDITIONS), {"cs": 20.0, "reviews": 10.0, "news": 30.0}

    def farthest_row():
        frame = findings_frame(load_runs(mini_results, "mini", CONDITIONS), layout, overlap)
        return frame[frame.claim.str.startswith("DAPT gains most")].iloc[0]

    row = farthest_row()
    assert (row.task, row.verdict) == ("all", "missing (no DAPT − RoBERTa gain on reviews)")
    assert np.isnan(row.difference)
    write_run(mini_results, "rt-polarity", "dapt", 0, 95.0)   # reviews measured again: +14 over 80 and 82
    row = farthest_row()
    assert row.task == "reviews (overlap 10%)"
    assert (row.verdict, row.difference) == ("against (no test)", pytest.approx(14 - 20))   # news gained +20


def test_cells_that_print_the_same_mean_are_both_bold(tmp_path):
    """Bold was read off the unrounded means: the mini Table 5 printed DAPT and DAPT + TAPT on
    RT-Subjectivity as 84.2 (84.195, 84.156) and bolded one; the probe table so bolded one of two 45.8s."""
    from dontstop.report.probe import probe_grid

    for seed, (base, dapt, tapt) in enumerate([(80.0, 81.0, 75.0), (82.0, 81.04, 76.0)]):   # 81.0, 81.02: both "81.0"
        for condition, value in (("baseline", base), ("dapt", dapt), ("tapt", tapt)):
            write_run(tmp_path / "results", "rt-polarity", condition, seed, value)
    out = tmp_path / "paper_tables"
    args = aggregate_args(tmp_path / "results", out)
    assert args.func(args) == 0
    row = next(line for line in (out / "mini" / "table5.md").read_text().splitlines() if line.startswith("| RT-Polarity"))
    assert row.startswith("| RT-Polarity | **81.0 ± 1.4 (2)** | **81.0 ± 0.0 (2)** | — (0) | 75.5 ± 0.7 (2) |")
    cells = pd.read_csv(out / "mini" / "table5.csv").query("task == 'rt-polarity'").set_index("condition")
    assert cells.best[["baseline", "dapt", "tapt"]].tolist() == [True, True, False]
    layout = make_layout("mini", CONDITIONS)
    probes = pd.DataFrame({"task": ["rt-polarity"] * 3, "condition": ["baseline", "dapt", "tapt"],
                           "probe": [45.79, 45.81, 40.0], "probe_gain": [np.nan, 0.02, -5.79]})
    grid = probe_grid(probes.assign(finetune=np.nan, finetune_gain=np.nan), layout)
    assert grid.rows[0][1:3] == ["45.8", "45.8 (+0.0)"] and {(0, 1), (0, 2)} <= grid.bold and (0, 3) not in grid.bold


def test_each_table_says_which_metric_its_cells_are(mini_results, tmp_path):
    """The paper scores ChemProt and RCT by micro-F1 and the other tasks by macro-F1 (FACTS); the
    paper suite's Table 5 mixed both with no word of which cell was which."""
    from dontstop.report.tables import metric_note, table_specs

    layout = make_layout("paper", CONDITIONS)
    specs = {spec.name: spec for spec in table_specs(layout)}
    assert metric_note(layout, specs["table5"].tasks) == (
        "Test metric ×100 (micro-F1 for ChemProt, RCT; macro-F1 for ACL-ARC, SciERC, HyperPartisan, AGNews, "
        "Helpfulness, IMDB), mean ± std over seeds (n seeds).")
    assert metric_note(layout, specs["table8"].tasks).startswith("Test metric ×100 (micro-F1 for ChemProt, RCT-500; "
                                                                 "macro-F1 for ACL-ARC)")
    out = tmp_path / "paper_tables"
    args = aggregate_args(mini_results, out)
    assert args.func(args) == 0
    for name in ("table5", "table8", "table9", "table_lora"):
        if (out / "mini" / f"{name}.md").exists():
            assert (out / "mini" / f"{name}.md").read_text().splitlines()[2].startswith(
                "Test macro-F1 ×100, mean ± std over seeds (n seeds)."), name


def test_published_csv_cells_match_facts():
    published = load_published()
    cell = published_cell
    assert tuple(cell(published, ("5",), "chemprot", "dapt")[["mean", "std"]]) == (84.2, 0.2)
    assert cell(published, ("3",), "imdb", "dapt")["std"] == 0.2  # Table 5 prints 0.1
    assert cell(published, ("5",), "imdb", "dapt")["std"] == 0.1
    assert cell(published, ("3",), "hyperpartisan_news", "not_dapt")["mean"] == 76.4
    assert cell(published, ("6",), "chemprot", "transfer_tapt")["mean"] == 80.4
    assert cell(published, ("7",), "hyperpartisan_news", "curated_tapt")["std"] == 9.5
    assert cell(published, ("8",), "citation_intent", "knn_tapt_500")["mean"] == 75.5
    table9 = cell(published, ("9",), "rct-sample", "knn_tapt_150")
    assert (table9["steps"], table9["docs"], table9["storage"], table9["mean"]) == ("3.2K", "66K", "8MB", 81.2)
    assert cell(published, ("6",), "ag", "transfer_tapt") is None  # illegible in the paper


def test_paper_suite_puts_published_value_and_delta_beside(tmp_path):
    root = tmp_path / "results"
    for seed, value in enumerate([85.0, 86.0]):
        write_run(root, "chemprot", "dapt", seed, value, suite="paper")
    tables = build_tables(load_runs(root, "paper", CONDITIONS), make_layout("paper", CONDITIONS), None)
    cells = tables["table5"][1].set_index(["task", "condition"])
    assert cells.loc[("chemprot", "dapt"), "published_mean"] == 84.2
    assert cells.loc[("chemprot", "dapt"), "delta"] == pytest.approx(1.3)
    assert cells.loc[("imdb", "not_dapt"), "published_mean"] == 94.1  # from Table 3
    grid = tables["table5"][2]
    row = grid.rows[0]
    assert grid.header[3:5] == ["DAPT", "DAPT: paper (Δ)"] and row[3:5] == ["85.5 ± 0.7 (2)", "84.2 ± 0.2 (+1.3, agrees)"]
    assert row[1:3] == ["— (0)", "81.9 ± 1.0"]  # no run: shown missing, never 0


def test_aggregate_writes_every_format_plot_index_and_wandb_run(mini_results, tmp_path, capsys,
                                                               monkeypatch):
    from wandb_records import find_offline_runs, summarize_run, wait_for_exit

    monkeypatch.chdir(tmp_path)   # where the planted runs' task data is not: their hashes compare with nothing

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    out = tmp_path / "paper_tables"
    args = aggregate_args(mini_results, out, "--suite", "mini", "--wandb")
    assert args.func(args) == 0
    suite_dir = out / "mini"
    [run_file] = find_offline_runs(tmp_path / "wandb_dir")
    logged = summarize_run(wait_for_exit(run_file))
    assert (logged.job_type, logged.name) == ("aggregate", "aggregate-mini")
    assert {f"tables/{name}" for name in TABLES + ("runs",)} <= logged.tables
    assert {f"plots/{name}" for name in ("bars", "knn", "cost", "mlm_loss")} <= logged.images
    assert not (suite_dir / "wandb").exists()  # paper_tables/ holds the tables only
    for name in TABLES:
        for suffix in ("md", "csv", "tex"):
            assert (suite_dir / f"{name}.{suffix}").stat().st_size > 0
    for plot in ("bars", "knn", "cost", "mlm_loss"):
        assert (suite_dir / "plots" / f"{plot}.png").read_bytes()[:4] == b"\x89PNG"
        assert (suite_dir / "plots" / f"{plot}.pdf").read_bytes()[:4] == b"%PDF"
    assert "**71.5 ± 1.3 (4)**" in (suite_dir / "table5.md").read_text()
    assert r"\textbf{71.5 $\pm$ 1.3 (4)}" in (suite_dir / "table5.tex").read_text()
    assert "paper" not in (suite_dir / "table5.csv").read_text()  # mini: no published columns
    index = (suite_dir / "README.md").read_text()
    assert all(f"{name}.tex" in index for name in TABLES) and "plots/knn.png" in index
    assert "Mixed" not in (suite_dir / "provenance.md").read_text()
    assert "warning" not in capsys.readouterr().err


def test_mixed_data_versions_warn_and_flag(mini_results, tmp_path, capsys):
    write_run(mini_results, "aclsum-roles", "tapt", 3, 57.0, data="f")
    out = tmp_path / "paper_tables"
    args = aggregate_args(mini_results, out)
    args.func(args)
    assert "different data versions for aclsum-roles" in capsys.readouterr().err
    assert "train=ffffffff" in (out / "mini" / "provenance.md").read_text()
    assert "Mixed inputs" in (out / "mini" / "table5.md").read_text()
    args = aggregate_args(mini_results, out, "--no-mixed-warning")
    args.func(args)
    assert "warning" not in capsys.readouterr().err
    assert "Mixed inputs" not in (out / "mini" / "table5.md").read_text()


@pytest.mark.parametrize("content, problem", [("{not json", "invalid JSON"),
                                              ('{"suite": "mini"}', "missing required key(s): task")])
def test_malformed_metrics_is_a_one_line_error_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "results" / "mini" / "aclsum-roles" / "tapt" / "seed_0" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(UserError) as error:
        load_runs(tmp_path / "results", "mini", CONDITIONS)
    assert str(path) in str(error.value) and problem in str(error.value)
    assert "\n" not in str(error.value)


def test_notebook_executes_on_a_synthetic_tree(mini_results, tmp_path):
    """...and shows every table aggregate writes: Table LoRA was written but not in the notebook."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    from dontstop.report.notebook import execute_notebook   # the runner's way (tests/test_notebook.py: every section)

    for seed, value in enumerate([69.0, 70.0, 71.0]):
        write_run(mini_results, "aclsum-roles", "dapt_lora", seed, value)
    out = execute_notebook(NOTEBOOK, results=mini_results, suite="mini", tables=tmp_path / "tables",
                           cache=tmp_path / "cache", data=tmp_path / "data", out=tmp_path / "results.ipynb")
    notebook = nbformat.read(out, as_version=4)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert any("71.5 ± 1.3 (4)" in o.get("data", {}).get("text/markdown", "") for o in outputs)
    # Table LoRA's row, as table_lora.md has it (test_table_lora_appears_once_a_lora_condition_has_runs)
    assert any("| ACL-Roles | 61.0 ± 1.0 (3) | **71.5 ± 1.3 (4)** | 70.0 ± 1.0 (3) |" in o.get("data", {}).get(
        "text/markdown", "") for o in outputs)


def test_a_new_condition_folder_appears_in_tables_and_findings(mini_results, tmp_path):
    """Adding a condition is adding a folder: its row, its significance and its claim show up."""
    experiments = tmp_path / "experiments"
    shutil.copytree(EXPERIMENTS_DIR, experiments, ignore=shutil.ignore_patterns("suites"))
    config = (experiments / "tapt" / "config.yaml").read_text()
    (experiments / "long_tapt").mkdir()
    (experiments / "long_tapt" / "config.yaml").write_text(
        config.replace("condition: tapt", "condition: long_tapt").replace('display: "TAPT"', 'display: "Long-TAPT"')
        .replace("order: 3 ", "order: 12 ").split("claims:")[0]
        + 'claims:\n  - {claim: "Long-TAPT beats TAPT", better: long_tapt, worse: tapt, table: "5", order: 95}\n')
    for seed, value in enumerate([75.0, 76.0, 77.0]):
        write_run(mini_results, "aclsum-roles", "long_tapt", seed, value, lineage="base+tapt-aclsum-roles")
    out = tmp_path / "paper_tables"
    args = aggregate_args(mini_results, out, "--experiments-dir", str(experiments))
    assert args.func(args) == 0
    table5 = (out / "mini" / "table5.md").read_text()
    assert table5.splitlines()[4].endswith("| DAPT + TAPT | Long-TAPT |")  # header: a column of its own
    assert "**76.0 ± 1.0 (3)**" in table5
    findings = (out / "mini" / "findings.md").read_text()
    assert "| Long-TAPT beats TAPT | ACL-Roles | Long-TAPT − TAPT | +20.0 |" in findings
    assert "Long-TAPT" in (out / "mini" / "significance.md").read_text()
    with pytest.raises(UserError, match="not a condition folder"):  # the repository's folders lack it
        load_runs(mini_results, "mini", CONDITIONS)


def test_a_curated_pool_given_to_another_task_puts_its_runs_in_table_7(mini_results, tmp_path):
    """`reproduce --curated-corpus rt-subjectivity=P` runs Curated-TAPT on a task the registry gives
    no curated pool; Table 7 listed the registry's curated tasks alone and left those runs out."""
    pool = tmp_path / "curated.txt"
    pool.write_text("more subjective snippets\n")
    for seed, value in enumerate([64.0, 65.0, 66.0]):
        write_run(mini_results, "rt-subjectivity", "curated_tapt", seed, value,
                  lineage="base+curated-rt-subjectivity")
    out = tmp_path / "paper_tables"
    args = aggregate_args(mini_results, out, "--set", f"curated.rt-subjectivity={pool}")
    assert args.func(args) == 0
    table7 = (out / "mini" / "table7.md").read_text()
    assert "RT-Subjectivity" in table7 and "65.0 ± 1.0 (3)" in table7


def test_minimum_detectable_difference_and_underpowered_verdicts(mini_results):
    from dontstop.report.power import min_detectable_difference, paired_min_detectable_difference

    # By hand: n = 5 and sd = 1 on both sides -> se = sqrt(2/5) = 0.6325, Welch df = 8,
    # t(0.975, 8) = 2.3060 and t(0.80, 8) = 0.8889 -> MDD = 3.1949 * 0.6325 = 2.0206.
    assert min_detectable_difference([1, 2, 3, 4, 5], [2, 3, 4, 5, 6]) == pytest.approx(
        2.0206 * np.std([1, 2, 3, 4, 5], ddof=1), rel=1e-3)
    assert np.isnan(min_detectable_difference([1.0], [1.0, 2.0]))
    # Paired, by hand: differences 1..5, n = 5 -> s_d = 1.5811, se = 0.7071, t(0.975, 4) = 2.7764
    # and t(0.80, 4) = 0.9410 -> MDD = 3.7174 * 0.7071 = 2.6286.
    assert paired_min_detectable_difference([1, 2, 3, 4, 5]) == pytest.approx(2.6286, abs=1e-4)
    assert np.isnan(paired_min_detectable_difference([1.0]))
    assert verdict(1.0, 0.3, mdd=5.0, effect=2.75) == "underpowered"
    assert verdict(1.0, 0.3, mdd=1.0, effect=2.75) == "not significant"
    assert verdict(-4.0, 0.01, mdd=5.0, effect=2.75) == "reversed"
    findings = findings_frame(load_runs(mini_results, "mini", CONDITIONS), make_layout("mini", CONDITIONS), None)
    dapt = findings.set_index(["claim", "task"]).loc[("DAPT beats the baseline", "aclsum-roles")]
    assert dapt.paper_effect == pytest.approx(2.75, abs=0.01)   # FACTS.md Table 5: mean of DAPT − RoBERTa
    assert 0 < dapt.mdd < dapt.difference and dapt.verdict == "holds"


def write_probes(results: Path, planted: dict[str, float]) -> None:
    """A probe of ACL-Roles per condition, scoring `planted` (test metric x100) on every metric."""
    from dontstop.records import ProbeRecord

    for condition, score in planted.items():
        scores = {"accuracy": score / 100, "macro_f1": score / 100, "micro_f1": score / 100}
        ProbeRecord(suite="mini", task="aclsum-roles", condition=condition, model="m",
                    lineage=built_lineage_of({"condition": condition}),
                    metric="macro_f1", dev=scores, test=scores, test_metric=score / 100, train_examples=9,
                    features=128, max_length=64, wall_time_s=1.0, versions={}, git_commit=None
                    ).write(results / "mini" / "aclsum-roles" / condition)


def test_probe_table_beside_the_fine_tuning_table(mini_results, tmp_path):
    planted = {"baseline": 50.0, "dapt": 60.0, "tapt": 45.0, "dapt_tapt": 58.0, "not_dapt": 48.0}
    write_probes(mini_results, planted)
    out = tmp_path / "paper_tables"
    args = aggregate_args(mini_results, out)
    assert args.func(args) == 0
    probe = (out / "mini" / "probe.md").read_text()
    assert "| ACL-Roles | 50.0 | **60.0 (+10.0)** | 48.0 (-2.0) | 45.0 (-5.0) | 58.0 (+8.0) |" in probe
    # probe gains (+10, -2, -5, +8) against fine-tuned gains (+10.5, -1.5, -5, +10): same order
    assert "Spearman ρ = 1.00 (4 cells)" in probe
    assert "probe.md" in (out / "mini" / "README.md").read_text()
    # a probe of texts cut at another length than the suite's (`status` calls it stale) was tabled
    dapt = mini_results / "mini" / "aclsum-roles" / "dapt" / "probe.json"
    dapt.write_text(dapt.read_text().replace('"max_length": 64', '"max_length": 100000'))
    with pytest.raises(UserError, match=re.escape(
            f"{dapt}: field 'max_length' is 100000, but the suite probes texts cut at finetune.max_length 64 "
            "(`status` calls it stale: redo it with `dontstop run ... --rerun-stale`)")):
        args.func(args)


# Matched seeds (×100): on RT-Subjectivity DAPT is the baseline plus about 1 point on every seed
# (paired: significant; Welch, against a seed spread of 8 points: not); on RT-Polarity the two
# conditions move against each other across seeds (r = -1: Welch significant, paired not);
# on BBC-Topic the cells share only 2 seeds (Welch).
PAIRED = {("rt-subjectivity", "baseline"): {0: 60.0, 1: 65.0, 2: 70.0, 3: 75.0, 4: 80.0},
          ("rt-subjectivity", "dapt"): {0: 61.0, 1: 66.2, 2: 70.9, 3: 76.1, 4: 81.0},
          ("rt-polarity", "baseline"): {0: 64.0, 1: 63.0, 2: 62.0, 3: 61.0, 4: 60.0},
          ("rt-polarity", "dapt"): {0: 62.5, 1: 63.5, 2: 64.5, 3: 65.5, 4: 66.5},
          ("bbc-topic", "baseline"): {0: 70.0, 1: 71.0, 2: 72.0, 3: 73.0},
          ("bbc-topic", "dapt"): {0: 75.0, 1: 76.0, 7: 77.0, 8: 78.0}}


@pytest.fixture
def paired_findings(tmp_path):
    for (task, condition), by_seed in PAIRED.items():
        for seed, value in by_seed.items():
            write_run(tmp_path / "results", task, condition, seed, value)
    runs = load_runs(tmp_path / "results", "mini", CONDITIONS)
    layout = make_layout("mini", CONDITIONS)
    frame = findings_frame(runs, layout, None)
    return frame, frame.set_index(["claim", "task"]).loc["DAPT beats the baseline"], layout


def test_paired_test_decides_where_seeds_are_shared_and_disagrees_with_welch(paired_findings):
    from scipy import stats

    _, dapt, _ = paired_findings
    for task, verdict_, welch_verdict in (("rt-subjectivity", "holds", "underpowered"),
                                          ("rt-polarity", "underpowered", "holds")):
        a = np.array(list(PAIRED[(task, "dapt")].values()))
        b = np.array(list(PAIRED[(task, "baseline")].values()))
        row, d = dapt.loc[task], a - b
        welch_p = stats.ttest_ind(a, b, equal_var=False).pvalue
        mdd = (stats.t.ppf(0.975, 4) + stats.t.ppf(0.8, 4)) * d.std(ddof=1) / np.sqrt(5)
        assert (row.test, row.n_pairs, row.verdict) == ("paired", 5, verdict_)
        assert row.difference == pytest.approx(d.mean())
        assert row.r_seeds == pytest.approx(stats.pearsonr(a, b).statistic)
        assert row.p_paired == pytest.approx(stats.ttest_rel(a, b).pvalue)
        assert row.mdd_paired == pytest.approx(mdd)
        assert row.p_value == pytest.approx(welch_p)   # Welch's p stays beside the paired one
        # What Welch alone would have said: the opposite verdict.
        assert verdict(a.mean() - b.mean(), welch_p, row.mdd, row.paper_effect) == welch_verdict
    assert dapt.loc["rt-polarity", "r_seeds"] == pytest.approx(-1.0)
    assert dapt.loc["rt-polarity", "mdd_paired"] > dapt.loc["rt-polarity", "paper_effect"]


def test_fewer_than_three_shared_seeds_fall_back_to_welch(paired_findings):
    from scipy import stats

    _, dapt, _ = paired_findings
    row = dapt.loc["bbc-topic"]
    a, b = list(PAIRED[("bbc-topic", "dapt")].values()), list(PAIRED[("bbc-topic", "baseline")].values())
    assert (row.test, row.n_pairs, row.verdict) == ("welch", 2, "holds")
    assert row.difference == pytest.approx(5.0)   # the means over all 4 seeds, not the 2 pairs
    assert row.p_value == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert np.isnan(row.p_paired) and np.isnan(row.r_seeds) and np.isnan(row.mdd_paired)


def test_holm_adjusts_the_deciding_p_of_every_tested_row(paired_findings):
    from dontstop.report.findings import findings_grid
    from dontstop.report.paired import holm

    # By hand, m = 4 tested: sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005 = 0.02, 3 x 0.01 = 0.03,
    # 2 x 0.03 = 0.06, 1 x 0.04 = 0.04 raised to 0.06 (step-down: never below an earlier one).
    adjusted = holm([0.01, 0.04, 0.03, np.nan, 0.005])
    assert adjusted[[0, 1, 2, 4]] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adjusted[3]) and holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    frame, dapt, layout = paired_findings
    deciding_p = [dapt.loc["rt-subjectivity", "p_paired"], dapt.loc["rt-polarity", "p_paired"],
                  dapt.loc["bbc-topic", "p_value"]]
    assert frame.p_holm.notna().sum() == 3        # every other row is missing a side
    assert list(dapt.p_holm[["rt-subjectivity", "rt-polarity", "bbc-topic"]]) == pytest.approx(holm(deciding_p))
    note = findings_grid(frame, layout).note
    assert "2 of the 3 tested claims (2 paired by seed) hold at α = 0.05; 2 after Holm's adjustment" in note


# Matched seeds (×100) for "DAPT + TAPT is best" (Table 5: baseline, DAPT, TAPT, DAPT + TAPT).
# ACL-Roles: TAPT is the strongest other by mean and DAPT + TAPT beats it by 1 on every seed, but
# DAPT, lower by mean, it beats by 2 on average with a spread of 9: not best. RT-Polarity: DAPT
# beats DAPT + TAPT by about 2 on every seed. BBC-Topic: DAPT + TAPT beats each by 1 to 3 on every
# seed; ¬DAPT, a Table 3 condition printed in the same file, scores higher and is not compared.
BEST = {"aclsum-roles": {"dapt_tapt": [70.0, 72.0, 74.0, 76.0, 78.0], "tapt": [69.0, 71.1, 72.9, 75.0, 77.0],
                         "dapt": [72.0, 66.0, 75.0, 69.0, 78.0], "baseline": [60.0, 62.0, 64.0, 66.0, 68.0]},
        "rt-polarity": {"dapt_tapt": [70.0, 72.0, 74.0, 76.0, 78.0], "tapt": [69.0, 71.0, 73.0, 75.0, 77.0],
                        "dapt": [72.1, 73.9, 76.0, 78.0, 80.1], "baseline": [60.0, 62.0, 64.0, 66.0, 68.0]},
        "bbc-topic": {"dapt_tapt": [70.0, 72.0, 74.0, 76.0, 78.0], "tapt": [69.0, 71.1, 72.9, 75.0, 77.0],
                      "dapt": [68.0, 69.9, 72.1, 74.0, 76.0], "baseline": [67.0, 69.2, 70.8, 73.0, 75.1],
                      "not_dapt": [80.0, 82.0, 84.0, 86.0, 88.0]}}


def test_best_of_its_table_must_beat_every_other_condition(tmp_path):
    for task, by_condition in BEST.items():
        for condition, values in by_condition.items():
            for seed, value in enumerate(values):
                write_run(tmp_path / "results", task, condition, seed, value)
    layout = make_layout("mini", CONDITIONS)
    findings = findings_frame(load_runs(tmp_path / "results", "mini", CONDITIONS), layout,
                              None).set_index(["claim", "task"]).loc["DAPT + TAPT is best"]

    def paired_p(task, other):
        return stats.ttest_rel(BEST[task]["dapt_tapt"], BEST[task][other]).pvalue

    roles = findings.loc["aclsum-roles"]
    assert paired_p("aclsum-roles", "tapt") < 0.05 < paired_p("aclsum-roles", "dapt")
    assert (roles.comparison, roles.verdict) == ("DAPT + TAPT − DAPT", "underpowered")  # not TAPT, the strongest by mean
    assert roles.p_paired == pytest.approx(paired_p("aclsum-roles", "dapt"))
    assert roles.difference == pytest.approx(2.0)
    polarity = findings.loc["rt-polarity"]
    assert (polarity.comparison, polarity.verdict) == ("DAPT + TAPT − DAPT", "reversed")
    topic = findings.loc["bbc-topic"]
    p_values = {other: paired_p("bbc-topic", other) for other in ("baseline", "dapt", "tapt")}
    assert max(p_values.values()) < 0.05 and topic.verdict == "holds"
    # the row shows the comparison with the largest p: the one that supports the claim least
    assert topic.comparison == f"DAPT + TAPT − {layout.names[max(p_values, key=p_values.get)]}"
    assert topic.p_paired == pytest.approx(max(p_values.values()))


def test_best_of_its_table_is_missing_where_another_condition_of_it_has_no_runs(tmp_path):
    """BBC-Topic's DAPT + TAPT beats RoBERTa, DAPT and TAPT on every seed: it holds. With TAPT's
    runs gone it was compared with RoBERTa and DAPT alone and still `holds` as best of its table."""
    for condition, values in BEST["bbc-topic"].items():
        for seed, value in enumerate(values):
            if condition != "tapt" or seed < 4:   # TAPT: 4 seeds, then none
                write_run(tmp_path / "results", "bbc-topic", condition, seed, value)
    layout = make_layout("mini", CONDITIONS)

    def best_row():
        frame = findings_frame(load_runs(tmp_path / "results", "mini", CONDITIONS), layout, None)
        return frame.set_index(["claim", "task"]).loc[("DAPT + TAPT is best", "bbc-topic")]

    assert best_row().verdict == "holds"
    shutil.rmtree(tmp_path / "results" / "mini" / "bbc-topic" / "tapt")
    row = best_row()
    assert row.verdict == "missing (no TAPT runs)" and row.p_paired < 0.05   # the p of what was compared stays



def test_seed_pairs_match_by_seed_and_refuse_a_seed_run_twice():
    import pandas as pd

    from dontstop.report.paired import paired_statistics, seed_pairs

    runs = pd.DataFrame({"task": ["t"] * 5, "condition": ["a", "a", "b", "b", "b"], "seed": [2, 1, 1, 2, 3],
                         "score": [70.0, 60.0, 61.0, 72.0, 99.0], "path": [f"r/{i}" for i in range(5)]})
    a, b = seed_pairs(runs, "t", "a", "b")
    assert list(a) == [60.0, 70.0] and list(b) == [61.0, 72.0]   # seeds 1 and 2, in seed order
    same = np.array([1.0, 2.0, 4.0])
    assert paired_statistics(same + 3, same)["p_paired"] == 0.0      # the same gain on every seed
    assert paired_statistics(same, same)["p_paired"] == 1.0          # no difference at all
    assert paired_statistics(same, same)["r_seeds"] == pytest.approx(1.0)
    with pytest.raises(UserError, match=r"r/4 and r/5: two runs of t/b with seed 3"):
        seed_pairs(pd.concat([runs, runs.iloc[[4]].assign(path="r/5")]).reset_index(drop=True), "t", "a", "b")


def test_table_lora_appears_once_a_lora_condition_has_runs(mini_results, tmp_path):
    from dontstop.report.tables import cell_frame, table_specs

    out = tmp_path / "paper_tables"
    args = aggregate_args(mini_results, out)
    assert args.func(args) == 0
    assert not (out / "mini" / "table_lora.md").exists()              # the default run has no LoRA row
    assert "LoRA" not in (out / "mini" / "findings.md").read_text()
    for seed, value in enumerate([69.0, 70.0, 71.0]):                  # `--conditions dapt_lora` ran
        write_run(mini_results, "aclsum-roles", "dapt_lora", seed, value)
    assert args.func(args) == 0
    table = (out / "mini" / "table_lora.md").read_text().splitlines()   # the LoRA rows that ran, beside theirs
    assert table[4] == "| Task | RoBERTa | DAPT | DAPT (LoRA) | TAPT | DAPT + TAPT |"   # after the title and metric
    assert table[6] == "| ACL-Roles | 61.0 ± 1.0 (3) | **71.5 ± 1.3 (4)** | 70.0 ± 1.0 (3) | 56.0 ± 1.0 (3) | 71.0 ± 2.0 (3) |"
    for condition in ("tapt_lora", "dapt_tapt_lora"):
        write_run(mini_results, "aclsum-roles", condition, 0, 60.0)
    assert args.func(args) == 0
    assert (out / "mini" / "table_lora.md").read_text().splitlines()[4] == (
        "| Task | RoBERTa | DAPT | DAPT (LoRA) | TAPT | TAPT (LoRA) | DAPT + TAPT | DAPT + TAPT (LoRA) |")
    # seeds 0-2 in both: paired, LoRA 1 point below DAPT on each seed
    assert "| DAPT (LoRA) keeps DAPT's gain | ACL-Roles | DAPT (LoRA) − DAPT | -1.0 | paired |" in (
        out / "mini" / "findings.md").read_text()
    assert "| ACL-Roles | DAPT (LoRA) | DAPT |" in (out / "mini" / "significance.md").read_text()
    # not a paper table: no published column, even in the paper suite
    layout = make_layout("paper", CONDITIONS)
    no_runs = load_runs(tmp_path / "none", "paper", CONDITIONS)
    specs = {spec.name: spec for spec in table_specs(layout)}
    assert "published_mean" in cell_frame(no_runs, specs["table5"], layout)
    assert "published_mean" not in cell_frame(no_runs, specs["table_lora"], layout)


def test_quick_runs_make_quick_tables_never_the_full_ones(tmp_path, capsys):
    """`aggregate --results-dir results/quick` wrote the tables of 1-epoch smoke runs over the full
    ones (paper_tables/mini); the quick runs are now refused there and aggregated with --quick."""
    from dontstop.cli import main
    from dontstop.suites import load_suite, with_quick
    from conftest import metrics_record

    full, quick = load_suite("mini").finetune, with_quick(load_suite("mini")).finetune
    for condition in ("baseline", "dapt"):
        metrics_record(condition=condition, config=quick).write(
            tmp_path / "results" / "quick" / "mini" / "aclsum-roles" / condition / "seed_0")
    tables = tmp_path / "tables"
    assert main(["aggregate", "--results-dir", str(tmp_path / "results" / "quick"), "--tables-dir", str(tables)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"dontstop: error: {tmp_path}/results/quick/mini/aclsum-roles/baseline/seed_0/metrics.json: "
                           f"finetune.epochs is 1 here, the suite asks {full['epochs']}; aggregate the results of "
                           "`reproduce --quick` with --quick"), line
    assert not tables.exists()
    assert main(["aggregate", "--quick", "--results-dir", str(tmp_path / "results"), "--tables-dir", str(tables)]) == 0
    index = tables / "quick" / "mini" / "README.md"
    assert index.is_file() and not (tables / "mini").exists()
    # the index names the runs it read and the command that makes it again (it said `--suite mini`
    # from results/mini/**, neither of them these tables'): that command, run, writes the same index
    command = (f"dontstop aggregate --suite mini --quick --results-dir {tmp_path / 'results'} "
               f"--tables-dir {tables}")
    written = index.read_text()
    assert f"Written by `{command}` from {tmp_path}/results/quick/mini/**/metrics.json." in written
    assert main(shlex.split(command)[1:]) == 0 and index.read_text() == written
    # other runs' tables never replace these: `reproduce --results-dir R` wrote over the default run's
    shutil.copytree(tmp_path / "results", tmp_path / "other")
    before = file_bytes(tables)
    for argv in (["aggregate"], ["reproduce", "--dry-run"]):
        assert main([*argv, "--quick", "--results-dir", str(tmp_path / "other"), "--tables-dir", str(tables)]) == 2
        assert capsys.readouterr().err.strip().splitlines() == [
            f"dontstop: error: {index}: these are the tables of the runs in {tmp_path}/results/quick/mini, not of "
            f"{tmp_path}/other/quick/mini; give these runs' tables a folder of their own (--tables-dir), or remove "
            "that one first"]
    assert file_bytes(tables) == before


def test_tables_copied_with_their_runs_or_made_from_another_working_folder_are_still_theirs(
        tmp_path, monkeypatch, capsys):
    """The index names the runs folder as the call that wrote it was given it: absolute, or relative to
    its working folder. A project copied to another path with its runs and tables (a study folder taken
    to a cluster), or aggregated again from a subfolder with relative flags, had its own tables refused
    as `the tables of the runs in <the old path>`, its runs resumed there but never tabled."""
    from dontstop.cli import main
    from dontstop.suites import load_suite, with_quick
    from conftest import metrics_record

    quick, old, new = with_quick(load_suite("mini")).finetune, tmp_path / "old", tmp_path / "new"
    for condition in ("baseline", "dapt"):
        metrics_record(condition=condition, config=quick).write(
            old / "results" / "quick" / "mini" / "aclsum-roles" / condition / "seed_0")
    for root in (old, new):   # made at the old path, then again at the path it was copied to
        assert main(["aggregate", "--quick", "--results-dir", str(root / "results"),
                     "--tables-dir", str(root / "tables")]) == 0, capsys.readouterr().err
        if root == old:
            shutil.copytree(old, new)
    index = new / "tables" / "quick" / "mini" / "README.md"
    assert f" from {new}/results/quick/mini/**/metrics.json." in index.read_text()
    (new / "sub").mkdir()
    for folder, up in ((new, ""), (new / "sub", "../")):   # relative flags, from the folder above, then below
        monkeypatch.chdir(folder)
        assert main(["aggregate", "--quick", "--results-dir", f"{up}results", "--tables-dir", f"{up}tables"]) == 0, (
            capsys.readouterr().err)
    assert " from ../results/quick/mini/**/metrics.json." in index.read_text()
    assert (new / "tables" / "quick" / "mini" / "findings.md").read_text() == (
        old / "tables" / "quick" / "mini" / "findings.md").read_text()
    # other runs beside them are still refused (test_quick_runs_make_quick_tables_never_the_full_ones)
    shutil.copytree(new / "results", new / "other")
    assert main(["aggregate", "--quick", "--results-dir", "../other", "--tables-dir", "../tables"]) == 2
    assert "these are the tables of the runs in" in capsys.readouterr().err


def test_another_studys_tables_in_this_projects_tables_folder_are_not_taken_for_a_copy(tmp_path, capsys):
    """A study elsewhere (other/) that wrote its tables into this project's tables folder (--tables-dir
    ../proj/tables): its runs folder ends as this one's does (results/quick/mini) and this project holds
    the tables, so tables_folder.same_runs took them for tables copied here with these runs and the next
    aggregate wrote over them; the runs it names are still there and its own folder holds no copy of the
    tables, so they are another study's and refused, as before copies were recognised."""
    from dontstop.cli import main
    from dontstop.suites import load_suite, with_quick
    from conftest import metrics_record

    quick, other, proj = with_quick(load_suite("mini")).finetune, tmp_path / "other", tmp_path / "proj"
    for root in (other, proj):
        for condition in ("baseline", "dapt"):
            metrics_record(condition=condition, config=quick).write(
                root / "results" / "quick" / "mini" / "aclsum-roles" / condition / "seed_0")
    tables = proj / "tables"
    assert main(["aggregate", "--quick", "--results-dir", str(other / "results"), "--tables-dir", str(tables)]) == 0
    capsys.readouterr()
    before = file_bytes(tables)
    assert main(["aggregate", "--quick", "--results-dir", str(proj / "results"), "--tables-dir", str(tables)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"dontstop: error: {tables}/quick/mini/README.md: these are the tables of the runs in "
        f"{other}/results/quick/mini, not of {proj}/results/quick/mini; give these runs' tables a folder of "
        "their own (--tables-dir), or remove that one first"]
    assert file_bytes(tables) == before


def test_another_studys_tables_written_with_relative_flags_from_its_own_folder_are_refused(
        tmp_path, monkeypatch, capsys):
    """Study other/ wrote its tables into proj's tables folder from inside other/ (`--results-dir results
    --tables-dir ../proj/tables`): the index named its runs `results/quick/mini`, relative to other/, and an
    aggregate of proj from proj/ read them as its own runs and wrote over other's tables (exit 0). The index
    names the runs from its own folder too, whatever folder the command ran in; an index written before it
    did (paper_tables/mini/README.md) is still read as its command names them."""
    from dontstop.cli import main
    from dontstop.suites import load_suite, with_quick
    from conftest import metrics_record

    quick, other, proj = with_quick(load_suite("mini")).finetune, tmp_path / "other", tmp_path / "proj"
    for root in (other, proj):
        for condition in ("baseline", "dapt"):
            metrics_record(condition=condition, config=quick).write(
                root / "results" / "quick" / "mini" / "aclsum-roles" / condition / "seed_0")
    monkeypatch.chdir(other)
    assert main(["aggregate", "--quick", "--results-dir", "results", "--tables-dir", "../proj/tables"]) == 0
    index = proj / "tables" / "quick" / "mini" / "README.md"
    assert "<!-- the runs folder, from this one: ../../../../other/results/quick/mini -->" in index.read_text()
    capsys.readouterr()
    before = file_bytes(proj / "tables")
    monkeypatch.chdir(proj)
    assert main(["aggregate", "--quick", "--results-dir", "results", "--tables-dir", "tables"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"dontstop: error: {index}: these are the tables of the runs in {other}/results/quick/mini, not of "
        f"{proj}/results/quick/mini; give these runs' tables a folder of their own (--tables-dir), or remove that "
        "one first"]
    assert file_bytes(proj / "tables") == before
    # an index without the line (written before it was) names the runs as its command was given them
    shutil.rmtree(proj / "tables")
    assert main(["aggregate", "--quick", "--results-dir", "results", "--tables-dir", "tables"]) == 0
    index.write_text(re.sub(r"<!-- the runs folder.*-->\n", "", index.read_text()))
    assert "<!--" not in index.read_text() and " from results/quick/mini/**/metrics.json." in index.read_text()
    assert main(["aggregate", "--quick", "--results-dir", "results", "--tables-dir", "tables"]) == 0
    assert "<!-- the runs folder, from this one: ../../../results/quick/mini -->" in index.read_text()
    assert main(["aggregate", "--quick", "--results-dir", str(other / "results"), "--tables-dir", "tables"]) == 2
    assert "these are the tables of the runs in" in capsys.readouterr().err


def test_tables_moved_with_their_runs_are_still_theirs(tmp_path, capsys):
    """A project moved (mv, not copied) with its runs and tables: the runs its index names are gone,
    and the tables are those of the runs that moved with them."""
    from dontstop.cli import main
    from dontstop.suites import load_suite, with_quick
    from conftest import metrics_record

    quick, old, new = with_quick(load_suite("mini")).finetune, tmp_path / "old", tmp_path / "new"
    for condition in ("baseline", "dapt"):
        metrics_record(condition=condition, config=quick).write(
            old / "results" / "quick" / "mini" / "aclsum-roles" / condition / "seed_0")
    assert main(["aggregate", "--quick", "--results-dir", str(old / "results"), "--tables-dir", str(old / "tables")]) == 0
    old.rename(new)
    assert main(["aggregate", "--quick", "--results-dir", str(new / "results"),
                 "--tables-dir", str(new / "tables")]) == 0, capsys.readouterr().err
    assert f" from {new}/results/quick/mini/**/metrics.json." in (new / "tables" / "quick" / "mini" / "README.md").read_text()


def test_tables_moved_with_a_linked_runs_folder_or_reached_by_a_link_are_still_theirs(tmp_path, capsys):
    """The index names its runs from its own folder, as named and with links resolved: a project whose
    runs folder is a link to scratch space, moved to a deeper folder with its tables, and tables reached
    by a linked name, then by their own, are still the tables of those runs."""
    from dontstop.cli import main
    from dontstop.suites import load_suite, with_quick
    from conftest import metrics_record

    quick, old, new = with_quick(load_suite("mini")).finetune, tmp_path / "old", tmp_path / "a" / "b" / "new"
    for condition in ("baseline", "dapt"):
        metrics_record(condition=condition, config=quick).write(
            tmp_path / "scratch" / "quick" / "mini" / "aclsum-roles" / condition / "seed_0")
    old.mkdir()
    (old / "results").symlink_to(tmp_path / "scratch")
    assert main(["aggregate", "--quick", "--results-dir", str(old / "results"), "--tables-dir", str(old / "tables")]) == 0
    index = "tables/quick/mini/README.md"
    assert ("<!-- the runs folder, from this one: ../../../results/quick/mini (links resolved: "
            "../../../../scratch/quick/mini) -->") in (old / index).read_text()
    new.parent.mkdir(parents=True)
    old.rename(new)
    (tmp_path / "linked").symlink_to(new / "tables")
    for tables in (new / "tables", tmp_path / "linked", new / "tables"):
        assert main(["aggregate", "--quick", "--results-dir", str(new / "results"),
                     "--tables-dir", str(tables)]) == 0, capsys.readouterr().err
    assert main(["aggregate", "--quick", "--results-dir", str(tmp_path / "scratch"),
                 "--tables-dir", str(tmp_path / "linked")]) == 0, capsys.readouterr().err


def test_tables_moved_away_from_runs_named_by_an_absolute_path_are_still_theirs(tmp_path, capsys):
    """Runs on scratch space named by an absolute --results-dir, and a project moved to a folder of
    another depth with its tables (or to another machine's home folder): the path from the tables to
    the runs no longer led to them, and the project's own tables were refused as another runs'
    (exit 2); the absolute path its index names is these runs."""
    from dontstop.cli import main
    from dontstop.suites import load_suite, with_quick
    from conftest import metrics_record

    quick, old, new = with_quick(load_suite("mini")).finetune, tmp_path / "old", tmp_path / "a" / "b" / "new"
    runs = tmp_path / "scratch" / "results"
    for condition in ("baseline", "dapt"):
        metrics_record(condition=condition, config=quick).write(
            runs / "quick" / "mini" / "aclsum-roles" / condition / "seed_0")
    assert main(["aggregate", "--quick", "--results-dir", str(runs), "--tables-dir", str(old / "tables")]) == 0
    new.parent.mkdir(parents=True)
    old.rename(new)
    assert main(["aggregate", "--quick", "--results-dir", str(runs), "--tables-dir", str(new / "tables")]) == 0, \
        capsys.readouterr().err
    # another study's runs at another absolute path are still refused
    other = tmp_path / "other" / "results"
    for condition in ("baseline", "dapt"):
        metrics_record(condition=condition, config=quick).write(
            other / "quick" / "mini" / "aclsum-roles" / condition / "seed_0")
    capsys.readouterr()
    assert main(["aggregate", "--quick", "--results-dir", str(other), "--tables-dir", str(new / "tables")]) == 2
    assert "these are the tables of the runs in" in capsys.readouterr().err


def test_runs_whose_stage_was_built_with_another_recipe_than_the_suites_are_refused(tmp_path, capsys):
    """A suite's recipes.dapt edited after its runs (`status` calls them stale): their tables were
    titled with the new recipe, without a word."""
    from dontstop.cli import main
    from dontstop.stage_identity import resolved_recipe, stage_recipe
    from dontstop.suites import load_suite

    recipe = {**resolved_recipe(stage_recipe(load_suite("mini"), "dapt")), "base_model": "m", "corpora": ["cs.txt"],
              "output_dir": "o", "seed": 0}
    dapt = {**stage("dapt-cs", 1000), "kind": "dapt", "recipe": json.loads(json.dumps(recipe))}
    for seed in range(2):
        write_run(tmp_path / "results", "aclsum-roles", "baseline", seed, 60.0 + seed)
        write_run(tmp_path / "results", "aclsum-roles", "dapt", seed, 70.0 + seed, stages=[dapt])
    argv = ["aggregate", "--results-dir", str(tmp_path / "results"), "--tables-dir", str(tmp_path / "tables")]
    assert main([*argv, "--set", "recipes.dapt.lr=1e-4"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"dontstop: error: {tmp_path}/results/mini/aclsum-roles/dapt/seed_0/metrics.json: its stage dapt-cs "
        f"(recipes.dapt) lr: built with {recipe['lr']!r}, the stage asks 0.0001; aggregate the results of "
        "`reproduce --quick` with --quick, those of a run made with --set with the same --set; redo runs made "
        "before the suite was edited (`dontstop run ... --rerun-stale`)")
    assert not (tmp_path / "tables").exists()
    # the stage's seed, and the base stage's start model: `status` called them stale, aggregate tabled them
    base = {**dapt, "name": "base", "kind": "base", "base_model": "bundled:bert-tiny",
            "recipe": {**resolved_recipe(stage_recipe(load_suite("mini"), "base")), "base_model": "bundled:bert-tiny",
                       "corpora": ["general.txt"], "output_dir": "o", "seed": 0}}
    write_run(tmp_path / "results", "aclsum-roles", "tapt", 0, 50.0, stages=[base])
    for flag, says in (("pretrain_seed=5", "dapt-cs pretrain_seed: built with 0, the suite asks 5"),
                       ("base_model=bundled:minilm", "base base_model: built from 'bundled:bert-tiny', the suite "
                                                     "asks 'bundled:minilm'")):
        assert main([*argv, "--set", flag]) == 2
        assert capsys.readouterr().err.strip().splitlines()[0].split("; aggregate the results")[0].endswith(
            f"metrics.json: its stage {says}")
    assert not (tmp_path / "tables").exists()
    assert main(argv) == 0   # the suite as they were made


def test_runs_whose_stage_was_built_from_another_corpus_than_the_suite_names_are_named_in_a_warning(
        tmp_path, capsys, monkeypatch):
    """`aggregate --set domain_corpora.cs=...` (or runs made with --domain-corpus, aggregated
    without it) tabled DAPT runs of one corpus as those of another; `status` called them stale."""
    from dontstop.cli import main
    from dontstop.fileio import sha256_file

    monkeypatch.chdir(tmp_path)   # the suite's data folder, tmp_path/data, holds no task files to compare
    (tmp_path / "cs.txt").write_text("the corpus the stage was built from\n")
    (tmp_path / "news.txt").write_text("another corpus\n")
    dapt = {**stage("dapt-cs", 1000), "kind": "dapt",
            "corpus_sha256": {str(tmp_path / "cs.txt"): sha256_file(tmp_path / "cs.txt")}}
    for seed in range(2):
        write_run(tmp_path / "results", "aclsum-roles", "dapt", seed, 70.0 + seed, stages=[dapt])
    argv = ["aggregate", "--results-dir", str(tmp_path / "results"), "--tables-dir", str(tmp_path / "tables"),
            "--no-mixed-warning"]
    assert main([*argv[:-1], "--set", f"domain_corpora.cs={tmp_path}/news.txt"]) == 0
    warnings_ = [line for line in capsys.readouterr().err.splitlines() if "corpora" in line]
    assert warnings_ == [f"dontstop: warning: 2 run(s) made from other task data or corpora than the files on disk "
                         f"now ({tmp_path}/results/mini/aclsum-roles/dapt/seed_0/metrics.json: stage dapt-cs corpus "
                         f"sha256 {sha256_file(tmp_path / 'cs.txt')[:8]}, domain_corpora.cs ({tmp_path}/news.txt) now "
                         f"{sha256_file(tmp_path / 'news.txt')[:8]}); `status` calls them stale: redo them with "
                         "`dontstop run ... --rerun-stale` (--no-mixed-warning to silence it)"]
    assert main([*argv[:-1], "--set", f"domain_corpora.cs={tmp_path}/cs.txt"]) == 0
    assert "corpora" not in capsys.readouterr().err


def test_a_tables_folder_of_files_no_aggregate_wrote_is_refused_and_an_interrupted_aggregate_changes_nothing(
        mini_results, tmp_path, capsys, monkeypatch):
    """A folder holding one's own runs.csv and findings.md, and no index naming its runs: aggregate
    wrote over both (exit 0). An aggregate interrupted after its tables, before its plots, left
    half of the earlier tables replaced; now none, and the next one writes them all."""
    from dontstop.cli import main
    from dontstop.report import write

    out = tmp_path / "tables" / "mini"
    (out / "analysis").mkdir(parents=True)               # `dontstop analyze` writes there first: allowed
    (out / "analysis" / "README.md").write_text("the analysis\n")
    argv = ["aggregate", "--results-dir", str(mini_results), "--tables-dir", str(tmp_path / "tables")]
    for name in ("runs.csv", "findings.md"):
        (out / name).write_text("precious\n")
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"dontstop: error: {out}: holds files no aggregate wrote (findings.md, runs.csv: no README.md naming the "
        "runs they are the tables of); give these runs' tables a folder of their own (--tables-dir), or empty that one"]
    assert (out / "runs.csv").read_text() == (out / "findings.md").read_text() == "precious\n"
    for name in ("runs.csv", "findings.md"):
        (out / name).unlink()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(write, "make_plots", interrupted)   # after the tables, before the plots and index
    assert main(argv) == 130
    assert sorted(path.name for path in out.iterdir()) == ["analysis"]
    monkeypatch.undo()
    assert main(argv) == 0 and "(table5.md)" in (out / "README.md").read_text()
    assert sorted(path.name for path in out.parent.iterdir()) == ["mini"]   # nothing left beside it
    (out / "results.ipynb").write_text("a study's executed notebook\n")     # reproduce writes it there
    before = file_bytes(out)
    (mini_results / "mini" / "aclsum-roles" / "dapt" / "seed_0" / "metrics.json").unlink()   # other tables now
    monkeypatch.setattr(write, "make_plots", interrupted)
    assert main(argv) == 130
    assert file_bytes(out) == before
    monkeypatch.undo()
    assert main(argv) == 0 and (out / "table5.md").read_bytes() != before[out / "table5.md"]
    assert (out / "analysis" / "README.md").read_text() == "the analysis\n"   # what others wrote stays
    assert (out / "results.ipynb").read_text() == "a study's executed notebook\n"
    for mine in (out / "notes.md", out / "plots" / "custom.png"):   # went with the earlier tables, exit 0
        mine.write_text("mine\n")
    capsys.readouterr()
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (f"dontstop: error: {out}/notes.md: a file no aggregate wrote (its "
                                               "index, README.md, does not list it; 1 more); the tables replace "
                                               "their folder whole: move it out first")
    assert (out / "notes.md").read_text() == (out / "plots" / "custom.png").read_text() == "mine\n"


def test_a_tables_folder_given_one_level_too_deep_is_refused(mini_results, tmp_path, capsys):
    """`--tables-dir paper_tables/mini`, a suite's tables folder: the tables went into
    paper_tables/mini/mini/, among the earlier ones (exit 0), and the next aggregate into
    paper_tables refused them as files no aggregate wrote."""
    from dontstop.cli import main

    argv = ["aggregate", "--results-dir", str(mini_results), "--tables-dir"]
    assert main(argv + [str(tmp_path / "tables")]) == 0
    before = file_bytes(tmp_path)
    capsys.readouterr()
    for quick in ([], ["--quick"]):   # <tables>/quick/<suite>/
        assert main(argv + [str(tmp_path / "tables" / "mini"), *quick]) == 2
        assert capsys.readouterr().err.strip() == (
            f"dontstop: error: --tables-dir {tmp_path / 'tables' / 'mini'}: a suite's tables folder itself (its "
            f"README.md is an aggregate's index); give the folder above it, {tmp_path / 'tables'} (--tables-dir is "
            "the root of <suite>/...)")
    assert file_bytes(tmp_path) == before


def test_two_aggregates_into_one_tables_root_take_turns(tmp_path):
    """Both write beside the tables folder, in one staging folder: the second waits until the
    first has put its tables in place (it would empty the first's staging folder mid-write)."""
    import threading
    from dontstop.report.tables_folder import written_whole

    out = tmp_path / "tables" / "mini"
    first_in, release, seen = threading.Event(), threading.Event(), []

    def aggregate(name: str, hold: bool) -> None:
        if not hold:
            first_in.wait(10)
        with written_whole(out) as staging:
            seen.append((name, (out / "README.md").read_text() if out.is_dir() else None))
            staging.mkdir()
            (staging / "README.md").write_text(f"{name}\n")
            if hold:
                first_in.set()
                release.wait(10)

    threads = [threading.Thread(target=aggregate, args=args) for args in (("first", True), ("second", False))]
    for thread in threads:
        thread.start()
    first_in.wait(10)
    threading.Event().wait(0.5)   # time for the second to enter, were it not waiting
    assert seen == [("first", None)]
    release.set()
    for thread in threads:
        thread.join(10)
    assert seen == [("first", None), ("second", "first\n")] and (out / "README.md").read_text() == "second\n"
    assert sorted(path.name for path in out.parent.iterdir()) == ["mini"]


def test_probes_that_all_score_alike_say_there_is_no_correlation_not_nan(mini_results, tmp_path, recwarn):
    """A small task's probes often score the same on every checkpoint: the probe table's note said
    `Pearson r = nan, Spearman ρ = nan` and scipy warned twice (ConstantInputWarning) on stderr."""
    from dontstop.report.notebook_plots import probe_plot
    from dontstop.report.probe import correlation

    write_probes(mini_results, dict.fromkeys(("baseline", "dapt", "tapt", "dapt_tapt", "not_dapt"), 50.0))
    out = tmp_path / "paper_tables"
    args = aggregate_args(mini_results, out)
    assert args.func(args) == 0
    probe = (out / "mini" / "probe.md").read_text()
    assert ("No correlation of probe gain and fine-tuned gain: the probe gain is the same in all 4 cells "
            "with fine-tuning runs.") in probe
    assert "nan" not in probe
    assert not [w for w in recwarn if "constant" in str(w.message).lower()]
    frame = pd.read_csv(out / "mini" / "probe.csv")
    r, rho, n = correlation(frame, "baseline")
    assert np.isnan(r) and np.isnan(rho) and n == 4
    figure = probe_plot(frame, make_layout("mini", CONDITIONS), r, rho)   # the notebook's plot of it
    assert figure.axes[0].get_title() == "Does the probe predict fine-tuning? no correlation (a gain is constant)"
    assert not [w for w in recwarn if "constant" in str(w.message).lower()]


def test_runs_behind_symlinked_folders_count_and_bad_probe_metrics_or_costs_are_one_line(mini_results, tmp_path,
                                                                                         capsys, monkeypatch):
    """A seed folder moved to another disk and linked back was done for `status` and missing from
    the tables (and, moved once more, its dangling link too, with `run` failing on it, exit 1); an accuracy probe was a macro-F1 row's bold best; a stage's tokens of "lots" was a
    TypeError traceback in Table 9."""
    from dontstop.cli import main
    from conftest import probe_record

    monkeypatch.chdir(tmp_path)   # where the planted runs' task data is not: their hashes compare with nothing
    cell = mini_results / "mini" / "aclsum-roles" / "baseline"
    shutil.move(cell / "seed_2", tmp_path / "elsewhere")
    (cell / "seed_2").symlink_to(tmp_path / "elsewhere")
    runs = load_runs(mini_results, "mini", CONDITIONS)
    assert sorted(runs[(runs.task == "aclsum-roles") & (runs.condition == "baseline")].seed) == [0, 1, 2]
    argv = ["aggregate", "--results-dir", str(mini_results), "--tables-dir", str(tmp_path / "tables")]
    shutil.move(tmp_path / "elsewhere", tmp_path / "moved-again")   # the cell lost a seed, maybe became the bold best
    for command in (argv, ["status", "--results-dir", str(mini_results), "--cache-dir", str(tmp_path / "cache")]):
        assert main(command) == 2
        assert capsys.readouterr().err.strip() == (f"dontstop: error: {cell}/seed_2: a link to nothing "
                                                   f"({tmp_path}/elsewhere): a folder moved again? link it to "
                                                   "where the folder is now, or remove the link")
    shutil.move(tmp_path / "moved-again", tmp_path / "elsewhere")
    probe_record(metric="accuracy", test_metric=0.9).write(cell)
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (f"dontstop: error: {cell}/probe.json: field 'metric' is 'accuracy': "
                                               "the suite scores aclsum-roles by macro_f1")
    (cell / "probe.json").unlink()
    dapt = mini_results / "mini" / "aclsum-roles" / "dapt" / "seed_0" / "metrics.json"
    record = json.loads(dapt.read_text())
    record["pretraining"][0]["tokens"] = "lots"
    dapt.write_text(json.dumps(record))
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (f"dontstop: error: {dapt}: field 'pretraining[0].tokens' is 'lots': "
                                               "not a count or a duration (a number >= 0)")
    assert not (tmp_path / "tables").exists()


def test_a_run_whose_seed_task_or_suite_differs_from_its_config_is_one_line(tmp_path):
    """A seed folder copied over another and its `seed` edited: counted as that seed (45.3 -> 44.9)."""
    from dontstop.records import read_run
    from conftest import metrics_record

    run = tmp_path / "mini" / "aclsum-roles" / "baseline" / "seed_3"
    metrics_record(seed=3, config={"seed": 0, "task": "aclsum-roles", "suite": "mini"}).write(run)
    with pytest.raises(UserError, match=re.escape(f"{run}/metrics.json: field 'seed' is 3, but config.seed is 0 "
                                                  "(a copy of another run, edited by hand?)")):
        read_run(run / "metrics.json")


def test_a_run_of_a_task_the_suite_does_not_have_names_the_suites_tasks(mini_results, tmp_path, capsys):
    """`aggregate --set tasks=[rt-polarity]` over runs of two tasks blamed a results file ("not a
    task of the mini suite"), not saying which tasks the flag had left."""
    from dontstop.cli import main

    assert main(["aggregate", "--results-dir", str(mini_results), "--tables-dir", str(tmp_path / "tables"),
                 "--set", "tasks=[rt-polarity]"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert re.fullmatch(rf"dontstop: error: {mini_results}/mini/aclsum-roles/\w+/seed_\d/metrics.json: field 'task' is "
                        r"'aclsum-roles': not a task of the mini suite \(its tasks: rt-polarity\)", line), line
    assert not (tmp_path / "tables").exists()


def test_runs_of_other_data_than_on_disk_are_named_in_a_warning(mini_results, tmp_path, capsys, monkeypatch):
    """`status` calls them stale and `run` refuses them; aggregate tabled them without a word."""
    from dontstop.cli import main

    monkeypatch.chdir(tmp_path)   # the suite's data folder: tmp_path/data

    for split in ("train", "dev", "test"):   # the planted runs recorded other hashes
        (tmp_path / "data" / "mini" / "tasks" / "rt-polarity").mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / "mini" / "tasks" / "rt-polarity" / f"{split}.jsonl").write_text("{}\n")
    argv = ["aggregate", "--results-dir", str(mini_results), "--tables-dir", str(tmp_path / "tables")]
    assert main(argv) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "task data" in line]
    assert warning == [f"dontstop: warning: 4 run(s) made from other task data or corpora than the files on disk now "
                       f"({mini_results}/mini/rt-polarity/baseline/seed_0/metrics.json: dev data sha256 dddddddd, "
                       "the file now ca3d163b); `status` calls them stale: redo them with `dontstop run ... "
                       "--rerun-stale` (--no-mixed-warning to silence it)"]
    assert main([*argv, "--no-mixed-warning"]) == 0 and "task data" not in capsys.readouterr().err


def test_a_quick_run_is_told_apart_where_the_full_suite_leaves_epochs_to_the_task(tmp_path, capsys):
    """The paper suite sets no fine-tuning epochs (10 or 3 by task): a run of its quick 1 epoch is refused."""
    from dontstop.cli import main
    from conftest import metrics_record

    run = tmp_path / "results" / "paper" / "chemprot" / "baseline" / "seed_0"
    metrics_record(suite="paper", task="chemprot", metric="micro_f1", config={"epochs": 1, "lr": 2e-5}).write(run)
    assert main(["aggregate", "--suite", "paper", "--results-dir", str(tmp_path / "results"),
                 "--tables-dir", str(tmp_path / "tables")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert f"{run}/metrics.json: a --quick run (finetune.epochs 1); aggregate the results" in line, line


def test_aggregate_reads_each_run_once(mini_results, tmp_path, monkeypatch):
    """The check of the suite's settings read every metrics.json, then the tables read them all again."""
    from dontstop.report import runs

    read, read_run = [], runs.read_run
    monkeypatch.setattr(runs, "read_run", lambda path: read.append(path) or read_run(path))
    args = aggregate_args(mini_results, tmp_path / "tables")
    assert args.func(args) == 0
    assert sorted(read) == sorted(mini_results.rglob("metrics.json"))


@pytest.mark.parametrize("case", ["tables_are_the_results", "tables_are_the_cache", "plots_is_a_file",
                                  "overlap_not_there", "overlap_nan", "overlap_of_other_domains",
                                  "run_of_another_metric", "run_of_another_lineage", "tables_among_the_conditions",
                                  "overlap_fractions", "overlap_asymmetric", "overlap_a_folder"])
def test_a_tables_folder_aggregate_cannot_fill_is_refused_before_anything_is_written(case, mini_results, tmp_path,
                                                                                     capsys, monkeypatch):
    """The tables written into the results folder (among the runs) were accepted, and into the cache
    folder they replaced the pretraining stages (`reproduce --cache-dir X --tables-dir X`); a file in place of
    plots/ (or a read-only one) failed with the system's words, exit 1, after the tables had been
    replaced; an --overlap file that is not there was skipped, its claim `missing`; one with a NaN
    cell gave the farthest-domain claim a verdict; a run scored by accuracy sat in a macro-F1 row."""
    from dontstop.cli import main

    monkeypatch.chdir(tmp_path)   # where the planted runs' task data is not: their hashes compare with nothing
    tables = tmp_path / "tables"
    assert main(["aggregate", "--results-dir", str(mini_results), "--tables-dir", str(tables)]) == 0
    write_run(mini_results, "aclsum-roles", "tapt", 3, 99.0)   # the next tables would differ
    overlap = tmp_path / "overlap.csv"
    if case == "overlap_nan":
        overlap.write_text("corpus,general,cs\ngeneral,100,nan\ncs,nan,100\n")
    if case == "overlap_fractions":   # read as overlaps of 0.4%
        overlap.write_text("corpus,general,cs\ngeneral,1,0.4\ncs,0.4,1\n")
    if case == "overlap_asymmetric":   # cs,general 10 against general,cs 36.8: the verdict flipped
        overlap.write_text("corpus,general,cs\ngeneral,100,36.8\ncs,10,100\n")
    if case == "overlap_of_other_domains":   # `reviews` renamed (analyze vocab --names): decided on cs and news
        overlap.write_text("corpus,general,cs,news,Reviews\ngeneral,100,40,50,45\ncs,40,100,30,30\n"
                           "news,50,30,100,35\nReviews,45,30,35,100\n")
    run = mini_results / "mini" / "aclsum-roles" / "tapt" / "seed_3" / "metrics.json"
    if case == "run_of_another_metric":
        run.write_text(run.read_text().replace('"metric": "macro_f1"', '"metric": "accuracy"'))
    if case == "run_of_another_lineage":   # a DAPT + TAPT run copied in, its condition edited: tabled as TAPT
        run.write_text(run.read_text().replace('"lineage": "base+tapt-aclsum-roles"',
                                               '"lineage": "base+dapt-cs+tapt-aclsum-roles"'))
    before = {path: path.read_bytes() for path in sorted(tmp_path.rglob("*")) if path.is_file()}
    flags, says = {"tables_are_the_results": (["--tables-dir", str(mini_results)],
                                              f"{mini_results}/mini: the tables would go among the runs of "),
                   "tables_are_the_cache": (["--set", f"cache_dir={tmp_path}", "--tables-dir", str(tmp_path)],
                                            f"{tmp_path}/mini: the tables would go among the pretraining stages of "
                                            f"{tmp_path}/mini (the tables and cache folders are one)"),
                   "plots_is_a_file": (["--tables-dir", str(tables)],
                                       f"{tables}/mini/plots: not a writable directory ({tables}/mini/plots is a file)"),
                   "overlap_not_there": (["--tables-dir", str(tables), "--overlap", str(overlap)],
                                         f"--overlap {tmp_path}/overlap.csv: no such file"),
                   "overlap_a_folder": (["--tables-dir", str(tables), "--overlap", str(tmp_path)],   # "no such file"
                                        f"--overlap {tmp_path}: a folder, not a file (`dontstop analyze vocab` writes "
                                        "it: <tables-dir>/<suite>/analysis/vocab_overlap.csv)"),
                   "overlap_nan": (["--tables-dir", str(tables), "--overlap", str(overlap)],
                                   f"{overlap}: not a corpus x corpus matrix of percentages"),
                   "overlap_fractions": (["--tables-dir", str(tables), "--overlap", str(overlap)],
                                         f"{overlap}: not a corpus x corpus matrix of percentages (expected `dontstop "
                                         "analyze vocab` output): a corpus overlaps itself by 100, but general,general "
                                         "is 1 (fractions, not percentages?)"),
                   "overlap_asymmetric": (["--tables-dir", str(tables), "--overlap", str(overlap)],
                                          f"{overlap}: not a corpus x corpus matrix of percentages (expected "
                                          "`dontstop analyze vocab` output): general,cs is 36.8 but cs,general is 10 "
                                          "(an overlap is one number for both)"),
                   "overlap_of_other_domains": (["--tables-dir", str(tables), "--overlap", str(overlap)],
                                                f"--overlap {overlap}: no row for 'reviews' (it needs general and "
                                                "the suite's domains: cs, reviews, news)"),
                   "run_of_another_lineage": (["--tables-dir", str(tables)],
                                              f"{run}: fine-tuned from lineage 'base+dapt-cs+tapt-aclsum-roles', but "
                                              f"{CONDITIONS.root}/tapt/config.yaml builds 'base+tapt-aclsum-roles' on "
                                              "aclsum-roles (its stages edited since, or a cell copied from another "
                                              "condition?)"),
                   # experiments/mini, a folder without config.yaml, which every later command refused
                   "tables_among_the_conditions": (["--tables-dir", str(EXPERIMENTS_DIR)],
                                                   f"--tables-dir {EXPERIMENTS_DIR}/mini: among the condition folders "
                                                   f"of {EXPERIMENTS_DIR}, where {EXPERIMENTS_DIR}/mini would be a "
                                                   "folder without config.yaml"),
                   "run_of_another_metric": (["--tables-dir", str(tables)],
                                             f"{mini_results}/mini/aclsum-roles/tapt/seed_3/metrics.json: field "
                                             "'metric' is 'accuracy': the suite scores aclsum-roles by macro_f1")}[case]
    if case == "plots_is_a_file":
        shutil.rmtree(tables / "mini" / "plots")
        (tables / "mini" / "plots").write_text("notes")
        before = {path: path.read_bytes() for path in sorted(tmp_path.rglob("*")) if path.is_file()}
    capsys.readouterr()
    assert main(["aggregate", "--results-dir", str(mini_results), *flags]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"dontstop: error: {says}"), line
    assert {path: path.read_bytes() for path in sorted(tmp_path.rglob("*")) if path.is_file()} == before


@pytest.mark.parametrize("command, setting, says", [
    ("aggregate", {"WANDB_PROJECT": "my/study#2"}, "WANDB_PROJECT='my/study#2': W&B refuses this project name (Invalid"),
    ("run", {"WANDB_PROJECT": "my/study#2"}, "WANDB_PROJECT='my/study#2': W&B refuses this project name (Invalid"),
    ("run", {"WANDB_MODE": "offlne"}, "WANDB_MODE='offlne': not a W&B mode; give online, offline or disabled"),
    # the path alone, as if a flag had given it: the variable may be set in a shell profile
    ("run", {"WANDB_DIR": "{file}/wandb"}, "WANDB_DIR={file}/wandb: not a writable directory ({file} is a file)"),
    ("dry-run", {"WANDB_DIR": "{file}"}, "WANDB_DIR={file}: not a writable directory ({file} is a file)"),
    # a dry run passed; finetune and pretrain trained on without logging, in a warning, exit 0
    ("dry-run", {"WANDB_MODE": "offlne"}, "WANDB_MODE='offlne': not a W&B mode; give online, offline or disabled"),
    ("finetune", {"WANDB_MODE": "offlne"}, "WANDB_MODE='offlne': not a W&B mode; give online, offline or disabled"),
    ("pretrain", {"WANDB_MODE": "offlne"}, "WANDB_MODE='offlne': not a W&B mode; give online, offline or disabled"),
])
def test_a_wandb_project_name_wandb_refuses_is_one_line_before_any_work(command, setting, says, mini_results, mini_build,
                                                                        tmp_path, capsys, monkeypatch):
    """W&B refused the name (a mode, a folder) only at its first run (after the work), in a warning,
    and logged nothing, exit 0."""
    from dontstop.cli import main

    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("WANDB_MODE", "offline")
    for key, value in setting.items():
        monkeypatch.setenv(key, value.format(file=tmp_path / "file"))
    run = ["run", "experiments/baseline", "--tasks", "rt-polarity", "--seeds", "0", "--quick",
           "--data-dir", str(mini_build[0]), "--results-dir", str(tmp_path / "new-results"),
           "--cache-dir", str(tmp_path / "cache")]
    given = {"aggregate": ["aggregate", "--wandb", "--results-dir", str(mini_results),
                           "--tables-dir", str(tmp_path / "tables")],
             "run": run, "dry-run": [*run, "--dry-run"],
             "finetune": ["finetune", "--suite", "mini", "--task", "rt-polarity", "--model", "bundled:bert-tiny",
                          "--data-dir", str(mini_build[0]), "--out", str(tmp_path / "new-results" / "run")],
             "pretrain": ["pretrain", "--model", "bundled:bert-tiny", "--steps", "1", "--corpus",
                          str(mini_build[0] / "mini" / "corpora" / "cs.txt"), "--out", str(tmp_path / "new-results")],
             }[command]
    assert main(given) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"dontstop: error: {says.format(file=tmp_path / 'file')}"), line
    assert not (tmp_path / "tables").exists() and not (tmp_path / "new-results").exists()


def test_a_difference_that_rounds_to_zero_is_shown_without_a_minus_sign():
    """The tables printed -0.03 as `-0.0` (findings, significance, probe gains), a sign with no difference."""
    from dontstop.report.render import signed

    assert [signed(v) for v in (-0.03, 0.04, -0.06, 2.25, float("nan"))] == ["+0.0", "+0.0", "-0.1", "+2.2", "—"]


def test_a_set_that_only_chooses_runs_is_refused_and_left_out_of_the_tables_command(mini_results, tmp_path, capsys):
    """`aggregate --set seeds=[0,1]` tabled every seed it found, without a word; the command a
    `reproduce --set seeds=[0,1]` wrote into its tables' README would now be refused."""
    from dontstop.cli import main
    from dontstop.flags import aggregate_command

    assert main(["aggregate", "--results-dir", str(mini_results), "--tables-dir", str(tmp_path / "tables"),
                 "--set", "seeds=[0,1]"]) == 2
    assert capsys.readouterr().err.strip() == (
        "dontstop: error: --set seeds=[0,1]: aggregate tables every run it finds; seeds only chooses what `run` "
        "and `reproduce` make (to table fewer runs, keep them in a --results-dir of their own)")
    assert not (tmp_path / "tables").exists()
    given = argparse.Namespace(suite="mini", quick=False, set_values=["seeds=[0,1]", "finetune.lr=1e-4"],
                               results_dir=None, tables_dir=None)
    assert aggregate_command(given) == "dontstop aggregate --suite mini --set finetune.lr=1e-4"
    # one's own condition folders are the tables' columns: the command without them refused its own runs
    given.experiments_dir = str(tmp_path / "mine")
    assert aggregate_command(given) == ("dontstop aggregate --suite mini --set finetune.lr=1e-4 "
                                        f"--experiments-dir {tmp_path}/mine")
    given.experiments_dir = str(EXPERIMENTS_DIR)
    assert aggregate_command(given) == "dontstop aggregate --suite mini --set finetune.lr=1e-4"


def test_a_run_of_a_condition_the_experiments_dir_lacks_names_that_folder(mini_results, tmp_path, capsys):
    """The line said "not a condition folder of experiments/" when --experiments-dir named another."""
    from conftest import metrics_record
    from dontstop.cli import main

    experiments = shutil.copytree(EXPERIMENTS_DIR, tmp_path / "my-experiments")
    run = mini_results / "mini" / "aclsum-roles" / "mine" / "seed_0"
    metrics_record(condition="mine").write(run)
    assert main(["aggregate", "--results-dir", str(mini_results), "--tables-dir", str(tmp_path / "tables"),
                 "--experiments-dir", str(experiments)]) == 2
    assert f"{run}/metrics.json: field 'condition' is 'mine': not a condition folder of {experiments}/ (known: " \
        in capsys.readouterr().err


@pytest.mark.parametrize("where", ["file", "file/results"])
def test_a_results_folder_that_is_a_file_is_said_so(where, tmp_path, capsys):
    """A --results-dir that is a file (or lies under one) was `file/mini: no metrics.json found; run
    `dontstop run ... --suite mini` first`, as if the runs were still to make; `status` names the file."""
    from dontstop.cli import main

    (tmp_path / "file").write_text("")
    assert main(["aggregate", "--results-dir", str(tmp_path / where), "--tables-dir", str(tmp_path / "tables")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == f"dontstop: error: {tmp_path / where}: not a directory ({tmp_path / 'file'} is a file)"
    assert not (tmp_path / "tables").exists()
