"""Bad input is refused before any work: exit 2, one line per problem naming the file, line,
field, flag or URL, no traceback, and nothing written (no finished record, no orphan folder).

The runner's cases run `dontstop run|reproduce|status` in this process on a tiny mini-shaped
data tree (5 tasks, the corpora, pools and curated files), so a check that is missing would
start the real (quick) work and the "nothing written" assertions would catch it.
"""
import contextlib
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
from pathlib import Path

import pytest
import yaml

from dontstop.cli import build_parser, main
from dontstop.config import nested_key_lines
from dontstop.data.download import download_task
from dontstop.conditions import EXPERIMENTS_DIR
from dontstop.records import MetricsRecord
from dontstop.tasks import MINI_DOMAINS, MINI_TASKS, PAPER_TASKS
from paper_world import serve_directory

NOT_UTF8 = b'{"text": "caf\xe9 au lait", "label": "a", "id": "bad"}\n'   # latin-1 bytes


def jsonl(records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def examples(task, split, count, labels=("a", "b")):
    return [{"text": f"{task} {split} sentence number {i}", "label": labels[i % len(labels)],
             "id": f"{split}{i}"} for i in range(count)]


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """Each case runs in its own folder, so a bad input wrongly accepted writes its default
    relative outputs (paper_tables/, results/) there, where `nothing_written` sees them, and
    never into the repository."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def world(tmp_path):
    """A mini-shaped data tree in tmp_path/data and the command-line flags that point at it."""
    root = tmp_path / "data" / "mini"
    for key in MINI_TASKS:
        for split, count in (("train", 6), ("dev", 2), ("test", 2)):
            path = root / "tasks" / key / f"{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(jsonl(examples(key, split, count)))
    (root / "corpora").mkdir()
    (root / "pools").mkdir()
    (root / "curated").mkdir()
    for name in [*MINI_DOMAINS, "general"]:
        (root / "corpora" / f"{name}.txt").write_text(f"a {name} document\nanother {name} document\n")
    for domain in MINI_DOMAINS:
        (root / "pools" / f"{domain}.jsonl").write_text(jsonl({"text": f"{domain} pool {i}", "source": domain}
                                                              for i in range(3)))
    for task in ("aclsum-roles", "rt-polarity"):
        (root / "curated" / f"{task}.txt").write_text(f"more {task} text\n")
    (root / "manifest.json").write_text('{"files": {}}')   # built: `reproduce` must not build it again
    flags = ["--quick", "--no-wandb", "--workers", "1", "--data-dir", tmp_path / "data",
             "--results-dir", tmp_path / "results", "--cache-dir", tmp_path / "cache"]
    return tmp_path, root, flags


def refused(capsys, *argv, lines=1) -> list[str]:
    """Run `dontstop argv`; it must exit 2 with `lines` lines on stderr and no traceback."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == lines, err
    assert all(line.startswith("dontstop: error: ") for line in err) and "Traceback" not in "".join(err)
    return [line.removeprefix("dontstop: error: ") for line in err]


@contextlib.contextmanager
def never_blocking(seconds: int = 60):
    """A fifo opened for reading waits for a writer forever: a check that opened one fails here
    instead of hanging the test run."""
    def blocked(*_):
        raise TimeoutError(f"still running after {seconds} s: blocked reading a fifo?")
    earlier = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, earlier)


def fifo(path: Path) -> None:
    """`path` replaced by a fifo (a named pipe)."""
    path.unlink()
    os.mkfifo(path)


def nothing_written(tmp_path):
    assert not (tmp_path / "results").exists()
    assert not (tmp_path / "paper_tables").exists()              # the tables' default, relative
    assert not (tmp_path / "cache" / "mini").exists()          # no checkpoint, selection or index
    assert not [p for p in tmp_path.rglob("*") if p.name in ("metrics.json", "pretrain_record.json", "config.json")]


# --- Task files: refused when the plan is made, as `dontstop data check` refuses them -------------

def append(path, data: bytes):
    with open(path, "ab") as f:
        f.write(data)


BAD_TASK_FILES = {   # what is done to rt-polarity, and what the one line says
    "malformed line": ("train", lambda p: append(p, b'{"text": "cut short", "label": \n'), r"train\.jsonl:7: malformed JSON"),
    "empty train": ("train", lambda p: p.write_text(""), r"train\.jsonl: no examples"),
    "dev label absent from train": ("dev", lambda p: append(p, jsonl([{"text": "new", "label": "c"}]).encode()),
                                    r"dev\.jsonl:3: field 'label': 'c' never occurs in train"),
    "missing label": ("test", lambda p: append(p, b'{"text": "no label here"}\n'), r"test\.jsonl:3: field 'label': missing"),
    "text not a string": ("train", lambda p: append(p, b'{"text": 5, "label": "a"}\n'),
                          r"train\.jsonl:7: field 'text': not a string"),
    "empty text": ("dev", lambda p: append(p, b'{"text": " ", "label": "a"}\n'), r"dev\.jsonl:3: field 'text': empty"),
    "duplicate id": ("train", lambda p: append(p, jsonl([{"text": "again", "label": "a", "id": "train0"}]).encode()),
                     r"train\.jsonl:7: field 'id': duplicate id 'train0' \(first on line 1\)"),
    "not UTF-8": ("train", lambda p: append(p, NOT_UTF8),
                  r"train\.jsonl:7: not UTF-8 at byte offset \d+ \(byte 0xe9: invalid continuation byte\)"),
    # each of these trained and scored as if nothing were wrong:
    "NUL byte": ("train", lambda p: append(p, b'{"text": "a\x00b", "label": "a"}\n'),
                 r"train\.jsonl:7: binary data at byte offset \d+ \(a NUL byte"),
    "empty label": ("train", lambda p: append(p, b'{"text": "a blank cell", "label": ""}\n'),
                    r"train\.jsonl:7: field 'label': empty"),
    "label with a space at an end": ("train", lambda p: append(p, b'{"text": "padded", "label": "a "}\n'),
                                     r"train\.jsonl:7: field 'label': 'a ' has spaces at an end \(a class apart from 'a'\)"),
    "NaN label": ("dev", lambda p: append(p, b'{"text": "an empty cell", "label": NaN}\n'),
                  r"dev\.jsonl:3: field 'label': NaN is not a label"),
    "train of one label": ("train", lambda p: [(p.parent / f"{s}.jsonl").write_text(
                               jsonl(examples("rt-polarity", s, 4, labels=("a",)))) for s in ("train", "dev", "test")],
                           r"train\.jsonl: field 'label': every example has the label 'a'; a classifier needs two"),
    "test copied from train": ("test", lambda p: shutil.copy(p.parent / "train.jsonl", p),
                               r"test\.jsonl: field 'text': every text also appears in train\.jsonl \(a copied split\?\)"),
    # valid JSON: a traceback in the classifier's tokenizer once the base stage had been built
    "lone surrogate in a text": ("train", lambda p: append(p, b'{"text": "half \\ud800 a pair", "label": "a"}\n'),
                                 r"train\.jsonl:7: field 'text': holds a lone surrogate \\ud800 at character 6"),
    # json keeps the last: trained with the pasted row's label
    "key twice in a line": ("dev", lambda p: append(p, b'{"label": "a", "text": "pasted", "label": "b"}\n'),
                            r"dev\.jsonl:3: field 'label': given twice in one object"),
    # "file not found", beside the path that is there; never opened (a fifo waits for a writer)
    "fifo as a split": ("dev", fifo, r"dev\.jsonl: a fifo \(named pipe\), not a regular file; give a file"),
}


@pytest.mark.parametrize("case", BAD_TASK_FILES)
def test_a_bad_task_file_is_refused_before_the_base_stage_and_by_data_check(world, capsys, case):
    tmp_path, root, flags = world
    split, damage, message = BAD_TASK_FILES[case]
    damage(root / "tasks" / "rt-polarity" / f"{split}.jsonl")
    with never_blocking():
        [line] = refused(capsys, "run", EXPERIMENTS_DIR / "tapt", "--tasks", "rt-polarity", *flags)
    assert re.search(message, line) and line.startswith(str(root / "tasks" / "rt-polarity")), line
    nothing_written(tmp_path)   # the base stage did not train before the problem was found
    with never_blocking():
        assert main(["data", "check", str(root / "tasks" / "rt-polarity")]) == 2   # data check agrees
    assert re.search(message, capsys.readouterr().out)


def test_every_problem_is_reported_in_one_pass_with_dry_run_and_status_alike(world, capsys):
    tmp_path, root, flags = world
    append(root / "tasks" / "rt-polarity" / "train.jsonl", b"{oops\n")
    append(root / "tasks" / "bbc-topic" / "dev.jsonl", jsonl([{"text": "x", "label": "sport"}]).encode())
    (root / "corpora" / "news.txt").write_bytes(b"ok\nbad \xff byte\n")
    argv = ["reproduce", "--conditions", "baseline", "dapt", *flags]
    for extra in ([], ["--dry-run"]):
        lines = refused(capsys, *argv, *extra, lines=3)
        assert [line.split(":")[0] for line in lines] == [
            str(root / "tasks" / "rt-polarity" / "train.jsonl"), str(root / "tasks" / "bbc-topic" / "dev.jsonl"),
            str(root / "corpora" / "news.txt")]
        assert lines[2] == f"{root / 'corpora' / 'news.txt'}:2: not UTF-8 at byte offset 7 (byte 0xff: invalid start byte)"
    assert len(refused(capsys, "status", "--conditions", "baseline", "dapt", *flags, lines=3)) == 3
    nothing_written(tmp_path)


def test_only_the_planned_tasks_must_be_there(world, capsys):
    tmp_path, root, flags = world
    shutil.rmtree(root / "tasks" / "bbc-topic")   # e.g. the paper suite with only some tasks downloaded
    append(root / "tasks" / "rt-polarity" / "train.jsonl", b"{oops\n")
    [line] = refused(capsys, "run", EXPERIMENTS_DIR / "baseline", "--tasks", "rt-polarity", *flags)
    assert "rt-polarity/train.jsonl:7: malformed JSON" in line
    shutil.rmtree(root / "tasks" / "rt-polarity")
    [line] = refused(capsys, "run", EXPERIMENTS_DIR / "baseline", "--tasks", "rt-polarity", *flags)
    assert line == f"{root / 'tasks' / 'rt-polarity'}: task folder not found (build or download the data first)"
    nothing_written(tmp_path)


def test_a_task_folder_copied_over_another_is_refused_before_any_work(world, capsys):
    """Two tasks of the same files (a folder copied under another task's name) made two identical
    table rows, and the Transfer-TAPT of either was TAPT on its own text, exit 0."""
    tmp_path, root, flags = world
    shutil.rmtree(root / "tasks" / "rt-subjectivity")
    shutil.copytree(root / "tasks" / "rt-polarity", root / "tasks" / "rt-subjectivity")
    for extra in ([], ["--dry-run"]):
        [line] = refused(capsys, "reproduce", "--conditions", "baseline", *flags, *extra)
        assert line == (f"{root / 'tasks' / 'rt-subjectivity'}: the same train, dev and test files as task "
                        f"'rt-polarity' ({root / 'tasks' / 'rt-polarity'}): a copied folder? each task needs its own data")
    nothing_written(tmp_path)


def test_valid_inputs_pass_the_same_checks_and_a_later_change_is_seen(world, capsys):
    tmp_path, root, flags = world
    assert main(["reproduce", "--dry-run", *map(str, flags)]) == 0, capsys.readouterr().err
    assert "fine-tuning: " in capsys.readouterr().out
    assert (tmp_path / "cache" / "input_checks.json").exists()   # the clean verdicts, by size and mtime
    append(root / "corpora" / "cs.txt", b"\xff\n")
    [line] = refused(capsys, "reproduce", "--dry-run", *flags)
    assert line.startswith(f"{root / 'corpora' / 'cs.txt'}:3: not UTF-8 at byte offset")


def test_a_bad_task_file_is_named_before_the_mixed_data_advice(world, capsys):
    tmp_path, root, flags = world
    run_dir = tmp_path / "results" / "quick" / "mini" / "rt-polarity" / "baseline" / "seed_0"
    scores = {"accuracy": 0.5, "macro_f1": 0.5, "micro_f1": 0.5}
    MetricsRecord(suite="mini", task="rt-polarity", condition="baseline", seed=0, model="m", lineage="base",
                  metric="macro_f1", dev=scores, test=scores, dev_metric=0.5, test_metric=0.5, best_epoch=1,
                  epochs_run=1, dev_curve=[0.5], train_examples=6, wall_time_s=1.0, config={}, versions={},
                  git_commit=None, data_sha256={s: "0" * 64 for s in ("train", "dev", "test")}).write(run_dir)
    append(root / "tasks" / "rt-polarity" / "train.jsonl", b"{oops\n")
    [line] = refused(capsys, "run", EXPERIMENTS_DIR / "baseline", "--tasks", "rt-polarity", "--seeds", "1", *flags)
    assert "train.jsonl:7: malformed JSON" in line and "--allow-mixed" not in line
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["seed_0"]
    # the file fixed, the data differ from the finished run's: now that is what is said
    (root / "tasks" / "rt-polarity" / "train.jsonl").write_text(jsonl(examples("rt-polarity", "train", 7)))
    [line] = refused(capsys, "run", EXPERIMENTS_DIR / "baseline", "--tasks", "rt-polarity", "--seeds", "1", *flags)
    assert "made from different train/dev/test data" in line and "--allow-mixed" in line


# --- Corpora, pools and curated files ------------------------------------------------------------

BAD_CORPORA = {   # (condition on rt-polarity or, kNN, aclsum-roles; file under data/mini; bytes; the line)
    "domain corpus not UTF-8": ("dapt", "corpora/reviews.txt", b"fine\ncaf\xe9\n",
                                r"reviews\.txt:2: not UTF-8 at byte offset 8 \(byte 0xe9: invalid continuation byte\)"),
    "empty base corpus": ("baseline", "corpora/general.txt", b"\n\n", r"general\.txt: empty corpus \(no documents\)"),
    "empty pool": ("knn_tapt_50", "pools/cs.jsonl", b"", r"cs\.jsonl: empty corpus"),
    "pool line without text": ("rand_tapt", "pools/cs.jsonl", b'{"source": "cs"}\n',
                               r"cs\.jsonl:1: field 'text': missing"),
    "curated file not UTF-8": ("curated_tapt", "curated/rt-polarity.txt", b"\xff\xfe",
                               r"rt-polarity\.txt:1: not UTF-8 at byte offset 0 \(byte 0xff: invalid start byte; UTF-16\?"),
    # each of these was pretrained on (zeros, JSON syntax) or named only its first odd byte:
    "domain corpus of zeros": ("dapt", "corpora/reviews.txt", b"\x00" * 64 + b"\n",
                               r"reviews\.txt:1: binary data at byte offset 0 \(a NUL byte"),
    "jsonl corpus named .txt": ("dapt", "corpora/reviews.txt", b'{"text": "a review"}\n',
                                r"reviews\.txt:1: a JSON object, but only a file named \.jsonl is read as JSON"),
    "gzipped base corpus": ("baseline", "corpora/general.txt", gzip.compress(b"general text\n"),
                            r"general\.txt:1: not UTF-8 at byte offset 1 \(byte 0x8b: invalid start byte; a gzip file\?"),
    "lone surrogate in a pool": ("rand_tapt", "pools/cs.jsonl", b'{"text": "x \\udc80 y"}\n',
                                 r"cs\.jsonl:1: field 'text': holds a lone surrogate \\udc80 at character 3"),
}


@pytest.mark.parametrize("case", BAD_CORPORA)
def test_a_bad_corpus_pool_or_curated_file_is_refused_before_any_work(world, capsys, case):
    tmp_path, root, flags = world
    condition, name, data, message = BAD_CORPORA[case]
    (root / name).write_bytes(data)
    task = "aclsum-roles" if name.startswith("pools") else "rt-polarity"
    [line] = refused(capsys, "run", EXPERIMENTS_DIR / condition, "--tasks", task, *flags)
    assert re.search(message, line) and line.startswith(str(root / name)), line
    nothing_written(tmp_path)
    assert main(["data", "check", str(root / name)]) == 2
    assert re.search(message, capsys.readouterr().out)


def test_a_csv_export_given_as_a_domain_corpus_is_refused_before_any_work(world, capsys):
    """Read as text: its quotes, commas and label column were pretrained on, after a clean dry run."""
    tmp_path, root, flags = world
    table = root / "corpora" / "reviews.csv"
    table.write_text('text,label\n"a fine, long review",pos\n')
    for dry_run in ([], ["--dry-run"]):
        [line] = refused(capsys, "reproduce", "--conditions", "dapt", "--tasks", "rt-polarity",
                         "--domain-corpus", f"reviews={table}", *flags, *dry_run)
        assert line.startswith(f"{table}:1: a CSV file, but a corpus is text, one document a line (.txt)"), line
    nothing_written(tmp_path)


def test_a_folder_given_as_a_corpus_is_refused_by_a_dry_run_too(world, capsys):
    """A dry run takes a path that does not exist as data not downloaded yet; a folder is a wrong path.
    The line names the flag and key (it was `.../corpora: a folder, not a file`)."""
    tmp_path, root, flags = world
    for dry_run in ([], ["--dry-run"]):
        [line] = refused(capsys, "reproduce", "--conditions", "dapt", "--tasks", "rt-polarity",
                         "--domain-corpus", f"reviews={root / 'corpora'}", *flags, *dry_run)
        assert line == (f"--domain-corpus reviews={root / 'corpora'}: key 'domain_corpora.reviews': "
                        f"{root / 'corpora'}: a folder, not a file")
    nothing_written(tmp_path)


def test_a_fifo_or_device_given_as_a_corpus_says_so_and_is_never_read(world, capsys):
    """A fifo in a corpus's place, or /dev/zero given as one, was "input file not found" (the path
    is there); nothing opens it: a fifo opened for reading waits for a writer."""
    tmp_path, root, flags = world
    corpus = root / "corpora" / "reviews.txt"
    fifo(corpus)
    mini = EXPERIMENTS_DIR / "suites" / "mini.yaml"
    at = nested_key_lines(mini)[("domain_corpora", "reviews")]
    with never_blocking():
        for dry_run in ([], ["--dry-run"]):
            assert refused(capsys, "reproduce", "--conditions", "dapt", "--tasks", "rt-polarity", *flags,
                           *dry_run) == [f"{mini}:{at}: key 'domain_corpora.reviews': {corpus}: a fifo (named pipe), "
                                         "not a regular file; give a file"]
        assert refused(capsys, "reproduce", "--dry-run", "--conditions", "dapt", "--tasks", "rt-polarity",
                       "--domain-corpus", "reviews=/dev/zero", *flags) == [
            "--domain-corpus reviews=/dev/zero: key 'domain_corpora.reviews': /dev/zero: a character device, not a "
            "regular file; give a file"]
        assert main(["data", "check", str(corpus)]) == 2
    assert capsys.readouterr().out.splitlines()[0] == (f"{corpus}: a fifo (named pipe), not a regular file; give a "
                                                       "file [error]")
    nothing_written(tmp_path)


def test_a_corpus_path_that_does_not_exist_is_refused_by_a_dry_run_and_named_by_status(world, capsys):
    """Only data still to build or download (under --data-dir) may be missing in a dry run: a
    mistyped --domain-corpus path passed `--dry-run` without a word (nothing builds it). `status`
    names it in the stage's line instead of refusing: a corpus deleted after a Slurm submission is
    why the stage's job failed (test_slurm_launcher.py::test_slurm_failing_job_...)."""
    tmp_path, root, flags = world
    missing = tmp_path / "no" / "reviews.txt"
    study = ["--conditions", "dapt", "--tasks", "rt-polarity", "--domain-corpus", f"reviews={missing}", *flags]
    for command in (["reproduce", "--dry-run"], ["reproduce"]):
        [line] = refused(capsys, *command, *study)
        assert line == (f"{missing}: input file not found (a path given outside the data folder: by the study "
                        "file, --set, --domain-corpus, --pool or --curated-corpus)")   # no download makes it
    assert main(["status", *map(str, study)]) == 0
    [stage] = [line for line in capsys.readouterr().out.splitlines() if "dapt-reviews" in line]
    assert stage.endswith(f"not started; input missing: {missing}"), stage
    nothing_written(tmp_path)


def test_a_data_dir_under_a_file_is_one_line(tmp_path, capsys):
    """The mini benchmark is built into --data-dir when missing: a file on its path was an OSError, exit 1."""
    (tmp_path / "file").write_text("")
    [line] = refused(capsys, "reproduce", "--quick", "--dry-run", "--data-dir", tmp_path / "file" / "data",
                     "--results-dir", tmp_path / "results", "--cache-dir", tmp_path / "cache")
    assert line == f"{tmp_path / 'file' / 'data'}: not a writable directory ({tmp_path / 'file'} is a file)"


def test_status_of_a_results_or_cache_folder_under_a_file_is_one_line_and_of_none_says_so(world, capsys):
    """`status` only reads: a file given as --results-dir read as an empty folder (every job "not
    started", exit 0), and so did a mistyped folder, without a word; a forgotten --cache-dir (the
    runs finished, every stage built in another cache) showed each stage `not started`."""
    tmp_path, _, flags = world
    (tmp_path / "file").write_text("")
    for flag in ("--results-dir", "--cache-dir"):
        where = tmp_path / "file" / "sub"
        [line] = refused(capsys, "status", "--conditions", "baseline", *flags, flag, where)   # the last one counts
        assert line.startswith(str(where)) and line.endswith(f": not a directory ({tmp_path / 'file'} is a file)")
    assert main(["status", "--conditions", "baseline", *map(str, flags)]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-2:] == [
        f"note: no results folder {tmp_path / 'results' / 'quick' / 'mini'}: nothing has run there yet (or "
        "another --results-dir was meant)",
        f"note: no stage folder {tmp_path / 'cache' / 'mini' / 'checkpoints'}: no stage was built there yet (or "
        "another --cache-dir was meant)"]
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("command", [["run", EXPERIMENTS_DIR / "baseline"], ["run", EXPERIMENTS_DIR / "baseline", "--dry-run"],
                                     ["reproduce", "--conditions", "baseline", "--dry-run"]])
@pytest.mark.parametrize("flag", ["--results-dir", "--cache-dir"])
def test_a_results_or_cache_folder_that_is_a_file_is_one_line_in_a_run_and_its_dry_run(command, flag, world, capsys):
    """A --cache-dir that was a file (or lay under one) was `cf: File exists` (`Not a directory`), exit 1,
    in every run and dry run (the input checks write their memo into the cache first); a --results-dir
    that was a file passed a dry run, which the run then refused."""
    tmp_path, _, flags = world
    for where in (tmp_path / "file", tmp_path / "file" / "sub"):
        (tmp_path / "file").write_text("")
        [line] = refused(capsys, *command, *flags, flag, where)   # the last one counts
        assert line.startswith(str(where)) and line.endswith(f": not a writable directory ({tmp_path / 'file'} is a file)")
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()   # --quick: <root>/quick


def test_a_results_or_cache_folder_given_one_level_too_deep_is_refused(world, capsys):
    """`--results-dir results/mini`, the suite's own folder: `run` wrote its runs to
    results/mini/mini/ without a word, `aggregate` said "no metrics.json found" beside them and
    `status` showed every job not started. A new folder of the suite's name is a root like any other."""
    tmp_path, _, flags = world
    suite = tmp_path / "results" / "mini"
    (suite / "rt-polarity").mkdir(parents=True)
    (tmp_path / "cache" / "mini" / "checkpoints").mkdir(parents=True)
    says = (f"--results-dir {suite}: the folder of suite mini itself (it holds rt-polarity); give the folder above "
            f"it, {tmp_path / 'results'} (--results-dir is the root of <suite>/...)")
    for quick in ([], ["--quick"]):   # --quick: <results>/quick/mini/
        given = [*flags[1:], *quick, "--results-dir", suite]   # the last one counts
        assert refused(capsys, "run", EXPERIMENTS_DIR / "baseline", "--tasks", "rt-polarity", "--dry-run", *given) == [says]
        assert refused(capsys, "status", *given) == [says]
        assert refused(capsys, "aggregate", *quick, "--results-dir", suite, "--tables-dir", tmp_path / "tables") == [says]
    assert refused(capsys, "reproduce", "--dry-run", *flags, "--cache-dir", tmp_path / "cache" / "mini") == [
        f"--cache-dir {tmp_path / 'cache' / 'mini'}: the folder of suite mini itself (it holds checkpoints); give "
        f"the folder above it, {tmp_path / 'cache'} (--cache-dir is the root of <suite>/...)"]
    assert sorted(p.name for p in (tmp_path / "results").rglob("*")) == ["mini", "rt-polarity"]
    assert not (tmp_path / "tables").exists()
    assert main(["status", "--conditions", "baseline", *map(str, flags), "--results-dir", str(tmp_path / "new" / "mini")]) == 0


def test_a_data_folder_given_one_level_too_deep_is_refused(world, capsys):
    """`--data-dir data/mini`, the suite's own data folder, was read as data/mini/mini/: `finetune`
    and `analyze` said its tasks or corpora "not found", `run` and `data build-mini` built the
    mini benchmark again in there, `data download --data-dir data/paper` fetched into data/paper/paper/."""
    tmp_path, root, _ = world
    says = (f"--data-dir {root}: the folder of suite mini itself (it holds tasks); give the folder above it, "
            f"{tmp_path / 'data'} (--data-dir is the root of <suite>/...)")
    before = set(tmp_path.rglob("*"))
    for argv in (["finetune", "--suite", "mini", "--task", "rt-polarity", "--model", "bundled:bert-tiny", "--out",
                  tmp_path / "run", "--no-wandb"],
                 ["analyze", "vocab", "--out", tmp_path / "analysis"],
                 ["run", EXPERIMENTS_DIR / "baseline", "--results-dir", tmp_path / "results"],
                 ["status"], ["data", "build-mini"]):
        assert refused(capsys, *argv, "--data-dir", root) == [says], argv
    paper = tmp_path / "data" / "paper"
    (paper / "tasks").mkdir(parents=True)
    assert refused(capsys, "data", "download", "chemprot", "--data-dir", paper, "--data-url", "http://127.0.0.1:9") == [
        says.replace(str(root), str(paper)).replace("suite mini", "suite paper")]
    assert set(tmp_path.rglob("*")) == before | {paper, paper / "tasks"}   # nothing written


def test_a_dry_run_builds_no_data_and_says_what_it_cannot_cost(tmp_path, capsys):
    """A dry run writes nothing: with the mini benchmark missing (a mistyped --data-dir) it built the
    benchmark there, then crashed costing the runs of tasks not built yet; now it says both."""
    flags = ["--data-dir", tmp_path / "data", "--results-dir", tmp_path / "results", "--cache-dir", tmp_path / "cache"]
    assert main(["reproduce", "--quick", "--dry-run", *map(str, flags)]) == 0
    out = capsys.readouterr().out
    assert f"mini benchmark data missing in {tmp_path / 'data' / 'mini'}: the run builds it first" in out
    assert re.search(r"fine-tuning: \d+ run\(s\) to do, 0 finished; cost unknown: .*train.jsonl not found", out)
    assert "without the costs marked unknown" in out
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("flag", ["--results-dir", "--cache-dir", "--tables-dir"])
def test_reproduce_refuses_a_folder_it_cannot_write_before_building_the_mini_benchmark(flag, tmp_path, monkeypatch,
                                                                                      capsys):
    """`reproduce` built the missing mini benchmark (minutes) before it checked the folders it writes:
    a --cache-dir that is a file was refused only then. The builder stands in here: a bad folder is
    refused without it, good ones reach it."""
    import dontstop.data.mini
    from dontstop.fileio import UserError

    built = []

    def build_mini(data_dir, seed=0):
        built.append(data_dir)
        raise UserError("the benchmark would be built now")

    monkeypatch.setattr(dontstop.data.mini, "build_mini", build_mini)
    folders = {name: tmp_path / name.removeprefix("--") for name in ("--results-dir", "--cache-dir", "--tables-dir")}
    argv = ["reproduce", "--quick", "--no-wandb", "--data-dir", tmp_path / "data",
            *[str(part) for pair in folders.items() for part in pair]]
    assert refused(capsys, *argv) == ["the benchmark would be built now"] and built == [tmp_path / "data"]
    folders[flag].write_text("a file, not a folder\n")
    [line] = refused(capsys, *argv)
    assert str(folders[flag]) in line and "benchmark" not in line, line
    assert built == [tmp_path / "data"] and not (tmp_path / "data").exists()


def test_a_dry_run_refuses_a_model_the_run_would_refuse(world, capsys):
    """The models a plan starts from are checked by a dry run as by the run (offline: in the cache)."""
    tmp_path, _, flags = world
    for dry_run in ([], ["--dry-run"]):
        [line] = refused(capsys, "run", EXPERIMENTS_DIR / "tapt", "--tasks", "rt-polarity",
                         "--set", "base_model=roberta-large", *flags, *dry_run)
        assert line.startswith("roberta-large: not in the local cache and offline"), line
    nothing_written(tmp_path)


@pytest.mark.parametrize("condition, beside, why", [
    ("baseline", None, "a copy cut short?"), ("tapt", None, "a copy cut short?"),
    # transformers 5 loads no TensorFlow or Flax weights: it said "a copy cut short?" of a whole TF checkpoint
    ("baseline", "tf_model.h5", "tf_model.h5 is TensorFlow or Flax weights, which transformers 5 does not load")])
def test_a_model_folder_without_weights_is_refused_before_any_work(condition, beside, why, world, capsys):
    """A local model folder of config.json alone (a copy cut short) passed every check and the dry run;
    the run started its workers, and the first job to load it failed."""
    import shutil

    from dontstop.models import bundled_model_dir

    tmp_path, _, flags = world
    model = tmp_path / "my-model"
    model.mkdir()
    shutil.copy(bundled_model_dir("bert-tiny") / "config.json", model)
    if beside:
        (model / beside).write_bytes(b"\x89HDF\r\n")
    for dry_run in (["--dry-run"], []):
        [line] = refused(capsys, "run", EXPERIMENTS_DIR / condition, "--tasks", "rt-polarity",
                         "--set", f"base_model={model}", "--set", "base_corpus=null", *flags, *dry_run)
        assert line == (f"{model}: a model folder without weights (no *.safetensors or *.bin beside its config.json: "
                        f"{why}); give a whole checkpoint")
    shutil.rmtree(model)   # its config.json is the one nothing_written would see
    nothing_written(tmp_path)


SHARDS = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")


def sharded_model(folder: Path, index: str = "model.safetensors.index.json", shards=SHARDS) -> Path:
    """A model folder as save_pretrained writes a large model: its config, shards and their index."""
    from dontstop.models import bundled_model_dir

    folder.mkdir(parents=True)
    shutil.copy(bundled_model_dir("bert-tiny") / "config.json", folder)
    weight_map = {f"layer.{i}.weight": shard for i, shard in enumerate(shards)}
    (folder / index).write_text(json.dumps({"metadata": {"total_size": 8}, "weight_map": weight_map}))
    for shard in shards:
        (folder / shard).write_bytes(b"")
    return folder


def test_sharded_weights_and_a_snapshots_links_to_them_are_weights(tmp_path):
    """What the check above must not refuse: a large model's shards beside their index (safetensors
    or bin), a hub cache's snapshot folder, whose files are links to its blobs, and a snapshot whose
    safetensors blob is gone beside a whole pytorch_model.bin (which transformers loads then)."""
    from dontstop.runner.job_checks import _check_weights

    snapshot = tmp_path / "snapshots" / "abc123"
    for folder in (snapshot, tmp_path / "blobs"):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    (tmp_path / "blobs" / "f00d").write_bytes(b"")
    (snapshot / "model.safetensors").symlink_to(tmp_path / "blobs" / "f00d")
    bins = ("pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin")
    for folder in (sharded_model(tmp_path / "sharded"), snapshot,
                   sharded_model(tmp_path / "bins", "pytorch_model.bin.index.json", bins)):
        _check_weights(str(folder))
    (snapshot / "pytorch_model.bin").symlink_to(tmp_path / "blobs" / "f00d")
    (snapshot / "model.safetensors").unlink()
    (snapshot / "model.safetensors").symlink_to(tmp_path / "blobs" / "gone")
    _check_weights(str(snapshot))


@pytest.mark.parametrize("damage, why", [
    # each passed every check and the dry run; the first job to load it failed, after the runner started
    ("shard", "a sharded model whose shard model-00002-of-00002.safetensors is missing "
              "(model.safetensors.index.json names 2 shard files; a copy cut short?)"),
    ("shard link", "a sharded model whose shard model-00002-of-00002.safetensors is a link to a missing file "
                   "(model.safetensors.index.json names 2 shard files; a copy cut short?)"),
    ("index", "model.safetensors.index.json is not a weights index (its weight_map of tensor -> shard file: "
              "key 'weight_map')"),
    ("blob", "model.safetensors is a link to a missing file (../../blobs/f00d: a hub cache's snapshot whose blob "
             "is gone?)"),
    ("shards", "a sharded model whose shard model-00001-of-00002.safetensors is missing "
               "(model.safetensors.index.json names 2 shard files; a copy cut short?)")])
def test_a_model_folder_missing_a_shard_or_a_blob_is_refused_before_any_work(world, capsys, damage, why):
    tmp_path, _, flags = world
    model = sharded_model(tmp_path / "models" / "snapshots" / "abc123")
    if damage in ("shard", "shard link"):
        (model / SHARDS[1]).unlink()
    if damage == "shard link":
        (model / SHARDS[1]).symlink_to(tmp_path / "gone.safetensors")
    if damage == "index":
        (model / "model.safetensors.index.json").write_text('{"metadata": {}}')
    if damage == "blob":   # a hub snapshot, its blob deleted
        for shard in (*SHARDS, "model.safetensors.index.json"):
            (model / shard).unlink()
        (model / "model.safetensors").symlink_to("../../blobs/f00d")
    if damage == "shards":   # the index alone was a folder "without weights", which it is not
        for shard in SHARDS:
            (model / shard).unlink()
    for dry_run in (["--dry-run"], []):
        [line] = refused(capsys, "run", EXPERIMENTS_DIR / "baseline", "--tasks", "rt-polarity",
                         "--set", f"base_model={model}", "--set", "base_corpus=null", *flags, *dry_run)
        assert line == f"{model}: {why}; give a whole checkpoint"
    shutil.rmtree(tmp_path / "models")   # its config.json is the one nothing_written would see
    nothing_written(tmp_path)


def test_a_hub_id_whose_cached_copy_lacks_a_blob_is_refused_offline_before_any_work(world, capsys, monkeypatch):
    """Offline, a hub id whose snapshot in the cache holds config.json but links to a weights blob that is
    gone (a cache cleaned by hand) was "in the cache" for every check, then failed the first job to load it."""
    from huggingface_hub import constants

    tmp_path, _, flags = world
    cache = tmp_path / "hf"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    repo = cache / "models--my-org--tiny"
    snapshot = sharded_model(repo / "snapshots" / "abc123", shards=())
    (snapshot / "model.safetensors.index.json").unlink()
    (snapshot / "model.safetensors").symlink_to("../../blobs/f00d")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    for dry_run in (["--dry-run"], []):
        [line] = refused(capsys, "run", EXPERIMENTS_DIR / "baseline", "--tasks", "rt-polarity",
                         "--set", "base_model=my-org/tiny", "--set", "base_corpus=null", *flags, *dry_run)
        assert line == (f"my-org/tiny: its copy in the Hugging Face cache ({snapshot}) is not whole: model.safetensors "
                        "is a link to a missing file (../../blobs/f00d: a hub cache's snapshot whose blob is gone?); "
                        "fetch it again where there is network: hf download my-org/tiny")
    shutil.rmtree(cache)
    nothing_written(tmp_path)


# --- Flags of run / reproduce --------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--domain-corpus", "reveiws=X"], "--domain-corpus reveiws=X: key 'domain_corpora': unknown domain 'reveiws' "
                                       "in suite 'mini'; known: cs, reviews, news"),
    (["--pool", "nwes=X"], "--pool nwes=X: key 'pools': unknown domain 'nwes' in suite 'mini'; known: cs, reviews, news"),
    (["--curated-corpus", "rt-polarty=X"], "--curated-corpus rt-polarty=X: key 'curated': unknown task 'rt-polarty' "
                                           "in suite 'mini'; known: aclsum-roles, aclsum-sections, rt-polarity"),
    # ¬DAPT was DAPT: the claim that it is worse compared a corpus with itself
    (["--domain-corpus", "news=data/mini/corpora/reviews.txt"],
     "--domain-corpus news=data/mini/corpora/reviews.txt: key 'domain_corpora.news': "),
    # a path without its .yaml: studies/mine.yaml was read (and a folder's namesake file)
    (["--suite", "studies/mine"], "--suite studies/mine: no suite file; give a suite's name (mini, paper) or the path"),
    # the folder `init-study` made: "unknown suite; known: mini, paper or a path to a suite YAML"
    (["--suite", "made"], "--suite made: a folder; give its study file, made/study.yaml"),
    (["--seeds", "-1"], "--seeds -1: must be in [0, 4294967296)"),
    (["--seeds", "0", "0"], "--seeds 0 0: seed 0 given twice (each seed is one run)"),
    # a list flag given again kept its last values alone: the first seed was dropped without a word
    (["--seeds", "0", "--seeds", "0"], "--seeds 0 0: seed 0 given twice (each seed is one run)"),
    (["--workers", "0"], "--workers 0: must be >= 1"),
    # planned (and its cost counted) twice:
    (["--tasks", "rt-polarity", "rt-polarity"], "--tasks rt-polarity rt-polarity: task rt-polarity given twice"),
    # 0 was a ZeroDivisionError in the dry run's estimate, a negative rate a cost of -7001.2 min
    (["--set", "estimate_tokens_per_s=0"], "--set estimate_tokens_per_s=0: key 'estimate_tokens_per_s': 0; must be > 0"),
    # the base stage (many minutes on a real model) was built before the first fine-tuning run said so
    (["--set", "finetune.device=cuda:63"], "fine-tuning recipe: key 'device': 'cuda:63', but torch sees "),
    # taken as k = 1: 50NN, 150NN, 500NN and RAND one selection under four names
    (["--set", "selection.k_scale=0.001", "--conditions", "knn_tapt_50"],
     "suite mini: selection.k_scale 0.001: stage knn50-aclsum-roles would select 50 x 0.001 = 0.05 neighbours per "
     "query, under 1; give at least 0.02"),
])
def test_bad_run_flags_are_one_line_naming_the_flag(world, capsys, argv, message):
    tmp_path, _, flags = world
    for study in ("made", "mini"):   # study folders in the working folder; `mini` is still the built-in suite
        (tmp_path / study).mkdir()
        (tmp_path / study / "study.yaml").write_text(f"name: {study}-study\nextends: mini\n")
    [line] = refused(capsys, "reproduce", "--conditions", "baseline", *flags, *argv)
    assert line.startswith(message), line
    nothing_written(tmp_path)


def test_reproduce_of_conditions_skipped_on_every_chosen_task_is_refused_before_any_work(world, capsys):
    """`--conditions curated_tapt` on a task without a curated pool: `reproduce` ran no job, then the
    domain analysis (a model scored on every corpus, its files written), then failed: "no metrics.json
    found; run `dontstop run ...` first" (`run` refused it at once)."""
    tmp_path, _, flags = world
    for dry_run in ([], ["--dry-run"]):
        assert refused(capsys, "reproduce", "--conditions", "curated_tapt", "--tasks", "bbc-topic", *flags,
                       *dry_run) == ["--conditions curated_tapt: no condition applies to the chosen tasks "
                                     "(curated_tapt: no curated pool)"]   # it said "(each is skipped, above)": a
    nothing_written(tmp_path)                                              # built-in suite's tasks print no such line
    own = tmp_path / "own"   # the default conditions, --conditions not given: it said "--conditions : no ..."
    shutil.copytree(EXPERIMENTS_DIR / "baseline", own / "baseline")
    config = own / "baseline" / "config.yaml"
    config.write_text(config.read_text().replace("applies_to: all", "applies_to: curated"))
    assert refused(capsys, "reproduce", "--experiments-dir", own, "--tasks", "bbc-topic", *flags, "--dry-run") == [
        "no condition applies to the chosen tasks (baseline: no curated pool)"]
    assert refused(capsys, "run", EXPERIMENTS_DIR / "curated_tapt", "--tasks", "bbc-topic", *flags) == [
        "no condition applies to the chosen tasks (curated_tapt: no curated pool)"]   # it did not say why
    nothing_written(tmp_path)


@pytest.mark.parametrize("argv, dest, values", [
    (["reproduce", "--tasks", "a", "--tasks", "b"], "tasks", ["a", "b"]),
    (["status", "--conditions", "dapt", "--conditions", "tapt"], "conditions", ["dapt", "tapt"]),
    (["run", "experiments/dapt", "--seeds", "0", "--seeds", "1"], "seeds", [0, 1]),
    (["pretrain", "--model", "m", "--out", "o", "--corpus", "a.txt", "--corpus", "b.txt"], "corpus", ["a.txt", "b.txt"]),
    # only the last folder's dev/test text was held out: the first task's was pretrained on, or selected
    (["pretrain", "--model", "m", "--out", "o", "--corpus", "c.txt", "--exclude-dev-test-of", "A",
      "--exclude-dev-test-of", "B"], "exclude_dev_test_of", ["A", "B"]),
    (["select", "--task-text", "t", "--pool", "p", "--out", "o", "--exclude-dev-test-of", "A",
      "--exclude-from", "B"], "exclude_dev_test_of", ["A", "B"]),
    (["analyze", "mlm-loss", "--models", "base=x", "--models", "dapt=y"], "models", ["base=x", "dapt=y"]),
])
def test_a_list_flag_given_twice_keeps_the_values_of_both(argv, dest, values):
    """argparse's `nargs="+"` kept the last one's values alone, without a word."""
    assert getattr(build_parser().parse_args(argv), dest) == values


@pytest.mark.parametrize("argv, message", [   # what each did with the empty value, the working folder
    (["finetune", "--task", "rt-polarity", "--suite", "mini", "--model", "bundled:bert-tiny", "--out", ""],
     "finetune: --out '': an empty path (an unset shell variable?); give a file or folder"),   # its run, here
    (["select", "--task-text", "t.txt", "--pool", "p.txt", "--out", ""],
     "select: --out '': an empty path (an unset shell variable?); give a file or folder"),     # its corpus, here
    (["analyze", "vocab", "a.txt", "b.txt", "--out", ""],   # its tables, here
     "analyze vocab: --out '': an empty path (an unset shell variable?); give a file or folder, or leave the flag out"),
    (["init-study", " "], "init-study: folder ' ': an empty path (an unset shell variable?); give a file or folder"),
    (["pretrain", "--model", "bundled:bert-tiny", "--out", "o", "--corpus", "a.txt", ""],   # ".: a folder, not a file"
     "pretrain: --corpus '': an empty path (an unset shell variable?); give a file or folder"),
    (["data", "check", ""], "data check: paths '': an empty path (an unset shell variable?); give a file or folder"),
    (["status", "--results-dir", ""],   # the default results folder, without a word
     "status: --results-dir '': an empty path (an unset shell variable?); give a file or folder, or leave the flag out"),
    (["reproduce", "--suite", "", "--dry-run"],   # `--suite : a folder; give its study file, study.yaml`
     "reproduce: --suite '': an empty path (an unset shell variable?); give a file or folder, or leave the flag out"),
    (["aggregate", "--overlap", ""],   # the default overlap file, without a word
     "aggregate: --overlap '': an empty path (an unset shell variable?); give a file or folder, or leave the flag out"),
])
def test_an_empty_path_flag_is_one_line_and_nothing_is_written(tmp_path, capsys, argv, message):
    """`--out "$OUT"` with OUT unset: `finetune`, `select` and `analyze` wrote their files into the
    working folder, `init-study` its study; every path flag of every command now refuses it."""
    with pytest.raises(SystemExit) as exit:   # refused as argparse refuses a flag: before the command runs
        main(argv)
    [line] = capsys.readouterr().err.strip().splitlines()
    assert exit.value.code == 2 and line.startswith(f"dontstop: error: {message}"), line
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv, message", [   # what each did: a folder of that name, named over two lines
    (["reproduce", "--dry-run", "--results-dir", "res\nults"],
     "reproduce: --results-dir 'res\\nults': holds a line break (a pasted command, a file's last newline?); give "
     "the path on one line"),
    (["init-study", "my-study\n"], "init-study: folder 'my-study\\n': holds a line break"),
    (["status", "--suite", "study.yaml\r\n"], "status: --suite 'study.yaml\\r\\n': holds a line break"),
    (["reproduce", "--dry-run", "--domain-corpus", "cs=cs.txt\n"],   # named over two lines, twice
     "reproduce: --domain-corpus 'cs=cs.txt\\n': holds a line break"),
])
def test_a_path_flag_holding_a_line_break_is_one_line_and_nothing_is_written(tmp_path, capsys, argv, message):
    """`--results-dir "$(cat where.txt)"` keeps no newline, but a path pasted over two lines, or read with
    `read -d ''`, does: it was a folder of that name (`init-study` made one), and every line naming it
    was two lines."""
    with pytest.raises(SystemExit) as exit:
        main(argv)
    [line] = capsys.readouterr().err.strip().splitlines()
    assert exit.value.code == 2 and line.startswith(f"dontstop: error: {message}"), line
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv, message", [
    (["run", "--workers", "abc"], "run: argument --workers: invalid int value: 'abc' ('dontstop run --help' lists"),
    (["analyze", "vocab", "--top", "0"], "analyze vocab: argument --top: 0: must be at least 1"),
    (["finetune", "--task", "rt-polarity"], "finetune: the following arguments are required: --suite, --model, --out"),
    (["reproduce", "--conditoins", "dapt"], "reproduce: unrecognized arguments: --conditoins dapt"),
    (["reprodcue"], "argument command: invalid choice: 'reprodcue' (choose from"),
    # accepted, where every other command refuses a seed numpy and torch cannot take
    (["data", "build-mini", "--seed", "-1"], "data build-mini: argument --seed: -1: must be in [0, 4294967296)"),
    (["analyze", "mlm-loss", "--seed", "-1"], "analyze mlm-loss: argument --seed: -1: must be in [0, 4294967296)"),
    # given with no folder: the selection's leakage guard was off, without a word
    (["select", "--task-text", "t", "--pool", "p", "--out", "o", "--exclude-dev-test-of"],
     "select: argument --exclude-dev-test-of: expected at least one argument"),
])
def test_a_flag_argparse_refuses_is_one_line_naming_the_command(tmp_path, capsys, argv, message):
    """argparse printed its whole usage block (up to 20 lines) above its error line."""
    with pytest.raises(SystemExit) as exit:
        main(argv)
    [line] = capsys.readouterr().err.strip().splitlines()
    assert exit.value.code == 2 and line.startswith(f"dontstop: error: {message}"), line
    assert not list(tmp_path.iterdir())


def test_a_training_cut_of_one_label_is_refused_by_run_and_finetune_before_any_work(world, capsys):
    """`--set finetune.max_train_examples=1`: the whole train split has two labels, the one example
    trained on has one; a one-class classifier was trained and its metrics written, exit 0."""
    tmp_path, root, flags = world
    train = root / "tasks" / "rt-polarity" / "train.jsonl"
    says = (f"{train}: field 'label': the first 1 example(s), all that finetune.max_train_examples trains on, "
            "have the label 'a' alone; a classifier needs two labels or more")
    for command in (["reproduce", "--dry-run"], ["reproduce"]):
        assert refused(capsys, *command, "--conditions", "baseline", "--tasks", "rt-polarity", *flags,
                       "--set", "quick.finetune.max_train_examples=1") == [says]
    assert refused(capsys, "finetune", "--task", "rt-polarity", "--suite", "mini", "--model", "bundled:bert-tiny",
                   "--data-dir", tmp_path / "data", "--max-train-examples", "1", "--out", tmp_path / "run",
                   "--no-wandb") == [says]
    nothing_written(tmp_path)
    assert not (tmp_path / "run").exists()


# --- Suite YAML: the recipe ranges, with file:line and key ---------------------------------------

SUITE_EDITS = {   # (section path, key, value, what the one line says after "file:line: ")
    "recipe batch_size 0": (("recipes", "base"), "batch_size", 0, "recipes.base: key 'batch_size': 0; must be in [1, 65536]"),
    "quick max_steps 0": (("quick", "base"), "max_steps", 0, "quick.base: key 'max_steps': 0; must be >= 1"),
    "negative fine-tuning lr": (("finetune",), "lr", -0.1, "finetune: key 'lr': -0.1; must be > 0"),
    "negative fine-tuning epochs": (("finetune",), "epochs", -2, "finetune: key 'epochs': -2; must be >= 1"),
    "batch not a multiple": (("recipes", "dapt"), "per_device_batch_size", 12,
                             "recipes.dapt: key 'batch_size': 32; must be a multiple of per_device_batch_size 12"),
    # no token masked: TAPT trained nothing at loss 0 and was saved and fine-tuned as TAPT, exit 0
    "mask_prob that masks nothing": (("recipes", "tapt"), "mask_prob", 1e-9, "recipes.tapt: key 'mask_prob': "
                                     "1e-09; masks under one token a step of batch_size x max_length (32 x 128)"),
}

ACROSS_FIELDS = {"batch not a multiple", "mask_prob that masks nothing"}   # their line: the section's


def edited_suite(path: Path, edits) -> Path:
    """A study file extending mini whose sections carry the edits (merged over mini's)."""
    suite = {"name": "edited", "extends": "mini"}
    for sections, key, value, _ in edits:
        section = suite
        for name in sections:
            section = section.setdefault(name, {})
        section[key] = value
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


@pytest.mark.parametrize("case", SUITE_EDITS)
def test_a_suite_value_out_of_range_is_one_line_with_file_line_and_key(world, capsys, case):
    tmp_path, _, flags = world
    suite = edited_suite(tmp_path / "suite.yaml", [SUITE_EDITS[case]])
    [line] = refused(capsys, "reproduce", "--suite", suite, *flags)
    where, _, what = line.partition(": ")
    assert where.startswith(f"{suite}:") and what.startswith(SUITE_EDITS[case][3]), line
    line_no = int(where.rsplit(":", 1)[1])
    assert suite.read_text().splitlines()[line_no - 1].strip().startswith(
        SUITE_EDITS[case][1] if case not in ACROSS_FIELDS else SUITE_EDITS[case][0][-1]), line
    nothing_written(tmp_path)


def test_every_suite_problem_is_listed_at_once(world, capsys):
    tmp_path, _, flags = world
    edits = [edit for case, edit in SUITE_EDITS.items() if case not in ACROSS_FIELDS]   # checked once a recipe passes its own
    lines = refused(capsys, "status", "--suite", edited_suite(tmp_path / "suite.yaml", edits), *flags, lines=4)
    assert sorted(line.split(": ", 1)[1] for line in lines) == sorted(edit[3] for edit in edits)


# --- dontstop pretrain and dontstop finetune flags -----------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "--steps 0: must be >= 1"),
    (["--batch-size", "0"], "--batch-size 0: must be in [1, 65536]"),
    (["--per-device-batch-size", "0"], "--per-device-batch-size 0: must be in [1, 65536]"),
    (["--seed", "-1"], "--seed -1: must be in [0, 4294967296)"),
    (["--lr", "0"], "--lr 0.0: must be > 0"),
    (["--max-length", "4"], "--max-length 4: must be >= 8"),
    # ".: not a model directory (no config.json)", naming no flag; "corpus file not found" beside the folder
    (["--model", ""], "--model '': empty; give bundled:<name>, a checkpoint folder or a hub id"),
    (["--corpus", "{root}/tasks/rt-polarity"], "{root}/tasks/rt-polarity: a folder, not a file"),
    # read once (its second copy all duplicates): a typo for another corpus pretrained on the first alone
    (["--corpus", "{root}/corpora/cs.txt"], "--corpus {root}/corpora/cs.txt: given twice; name each corpus once"),
    (["--corpus", "{root}/pools/../corpora/cs.txt"], "--corpus {root}/pools/../corpora/cs.txt: given twice (the file "
                                                     "of {root}/corpora/cs.txt); name each corpus once"),
])
def test_bad_pretrain_flags_are_one_line_before_anything_is_written(world, capsys, argv, message):
    tmp_path, root, _ = world
    out = tmp_path / "ckpt"
    base = ["pretrain", "--model", "bundled:bert-tiny", "--corpus", root / "corpora" / "cs.txt", "--out", out,
            "--steps", "2", "--batch-size", "4", "--per-device-batch-size", "4", "--no-wandb"]
    argv, message = [a.format(root=root) for a in argv], message.format(root=root)
    assert refused(capsys, *base, *argv) == [message]
    assert not out.exists()


@pytest.mark.parametrize("argv", [
    ["pretrain", "--model", "ckpts/dapt-cs", "--corpus", "corpus.txt", "--out", "out", "--steps", "1", "--no-wandb"],
    ["finetune", "--model", "ckpts/dapt-cs", "--suite", "mini", "--task", "rt-polarity", "--out", "out", "--no-wandb"],
    ["analyze", "mlm-loss", "--models", "base=bundled:bert-tiny", "dapt=ckpts/dapt-cs", "--corpora", "cs=corpus.txt",
     "--out", "out"],
], ids=["pretrain", "finetune", "analyze"])
def test_a_mistyped_checkpoint_folder_beside_its_folder_is_not_taken_for_a_hub_id(world, capsys, monkeypatch, argv):
    """`--model ckpts/dapt-cs` mistyped, beside ckpts/: it was looked up as a hub id of org "ckpts",
    `not in the local cache and offline ...; fetch it where there is network: hf download ckpts/dapt-cs`
    (online: a hub lookup). A hub id the cache holds is one, a folder of its org's name beside it or not."""
    from dontstop import models

    tmp_path = world[0]   # the working folder: its data/mini/ is finetune's default data
    monkeypatch.setattr(models, "in_local_cache", lambda hub_id: hub_id == "allenai/cs_roberta_base")
    (tmp_path / "ckpts" / "dapt-cs-0123abcd").mkdir(parents=True)
    (tmp_path / "allenai").mkdir()
    (tmp_path / "corpus.txt").write_text("one document\nanother document\n")
    assert refused(capsys, *argv) == ["ckpts/dapt-cs: no such folder (ckpts/ is a folder here, and no hub id "
                                      "ckpts/dapt-cs is in the cache)"]
    assert not (tmp_path / "out").exists()
    assert models.resolve_model("allenai/cs_roberta_base") == "allenai/cs_roberta_base"


@pytest.mark.parametrize("argv", [
    ["pretrain", "--model", "bundled:bert-tiny", "--corpus", "corpus.txt", "--steps", "1", "--no-wandb"],
    ["finetune", "--model", "bundled:bert-tiny", "--suite", "mini", "--task", "rt-polarity", "--no-wandb"],
    ["select", "--task-text", "corpus.txt", "--pool", "corpus.txt"],
    ["analyze", "vocab", "corpus.txt", "corpus2.txt"],
], ids=["pretrain", "finetune", "select", "analyze"])
def test_an_out_folder_among_the_condition_folders_is_refused(tmp_path, capsys, monkeypatch, argv):
    """`--out experiments/dapt-cs`: a folder without config.yaml among the condition folders,
    which every later `run`, `status` and `reproduce` refused (a condition's own folder is fine)."""
    import dontstop.conditions

    experiments = tmp_path / "experiments"
    shutil.copytree(EXPERIMENTS_DIR / "baseline", experiments / "baseline")
    monkeypatch.setattr(dontstop.conditions, "EXPERIMENTS_DIR", experiments)
    for name in ("corpus.txt", "corpus2.txt"):
        (tmp_path / name).write_text("one document\nanother document\n")
    out = experiments / "dapt-cs"
    assert refused(capsys, *argv, "--out", out) == [
        f"--out {out}: among the condition folders of {experiments}, where {out} would be a folder without "
        "config.yaml, which every command refuses; give it a folder of its own"]
    assert sorted(p.name for p in experiments.iterdir()) == ["baseline"]


def test_pretrain_refuses_a_corpus_that_is_not_utf8_before_training(world, capsys):
    tmp_path, root, _ = world
    corpus = root / "corpora" / "cs.txt"
    corpus.write_bytes(b"one document\nna\xefve\n")
    [line] = refused(capsys, "pretrain", "--model", "bundled:bert-tiny", "--corpus", corpus, "--out", tmp_path / "ckpt",
                     "--steps", "2", "--batch-size", "4", "--per-device-batch-size", "4", "--no-wandb")
    assert line == f"{corpus}:2: not UTF-8 at byte offset 15 (byte 0xef: invalid continuation byte)"
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize("argv, message", [
    (["--seed", "-1"], "--seed -1: must be in [0, 4294967296)"),
    (["--epochs", "0"], "--epochs 0: must be >= 1"),
    (["--lr", "-1"], "--lr -1.0: must be > 0"),
    (["--batch-size", "0"], "--batch-size 0: must be in [1, 65536]"),
    # recorded as given, and tabled so: a run from the base model as TAPT, a condition of "../../x"
    (["--model", "{checkpoint}", "--lineage", "base+tapt-rt-polarity"],
     "--lineage 'base+tapt-rt-polarity': --model {checkpoint} is a checkpoint of lineage 'base'"),
    (["--condition", "../../x"], "--condition '../../x': not a folder name (letters, digits, '.', '-', '_')"),
    (["--lineage", ""], "--lineage '': empty"),
    (["--model", ""], "--model '': empty; give bundled:<name>, a checkpoint folder or a hub id"),   # ".: not a model"
    (["--out", "{notes}"], "--out {notes}: holds a config.json no run wrote, which the run's would replace; "
                              "choose another --out"),
])
def test_bad_finetune_flags_are_one_line_and_leave_no_run_folder(world, capsys, argv, message):
    from conftest import pretrain_record
    from dontstop.models import bundled_model_dir

    tmp_path, _, _ = world
    checkpoint = tmp_path / "cache" / "mini" / "checkpoints" / "base-0123abcd"   # a base stage of ours
    shutil.copytree(bundled_model_dir("bert-tiny"), checkpoint)
    pretrain_record().write(checkpoint)
    notes = tmp_path / "notes"   # a folder of one's own, its config.json replaced by the run's
    (notes / "config.json").parent.mkdir()
    (notes / "config.json").write_text('{"my": "settings"}')
    argv = [a.format(checkpoint=checkpoint, notes=notes) for a in argv]
    message = message.format(checkpoint=checkpoint, notes=notes)
    out = tmp_path / "adhoc" / "seed_-1"
    assert refused(capsys, "finetune", "--suite", "mini", "--task", "rt-polarity", "--model", "bundled:bert-tiny",
                   "--out", out, "--data-dir", tmp_path / "data", "--no-wandb", *argv) == [message]
    assert not (tmp_path / "adhoc").exists()


# --- Downloads are what they claim ---------------------------------------------------------------

GOOD = {split: jsonl({"text": f"{split} article {i}", "label": ["false", "true"][i % 2], "id": f"{split}{i}"}
                     for i in range(4)) for split in ("train", "dev", "test")}
HYPERPARTISAN = PAPER_TASKS["hyperpartisan_news"]


def mirror(root: Path, files: dict[str, str]) -> Path:
    for split, text in files.items():
        path = root / HYPERPARTISAN.key / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_mirror_serving_a_malformed_task_file_replaces_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = {**GOOD, "dev": GOOD["dev"] + '{"text": "x", "label": "MAYBE"}\n'}
    with serve_directory(mirror(tmp_path / "bad", bad)) as url:
        [line] = refused(capsys, "data", "download", HYPERPARTISAN.key, "--data-url", url)
    assert line == (f"{url}/{HYPERPARTISAN.key}/dev.jsonl:5: field 'label': 'MAYBE' is not in the label set "
                    "(false, true); nothing was replaced")
    assert not [p for p in tmp_path.joinpath("data").rglob("*") if p.is_file()]   # no file, no .part


def test_data_and_select_commands_refuse_an_output_under_a_file_or_an_empty_task_text_in_one_line(
        tmp_path, capsys):
    """`data build-mini --data-dir` under a file was "Not a directory", exit 1, and `--readme` there
    failed after the whole build; `data download` fetched before it found it could not write; an
    empty `select --task-text` was a line that did not name it."""
    file = tmp_path / "file"
    file.write_text("")
    under = f"{file}: not a writable directory ({file} is a file)"
    assert refused(capsys, "data", "build-mini", "--data-dir", file / "data") == [
        f"{file / 'data'}: not a writable directory ({file} is a file)"]
    assert refused(capsys, "data", "build-mini", "--data-dir", tmp_path / "data", "--readme", file / "README.md") == [under]
    assert refused(capsys, "data", "build-mini", "--data-dir", tmp_path / "data", "--readme", tmp_path) == [
        f"--readme {tmp_path}: a folder; give the path of the file to write"]   # after the build: a temp file, exit 1
    assert not (tmp_path / "data").exists()
    # nothing listens on the mirror's port: the folder is refused before any download is tried
    assert refused(capsys, "data", "download", HYPERPARTISAN.key, "--data-dir", file,
                   "--data-url", "http://127.0.0.1:9") == [under]
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"text": "a pool document"}\n')
    assert refused(capsys, "select", "--task-text", file, "--pool", pool, "--out", tmp_path / "selection",
                   "--method", "knn", "--k", "5") == [f"{file}: no task text to select for (no documents)"]
    assert not (tmp_path / "selection").exists()


def test_a_malformed_copy_on_disk_is_replaced_by_a_good_mirror(tmp_path):
    dest = tmp_path / "data"
    dest.mkdir()   # what the command used to keep from a mirror serving a malformed train split
    malformed = {**GOOD, "train": GOOD["train"].replace('"true"', '"TRUE"')}
    for split, text in malformed.items():
        (dest / f"{split}.jsonl").write_text(text)
    (dest / "manifest.json").write_text(json.dumps({split: {
        "url": "http://old-mirror", "sha256": hashlib.sha256(text.encode()).hexdigest(), "bytes": len(text)}
        for split, text in malformed.items()}))
    with serve_directory(mirror(tmp_path / "good", GOOD)) as url:
        manifest = download_task(HYPERPARTISAN, dest, base=url, progress=False)
    assert {split: (dest / f"{split}.jsonl").read_text() for split in GOOD} == GOOD
    assert manifest["train"]["url"] == f"{url}/{HYPERPARTISAN.key}/train.jsonl"


def test_a_file_whose_checksum_differs_from_the_manifest_is_fetched_again(tmp_path):
    dest = tmp_path / "data"
    with serve_directory(mirror(tmp_path / "good", GOOD)) as url:
        download_task(HYPERPARTISAN, dest, base=url, progress=False)
        (dest / "test.jsonl").write_text(GOOD["test"][:-20])    # damaged on disk since
        manifest = download_task(HYPERPARTISAN, dest, base=url, progress=False)
    assert (dest / "test.jsonl").read_text() == GOOD["test"]
    assert manifest["test"]["bytes"] == len(GOOD["test"]) and not list(dest.glob("*.part"))
