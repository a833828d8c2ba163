"""The GPU figures the README quotes are rows of bench/results/gpu_paper.jsonl, said with the row's
device and date, and its paper cost is what `--dry-run` computes from them (issue 20: the README
quoted a bf16 fine-tuning rate the code no longer ran, and called estimates upper bounds)."""
import json
import re

import pytest

from dontstop.conditions import EXPERIMENTS_DIR, load_condition
from dontstop.runner.estimate import REPO, Estimator
from dontstop.runner.plan import plan_runs

ROWS = [row for row in map(json.loads, (REPO / "bench/results/gpu_paper.jsonl").read_text().splitlines())
        if row.get("device") == "cuda"]
RELEASED = "baseline dapt not_dapt tapt dapt_tapt curated_tapt dapt_curated_tapt".split()   # the README's command 1


def paragraphs() -> list[str]:
    return re.split(r"\n\s*\n", (REPO / "README.md").read_text(encoding="utf-8"))


def test_every_gpu_rate_the_readme_quotes_is_a_row_said_with_its_device_and_date():
    quoted = 0
    for paragraph in paragraphs():
        if "GPU" not in paragraph and "H200" not in paragraph:
            continue
        for figure in re.findall(r"(?<![\d.,])(\d+)K tokens/s", paragraph):
            rows = [row for row in ROWS if round(row["tokens_per_s"] / 1000) == int(figure)]
            assert rows, f"README: {figure}K tokens/s is no row of bench/results/gpu_paper.jsonl"
            assert any(row["date"][:10] in paragraph and row["device_name"].split()[-1] in paragraph
                       for row in rows), f"README: {figure}K tokens/s is said without its row's device and date"
            quoted += 1
    assert quoted >= 3   # the DAPT step, the fp32 and the old bf16 fine-tuning rows


def test_the_readmes_paper_costs_are_the_estimators_at_the_rows(tmp_path):
    """12.5K DAPT steps of 2048 x 512 tokens at the 'dapt' row: 10.6 h; the 255 fine-tuning runs
    of the released conditions, every task not downloaded, at the 'finetune fp32' row: 74.8 h."""
    from dontstop.suites import load_suite

    suite = load_suite("paper")
    suite.data_dir, suite.cache_dir, suite.results_dir = (str(tmp_path / name) for name in ("d", "c", "r"))
    suite.from_released = True   # and the curated corpora the README's command 1 names: not there yet
    suite.curated = {**suite.curated, "hyperpartisan_news": str(tmp_path / "hp_5k.jsonl"),
                     "imdb": str(tmp_path / "imdb_50k.txt")}
    estimator = Estimator.for_suite(suite)
    dapt = next(row for row in ROWS if row["row"] == "dapt")
    assert estimator.pretrain.value == dapt["tokens_per_s"] and "H200, 2026-11-25" in estimator.pretrain.source
    dapt_hours = suite.recipes["dapt"]["max_steps"] * 2048 * 512 / dapt["tokens_per_s"] / 3600
    readme = "\n".join(paragraphs())
    assert f"{dapt_hours:.1f} h\non one H200 at the {dapt['tokens_per_s'] / 1000:.0f}K tokens/s" in readme

    plans = [plan for name in RELEASED
             for plan in plan_runs(suite, load_condition(EXPERIMENTS_DIR / name), planning_only=True)]
    runs = sum(len(plan.seeds) for plan in plans)
    hours = sum(estimator.finetune_seconds(plan)[0] * len(plan.seeds) for plan in plans) / 3600
    assert re.search(rf"{runs} fine-tuning runs, {hours:.1f}\s+GPU-hours on one H200", readme), (runs, hours)
    assert hours == pytest.approx(74.8, abs=0.05)
