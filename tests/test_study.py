"""A study file of your own (study_file.py): a Korean task run through tables, what each key
resolves to, which conditions run, bad study files in one line, `init-study`, and a vocabulary
overlap that counts words the same way in every script.

The study is tests/korean_study.py's: comments that agree (찬성) or disagree (반대), a news-comments
domain and an encyclopedic one, a tiny BERT with a WordPiece vocabulary of that text, 2 seeds and
recipes of a few steps (the rest of the recipes from the mini suite it extends).
"""
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from dontstop.cli import main
from dontstop.config import read_yaml_mapping
from dontstop.conditions import load_conditions
from dontstop.suites import load_suite
from dontstop.fileio import UserError
from korean_study import build_korean_study, study_spec

REPO = Path(__file__).resolve().parents[1]
RUNS = {"baseline", "dapt", "not_dapt", "tapt", "dapt_tapt"}   # what the basic study's inputs allow
SKIPPED = {"transfer_tapt": "no other task of its domain", "curated_tapt": "no curated pool",
           "dapt_curated_tapt": "no curated pool", "knn_tapt_50": "no kNN candidate pool",
           "knn_tapt_150": "no kNN candidate pool", "knn_tapt_500": "no kNN candidate pool",
           "rand_tapt": "no kNN candidate pool"}


def run_dontstop(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, "-m", "dontstop", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_a_korean_study_runs_every_condition_its_inputs_allow_through_tables(korean_reproduced):
    folder, result = korean_reproduced
    skipped = [line for line in result.stdout.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == len(SKIPPED)
    for condition, why in SKIPPED.items():
        [line] = [line for line in skipped if line.startswith(f"skipped {condition} (")]
        assert line.endswith(f"on comments: {why}" + (" for its domain" if "kNN" in why else ""))
    runs = {path.relative_to(folder / "results" / "korean-comments").parts[1:3]: json.loads(path.read_text())
            for path in (folder / "results" / "korean-comments").rglob("metrics.json")}
    assert {condition for condition, _ in runs} == RUNS and len(runs) == 2 * len(RUNS)
    assert runs[("not_dapt", "seed_0")]["lineage"] == "dapt-wiki"           # the study's second domain
    assert runs[("dapt_tapt", "seed_1")]["lineage"] == "dapt-news_comments+tapt-comments"
    assert runs[("baseline", "seed_0")]["model"] == str(folder / "model")   # base_corpus: null
    assert {run["metric"] for run in runs.values()} == {"macro_f1"}

    tables = folder / "tables" / "korean-comments"
    table5 = (tables / "table5.md").read_text(encoding="utf-8")
    assert "| 논란 댓글 |" in table5 and "paper (Δ)" not in table5 and "(2)" in table5
    assert not (tables / "table6.md").exists()   # no task had what its conditions need: said why
    assert "Table 6: Transfer-TAPT: no task of this suite" in (tables / "README.md").read_text(encoding="utf-8")
    findings = (tables / "findings.md").read_text(encoding="utf-8")
    rows = [line.split(" | ") for line in findings.splitlines() if line.startswith("| DAPT beats")]
    assert rows and rows[0][1] == "논란 댓글" and rows[0][-1].rstrip(" |") in (
        "holds", "reversed", "not significant", "underpowered")
    assert "missing (no vocabulary overlap with the general corpus)" in findings
    analysis = json.loads((tables / "analysis" / "vocab_overlap.json").read_text(encoding="utf-8"))
    assert set(analysis["corpora"]) == {"news_comments", "wiki"} and min(analysis["distinct_words"].values()) > 30
    assert (tables / "analysis" / "mlm_loss.csv").read_text().splitlines()[1:] and \
        {"base", "dapt-news_comments", "dapt-wiki"} <= {line.split(",")[0] for line in
                                                      (tables / "analysis" / "mlm_loss.csv").read_text().splitlines()}
    notebook = (tables / "results.ipynb").read_text(encoding="utf-8")   # the study's own executed copy
    assert "논란 댓글" in notebook and '"output_type": "error"' not in notebook


def test_status_and_aggregate_take_the_study_file_too(korean_reproduced, tmp_path):
    folder, _ = korean_reproduced
    status = run_dontstop("status", "--suite", folder / "study.yaml", "--results-dir", folder / "results",
                          "--cache-dir", folder / "cache", cwd=tmp_path)
    assert status.returncode == 0 and "14 jobs: 14 done" in status.stdout, status.stdout + status.stderr
    with warnings.catch_warnings(record=True) as caught:   # Korean task names: drawn, or said once
        warnings.simplefilter("always", append=True)
        assert main(["aggregate", "--suite", str(folder / "study.yaml"), "--results-dir", str(folder / "results"),
                     "--tables-dir", str(tmp_path / "again")]) == 0
    assert not [str(w.message) for w in caught if "missing from font" in str(w.message)]
    again = (tmp_path / "again" / "korean-comments" / "table5.md").read_text(encoding="utf-8")
    assert again == (folder / "tables" / "korean-comments" / "table5.md").read_text(encoding="utf-8")


def test_a_study_folder_moved_or_copied_elsewhere_keeps_its_stages_and_runs(korean_reproduced, tmp_path):
    """Stage keys named a study's own files (its tasks, corpora, local model) by absolute path: the
    same folder moved, renamed or copied to a cluster built every stage again and called every run
    stale ("built from other settings or inputs"). Its files are keyed relative to the study file."""
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(korean_reproduced[0], moved, symlinks=True)
    plan = run_dontstop("reproduce", "--suite", "study.yaml", "--dry-run", "--no-wandb", cwd=moved)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "stage build" not in plan.stdout and "0 run(s) to do" in plan.stdout, plan.stdout
    status = run_dontstop("status", "--suite", "study.yaml", cwd=moved)
    assert "14 jobs: 14 done" in status.stdout, status.stdout + status.stderr
    tables = run_dontstop("aggregate", "--suite", "study.yaml", "--tables-dir", "again", cwd=moved)
    assert tables.returncode == 0, tables.stderr
    assert ((moved / "again" / "korean-comments" / "table5.md").read_text(encoding="utf-8")
            == (moved / "tables" / "korean-comments" / "table5.md").read_text(encoding="utf-8"))


def test_a_study_run_from_another_folder_keeps_its_results_and_cache_beside_its_file(tmp_path, monkeypatch, capsys):
    """A study's tables went beside its file, its results and cache into the working folder's
    results/ and cache/: run from another folder (a Spanish study's `--suite ~/es/study.yaml` from
    the repository), its outputs were split, and `status` from the study's own folder found none of
    its runs. Both default to the study's folder now, as its tables; a study that extends it keeps
    its own; a folder a study file writes, or a flag gives, is kept."""
    study = build_korean_study(tmp_path / "es")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    suite = load_suite(str(study))
    assert (suite.results_dir, suite.cache_dir) == ("../es/results", "../es/cache")   # from the working folder, as a flag's
    assert main(["status", "--suite", str(study)]) == 0
    assert capsys.readouterr().out.startswith("suite korean-comments: results in ../es/results/korean-comments\n")
    (tmp_path / "es" / "more").mkdir()   # a study extending it: beside its own file
    (tmp_path / "es" / "more" / "seeds.yaml").write_text("name: more-seeds\nextends: ../study.yaml\nseeds: [0, 1, 2]\n")
    more = load_suite(str(tmp_path / "es" / "more" / "seeds.yaml"))
    assert (more.results_dir, more.cache_dir) == ("../es/more/results", "../es/more/cache")
    monkeypatch.chdir(tmp_path / "es")   # from the study's folder: `results`, as before
    assert (load_suite("study.yaml").results_dir, load_suite("study.yaml").cache_dir) == ("results", "cache")
    monkeypatch.chdir(elsewhere)
    study.write_text(study.read_text(encoding="utf-8") + "results_dir: ../shared-results\n", encoding="utf-8")
    assert load_suite(str(study)).results_dir == str(tmp_path / "es" / ".." / "shared-results")   # written: kept
    assert load_suite(str(tmp_path / "es" / "more" / "seeds.yaml")).results_dir == str(tmp_path / "es" / ".." / "shared-results")
    assert load_suite("mini").results_dir == "results"   # a built-in suite's: the working folder's, as before
    assert main(["status", "--suite", str(study), "--results-dir", "mine"]) == 0   # a flag: as given
    assert capsys.readouterr().out.startswith("suite korean-comments: results in mine/korean-comments\n")


def test_a_studys_results_or_cache_left_in_the_working_folder_are_named_not_started_again(tmp_path, monkeypatch, capsys):
    """Results and checkpoints a study made before its outputs lay beside its file (the working
    folder's results/<name>/, cache/<name>/): every command says to move them, in one line, where
    the new folder is empty (a run started every stage again beside them); a flag that names the
    old folder runs on it, and once moved nothing is said."""
    study = build_korean_study(tmp_path / "es")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cache" / "korean-comments" / "checkpoints").mkdir(parents=True)
    for command in (["status"], ["reproduce", "--dry-run"], ["aggregate"]):
        assert main([*command, "--suite", str(study)]) == 2
        assert capsys.readouterr().err.strip().endswith(
            "cache/korean-comments: study korean-comments's cache from before a study's cache lay beside its file; "
            "move it there (mkdir -p es/cache && mv cache/korean-comments es/cache/korean-comments), or give "
            "--cache-dir cache")   # without es/cache, the mv alone failed
    assert main(["status", "--suite", str(study), "--cache-dir", "cache"]) == 0   # the old folder, as given
    # a copy of a study run from the original's folder: the cache there is the original's, beside its file
    # (it was named as the copy's, to be moved into it)
    (tmp_path / "original.yaml").write_text("name: korean-comments\nextends: mini\n", encoding="utf-8")
    assert main(["status", "--suite", str(study)]) == 0
    (tmp_path / "original.yaml").unlink()
    capsys.readouterr()
    (tmp_path / "es" / "cache").mkdir(exist_ok=True)   # the status above made it
    (tmp_path / "cache" / "korean-comments").rename(tmp_path / "es" / "cache" / "korean-comments")
    (tmp_path / "results" / "quick" / "korean-comments").mkdir(parents=True)   # a --quick run's too
    assert main(["status", "--suite", str(study)]) == 2
    assert "results/quick/korean-comments: study korean-comments's results from before" in capsys.readouterr().err
    (tmp_path / "results" / "quick" / "korean-comments").rmdir()
    assert main(["status", "--suite", str(study)]) == 0


def test_keys_resolve_against_the_file_and_extend_the_suite(tmp_path, monkeypatch):
    study = build_korean_study(tmp_path / "rich", rich=True)
    monkeypatch.chdir(REPO)   # relative paths follow the file, not the working directory
    suite = load_suite(str(study))
    mini = load_suite("mini")
    assert suite.base_model == str(tmp_path / "rich" / "model") and suite.base_corpus is None
    assert suite.recipes["dapt"] == {**mini.recipes["dapt"], **study_spec(True)["recipes"]["dapt"]}
    assert suite.finetune["max_train_examples"] == mini.finetune["max_train_examples"] and suite.seeds == [0, 1]
    assert suite.domain_corpora == {"news_comments": str(tmp_path / "rich" / "corpora" / "comments.txt"),
                                    "wiki": str(tmp_path / "rich" / "corpora" / "wiki.txt")}
    comments, replies = suite.task("comments"), suite.task("replies")
    assert (comments.name, comments.transfer, comments.knn, replies.transfer) == ("논란 댓글", "replies", True, "comments")
    assert comments.curated and not replies.curated and replies.metric == "accuracy" and replies.epochs == 3
    assert suite.task_dir("comments") == tmp_path / "rich" / "data" / "comments"
    assert suite.domain("news_comments").irrelevant == "wiki" and suite.domain("wiki").irrelevant == "news_comments"
    assert suite.is_study and suite.own_tasks and not suite.released
    (tmp_path / "rich" / "more").mkdir()   # a study may extend another study file, by its path
    (tmp_path / "rich" / "more" / "seeds.yaml").write_text("name: more-seeds\nextends: ../study.yaml\nseeds: [0, 1, 2]\n")
    more = load_suite(str(tmp_path / "rich" / "more" / "seeds.yaml"))
    assert more.seeds == [0, 1, 2] and more.task_dir("replies") == tmp_path / "rich" / "data" / "replies"
    assert more.pools == suite.pools and more.own_tasks and more.name == "more-seeds"

    subset = tmp_path / "subset.yaml"   # a study on some of mini's own tasks keeps mini's facts and data
    subset.write_text("name: polarity-only\nextends: mini\ntasks: [rt-polarity]\nseeds: [0, 1, 2]\n")
    suite = load_suite(str(subset))
    assert suite.tasks == ["rt-polarity"] and suite.task("rt-polarity").transfer == "rt-subjectivity"
    assert suite.task_dir("rt-polarity") == Path("data") / "mini" / "tasks" / "rt-polarity"
    assert suite.data_path(suite.base_corpus) == str(Path("data") / "mini" / "corpora" / "general.txt")
    assert suite.is_study and not suite.own_tasks


def test_every_condition_with_its_inputs_is_planned_and_the_suite_pickles_with_them(tmp_path, capsys):
    import pickle

    from dontstop.runner.plan import plan_runs
    from dontstop.runner.plan_printout import print_skipped

    study = build_korean_study(tmp_path / "rich", rich=True)
    suite = dataclasses.replace(load_suite(str(study)), cache_dir=str(tmp_path / "cache"))
    conditions = list(load_conditions())
    planned = {(plan.task.key, plan.condition) for e in conditions for plan in plan_runs(suite, e)}
    everything = {e.condition for e in conditions}
    curated = {"curated_tapt", "dapt_curated_tapt"}
    assert planned == {("comments", c) for c in everything} | {("replies", c) for c in everything - curated}
    print_skipped(suite, conditions, None)
    assert capsys.readouterr().out.splitlines() == [
        "skipped curated_tapt (Curated-TAPT) on replies: no curated pool",
        "skipped dapt_curated_tapt (DAPT + Curated-TAPT) on replies: no curated pool"]
    again = pickle.loads(pickle.dumps(suite))   # what a spawned worker and a Slurm job get
    assert again.task("replies") == suite.task("replies") and again.domain("wiki") == suite.domain("wiki")


def bad_study(folder: Path, change) -> Path:
    spec = study_spec(False)
    change(spec)
    (folder / "study.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return folder / "study.yaml"


def _octal_seed(folder: Path) -> Path:
    """`seeds: [0, 010]`: YAML 1.1 reads 010 as octal, so seed 8 ran, without a word."""
    study = bad_study(folder, lambda s: s.update(seeds=[0, 7777]))
    study.write_text(study.read_text(encoding="utf-8").replace("- 7777", "- 010"), encoding="utf-8")
    return study


def _base_60_seeds(folder: Path) -> Path:
    """`seeds: [1:5]` (a range, as Python slices it): YAML 1.1 reads 1:5 in base 60, so seed 65 ran alone."""
    study = bad_study(folder, lambda s: s.update(seeds=[7777]))
    study.write_text(study.read_text(encoding="utf-8").replace("- 7777", "- 1:5"), encoding="utf-8")
    return study


def _copied_corpus(folder: Path, key: str, of: str) -> Path:
    """A byte-for-byte copy of corpora/<of>.txt given as `key` (a domain's corpus, or base_corpus):
    the same path was refused, the copy accepted."""
    shutil.copy(folder / "corpora" / f"{of}.txt", folder / "corpora" / "copy.txt")
    return bad_study(folder, lambda s: s.update(base_corpus="corpora/copy.txt") if key == "base_corpus"
                     else s["domain_corpora"].update({key: "corpora/copy.txt"}))


def _unseen_label(folder: Path) -> Path:
    with open(folder / "data" / "comments" / "test.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"text": "그냥 그래요", "label": "중립"}, ensure_ascii=False) + "\n")
    return folder / "study.yaml"


def _duplicate(folder: Path) -> Path:
    text = (folder / "study.yaml").read_text(encoding="utf-8")
    head, tasks = text.split("tasks:\n", 1)
    block = "  comments:\n    data: data/comments\n    metric: macro_f1\n    domain: news_comments\n"
    (folder / "study.yaml").write_text(head + "tasks:\n" + block + block + tasks.split("\n", 1)[1], encoding="utf-8")
    return folder / "study.yaml"


def _data_twice(folder: Path) -> Path:
    """A task's `data:` pasted twice: YAML kept the last one, so the task trained on other data."""
    study = folder / "study.yaml"
    study.write_text(study.read_text(encoding="utf-8").replace(
        "    data: data/comments\n", "    data: data/comments\n    data: data/other\n", 1), encoding="utf-8")
    return study


def _edited(folder: Path, *replacements: tuple[str, str]) -> Path:
    """study.yaml with each (old, new) of its text replaced once: what yaml.safe_dump would quote."""
    study = folder / "study.yaml"
    text = study.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new, 1)
    study.write_text(text, encoding="utf-8")
    return study


def _fifo(folder: Path, name: str) -> Path:
    """The study's file `name` replaced by a fifo (a named pipe: opened for reading, it waits for a writer)."""
    (folder / name).unlink()
    os.mkfifo(folder / name)
    return folder / "study.yaml"


def _no_extends_no_steps(spec: dict) -> None:
    """Without `extends`, a recipe the file does not give has no steps or epochs (the suite checks
    read the recipes given): DAPT stopped at its stage, once the jobs before it had run."""
    spec.pop("extends")
    spec["recipes"].pop("dapt")


def _latin1(folder: Path) -> Path:
    """The study file saved by an editor in Latin-1 (a traceback: UnicodeDecodeError)."""
    study = bad_study(folder, lambda s: s["tasks"]["comments"].update(display="Commentaires négatifs"))
    study.write_bytes(study.read_text(encoding="utf-8").encode("latin-1"))
    return study


BAD = {   # case: (how to break the basic study, what the one line says)
    "missing_split": (lambda f: (f / "data" / "comments" / "dev.jsonl").unlink() or f / "study.yaml",
                      "key 'tasks.comments.data': {f}/data/comments/dev.jsonl: file not found"),
    # the message named the missing split alone, beside the task folder that holds it
    "data_a_folder_of_task_folders": (lambda f: bad_study(f, lambda s: s["tasks"]["comments"].update(data="data")),
                                      "key 'tasks.comments.data': {f}/data/train.jsonl: file not found "
                                      "({f}/data/comments/train.jsonl is there: give the task's own folder, "
                                      "{f}/data/comments)"),
    # two task folders there: the first was named as the task's own, whichever task it was
    "data_a_folder_of_two_task_folders": (lambda f: shutil.copytree(f / "data" / "comments", f / "data" / "other")
                                          and bad_study(f, lambda s: s["tasks"]["comments"].update(data="data")),
                                          "key 'tasks.comments.data': {f}/data/train.jsonl: file not found (task "
                                          "folders holding train.jsonl are there: {f}/data/comments, {f}/data/other; "
                                          "give the task's own)"),
    "label_not_in_train": (_unseen_label, "key 'tasks.comments.data': {f}/data/comments/test.jsonl:21: "
                                          "field 'label': '중립' never occurs in train"),
    "unknown_metric": (lambda f: bad_study(f, lambda s: s["tasks"]["comments"].update(metric="f1")),
                       "key 'tasks.comments.metric': 'f1' is not one of macro_f1, micro_f1, accuracy"),
    "domain_without_corpus": (lambda f: bad_study(f, lambda s: s["domain_corpora"].pop("news_comments")),
                              "key 'domain_corpora': no domain corpus for domain 'news_comments'"),
    "domain_typo": (lambda f: bad_study(f, lambda s: s["tasks"]["comments"].update(domain="news_coments")),
                    "key 'domain_corpora': no domain corpus for domain 'news_coments' (tasks.comments.domain), which "
                    "a chosen condition needs; add `news_coments: PATH` there (or pass --domain-corpus "
                    "news_coments=PATH), or give the task a domain that has one: news_comments, wiki"),
    "task_named_as_a_results_file": (lambda f: bad_study(f, lambda s: s["tasks"].update({"RUN.json": s["tasks"]["comments"]})),
                                     "key 'tasks': task key 'RUN.json' names what the results folder holds beside its tasks"),
    "duplicate_task": (_duplicate, "key 'tasks.comments': given twice (first on line "),
    "extends_no_suite": (lambda f: bad_study(f, lambda s: s.update(extends="minii")),
                         "key 'extends': 'minii' names no suite; known: mini, paper"),
    "missing_path": (lambda f: bad_study(f, lambda s: s["tasks"]["comments"].update(data="data/nope")),
                     "key 'tasks.comments.data': {f}/data/nope: no such folder"),
    "missing_corpus": (lambda f: bad_study(f, lambda s: s["domain_corpora"].update(wiki="wiki.txt")),
                       "key 'domain_corpora.wiki': {f}/wiki.txt: no such file"),
    "corpus_is_a_folder": (lambda f: bad_study(f, lambda s: s["domain_corpora"].update(wiki="corpora")),
                           "key 'domain_corpora.wiki': {f}/corpora: a folder, not a file"),
    "data_is_a_file": (lambda f: bad_study(f, lambda s: s["tasks"]["comments"].update(data="data/comments/train.jsonl")),
                       "key 'tasks.comments.data': {f}/data/comments/train.jsonl: a file, not a folder"),
    "not_utf8": (_latin1, "study.yaml:45: not UTF-8 at byte offset 746 (byte 0xe9: invalid continuation byte); save it as UTF-8"),
    "builtin_name": (lambda f: bad_study(f, lambda s: s.update(name="mini")),
                     "key 'name': 'mini' is a built-in suite's name"),
    # results/quick/quick/: the study's full run and its --quick run in one another's folders
    "name_of_the_quick_folder": (lambda f: bad_study(f, lambda s: s.update(name="quick")),
                                 "key 'name': 'quick' is the folder of `--quick` runs (results/quick/<name>/)"),
    "builtin_name_in_other_case": (lambda f: bad_study(f, lambda s: s.update(name="Mini")),
                                   "key 'name': 'Mini' is 'mini' in all but case, a built-in suite's name"),
    # nested stage folders: checkpoints/dapt-news/comments-1a2b3c4d/
    "domain_not_a_folder_name": (lambda f: bad_study(f, lambda s: (
                                     s["tasks"]["comments"].update(domain="news/comments"),
                                     s["domain_corpora"].update({"news/comments": s["domain_corpora"]["news_comments"]}))),
                                 "key 'domain_corpora': domain 'news/comments' is not a folder name"),
    "copied_mini": (lambda f: shutil.copy(REPO / "experiments" / "suites" / "mini.yaml", f / "mini.yaml"),
                    "key 'name': 'mini' is the built-in suite of"),
    "unknown_task_key": (lambda f: bad_study(f, lambda s: s["tasks"]["comments"].update(lable="x")),
                         "key 'tasks.comments.lable': unknown; known keys: display, data"),
    "no_seeds": (lambda f: bad_study(f, lambda s: s.update(seeds=[])), "key 'seeds': empty; give at least one"),
    "no_tasks": (lambda f: bad_study(f, lambda s: s.update(tasks={})), "key 'tasks': empty; give at least one"),
    "seeds_not_numbers": (lambda f: bad_study(f, lambda s: s.update(seeds=["a"])),
                          "key 'seeds': expected list[int], got list ['a']"),
    "shared_display": (lambda f: bad_study(shutil.copytree(f / "data" / "comments", f / "data" / "replies").parents[1],
                                           lambda s: s["tasks"].update(replies={**s["tasks"]["comments"],
                                                                                "data": "data/replies"})),
                       "key 'tasks.replies.display': '논란 댓글' names task 'comments' too"),
    # each of these was accepted (exit 0) or found once jobs ran, or a traceback:
    "nested_key_twice": (_data_twice, "key 'tasks.comments.data': given twice (first on line"),
    "domains_unknown_key": (lambda f: bad_study(f, lambda s: s.update(domains={"news_comments": {"irrelevent": "wiki"}})),
                            "key 'domains.news_comments.irrelevent': unknown; known keys: display, irrelevant"),
    "irrelevant_a_list": (lambda f: bad_study(f, lambda s: s.update(domains={"news_comments": {"irrelevant": ["wiki"]}})),
                          "key 'domains.news_comments.irrelevant': ['wiki'] is not another domain of domain_corpora"),
    "empty_display": (lambda f: bad_study(f, lambda s: s["tasks"]["comments"].update(display=" ")),
                      "key 'tasks.comments.display': empty; it is the task's table row"),
    "display_line_break": (lambda f: bad_study(f, lambda s: s["tasks"]["comments"].update(display="댓글\n답글")),
                           "key 'tasks.comments.display': holds '\\n'; it is the task's table row, one line"),
    # every job ran, then writing the tables failed (UnicodeEncodeError), half of them written
    "display_lone_surrogate": (lambda f: bad_study(f, lambda s: s["tasks"]["comments"].update(display="댓글 \ud800")),
                               "key 'tasks.comments.display': holds a lone surrogate \\ud800 at character 4"),
    # two identical table rows, and Transfer-TAPT planned as TAPT on the same text
    "shared_data": (lambda f: bad_study(f, lambda s: s["tasks"].update(
                        replies={**s["tasks"]["comments"], "display": "replies"})),
                    "key 'tasks.replies.data': {f}/data/comments is the data of task 'comments' too; each task needs its own"),
    # ¬DAPT was DAPT: the claim that it is worse compared a corpus with itself
    "shared_corpus": (lambda f: bad_study(f, lambda s: s["domain_corpora"].update(wiki="corpora/comments.txt")),
                      "key 'domain_corpora.wiki': {f}/corpora/comments.txt is the corpus of domain "
                      "'news_comments' too; each domain needs its own"),
    "octal_seed": (_octal_seed, "010 is an octal number to YAML (8); write the number without leading zeros"),
    "base_60_seeds": (_base_60_seeds, "1:5 is a number in base 60 to YAML (65); write one number, a list of them"),
    "copied_corpus": (lambda f: _copied_corpus(f, "wiki", "comments"),
                      "key 'domain_corpora.wiki': {f}/corpora/copy.txt (a copy of {f}/corpora/comments.txt) is the "
                      "corpus of domain 'news_comments' too; each domain needs its own"),
    # "RoBERTa" had seen the domain's text: DAPT differed from it only in steps
    "base_corpus_a_domains": (lambda f: bad_study(f, lambda s: s.update(base_corpus="corpora/comments.txt")),
                              "key 'domain_corpora.news_comments': {f}/corpora/comments.txt is the base_corpus too "
                              "(the base stage trains on general text); a domain needs text of its own"),
    # "" resolved to the study's own folder: ".../study: not a model directory (no config.json)" once a job ran
    "base_corpus_a_copy_of_a_domains": (lambda f: _copied_corpus(f, "base_corpus", "comments"),
                                        "key 'domain_corpora.news_comments': {f}/corpora/comments.txt (a copy of "
                                        "{f}/corpora/copy.txt) is the base_corpus too"),
    # its corpus replaced the base corpus in the vocabulary overlap (a 2 x 2 matrix of 3 corpora), exit 0,
    # and the farthest-domain claim read that row
    "domain_named_general": (lambda f: bad_study(f, lambda s: s["domain_corpora"].update(general=s["domain_corpora"].pop("wiki"))),
                             "key 'domain_corpora.general': 'general' names the general text (base_corpus) in the "
                             "domain analysis; give the domain another name"),
    "empty_base_model": (lambda f: bad_study(f, lambda s: s.update(base_model="")),
                         "key 'base_model': empty; give a hub id, bundled:<name> or a model folder"),
    # the whole section was quoted, naming no entry
    "quick_seeds_as_a_section": (lambda f: bad_study(f, lambda s: s.update(quick={"seeds": [0]})),
                                 "key 'quick.seeds': expected dict[str, Any], got list [0]"),
    "unknown_bundled_model": (lambda f: bad_study(f, lambda s: s.update(base_model="bundled:bert-huge")),   # no line
                              "key 'base_model': 'bundled:bert-huge': unknown bundled model; known: bundled:bert-tiny"),
    "empty_encoder_model": (lambda f: bad_study(f, lambda s: s["selection"].update(embedder="encoder", encoder_model="")),
                            "key 'selection.encoder_model': empty; give a hub id, bundled:<name> or a model folder"),
    "empty_data": (lambda f: bad_study(f, lambda s: s["tasks"]["comments"].update(data="")),
                   "key 'tasks.comments.data': empty"),
    "task_keys_differing_in_case": (
        lambda f: bad_study(f, lambda s: s["tasks"].update(Comments={**s["tasks"]["comments"], "display": "x"})),
        "key 'tasks.comments': differs from task 'Comments' only in case"),   # the file lists Comments first
    "estimate_rate_zero": (lambda f: bad_study(f, lambda s: s.update(estimate_tokens_per_s=0)),
                           "key 'estimate_tokens_per_s': 0; must be > 0"),
    "max_steps_over_given_epochs": (lambda f: bad_study(f, lambda s: s["recipes"]["tapt"].update(max_steps=5)),
                                    "recipes.tapt: key 'max_steps': 5; epochs is 1 too: give exactly one of "
                                    "max_steps (--steps) and epochs (--epochs), the other null"),
    # against the file's folder, as every path of the file: it was the one where the command ran
    "encoder_model_missing": (lambda f: bad_study(f, lambda s: s["selection"].update(embedder="encoder",
                                                                                    encoder_model="./models/none")),
                              "key 'selection.encoder_model': {f}/models/none: no such folder"),
    # YAML reads an unquoted no, yes, on, off, null or number as no string: a domain `no` (Norwegian)
    # was a traceback (TypeError in a join), a study or task value of one "expected a folder name, got False"
    "domain_key_yaml_reads_as_false": (lambda f: _edited(f, ("  news_comments: corpora", "  no: corpora"),
                                                         ("domain: news_comments", "domain: 'no'")),
                                       "key 'domain_corpora.no': YAML reads no as a boolean, not a name; quote it ('no')"),
    "task_key_yaml_reads_as_a_number": (lambda f: _edited(f, ("  comments:\n", "  2024:\n")),
                                        "key 'tasks.2024': YAML reads 2024 as a number, not a name; quote it ('2024')"),
    "name_yaml_reads_as_false": (lambda f: _edited(f, ("name: korean-comments", "name: off")),
                                 "key 'name': expected a folder name (letters, digits, '.', '-', '_'), got False "
                                 "(YAML reads an unquoted no, yes, on, off, null or number so: quote a name)"),
    "domain_value_yaml_reads_as_false": (lambda f: _edited(f, ("  news_comments: corpora", "  'no': corpora"),
                                                           ("domain: news_comments", "domain: no")),
                                         "key 'tasks.comments.domain': expected str, got False (YAML reads an"),
    "no_extends_no_steps": (lambda f: bad_study(f, _no_extends_no_steps),
                            "recipes.dapt (stage dapt-news_comments): key 'max_steps': None; give exactly one"),
    # "" was the study's own folder: "key 'base_corpus': .../study: a folder, not a file"
    "empty_base_corpus": (lambda f: bad_study(f, lambda s: s.update(base_corpus="")),
                          "key 'base_corpus': empty; give a corpus file, or null for no base stage"),
    "empty_domain_corpus": (lambda f: bad_study(f, lambda s: s["domain_corpora"].update(wiki=" ")),
                            "key 'domain_corpora.wiki': empty; give the domain's corpus file"),
    # a fifo was "file not found" / "no such file", beside the path that is there (and never opened: it blocks)
    "split_a_fifo": (lambda f: _fifo(f, "data/comments/dev.jsonl"),
                     "key 'tasks.comments.data': {f}/data/comments/dev.jsonl: a fifo (named pipe), not a regular "
                     "file; give a file"),
    "corpus_a_fifo": (lambda f: _fifo(f, "corpora/wiki.txt"),
                      "key 'domain_corpora.wiki': {f}/corpora/wiki.txt: a fifo (named pipe), not a regular file"),
    # a section written as a YAML list (`- comments: ...`) or a string: a TypeError or AttributeError
    # traceback (tasks, curated, selection), or a domain named after one letter of the string ('/', 'p')
    "tasks_a_yaml_list": (lambda f: bad_study(f, lambda s: s.update(tasks=[{"comments": None, **s["tasks"]["comments"]}])),
                          "key 'tasks': expected a mapping of task key to its display, data, metric and domain (the "
                          "study's own tasks) or a list of the extended suite's task keys, got a YAML list "
                          "('- comments: ...'); write each entry without its leading '- '"),
    "tasks_a_string": (lambda f: bad_study(f, lambda s: s.update(tasks="comments")),
                       "or a list of the extended suite's task keys, got str 'comments'"),
    "corpora_a_yaml_list": (lambda f: bad_study(f, lambda s: s.update(domain_corpora=[
                                {key: value} for key, value in s["domain_corpora"].items()])),
                            "key 'domain_corpora': expected a mapping of domain to corpus file, got a YAML list "
                            "('- news_comments: ...'); write each entry without its leading '- '"),
    "pools_a_string": (lambda f: bad_study(f, lambda s: s.update(pools="corpora/comments.txt")),
                       "key 'pools': expected a mapping of domain to pool file, got str 'corpora/comments.txt'"),
    "curated_a_list": (lambda f: bad_study(f, lambda s: s.update(curated=["corpora/comments.txt"])),
                       "key 'curated': expected a mapping of task to curated file, got list ['corpora/comments.txt']"),
    # looked up on the hub as an org/name id: "models/mine: not in the local cache and offline", naming no key
    "base_model_mistyped_under_a_folder": (lambda f: bad_study(f, lambda s: s.update(base_model="model/tiny")),
                                           "key 'base_model': {f}/model/tiny: no such folder"),
    "selection_a_yaml_list": (lambda f: bad_study(f, lambda s: s.update(selection=[{"dim": 8}])),
                              "key 'selection': expected a mapping of kNN selection setting to value, got a YAML "
                              "list ('- dim: ...')"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_study_file_stops_before_any_work_in_one_line(case, korean_study, tmp_path, capsys):
    folder = tmp_path / "study"
    shutil.copytree(korean_study, folder)
    change, says = BAD[case]
    study = Path(change(folder))
    code = main(["reproduce", "--suite", str(study), "--no-wandb", "--results-dir", str(tmp_path / "results"),
                 "--cache-dir", str(tmp_path / "cache")])
    [line] = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and line.startswith(f"dontstop: error: {study}") and says.format(f=folder) in line, line
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()


def test_a_warning_of_a_studys_own_data_is_a_note_not_a_refusal(korean_study, tmp_path, capsys):
    """A text given two labels in train (a sentence per entity pair, on purpose) stopped a study as
    an error, while `data check` and a built-in suite's run tolerate it as a warning; a study's
    warnings are now one note per task, the run goes on."""
    folder = shutil.copytree(korean_study, tmp_path / "study")
    train = folder / "data" / "comments" / "train.jsonl"
    first = json.loads(train.read_text(encoding="utf-8").splitlines()[0])
    other = next(json.loads(line)["label"] for line in train.read_text(encoding="utf-8").splitlines()
                 if json.loads(line)["label"] != first["label"])
    with train.open("a", encoding="utf-8") as f:
        f.write(json.dumps({**first, "id": "again", "label": other}, ensure_ascii=False) + "\n")
    assert main(["reproduce", "--suite", str(folder / "study.yaml"), "--dry-run", "--results-dir",
                 str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: task 'comments': ")]
    lines = len(train.read_text(encoding="utf-8").splitlines())
    assert notes == [f"note: task 'comments': {train}:{lines}: field 'label': {other!r}, but line 1 has the same "
                     f"text with label {first['label']!r}"], notes


def test_a_mistake_in_a_tasks_field_names_the_fields_line(korean_study, tmp_path, capsys):
    """It named the task's line (`study.yaml:14`), lines above the wrong `metric`."""
    study = shutil.copytree(korean_study, tmp_path / "study") / "study.yaml"
    study.write_text(study.read_text(encoding="utf-8").replace("metric: macro_f1", "metric: f1", 1), encoding="utf-8")
    line = next(n for n, text in enumerate(study.read_text(encoding="utf-8").splitlines(), 1) if "metric: f1" in text)
    assert main(["status", "--suite", str(study), "--results-dir", str(tmp_path / "results")]) == 2
    assert capsys.readouterr().err.strip() == (f"dontstop: error: {study}:{line}: key 'tasks.comments.metric': 'f1' is "
                                               "not one of macro_f1, micro_f1, accuracy")


def test_set_reaches_a_study_files_own_tasks_and_domains(korean_study, tmp_path, capsys):
    """`--set tasks.comments.metric=accuracy` said "key 'tasks' is not a mapping": the overrides were
    checked against the built-in suite's list of task keys, not the study's own mapping."""
    folder = shutil.copytree(korean_study, tmp_path / "study")
    dry = ["status", "--suite", str(folder / "study.yaml"), "--results-dir", str(tmp_path / "results"),
           "--cache-dir", str(tmp_path / "cache")]
    assert main([*dry, "--set", "tasks.comments.metric=accuracy"]) == 0
    capsys.readouterr()
    assert main([*dry, "--set", "tasks.comments.metric=f1"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "key 'tasks.comments.metric': 'f1' is not one of macro_f1, micro_f1, accuracy" in line, line
    # a typo of a task: "study.yaml: key 'tasks.coments': missing required key(s): data, domain"
    assert main([*dry, "--set", "tasks.coments.metric=accuracy"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"dontstop: error: --set tasks.coments.metric=accuracy: key 'tasks.coments': {folder / 'study.yaml'} has no "
        "such task; known: comments"]
    # each was checked as the extended suite's list of task keys, or blamed the file's line
    for given, says in (("tasks=[comments]", f"key 'tasks': {folder / 'study.yaml'} declares its own tasks, a mapping; "
                                              "to run some of them give --tasks KEY ..."),   # "unknown task ... in suite 'mini'"
                        ("tasks.comments=null", "key 'tasks.comments': expected a mapping of display, data"),  # study.yaml:7
                        ("tasks={}", "key 'tasks': empty; give at least one task"),   # "expected list[str], got dict"
                        ("domains={wiki: {irrelevant: nope}}", "key 'domains.wiki.irrelevant': 'nope' is not another domain")):
        assert main([*dry, "--set", given]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"dontstop: error: --set {given}: {says}"), line
    # a whole mapping is the study's own, as in its file ("key 'domains': unknown; known keys: ...")
    assert main([*dry, "--set", "domains={wiki: {irrelevant: news_comments}}"]) == 0


def test_conditions_that_need_no_missing_input_still_run_their_plan(korean_study, tmp_path, capsys):
    study = bad_study(shutil.copytree(korean_study, tmp_path / "study"),
                      lambda s: s["domain_corpora"].pop("news_comments"))
    assert main(["reproduce", "--suite", str(study), "--conditions", "baseline", "tapt", "--dry-run",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "2 (task, condition) pairs" in capsys.readouterr().out


def test_the_dry_run_says_what_fine_tuning_gets_and_which_tasks_its_label_budget_cuts(korean_study, tmp_path, capsys):
    """A study that `extends: mini` fine-tuned on mini's label budget (the first 200 training
    examples of each task), and no line said so."""
    dry = ["reproduce", "--suite", str(korean_study / "study.yaml"), "--conditions", "baseline", "--dry-run",
           "--cache-dir", str(tmp_path / "cache"), "--results-dir", str(tmp_path / "results")]
    assert main([*dry, "--set", "finetune.max_train_examples=30"]) == 0
    assert ("fine-tuning recipe (the suite's finetune): lr 0.001, batch 8, at most 12 epochs, patience 12, texts "
            "cut at 32 tokens, the first 30 training examples of a task (finetune.max_train_examples; null: all): "
            "fewer than in comments (40)\n") in capsys.readouterr().out
    assert main([*dry, "--set", "finetune.max_train_examples=null", "--set", "finetune.epochs=null"]) == 0
    assert "at most the task profile's epochs (low 10, high 3), patience 12, texts cut at 32 tokens\n" in capsys.readouterr().out


def test_a_missing_corpus_given_by_a_flag_is_refused_by_run_and_reported_by_status(korean_study, tmp_path, capsys):
    """The study file's own paths are checked when it is read; a flag's path (`--domain-corpus
    D=PATH`) by the command that reads it, as on a built-in suite: `run` before any work, while
    `status` still reports on runs whose corpus went away after they were submitted."""
    study = shutil.copytree(korean_study, tmp_path / "study") / "study.yaml"
    folders = ["--results-dir", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")]
    gone = ["--domain-corpus", f"news_comments={tmp_path / 'gone.txt'}"]
    assert main(["status", "--suite", str(study), *gone, *folders]) == 0
    assert "not started" in capsys.readouterr().out
    code = main(["run", "experiments/dapt", "--suite", str(study), "--no-wandb", *gone, *folders])
    [line] = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "gone.txt" in line, line
    # nothing built: the cache holds only the memos of file hashes and input checks
    assert not (tmp_path / "results").exists() and all(p.suffix == ".json" for p in (tmp_path / "cache").iterdir())


def test_a_flag_naming_a_domain_the_study_lacks_is_refused(korean_study, tmp_path, capsys):
    """`--domain-corpus news_coment=F` (a typo of the study's domain) added a domain no task has and
    changed nothing, exit 0; a domain of the file is replaced as on a built-in suite."""
    corpus = korean_study / "corpora" / "comments.txt"

    def dry_run(pair: str) -> int:
        return main(["reproduce", "--suite", str(korean_study / "study.yaml"), "--dry-run", "--domain-corpus", pair,
                     "--cache-dir", str(tmp_path / "cache"), "--results-dir", str(tmp_path / "results")])
    assert dry_run(f"news_coment={corpus}") == 2
    assert capsys.readouterr().err.strip() == (
        f"dontstop: error: --domain-corpus news_coment={corpus}: unknown domain 'news_coment' in study "
        "'korean-comments'; known: news_comments, wiki (a new domain goes in the study file's domain_corpora)")
    wiki = tmp_path / "wiki.txt"   # a text of its own: a copy of news_comments' is refused as one text
    wiki.write_text("위키 문서 하나\n" + corpus.read_text(encoding="utf-8"), encoding="utf-8")
    assert dry_run(f"wiki={wiki}") == 0


@pytest.mark.parametrize("flag, says", [
    # each said "dontstop: error: .../study: a folder, not a file" (the study's folder), naming no flag
    # (nothing after '=' is YAML's null: `--set base_corpus=` is no base stage, `pools.wiki=` "expected str")
    (["--set", 'base_corpus=""'], "key 'base_corpus': empty; give a corpus file, or null for no base stage"),
    (["--set", "domain_corpora.wiki=''"], "key 'domain_corpora.wiki': empty; give the domain's corpus file"),
    (["--set", "pools.wiki=''"], "key 'pools.wiki': empty; give a pool file, or leave the domain out of pools"),
    (["--set", "curated.comments=''"], "key 'curated.comments': empty; give a curated file, or leave the task out of "
                                     "curated"),
    # a folder: "{f}/corpora: a folder, not a file", naming no flag
    (["--set", "base_corpus=corpora"], "key 'base_corpus': {f}/corpora: a folder, not a file"),
    (["--domain-corpus", "wiki={f}/corpora"], "key 'domain_corpora.wiki': {f}/corpora: a folder, not a file"),
    (["--pool", "news_comments={f}/corpora"], "key 'pools.news_comments': {f}/corpora: a folder, not a file"),
    (["--curated-corpus", "comments={f}/corpora"], "key 'curated.comments': {f}/corpora: a folder, not a file"),
    (["--domain-corpus", "wiki=/dev/zero"], "key 'domain_corpora.wiki': /dev/zero: a character device, not a "
                                            "regular file; give a file"),
], ids=["set_base_corpus_quoted", "set_domain_corpus", "set_pool", "set_curated",
        "set_base_corpus_folder", "domain_corpus_folder", "pool_folder", "curated_folder", "domain_corpus_device"])
def test_an_empty_or_folder_corpus_given_by_a_flag_names_the_flag(flag, says, korean_study, tmp_path, capsys):
    folder = shutil.copytree(korean_study, tmp_path / "study")
    flag = [part.format(f=folder) for part in flag]
    assert main(["reproduce", "--suite", str(folder / "study.yaml"), "--dry-run", *flag,
                 "--cache-dir", str(tmp_path / "cache"), "--results-dir", str(tmp_path / "results")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == f"dontstop: error: {' '.join(flag)}: {says.format(f=folder)}", line
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()


def test_a_pool_flag_makes_a_studys_tasks_of_its_domain_select_and_one_of_no_tasks_domain_is_refused(
        korean_study, tmp_path, capsys):
    """A study's tasks of a domain with a pool are its selection study: `--pool news_comments=P` adds
    kNN- and RAND-TAPT on its task (and a selection setting is read); a pool of the corpus-only domain
    wiki, or a selection setting of the study without pools, was read by no stage, exit 0."""
    folder = shutil.copytree(korean_study, tmp_path / "study")
    pool = folder / "corpora" / "comments.txt"
    dry = ["reproduce", "--suite", str(folder / "study.yaml"), "--dry-run", "--cache-dir", str(tmp_path / "cache"),
           "--results-dir", str(tmp_path / "results")]
    assert main([*dry, "--pool", f"news_comments={pool}", "--set", "selection.k_scale=0.5"]) == 0
    assert "knn50-comments" in capsys.readouterr().out
    assert main([*dry, "--set", "selection.k_scale=0.5"]) == 2
    assert capsys.readouterr().err.strip() == (
        "dontstop: error: --set selection.k_scale=0.5: no task of suite korean-comments selects: kNN- and RAND-TAPT "
        "run on the tasks of a domain given a pool (pools, or --pool), and it gives none; leave it out")
    assert main([*dry, "--pool", f"wiki={pool}"]) == 2
    assert capsys.readouterr().err.strip() == (f"dontstop: error: --pool wiki={pool}: no task of suite korean-comments "
                                               "is of domain wiki, so none selects from its pool; leave it out")


@pytest.mark.parametrize("taken", ["corpora", "data", "data/my-task"])
def test_init_study_where_a_file_takes_a_folders_name_is_one_line_and_makes_nothing(taken, tmp_path, capsys):
    """A file `corpora` was "dontstop: error: .../corpora: File exists", exit 1, once data/my-task/
    had been made; a file `data` was ".../data/my-task: Not a directory"."""
    folder = tmp_path / "study"
    (folder / taken).parent.mkdir(parents=True)
    (folder / taken).write_text("x")
    before = sorted(folder.rglob("*"))
    assert main(["init-study", str(folder)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"dontstop: error: {folder / taken}: a file, not a folder (init-study makes the folder {taken}/ there); "
        "move it away, or choose another folder"]
    assert sorted(folder.rglob("*")) == before


def test_init_study_among_the_condition_folders_is_one_line_and_makes_nothing(tmp_path, capsys, monkeypatch):
    """`init-study experiments/my-study` (where the configs live) wrote a study there: a folder
    without config.yaml among the condition folders, which every later `run`, `status`,
    `reproduce` and `readmes` refused. suites/ holds suite and study files, and stays open."""
    import dontstop.runner.init_study
    from dontstop.conditions import EXPERIMENTS_DIR

    experiments = tmp_path / "experiments"
    shutil.copytree(EXPERIMENTS_DIR / "baseline", experiments / "baseline")
    (experiments / "suites").mkdir()
    monkeypatch.setattr(dontstop.runner.init_study, "EXPERIMENTS_DIR", experiments)
    for folder in (experiments / "my-study", experiments):
        assert main(["init-study", str(folder)]) == 2
        assert capsys.readouterr().err.strip().splitlines() == [
            f"dontstop: error: init-study {folder}: among the condition folders of {experiments}, where {folder} would "
            "be a folder without config.yaml, which every command refuses; give it a folder of its own"]
    assert sorted(p.name for p in experiments.iterdir()) == ["baseline", "suites"]
    assert not list((experiments / "baseline").glob("study.yaml"))
    assert main(["init-study", str(experiments / "suites" / "my-study")]) == 0


def test_a_cached_hub_id_beside_a_folder_of_its_org_is_a_hub_id(tmp_path, monkeypatch):
    """`allenai/cs_roberta_base` from the hub, in a study folder that keeps another allenai model
    in allenai/: it was taken for a mistyped folder ("allenai/cs_roberta_base: no such folder"),
    though the Hugging Face cache held it. A mistyped folder the cache does not hold still is."""
    from dontstop import models

    (tmp_path / "allenai" / "biomed_roberta_base").mkdir(parents=True)
    study = tmp_path / "study.yaml"
    study.write_text("name: s1\nextends: mini\nbase_model: allenai/cs_roberta_base\n")
    with pytest.raises(UserError, match="key 'base_model': .*allenai/cs_roberta_base: no such folder"):
        load_suite(str(study))
    monkeypatch.setattr(models, "in_local_cache", lambda hub_id: hub_id == "allenai/cs_roberta_base")
    assert load_suite(str(study)).base_model == "allenai/cs_roberta_base"


def test_init_study_writes_a_commented_study_to_fill(korean_study, tmp_path, capsys):
    folder = tmp_path / "my study"
    dry = ["reproduce", "--suite", str(folder / "study.yaml"), "--dry-run", "--cache-dir", str(tmp_path / "cache")]
    assert main(["init-study", str(folder)]) == 0
    assert f"then: cd '{folder}' && dontstop reproduce" in capsys.readouterr().out   # quoted: pasted, it ran
    text = (folder / "study.yaml").read_text()
    assert 'name: "my-study" ' in text and "# " in text and (folder / "data" / "my-task").is_dir()
    # quoted: a folder `no` (or on, null, 2024) wrote `name: no`, which its own loader read as false
    assert main(["init-study", str(tmp_path / "no")]) == 0
    assert read_yaml_mapping(tmp_path / "no" / "study.yaml")[0]["name"] == "no"
    assert main(dry) == 2   # nothing filled yet
    assert "corpora/my-domain.txt: no such file" in capsys.readouterr().err
    shutil.copy(korean_study / "corpora" / "comments.txt", folder / "corpora" / "my-domain.txt")
    for split in ("train", "dev", "test"):
        shutil.copy(korean_study / "data" / "comments" / f"{split}.jsonl", folder / "data" / "my-task")
    assert main(dry) == 0
    out = capsys.readouterr().out
    assert "skipped not_dapt (¬DAPT) on my-task: no second domain corpus" in out and "dapt-my-domain" in out
    assert main(["init-study", str(folder)]) == 2 and "study.yaml: already exists" in capsys.readouterr().err
    for name, says in (("", "--name '': empty; give the study's name, or leave --name out for the folder's"),
                       ("a/b", "--name a/b: not a folder name (its results and tables go in a folder of that name"),
                       ("mini", "--name mini: a study needs a name of its own, not a built-in suite's"),
                       ("quick", "--name quick: a study needs a name of its own, not a built-in suite's "
                                 "(paper, mini) nor quick (`--quick` runs' folder)")):
        assert main(["init-study", str(tmp_path / "other"), "--name", name]) == 2   # "": the folder's, unsaid
        assert capsys.readouterr().err.startswith(f"dontstop: error: {says}")
    assert not (tmp_path / "other").exists()
    assert main(["init-study", str(tmp_path / "Mini")]) == 2   # the folder's name: it said "--name Mini"
    assert capsys.readouterr().err.strip() == (
        "dontstop: error: Mini (the folder name): a study needs a name of its own, not a built-in suite's (paper, "
        "mini) nor quick (`--quick` runs' folder); give one with --name")
    assert not (tmp_path / "Mini").exists()
    with pytest.raises(UserError, match="key 'name': 'mini' is the built-in suite"):
        load_suite(str(shutil.copy(REPO / "experiments" / "suites" / "mini.yaml", tmp_path / "mini.yaml")))


def test_vocabulary_overlap_counts_words_the_same_way_in_every_script(tmp_path):
    from dontstop.analysis.vocab import vocab_overlap, words

    assert words("Don't stop GPT-2! 한국어 댓글은 정말 좋네요 123") == ["don", "stop", "gpt", "한국어", "댓글은", "정말", "좋네요"]
    assert words("東京タワーに行く") == ["東", "京", "タ", "ワ", "ー", "に", "行", "く"]   # unspaced scripts: per letter
    assert words("नमस्ते दुनिया, Привет мир") == ["नमस्ते", "दुनिया", "привет", "мир"]   # marks stay in their word
    corpora = {}
    for name, lines in {"a": ["정말 좋은 기사 감사합니다", "오늘 날씨 정말 좋네요"],
                        "b": ["정말 좋은 경기 감사합니다", "내일 날씨 정말 좋네요"],
                        "en": ["a good article, thanks", "nice weather today"]}.items():
        corpora[name] = tmp_path / f"{name}.txt"
        corpora[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    matrix = vocab_overlap(corpora, top=5, sample_docs=10)
    # top 5 of each: 정말 (twice), then the words tied at 1 in the order the text holds them; a and b share
    # 정말, 좋은, 감사합니다
    assert matrix.loc["a", "b"] == 60.0 and matrix.loc["a", "en"] == 0.0
