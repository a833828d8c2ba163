"""Nothing wrong is ever finished, nothing stale or misplaced is ever counted.

Each case is refused with exit code 2 and one line naming the place, no traceback, and leaves no
finished record: a diverged pretraining, a checkpoint with NaN weights or with weights that are
not the bytes pretraining wrote, a results file outside the folder it names (aggregate, status and
run alike), a claim on a table that cannot hold it, a task folder without its dev or test file.
"""
import json
import shutil
from pathlib import Path

import pytest

from conftest import metrics_record, pretrain_record, probe_record, write_tiny_mini_tasks
from dontstop.cli import main
from dontstop.fileio import UserError, sha256_file
from dontstop.models import bundled_model_dir, load_pretrained
from dontstop.tasks import MINI_TASKS

REPO = Path(__file__).resolve().parents[1]


def the_error(capsys) -> str:
    """The one `dontstop: error:` line on stderr (progress bars aside), with no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "dontstop: error:" in line]
    assert len(errors) == 1 and errors[0].startswith("dontstop: error:"), err[-2000:]
    return errors[0]


def test_a_diverged_pretraining_stops_with_one_line_and_saves_nothing(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "diverged"
    argv = ["pretrain", "--model", "bundled:bert-tiny", "--corpus", str(tiny_corpus), "--steps", "20",
            "--batch-size", "16", "--per-device-batch-size", "16", "--max-length", "64", "--lr", "1e6",
            "--no-wandb", "--out", str(out)]
    assert main(argv) == 2
    line = the_error(capsys)
    assert f"{out}: pretraining diverged: loss nan at optimizer step" in line and "lr 1e+06" in line
    assert not out.exists()   # no record, no weights, no resume states: nothing to mistake for a result


def test_the_held_out_loss_after_training_must_be_finite_too():
    from dontstop.pretrain.outcome import check_finite

    check_finite("ckpt", "step 1", 3.2, 1e-4)
    check_finite("ckpt", "step 1", None, 1e-4)   # no held-out documents: nothing to check
    with pytest.raises(UserError, match=r"ckpt: pretraining diverged: loss inf at the held-out"):
        check_finite("ckpt", "the held-out documents after training", float("inf"), 1e-4)


@pytest.fixture
def bert_tiny_copy(tmp_path) -> Path:
    """bundled:bert-tiny copied into a checkpoint folder of ours, with the record pretraining writes."""
    checkpoint = tmp_path / "cache" / "mini" / "checkpoints" / "base-0123abcd"
    shutil.copytree(bundled_model_dir("bert-tiny"), checkpoint)
    weights = checkpoint / "model.safetensors"
    pretrain_record(weights_sha256={weights.name: sha256_file(weights)}).write(checkpoint)
    return checkpoint


def test_a_checkpoint_with_nan_weights_is_refused_naming_the_tensor(tmp_path):
    import torch
    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(bundled_model_dir("bert-tiny"))
    with torch.no_grad():
        model.bert.encoder.layer[1].output.dense.weight[3, 5] = float("nan")
    model.save_pretrained(tmp_path / "nan")
    with pytest.raises(UserError) as error:
        load_pretrained(AutoModelForMaskedLM, str(tmp_path / "nan"))
    assert str(error.value).startswith(f"{tmp_path / 'nan'}: cannot load checkpoint: tensor "
                                       "'bert.encoder.layer.1.output.dense.weight' holds NaN or infinity")
    assert "\n" not in str(error.value)


def test_weights_that_differ_from_their_recorded_hash_are_refused(bert_tiny_copy):
    from transformers import AutoModelForMaskedLM

    assert load_pretrained(AutoModelForMaskedLM, str(bert_tiny_copy)) is not None
    weights = bert_tiny_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = bytes(range(64))   # random bytes inside a tensor:
    weights.write_bytes(bytes(data))                                # same size, loads without a word
    with pytest.raises(UserError, match=f"{bert_tiny_copy}: cannot load checkpoint: model.safetensors "
                                        "differs from the sha256 pretrain_record.json recorded"):
        load_pretrained(AutoModelForMaskedLM, str(bert_tiny_copy))
    weights.unlink()
    with pytest.raises(UserError, match="model.safetensors is missing"):
        load_pretrained(AutoModelForMaskedLM, str(bert_tiny_copy))


def test_truncated_weights_of_a_record_older_than_their_hashes_are_refused(bert_tiny_copy):
    """A record written before weights_sha256 existed: a cut model.safetensors passed `status` and the
    dry run, and failed when its job loaded it, after other jobs had run. Its header says its size."""
    from dontstop.models import check_recorded_weights

    pretrain_record().write(bert_tiny_copy)   # no weights_sha256
    check_recorded_weights(bert_tiny_copy)
    weights = bert_tiny_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:10000])
    with pytest.raises(UserError, match=f"^{bert_tiny_copy}: cannot load checkpoint: model.safetensors is cut "
                                        r"short \(corrupt or truncated\)$"):
        check_recorded_weights(bert_tiny_copy)


@pytest.fixture
def mini_tree(tmp_path) -> dict:
    """A tiny data tree for the mini suite (every task, the general corpus) and the CLI flags that
    point `run`, `status` and `aggregate` at it and at their own results, cache and tables."""
    data = tmp_path / "data"
    write_tiny_mini_tasks(data)
    (data / "mini" / "corpora").mkdir(parents=True)
    (data / "mini" / "corpora" / "general.txt").write_text("general text\n")
    (data / "mini" / "manifest.json").write_text("{}")
    results = tmp_path / "results"
    flags = ["--data-dir", str(data), "--results-dir", str(results), "--cache-dir", str(tmp_path / "cache"),
             "--no-wandb"]
    return {"data": data, "results": results, "flags": flags, "tables": tmp_path / "tables"}


def refused_everywhere(tree, capsys, message: str) -> None:
    """aggregate, status and run (with and without --dry-run) all refuse with the same line,
    before any work."""
    commands = [["aggregate", "--results-dir", str(tree["results"]), "--tables-dir", str(tree["tables"])],
                ["status", "--conditions", "baseline", *tree["flags"]],
                ["run", "experiments/baseline", "--tasks", "aclsum-roles", "--dry-run", *tree["flags"]],
                ["run", "experiments/baseline", "--tasks", "aclsum-roles", *tree["flags"]]]
    lines = []
    for argv in commands:
        assert main(argv) == 2, argv
        lines.append(the_error(capsys))
    assert len(set(lines)) == 1 and message in lines[0], lines
    assert not (tree["tables"] / "mini").exists()
    assert not list(tree["results"].rglob("config.json"))       # no run started
    assert not list((tree["results"].parent / "cache").rglob("resume"))   # no stage started


def test_a_copied_seed_folder_is_refused_by_aggregate_status_and_run(mini_tree, capsys):
    run_dir = mini_tree["results"] / "mini" / "aclsum-roles" / "baseline"
    metrics_record().write(run_dir / "seed_0")
    shutil.copytree(run_dir / "seed_0", run_dir / "seed_7")        # the same seed counted twice
    refused_everywhere(mini_tree, capsys, f"{run_dir / 'seed_7' / 'metrics.json'}: field 'seed' is 0 "
                                          "but its folder is 'seed_7' (a copied or moved folder?)")


def test_a_run_in_another_conditions_folder_is_refused(mini_tree, capsys):
    path = mini_tree["results"] / "mini" / "aclsum-roles" / "baseline" / "seed_1"
    metrics_record(condition="dapt", seed=1).write(path)
    refused_everywhere(mini_tree, capsys, f"{path / 'metrics.json'}: field 'condition' is 'dapt' but "
                                          "its folder is 'baseline'")


def test_a_probe_in_another_conditions_folder_is_one_line_not_a_pandas_traceback(mini_tree, capsys):
    cell = mini_tree["results"] / "mini" / "aclsum-roles"
    metrics_record().write(cell / "baseline" / "seed_0")
    probe_record().write(cell / "baseline")
    probe_record().write(cell / "tapt")           # says baseline: two probes of one cell
    refused_everywhere(mini_tree, capsys, f"{cell / 'tapt' / 'probe.json'}: field 'condition' is "
                                          "'baseline' but its folder is 'tapt'")


@pytest.mark.parametrize("record", ["run", "probe"])
def test_a_cell_copied_from_another_condition_is_refused_by_aggregate(record, mini_tree, capsys):
    """TAPT's cell copied over DAPT's, `condition` edited in each file (or DAPT's `stages` edited
    since its runs): aggregate tabled TAPT's scores as DAPT's, while status said stale."""
    cell = mini_tree["results"] / "mini" / "aclsum-roles"
    metrics_record().write(cell / "baseline" / "seed_0")
    tapt = "base+tapt-aclsum-roles"
    written = (metrics_record(condition="dapt", lineage=tapt).write(cell / "dapt" / "seed_0") if record == "run"
               else probe_record(condition="dapt", lineage=tapt).write(cell / "dapt"))
    assert main(["aggregate", "--results-dir", str(mini_tree["results"]), "--tables-dir", str(mini_tree["tables"])]) == 2
    assert the_error(capsys) == (f"dontstop: error: {written}: fine-tuned from lineage '{tapt}', but "
                                 f"{REPO / 'experiments'}/dapt/config.yaml builds 'base+dapt-cs' on aclsum-roles (its "
                                 "stages edited since, or a cell copied from another condition?); `dontstop status` "
                                 "names the stale runs, `run --rerun-stale` redoes them")
    assert not (mini_tree["tables"] / "mini").exists()


@pytest.fixture
def finished_cells(tmp_path) -> Path:
    """The committed mini runs of aclsum-roles and rt-polarity, baseline and TAPT, copied (records as
    runs write them: dev curves, times, stage records): a results folder to edit by hand."""
    results = tmp_path / "results"
    for task in ("aclsum-roles", "rt-polarity"):
        for condition in ("baseline", "tapt"):
            shutil.copytree(REPO / "results" / "mini" / task / condition, results / "mini" / task / condition)
    return results


def edited(run_dir: Path, edit) -> Path:
    """The run's metrics.json, `edit`ed by hand (a function changing its JSON object in place)."""
    path = run_dir / "metrics.json"
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record, indent=2))
    return path


def refused_by_aggregate(results: Path, capsys) -> str:
    """aggregate's one line, before any table is written."""
    tables = results.parent / "tables"
    assert main(["aggregate", "--results-dir", str(results), "--tables-dir", str(tables)]) == 2
    assert not tables.exists()
    return the_error(capsys)


def test_a_run_marked_as_from_a_released_checkpoint_the_suite_lacks_is_refused_by_aggregate(finished_cells, capsys):
    """`"published": true` edited into a mini TAPT run: its cell was tabled † "fine-tuned from the
    authors' released checkpoint" in Tables 5, 6, 7 and LoRA (the mini suite has none), exit 0, while
    `status` called the run stale. A paper-suite run from the authors' checkpoint is tabled so."""
    from dontstop.conditions import load_conditions
    from dontstop.report.runs import load_runs
    from dontstop.stage_identity import released_checkpoints
    from dontstop.suites import load_suite

    path = edited(finished_cells / "mini" / "rt-polarity" / "tapt" / "seed_0", lambda r: r.update(published=True))
    model = json.loads(path.read_text())["model"]
    assert refused_by_aggregate(finished_cells, capsys) == (
        f"dontstop: error: {path}: field 'published' is True, but {model!r} is no released checkpoint of the mini "
        "suite for tapt on rt-polarity (it has none; edited by hand?)")
    paper, conditions = load_suite("paper"), load_conditions()
    chemprot, hub_id = paper.task("chemprot"), "allenai/dsp_roberta_base_tapt_chemprot_4169"
    assert released_checkpoints(paper, chemprot, conditions.get("tapt").stages) == [hub_id]
    assert released_checkpoints(paper, chemprot, conditions.get("dapt").stages) == ["allenai/biomed_roberta_base"]
    assert released_checkpoints(paper, chemprot, conditions.get("tapt_lora").stages) == []   # none was released
    released = {"name": "tapt-chemprot", "lineage": "tapt-chemprot", "kind": "released", "released": hub_id}
    paper_results = finished_cells.parent / "paper_results"
    metrics_record(suite="paper", task="chemprot", condition="tapt", metric="micro_f1", model=hub_id, published=True,
                   lineage="tapt-chemprot", pretraining=[released]).write(paper_results / "paper" / "chemprot" / "tapt" / "seed_0")
    assert load_runs(paper_results, "paper", conditions).published.tolist() == [True]


def test_a_cell_of_released_and_pretrained_here_seeds_is_refused_by_aggregate(tmp_path, capsys):
    """Seeds 0-2 from the authors' TAPT checkpoint (`run --from-released`), seeds 3-4 from a TAPT
    pretrained here: in the paper suite both have the lineage tapt-chemprot (no base stage), so
    they were one cell, `72.8 ± 11.3 (5) †`, "agrees" with the paper's 82.6 ± 0.4."""
    hub_id = "allenai/dsp_roberta_base_tapt_chemprot_4169"
    released = {"name": "tapt-chemprot", "lineage": "tapt-chemprot", "kind": "released", "released": hub_id}
    results, cell = tmp_path / "results", ("paper", "chemprot", "tapt")
    for seed, score in enumerate([0.80, 0.81, 0.82, 0.60, 0.61]):
        source = dict(model=hub_id, published=True, pretraining=[released]) if seed < 3 else \
            dict(model="cache/paper/checkpoints/tapt-chemprot-1a2b3c4d")
        metrics_record(suite="paper", task="chemprot", condition="tapt", metric="micro_f1", seed=seed, test_metric=score,
                       lineage="tapt-chemprot", **source).write(results.joinpath(*cell, f"seed_{seed}"))
    tables = tmp_path / "tables"
    assert main(["aggregate", "--suite", "paper", "--results-dir", str(results), "--tables-dir", str(tables)]) == 2
    assert not tables.exists()
    assert the_error(capsys) == (
        f"dontstop: error: {results.joinpath(*cell, 'seed_0', 'metrics.json')}: fine-tuned from a released checkpoint "
        f"({hub_id}), but seed_3/metrics.json of its cell from one pretrained here "
        "(cache/paper/checkpoints/tapt-chemprot-1a2b3c4d); a cell averages one model's seeds: keep each in a "
        "--results-dir of its own")


def test_a_seed_whose_pretraining_records_are_not_its_cells_is_refused_by_aggregate(finished_cells, capsys):
    """Table 9 read the first seed's stage records alone: its steps and seconds edited to 99999, the
    TAPT row was "100K steps, 27.8 h" (seeds 1-4: 32 steps)."""
    path = edited(finished_cells / "mini" / "aclsum-roles" / "tapt" / "seed_0",
                  lambda r: r["pretraining"][1].update(steps=99999, wall_time_s=99999))
    assert refused_by_aggregate(finished_cells, capsys) == (
        f"dontstop: error: {path}: field 'pretraining[1].steps' is 99999 here, 32 in seed_1/metrics.json and 3 other "
        "seeds of its cell, all fine-tuned from one checkpoint (edited by hand?); remove this run's folder and run it "
        "again")


def test_seeds_of_a_stage_built_again_or_of_other_checkpoints_are_tabled(finished_cells):
    """A stage of one key built again (another machine, a cache cleared before more seeds) has times
    of its own; a seed fine-tuned from other checkpoints (--allow-mixed data) other counts; a run of
    `dontstop finetune --condition tapt` no records. None is an edit, and none was refused before.
    Table 9 reads the first seed that has records: an emptied seed_0 was a row of zeros."""
    from dontstop.conditions import load_conditions
    from dontstop.report.runs import load_runs
    from dontstop.report.tables import pretraining_cost

    cell = finished_cells / "mini" / "aclsum-roles" / "tapt"
    before = pretraining_cost(load_runs(finished_cells, "mini", load_conditions()), "aclsum-roles", "tapt")
    edited(cell / "seed_0", lambda r: r.update(pretraining=[]))
    edited(cell / "seed_1", lambda r: r["pretraining"][1].update(wall_time_s=1234.5))
    other = "cache/mini/checkpoints/base+tapt-aclsum-roles-00000000"
    edited(cell / "seed_2", lambda r: (r.update(model=other), r["pretraining"][1].update(
        steps=40, recipe={**r["pretraining"][1]["recipe"], "output_dir": other})))
    runs = load_runs(finished_cells, "mini", load_conditions())
    assert sorted(runs.seed[(runs.task == "aclsum-roles") & (runs.condition == "tapt")]) == [0, 1, 2, 3, 4]
    after = pretraining_cost(runs, "aclsum-roles", "tapt")
    assert after["steps"] == before["steps"] == 32 and after["wall_time_s"] == 1234.5   # seed_1's, the first recorded


def test_a_copied_seed_folder_with_its_seed_edited_is_refused_by_aggregate(finished_cells, capsys):
    """seed_0 copied to seed_5, `seed` and `config.seed` edited to 5: TAPT was tabled `65.2 ± 2.0 (6)`,
    the sixth run's scores and dev curve seed_0's. A seed run on purpose (`run --seeds 5`) counts."""
    from dontstop.conditions import load_conditions
    from dontstop.report.runs import load_runs

    cell = finished_cells / "mini" / "rt-polarity" / "tapt"
    shutil.copytree(cell / "seed_0", cell / "seed_5")
    path = edited(cell / "seed_5", lambda r: r.update(seed=5, config={**r["config"], "seed": 5}))
    assert refused_by_aggregate(finished_cells, capsys) == (
        f"dontstop: error: {path}: the same results (dev curve, dev and test scores, wall time) as seed_0/metrics.json "
        "(a copied folder, its seed edited?); remove the copy")
    edited(cell / "seed_5", lambda r: r.update(wall_time_s=r["wall_time_s"] + 0.25))   # a run of its own, its time
    runs = load_runs(finished_cells, "mini", load_conditions())
    assert sorted(runs.seed[(runs.task == "rt-polarity") & (runs.condition == "tapt")]) == [0, 1, 2, 3, 4, 5]


def _not_utf8(cell):
    metrics_record().write(cell / "baseline" / "seed_0")
    (cell / "baseline" / "seed_0" / "metrics.json").write_bytes(b"\xff\xfe{garbage")
    return cell / "baseline" / "seed_0" / "metrics.json"


def _nan_in_dev_curve(cell):
    return metrics_record(dev_curve=[0.4, float("nan")]).write(cell / "baseline" / "seed_0")


def _nan_probe(cell):
    metrics_record().write(cell / "baseline" / "seed_0")
    return probe_record(test_metric=float("nan")).write(cell / "baseline")


def _test_metric_edited(cell):
    return metrics_record(test_metric=0.99, test={"accuracy": 0.5, "macro_f1": 0.5, "micro_f1": 0.5}).write(
        cell / "baseline" / "seed_0")


def _probe_test_metric_edited(cell):
    metrics_record().write(cell / "baseline" / "seed_0")
    return probe_record(test_metric=0.99, test={"accuracy": 0.5, "macro_f1": 0.5, "micro_f1": 0.5}).write(
        cell / "baseline")


def _probe_of(**fields):
    """A probe of a baseline cell with a run, its `fields` as no probe writes them."""
    def damage(cell):
        metrics_record().write(cell / "baseline" / "seed_0")
        return probe_record(**fields).write(cell / "baseline")
    return damage


def _record_a_folder(cell):
    (cell / "baseline" / "seed_0" / "metrics.json").mkdir(parents=True)   # "Is a directory", exit 1
    return cell / "baseline" / "seed_0" / "metrics.json"


@pytest.mark.parametrize("damage, says", [
    (_not_utf8, ": invalid JSON (not UTF-8 at byte offset 0: invalid start byte)"),
    (_record_a_folder, ": a folder, not a file; remove it"),
    # what the tables read, edited by hand: another cell became the bold best, exit 0
    (_test_metric_edited, ": field 'test_metric' is 0.99, but test.macro_f1 is 0.5 (edited by hand?)"),
    (_probe_test_metric_edited, ": field 'test_metric' is 0.99, but test.macro_f1 is 0.5 (edited by hand?)"),
    # a metric no run writes: it said "field 'test_metric' is 0.5, but test.f1 is None"
    (lambda cell: metrics_record(metric="f1", dev={"macro_f1": 0.5}, test={"accuracy": 0.5, "macro_f1": 0.5,
                                                                       "micro_f1": 0.5}).write(cell / "baseline" / "seed_0"),
     ": field 'metric' is 'f1', but its test scores are accuracy, macro_f1, micro_f1 (edited by hand?)"),
    (_nan_in_dev_curve, ": field 'dev_curve[1]' is nan: not a fraction in [0, 1]"),
    (_nan_probe, ": field 'test_metric' is nan: not a fraction in [0, 1]"),
    # a copied seed folder renamed seed_-1, its seed edited: one more seed tabled while status said 5/5
    (lambda cell: metrics_record(seed=-1).write(cell / "baseline" / "seed_-1"),
     ": field 'seed' is -1, which no run writes (a seed is in [0, 2^32); edited by hand?)"),
    (lambda cell: metrics_record(best_epoch=9).write(cell / "baseline" / "seed_0"),
     ": field 'best_epoch' is 9, which no run writes (from 1 to epochs_run; edited by hand?)"),
    # more epochs or examples than the run's own recipe allows (both were tabled)
    (lambda cell: metrics_record(epochs_run=3, dev_curve=[0.5] * 3, config={"epochs": 2}).write(cell / "baseline" / "seed_0"),
     ": field 'epochs_run' is 3, which no run writes (one dev_curve point per epoch run, at most config.epochs; "
     "edited by hand?)"),
    (lambda cell: metrics_record(train_examples=300, config={"max_train_examples": 200}).write(cell / "baseline" / "seed_0"),
     ": field 'train_examples' is 300, which no run writes (at least 1, at most config.max_train_examples; "
     "edited by hand?)"),
    # a probe's sizes and time (each passed into the probe table, while metrics.json refused the same)
    (_probe_of(features=-1), ": field 'features' is -1, which no probe writes (the encoder's hidden size, at least 1; "
     "edited by hand?)"),
    (_probe_of(train_examples=0), ": field 'train_examples' is 0, which no probe writes (at least 1; edited by hand?)"),
    (_probe_of(wall_time_s=-3.0), ": field 'wall_time_s' is -3.0, which no probe writes (seconds, >= 0; edited by hand?)"),
])
def test_a_damaged_record_is_one_line_everywhere(damage, says, mini_tree, capsys):
    """A record of bytes that are no text was a UnicodeDecodeError traceback; NaN (which JSON files
    may hold) in a run's dev scores or curve, or anywhere in a probe, passed into the tables."""
    path = damage(mini_tree["results"] / "mini" / "aclsum-roles")
    refused_everywhere(mini_tree, capsys, f"{path}{says}")


def test_a_run_history_entry_that_is_no_record_is_named(tmp_path):
    """One entry of RUN.json edited into a number: the line quoted the whole history (kilobytes)."""
    from dontstop.records import RunHistory

    history = {"suite": "mini", "invocations": [{"command": "dontstop reproduce"}] * 20 + [5]}
    (tmp_path / "mini").mkdir()
    (tmp_path / "mini" / "RUN.json").write_text(json.dumps(history))
    with pytest.raises(UserError) as refused:
        RunHistory.read(tmp_path / "mini", "mini")
    assert str(refused.value) == f"{tmp_path}/mini/RUN.json: key 'invocations[20]': expected Invocation, got int 5"


@pytest.mark.parametrize("field, value, written", [
    ("finished_at", "yesterday", "an ISO time, 2026-12-07T08:02:44"),
    ("wall_time_s", float("nan"), "seconds, >= 0"), ("wall_time_s", -3.0, "seconds, >= 0"),
    ("jobs_finished", -1, "a count")])
def test_a_run_history_entry_no_reproduce_writes_is_named(field, value, written, tmp_path):
    """Each passed `reproduce --dry-run` and went into the README's line (its date, its minutes)."""
    from dontstop.records import Invocation, RunHistory

    call = {"command": "dontstop reproduce", "finished_at": "2026-12-07T08:02:44", "wall_time_s": 60.0,
            "jobs_finished": 3, "quick": False, "runs": 3, "git_commit": None, "machine": "x", "versions": {}}
    RunHistory("mini", [Invocation(**call), Invocation(**{**call, field: value})]).write(tmp_path / "mini")
    with pytest.raises(UserError) as refused:
        RunHistory.read(tmp_path / "mini", "mini")
    assert str(refused.value) == (f"{tmp_path}/mini/RUN.json: field 'invocations[1].{field}' is {value!r}, which no "
                                  f"reproduce call writes ({written}; edited by hand?)")


def test_a_run_history_of_another_suite_is_refused(tmp_path):
    from dontstop.records import RunHistory

    RunHistory("paper").write(tmp_path / "mini")
    with pytest.raises(UserError, match=r"mini/RUN.json: field 'suite' is 'paper' but this is the history of 'mini'"):
        RunHistory.read(tmp_path / "mini", "mini")


def test_a_claim_on_a_table_that_holds_no_claims_is_refused_at_load(tmp_path):
    from dontstop.conditions import CLAIM_TABLES, load_condition, load_conditions
    from dontstop.report.tables import tasks_of_table
    from dontstop.report.write import make_layout

    layout = make_layout("paper", load_conditions())
    assert all(tasks_of_table(layout, table) for table in CLAIM_TABLES)   # each one the report can test
    condition = tmp_path / "tapt"
    condition.mkdir()
    (condition / "config.yaml").write_text("condition: tapt\ndisplay: TAPT\ndescription: x\norder: 3\n"
                                           "claims: [{claim: c, better: tapt, worse: baseline, table: '9'}]\n")
    with pytest.raises(UserError, match=r"tapt/config.yaml: key 'claims: table': '9' is not one of "
                                        "3, 5, 6, 7, 8"):
        load_condition(condition)


def test_the_leakage_guard_refuses_a_missing_dev_or_test_file(mini_tree):
    from dontstop.data.leakage import leakage_keys
    from dontstop.overrides import folder
    from dontstop.suites import load_suite

    suite = load_suite("mini", overrides=folder("--data-dir", "data_dir", str(mini_tree["data"])))
    tasks = list(MINI_TASKS)
    assert leakage_keys(suite.leakage_task_dirs(running=tasks))
    test = suite.task_dir("rt-polarity") / "test.jsonl"
    test.unlink()
    with pytest.raises(UserError, match=f"{test}: not found; the leakage guard needs"):
        leakage_keys(suite.leakage_task_dirs())
    with pytest.raises(UserError, match="no/such/task/dev.jsonl: not found"):
        leakage_keys([mini_tree["data"] / "no" / "such" / "task"])   # --exclude-dev-test-of <typo>
    # a task not downloaded yet (no folder) is guarded once it is there, but one being run must be
    shutil.rmtree(test.parent)
    assert leakage_keys(suite.leakage_task_dirs(running=["aclsum-roles"]))
    with pytest.raises(UserError, match="rt-polarity/dev.jsonl: not found"):
        leakage_keys(suite.leakage_task_dirs(running=["rt-polarity"]))


def test_a_finished_stage_that_did_not_hold_out_a_task_added_since_is_refused_before_fine_tuning_it(mini_suite, capsys):
    """A stage drops the dev/test text of the suite's tasks there when it is built (the paper's are
    downloaded one by one; a study gains a task), and its key does not name them (a new task would
    rebuild every DAPT stage): DAPT-cs built before ACL-Sections was there pretrained on a dev
    sentence of it, and ACL-Sections was then fine-tuned on it. Refused before any work, by `run`
    and `status`; its corpus is searched once per new set of files; a stage that held the task out,
    or holds none of its text, is used."""
    import json
    import re

    from dontstop.conditions import EXPERIMENTS_DIR, load_condition
    from dontstop.data.leakage import leakage_guard
    from dontstop.records import PretrainRecord
    from dontstop.runner.job_actions import build_stage
    from dontstop.runner.jobs import check_job_models, make_jobs
    from dontstop.runner.plan import plan_runs
    from dontstop.runner.status import damaged_stages

    tiny = {"max_steps": 2, "batch_size": 2, "per_device_batch_size": 2, "max_length": 16}
    mini_suite.recipes = {**mini_suite.recipes, "base": tiny, "dapt": tiny}
    sections = Path(mini_suite.task_dir("aclsum-sections"))
    Path(mini_suite.domain_corpora["cs"]).write_text("cs doc\naclsum-sections dev text 1\nanother cs doc\n")
    later = sections.rename(sections.with_name("downloaded-later"))
    dapt = load_condition(EXPERIMENTS_DIR / "dapt")
    stages = plan_runs(mini_suite, dapt, ["aclsum-roles"])[0].stages

    def build() -> None:
        for stage in stages:
            if not stage.record_path.exists():
                build_stage(stage, mini_suite, leakage_guard(mini_suite.leakage_task_dirs(), mini_suite.cache_dir), False)

    build()
    record = PretrainRecord.read(stages[-1].record_path)
    assert record.excluded_keys == [] and len(record.guarded_sha256) == 2 * (len(mini_suite.tasks) - 1)
    jobs = make_jobs([plan for task in ("aclsum-roles", "aclsum-sections") for plan in plan_runs(mini_suite, dapt, [task])])
    check_job_models(jobs, mini_suite)   # not downloaded yet (a dry run, status): nothing to search for
    assert damaged_stages(jobs, mini_suite) == {}
    later.rename(sections)
    dev = sections / "dev.jsonl"
    refusal = (rf"{re.escape(str(stages[-1].checkpoint_dir))}: its corpus holds 1 dev/test text\(s\) of aclsum-sections "
               rf"that it did not hold out \(.*; the first: {re.escape(str(dev))}:2\); fine-tuning on it would test on text it was "
               "pretrained on; .*remove its folder to build it again$")
    with pytest.raises(UserError, match=refusal):
        check_job_models(jobs, mini_suite)
    assert capsys.readouterr().out.count("searching its corpus") == 2   # the base stage's and DAPT's
    with pytest.raises(UserError, match=refusal):
        check_job_models(jobs, mini_suite)   # the answer kept: not searched again
    damaged = damaged_stages(jobs, mini_suite)   # `dontstop status` shows the same line
    assert len(damaged) == 1 and "aclsum-sections that it did not hold out" in next(iter(damaged.values()))
    assert "searching" not in capsys.readouterr().out
    check_job_models([job for job in jobs if job.plan is None or job.plan.task.key == "aclsum-roles"], mini_suite)
    # a record written before stages kept their guard: the count of dropped documents decides
    record_path = stages[-1].record_path
    old = {key: value for key, value in json.loads(record_path.read_text()).items()
           if key not in ("guarded_sha256", "excluded_keys")}
    record_path.write_text(json.dumps(old))
    with pytest.raises(UserError, match=refusal):
        check_job_models(jobs, mini_suite)
    record_path.write_text(json.dumps({**old, "excluded_documents": 1}))
    check_job_models(jobs, mini_suite)   # one such text may have been dropped: not refused
    # the dev sentence edited out of the corpus's reach: searched again (new file), nothing found
    record_path.write_text(json.dumps({**old, "guarded_sha256": record.guarded_sha256, "excluded_keys": []}))
    dev.write_text(dev.read_text().replace("dev text 1", "dev text one"))
    check_job_models(jobs, mini_suite)
    assert "searching its corpus" in capsys.readouterr().out
    # built again with the task there: held out, and nothing to search
    shutil.rmtree(stages[-1].checkpoint_dir)
    dev.write_text(dev.read_text().replace("dev text one", "dev text 1"))
    build()
    assert PretrainRecord.read(record_path).excluded_documents == 1
    check_job_models(jobs, mini_suite)
    assert "searching" not in capsys.readouterr().out


def test_a_stage_of_one_step_built_at_lr_0_is_refused_and_the_runs_and_probe_made_from_it_are_stale(mini_suite):
    """A stage of one optimizer step ran it at lr 0 before the warmup skipped such a stage
    (pretrain/mlm.warmup_steps): its model was its parent's, bit for bit, and a Spanish study's
    TAPT, TAPT (LoRA) and 50NN-TAPT scored exactly its baseline. Its key is unchanged (the step count
    is known only once its corpus is tokenized), so its record (no `warmup_steps`) is refused as
    damaged, and the runs and probe fine-tuned from it are stale: redone by --rerun-stale."""
    import dataclasses
    import re

    from dontstop.conditions import EXPERIMENTS_DIR, load_condition
    from dontstop.finetune.trainer import resolve_recipe
    from dontstop.runner.finished import stale_results
    from dontstop.runner.job_actions import finetune_recipe
    from dontstop.runner.job_checks import check_finished_stage
    from dontstop.runner.plan import plan_runs

    [plan] = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "tapt"), ["rt-polarity"], [0])
    tapt = plan.stages[-1]
    at_lr_0 = re.escape(f"{tapt.checkpoint_dir}: its one optimizer step ran at lr 0 (all warmup: it was built before a "
                        "stage of one step skipped the warmup), so its model is its parent's unchanged; a finished stage "
                        "is never built over: remove its folder to build it again")
    for warmup_steps, steps in ((None, 1), (1, 1)):
        pretrain_record(name=tapt.name, steps=steps, warmup_steps=warmup_steps).write(tapt.checkpoint_dir)
        with pytest.raises(UserError, match=f"^{at_lr_0}$"):
            check_finished_stage(tapt, mini_suite, lambda path: "missing", load=False, tasks=[])
    # one step at its lr; an older stage of two steps; an older one of one step and no warmup (warmup_ratio 0)
    for warmup_steps, steps, recipe in ((0, 1, {}), (None, 2, {}), (None, 1, {"warmup_ratio": 0.0})):
        pretrain_record(name=tapt.name, steps=steps, warmup_steps=warmup_steps, recipe=recipe).write(tapt.checkpoint_dir)
        with pytest.raises(UserError, match="built from other settings"):   # the record's recipe, not its lr 0
            check_finished_stage(tapt, mini_suite, lambda path: "missing", load=False, tasks=[])
    config = dataclasses.asdict(resolve_recipe(finetune_recipe(plan, mini_suite, 0), plan.task))
    base = {"name": "base", "steps": 500}
    for tapt_record, stale in (({"name": tapt.name, "steps": 1}, True), ({"name": tapt.name, "steps": 1, "warmup_steps": 0}, False),
                               ({"name": tapt.name, "steps": 24}, False),
                               ({"name": tapt.name, "steps": 1, "recipe": {"warmup_ratio": 0.0}}, False)):
        metrics_record(task="rt-polarity", condition="tapt", model=plan.model, lineage=plan.lineage, config=config,
                       pretraining=[base, tapt_record]).write(plan.run_dir(0))
        probe_record(task="rt-polarity", condition="tapt", model=plan.model, lineage=plan.lineage).write(plan.cell_dir)
        found = stale_results([plan], mini_suite, allow_mixed=True)
        assert [s.path for s in found] == ([plan.run_dir(0) / "metrics.json", plan.cell_dir / "probe.json"] if stale else [])
        assert all(s.reason == f"starting checkpoint: its stage {tapt.name} ran its one optimizer step at lr 0 (built "
                   "before a stage of one step skipped the warmup), so it fine-tuned its parent's model" for s in found)
