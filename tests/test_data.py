"""The jsonl loader, `dontstop data check`, corpora streaming and the registry."""
import json

import pytest

from dontstop.cli import main
from dontstop.data.formats import check_task, iter_corpus, load_split, parse_split
from dontstop.fileio import UserError
from dontstop.tasks import MINI_DOMAINS, MINI_TASKS, PAPER_DOMAINS, PAPER_TASKS, data_urls, get_task


def write_lines(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def record(text, label, id_=None):
    obj = {"text": text, "label": label}
    if id_ is not None:
        obj["id"] = id_
    return json.dumps(obj)


def test_registry_holds_the_papers_facts():
    assert len(PAPER_TASKS) == 9  # 8 tasks + RCT-500
    assert {t.metric for k, t in PAPER_TASKS.items() if k in ("chemprot", "rct-20k", "rct-sample")} == {"micro_f1"}
    assert all(t.metric == "macro_f1" for k, t in PAPER_TASKS.items() if k not in ("chemprot", "rct-20k", "rct-sample"))
    assert PAPER_TASKS["chemprot"].sizes == (4169, 2427, 3469) and len(PAPER_TASKS["chemprot"].labels) == 13
    assert PAPER_TASKS["ag"].epochs == 3 and PAPER_TASKS["sciie"].epochs == 10
    assert PAPER_TASKS["rct-sample"].curated_from == "rct-20k"
    assert data_urls("imdb")["dev"].endswith("/imdb/dev.jsonl")
    assert {d: PAPER_DOMAINS[d].irrelevant for d in PAPER_DOMAINS} == {
        "news": "cs", "reviews": "biomed", "cs": "news", "biomed": "reviews"}
    assert PAPER_DOMAINS["cs"].dapt_checkpoint == "allenai/cs_roberta_base"
    for tasks, domains in ((PAPER_TASKS, PAPER_DOMAINS), (MINI_TASKS, MINI_DOMAINS)):
        for task in tasks.values():
            assert task.domain in domains
            if task.transfer:
                assert tasks[task.transfer].domain == task.domain
                assert tasks[task.transfer].transfer == task.key
    with pytest.raises(UserError, match="unknown task"):
        get_task("paper", "nope")


@pytest.mark.parametrize("line, field, message", [
    ('{"text": "a", "label": ', None, "malformed JSON"),
    ('{"label": "INHIBITOR"}', "text", "missing"),
    ('{"text": "   ", "label": "INHIBITOR"}', "text", "empty"),
    ('{"text": "a sentence"}', "label", "missing"),
    ('{"text": "a sentence", "label": "MAYBE"}', "label", "not in the label set"),
    ('["text", "label"]', None, "expected a JSON object"),
    ('{"text": "a sentence", "label": ["INHIBITOR", "SUBSTRATE"]}', "label",
     "expected one label (a string or number), got list ['INHIBITOR', 'SUBSTRATE']"),
])
def test_each_bad_line_is_one_problem_naming_file_line_and_field(tmp_path, line, field, message):
    path = write_lines(tmp_path / "train.jsonl", [record("fine", "INHIBITOR"), line])
    examples, problems = parse_split(path, PAPER_TASKS["chemprot"].labels)
    assert len(examples) == 1 and len(problems) == 1
    text = str(problems[0])
    assert text.startswith(f"{path}:2:") and message in text and "\n" not in text
    if field:
        assert f"field '{field}'" in text
    with pytest.raises(UserError, match=f"{path}:2:"):
        load_split(path, PAPER_TASKS["chemprot"].labels)


def test_duplicate_ids_and_leakage_are_reported(tmp_path):
    write_lines(tmp_path / "train.jsonl", [record("one", "true", "a"), record("Two  words", "false", "a")])
    write_lines(tmp_path / "dev.jsonl", [record("two words", "false", "d")])
    write_lines(tmp_path / "test.jsonl", [record("three", "true", "t")])
    problems = [str(p) for p in check_task(tmp_path, PAPER_TASKS["hyperpartisan_news"])]
    assert any("train.jsonl:2: field 'id': duplicate id 'a'" in p for p in problems)
    assert any("dev.jsonl:1: field 'text': also appears in train.jsonl (leakage)" in p for p in problems)
    assert len(problems) == 2


def test_data_check_cli_exit_codes(tmp_path, capsys):
    good = write_lines(tmp_path / "chemprot" / "train.jsonl", [record("x binds y", "INHIBITOR")])
    assert main(["data", "check", str(good), "--task", "chemprot"]) == 0
    bad = write_lines(tmp_path / "bad" / "train.jsonl", [record("x", "INHIBITOR"), "{oops"])
    assert main(["data", "check", str(bad), "--task", "chemprot"]) == 2   # what `run` refuses
    out = capsys.readouterr().out
    assert f"{bad}:2: malformed JSON" in out and "Traceback" not in out
    empty = write_lines(tmp_path / "corpus.txt", [])
    assert main(["data", "check", str(empty)]) == 2
    assert "empty corpus" in capsys.readouterr().out
    assert main(["data", "check", str(tmp_path / "missing.jsonl")]) == 2


def test_corpus_streaming_dedups_and_excludes(tmp_path):
    from dontstop.data.formats import text_key

    txt = write_lines(tmp_path / "a.txt", ["Doc one", "doc  ONE", "doc two", "", "held out"])
    jsonl = write_lines(tmp_path / "b.jsonl", [json.dumps({"text": "doc three"}), json.dumps({"text": "doc two"})])
    docs = list(iter_corpus([txt, jsonl], exclude={text_key("held out")}))
    assert docs == ["Doc one", "doc two", "doc three"]
    bad = write_lines(tmp_path / "c.jsonl", [json.dumps({"text": "ok"}), json.dumps({"body": "x"})])
    with pytest.raises(UserError, match=r"c.jsonl:2: field 'text'"):
        list(iter_corpus([bad]))
