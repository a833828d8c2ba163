"""The jsonl loader, `dontstop data check`, corpora streaming and the registry."""
import json
import os

import pytest

from dontstop.cli import main
from dontstop.data.formats import check_corpus, iter_corpus, label_set, load_split, parse_split
from dontstop.data.task_checks import check_task
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
    ('{"text": "a sentence", "label": " "}', "label", "empty"),
    ('{"text": "a sentence", "label": "INHIBITOR "}', "label",
     "'INHIBITOR ' has spaces at an end (a class apart from 'INHIBITOR'); remove them"),
    ('{"text": "a sentence", "label": NaN}', "label", "NaN is not a label (an empty cell?)"),
    # each was read as a good line: the last label kept, an invisible text, a class named True
    ('{"text": "a sentence", "label": "INHIBITOR", "text": "another"}', "text",
     "given twice in one object (JSON keeps the last one without a word)"),
    ('{"text": "\\u0000\\u0001\\u007f", "label": "INHIBITOR"}', "text", "empty"),
    ('{"text": "a sentence", "label": true}', "label", "expected one label (a string or number), got bool True"),
    ('{"text": "a sentence", "label": "INHIBITOR", "id": "\\udfff"}', "id", "holds a lone surrogate \\udfff"),
    # a class apart that prints as INHIBITOR: data check said 0 errors and the task had one class more
    ('{"text": "a sentence", "label": "INHIBITOR\\u200b"}', "label",
     "'INHIBITOR\\u200b' holds an invisible character (U+200B: a class apart from 'INHIBITOR'); remove it"),
    ('{"text": "a sentence", "label": "INHI\\u2060BITOR"}', "label",
     "'INHI\\u2060BITOR' holds an invisible character (U+2060: a class apart from 'INHIBITOR'); remove it"),
    ('{"text": "a sentence", "label": "\\u200b\\u200c"}', "label", "empty"),
    # a line cut short (its newline inside the string): json's words end in "at", which read "at at column"
    ('{"text": "a sentence cut sh', None, "malformed JSON (Invalid control character at column 28)"),
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


def test_a_number_label_is_one_class_however_it_is_spelled(tmp_path):
    """JSON 1 and 1.0 (a spreadsheet export mixes them) were the classes '1' and '1.0': four classes
    for two, and data check said nothing."""
    path = write_lines(tmp_path / "train.jsonl", [json.dumps({"text": f"t{i}", "label": label})
                                                  for i, label in enumerate([1, 1.0, 0, 0.0, 2.5, "1"])])
    assert [example.label for example in load_split(path)] == ["1", "1", "0", "0", "2.5", "1"]


def test_a_joiner_inside_a_label_is_spelling_not_an_invisible_character(tmp_path):
    """Persian and Indic words (and emoji) hold U+200C/U+200D inside: such a label is a label."""
    path = write_lines(tmp_path / "train.jsonl", [json.dumps({"text": "t", "label": "می\u200cخواهم"}),
                                                  json.dumps({"text": "u", "label": "क्\u200dष"})])
    assert [example.label for example in load_split(path)] == ["می\u200cخواهم", "क्\u200dष"]


def test_a_split_that_is_a_folder_or_a_link_to_itself_says_so(tmp_path):
    """Both were "file not found", beside a file that is there."""
    (tmp_path / "train.jsonl").mkdir()
    os.symlink("test.jsonl", tmp_path / "test.jsonl")
    assert [p.error_line for p in parse_split(tmp_path / "train.jsonl")[1] + parse_split(tmp_path / "test.jsonl")[1]] == [
        f"{tmp_path}/train.jsonl: a folder, not a file", f"{tmp_path}/test.jsonl: a link to nothing, or to itself"]


def test_duplicate_ids_and_leakage_are_reported(tmp_path):
    write_lines(tmp_path / "train.jsonl", [record("one", "true", "a"), record("Two  words", "false", "a")])
    write_lines(tmp_path / "dev.jsonl", [record("two words", "false", "d"), record("four", "true", "e")])
    write_lines(tmp_path / "test.jsonl", [record("three", "true", "t")])
    problems = [str(p) for p in check_task(tmp_path, PAPER_TASKS["hyperpartisan_news"])]
    assert any("train.jsonl:2: field 'id': duplicate id 'a'" in p for p in problems)
    assert any("dev.jsonl:1: field 'text': also appears in train.jsonl (leakage)" in p for p in problems)
    assert problems[-1] == (f"{tmp_path}: train/dev/test hold 2/2/1 examples, the published HyperPartisan "
                            "splits 515/65/65 (a sample, or a copy cut short?) [warning]")
    assert len(problems) == 3


def test_test_text_in_dev_and_one_text_of_two_labels_are_warnings(tmp_path):
    """Neither was said at all: part of dev copied into test (epochs chosen on test text), and two
    annotators' files joined (one text, two labels). Warnings: some datasets label a text twice."""
    write_lines(tmp_path / "train.jsonl", [record("one", "true"), record("two", "false"), record("One", "false")])
    write_lines(tmp_path / "dev.jsonl", [record("three", "true"), record("four", "false")])
    write_lines(tmp_path / "test.jsonl", [record("five", "true"), record("four", "false")])
    problems = check_task(tmp_path, PAPER_TASKS["hyperpartisan_news"])[:-1]   # [-1]: not the published sizes
    assert [(p.error_line, p.severity) for p in problems] == [
        (f"{tmp_path}/test.jsonl:2: field 'text': also appears in dev.jsonl (leakage)", "warning"),
        (f"{tmp_path}/train.jsonl:3: field 'label': 'false', but line 1 has the same text with label 'true'",
         "warning")]


def test_train_labels_differing_only_in_case_or_width_are_a_warning(tmp_path):
    """`Fresh` among `fresh`, or a full-width `ｆｒｅｓｈ`: a class of its own, trained and scored without
    a word (`data check`: 0 warnings). A warning, each variant once: some label sets are case-sensitive."""
    write_lines(tmp_path / "train.jsonl", [record("one", "fresh"), record("two", "rotten"), record("three", "Fresh"),
                                           record("four", "ｆｒｅｓｈ"), record("five", "Fresh"), record("ten", "x2"),
                                           record("eleven", "x²")])   # a superscript is no width: two labels
    write_lines(tmp_path / "dev.jsonl", [record("six", "fresh"), record("seven", "rotten")])
    write_lines(tmp_path / "test.jsonl", [record("eight", "fresh"), record("nine", "rotten")])
    assert [(p.error_line, p.severity) for p in check_task(tmp_path)] == [
        (f"{tmp_path}/train.jsonl:{line}: field 'label': {label!r} differs from 'fresh' (line 1) only in case or "
         "width: two classes (one label meant?)", "warning") for line, label in ((3, "Fresh"), (4, "ｆｒｅｓｈ"))]


def test_train_labels_differing_only_in_arabic_vowel_marks_or_tatweel_are_a_warning(tmp_path):
    """`سِيَاسَة` (vowelled, as a school text or a second annotator spells it) among `سياسة`, or `رياضـة`
    with a tatweel among `رياضة`: each a class of its own, trained and scored without a word."""
    labels = ["سياسة", "رياضة", "سِيَاسَة", "رياضـة", "سياسة", "רע", "רַע"]
    write_lines(tmp_path / "train.jsonl", [record(f"text {i}", label) for i, label in enumerate(labels)])
    write_lines(tmp_path / "dev.jsonl", [record("six", "سياسة"), record("seven", "رياضة")])
    write_lines(tmp_path / "test.jsonl", [record("eight", "سياسة"), record("nine", "رياضة")])
    assert [(p.error_line, p.severity) for p in check_task(tmp_path)] == [
        (f"{tmp_path}/train.jsonl:{line}: field 'label': {label!r} differs from {first!r} (line {first_line}) only "
         "in vowel marks or tatweel: two classes (one label meant?)", "warning")
        for line, label, first, first_line in ((3, "سِيَاسَة", "سياسة", 1), (4, "رياضـة", "رياضة", 2), (7, "רַע", "רע", 6))]


def test_a_train_label_in_halfwidth_katakana_with_voicing_marks_is_a_warning(tmp_path):
    """`ﾎﾟｼﾞ` among `ポジ`: the width fold made each halfwidth character full-width alone, leaving the
    voicing marks combining characters after their kana ("ホ\u309aシ\u3099", not "ポジ"): a third
    class, trained and scored without a word (0 warnings)."""
    write_lines(tmp_path / "train.jsonl", [record(f"text {i}", label) for i, label in enumerate(["ポジ", "ネガ", "ﾎﾟｼﾞ"])])
    write_lines(tmp_path / "dev.jsonl", [record("six", "ポジ"), record("seven", "ネガ")])
    write_lines(tmp_path / "test.jsonl", [record("eight", "ポジ"), record("nine", "ネガ")])
    assert [(p.error_line, p.severity) for p in check_task(tmp_path)] == [
        (f"{tmp_path}/train.jsonl:3: field 'label': 'ﾎﾟｼﾞ' differs from 'ポジ' (line 1) only in case or width: "
         "two classes (one label meant?)", "warning")]


def test_a_train_label_written_as_a_number_among_strings_is_a_warning(tmp_path):
    """`1` among "pos" and "neg" (a cell a spreadsheet read as a number) was a third class of one
    example, without a word; a label set of numbers alone, or "1" given both ways, says nothing."""
    lines = [json.dumps({"text": f"text {i}", "label": ["pos", "neg"][i % 2]}) for i in range(6)]
    lines[3] = json.dumps({"text": "text 3", "label": 1})
    lines[4] = json.dumps({"text": "text 4\u2028still line 5", "label": 2.5}, ensure_ascii=False)   # U+2028 within
    write_lines(tmp_path / "train.jsonl", lines)
    write_lines(tmp_path / "dev.jsonl", [record("six", "pos"), record("seven", "neg")])
    write_lines(tmp_path / "test.jsonl", [record("eight", "pos"), record("nine", "neg")])
    assert [(p.error_line, p.severity) for p in check_task(tmp_path)] == [
        (f"{tmp_path}/train.jsonl:{line}: field 'label': {label} is a number where the other labels are strings "
         "('neg', 'pos'): a class of its own of 1 example(s) (a word meant?)", "warning")
        for line, label in ((4, 1), (5, 2.5))]
    write_lines(tmp_path / "train.jsonl", [json.dumps({"text": f"t {i}", "label": i % 2}) for i in range(4)]
                + [json.dumps({"text": "t 4", "label": "1"})])
    for split in ("dev", "test"):
        write_lines(tmp_path / f"{split}.jsonl", [record(f"{split} 0", 0), record(f"{split} 1", 1)])
    assert check_task(tmp_path) == []   # 0, 1 and "1": two labels, all numbers


def test_a_train_label_of_one_example_among_frequent_ones_is_a_warning(tmp_path):
    """'fr esh' once among 12 'fresh' and 12 'rotten' (a typo) was a class of one example, trained
    and scored without a word; beside a label of fewer than LONE_LABEL_AMONG examples it says nothing."""
    from dontstop.data.task_checks import LONE_LABEL_AMONG

    rows = [record(f"text {i}", ["fresh", "rotten"][i % 2]) for i in range(2 * LONE_LABEL_AMONG + 4)]
    write_lines(tmp_path / "train.jsonl", rows[:7] + [record("text x", "fr esh")] + rows[7:])
    write_lines(tmp_path / "dev.jsonl", [record("six", "fresh"), record("seven", "rotten")])
    write_lines(tmp_path / "test.jsonl", [record("eight", "fresh"), record("nine", "rotten")])
    assert [(p.error_line, p.severity) for p in check_task(tmp_path)] == [
        (f"{tmp_path}/train.jsonl:8: field 'label': 'fr esh' labels this example alone, where every other label "
         f"has {LONE_LABEL_AMONG + 2} or more: a class of its own (a typo of 'fresh'?)", "warning")]
    write_lines(tmp_path / "train.jsonl", rows[:LONE_LABEL_AMONG + 1] + [record("text x", "fr esh")])
    assert check_task(tmp_path) == []   # 'rotten' has 5: a label set of rare classes


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
    capsys.readouterr()
    too_long = tmp_path / ("a" * 300)   # an OSError from the path given: the user's to fix, exit 2 (was 1)
    assert main(["data", "check", str(too_long)]) == 2
    assert capsys.readouterr().err.strip() == f"dontstop: error: {too_long}: File name too long"
    good_corpus = write_lines(tmp_path / "corpus2.txt", ["some text"])   # an unknown --task was ignored on it
    assert main(["data", "check", str(good_corpus), "--task", "chemprott"]) == 2
    assert capsys.readouterr().err.strip().startswith("dontstop: error: --task chemprott: unknown task; known: "
                                                      "chemprot, rct-20k")


def test_data_check_task_of_another_suite_applies_under_a_suites_tasks_folder(tmp_path, capsys):
    """ChemProt's files copied into data/mini/tasks/ and checked with `--task chemprot` were
    "--task chemprot: unknown task" (the folder's suite, mini, was searched alone), though the
    list of known tasks the flag is checked against names it."""
    split = write_lines(tmp_path / "mini" / "tasks" / "my-chem" / "train.jsonl",
                        [record("x binds y", "INHIBITOR"), record("x blocks y", "BLOCKS")])
    for path in (split, split.parent):
        assert main(["data", "check", str(path), "--task", "chemprot"]) == 2
        captured = capsys.readouterr()
        assert not captured.err, captured.err
        assert f"{split}:2: field 'label': 'BLOCKS' is not in the label set (ACTIVATOR, " in captured.out


def test_data_check_refuses_a_task_or_suite_flag_given_corpora_alone(tmp_path, capsys):
    """`data check corpus.txt --task rt-polarity` said '0 error(s)', exit 0: --task chooses the labels
    a split is checked against, and a corpus has none (nor is it checked against the task's text)."""
    corpus = write_lines(tmp_path / "corpus.txt", ["some text"])
    for flag in (["--task", "chemprot"], ["--suite", "paper"]):
        assert main(["data", "check", str(corpus), *flag]) == 2
        assert capsys.readouterr().err.strip() == (
            f"dontstop: error: {' '.join(flag)}: chooses the labels a task split is checked against, and {corpus} "
            "holds corpora or pools alone (no labels; checked against no task's text); leave it out")
    split = write_lines(tmp_path / "chemprot" / "train.jsonl", [record("x binds y", "INHIBITOR")])
    assert main(["data", "check", str(corpus), str(split), "--task", "chemprot"]) == 0   # a split among them: read


def test_corpus_streaming_dedups_and_excludes(tmp_path):
    from dontstop.data.formats import text_key

    txt = write_lines(tmp_path / "a.txt", ["Doc one", "doc  ONE", "doc two", "", "held out"])
    jsonl = write_lines(tmp_path / "b.jsonl", [json.dumps({"text": "doc three"}), json.dumps({"text": "doc two"})])
    docs = list(iter_corpus([txt, jsonl], exclude={text_key("held out")}))
    assert docs == ["Doc one", "doc two", "doc three"]
    bad = write_lines(tmp_path / "c.jsonl", [json.dumps({"text": "ok"}), json.dumps({"body": "x"})])
    with pytest.raises(UserError, match=r"c.jsonl:2: field 'text'"):
        list(iter_corpus([bad]))


def test_a_train_split_of_one_label_or_a_copied_held_out_split_is_an_error(tmp_path):
    """A classifier of one class scores 1.0; a dev or test split copied from another scores memory."""
    from dontstop.tasks import Task

    write_lines(tmp_path / "train.jsonl", [record("one", "x"), record("two", "x")])
    write_lines(tmp_path / "dev.jsonl", [record("three", "x")])
    write_lines(tmp_path / "test.jsonl", [record("three", "x")])
    assert [p.error_line for p in check_task(tmp_path) if p.severity == "error"] == [
        f"{tmp_path / 'train.jsonl'}: field 'label': every example has the label 'x'; a classifier needs two labels or more",
        f"{tmp_path / 'dev.jsonl'}: field 'text': every text also appears in test.jsonl (a copied split?); "
        "held-out scores need text the model never saw",
        f"{tmp_path / 'test.jsonl'}: field 'text': every text also appears in dev.jsonl (a copied split?); "
        "held-out scores need text the model never saw"]
    task = Task("own", "Own", "d", "macro_f1", "low")   # `dontstop finetune` reads its labels from train
    with pytest.raises(UserError, match=r"train\.jsonl: field 'label': every example has the label 'x'"):
        label_set(task, load_split(tmp_path / "train.jsonl"), tmp_path / "train.jsonl")
    write_lines(tmp_path / "train.jsonl", [record("one", "x"), record("Three ", "y")])
    write_lines(tmp_path / "dev.jsonl", [record("two", "x")])
    assert [p.error_line for p in check_task(tmp_path) if p.severity == "error"] == [
        f"{tmp_path / 'test.jsonl'}: field 'text': every text also appears in train.jsonl (a copied split?); "
        "held-out scores need text the model never saw"]


def test_a_byte_order_mark_is_read_as_utf8_and_binary_files_are_named(tmp_path):
    """Windows editors and spreadsheet exports write a UTF-8 byte-order mark: it is UTF-8. A NUL
    byte is binary data; a gzip or UTF-16 file says so."""
    split = tmp_path / "train.jsonl"
    split.write_bytes(b"\xef\xbb\xbf" + record("first", "a").encode() + b"\n")
    assert [(e.text, e.label) for e in load_split(split)] == [("first", "a")]
    pool = tmp_path / "pool.jsonl"
    pool.write_bytes(b"\xef\xbb\xbf" + json.dumps({"text": "doc"}).encode() + b"\n")
    assert check_corpus(pool) == [] and list(iter_corpus([pool])) == ["doc"]
    zeros = tmp_path / "zeros.txt"
    zeros.write_bytes(b"a document\n" + b"\x00" * 16 + b"\n")
    message = f"{zeros}:2: binary data at byte offset 11 (a NUL byte: an archive, a zero-filled copy or UTF-16?)"
    assert [p.error_line for p in check_corpus(zeros)] == [message]
    with pytest.raises(UserError) as refused:
        list(iter_corpus([zeros]))
    assert str(refused.value) == message
    archive = tmp_path / "corpus.txt"
    archive.write_bytes(b"\x1f\x8b\x08\x00")
    assert "(byte 0x8b: invalid start byte; a gzip file? decompress it first)" in check_corpus(archive)[0].message


@pytest.mark.parametrize("name", ["corpus.txt", "corpus.JSONL"])
def test_a_jsonl_corpus_not_named_jsonl_is_refused(tmp_path, name):
    """Read as text, every document would start with '{"text": ' and be pretrained on so."""
    corpus = write_lines(tmp_path / name, [json.dumps({"text": "a review"}), json.dumps({"text": "another"})])
    message = (f"{corpus}:1: a JSON object, but only a file named .jsonl is read as JSON (as text its syntax "
               "would be pretrained on); rename it to .jsonl")
    assert [p.error_line for p in check_corpus(corpus)] == [message]
    with pytest.raises(UserError, match="only a file named .jsonl is read as JSON"):
        list(iter_corpus([corpus]))
    assert list(iter_corpus([write_lines(tmp_path / "prose.txt", ["{braces} open a line", "text"])])) == [
        "{braces} open a line", "text"]


@pytest.mark.parametrize("lines", [["[", '  {"text": "a review"}', "]"], ['[{"text": "a review"}]']])
def test_a_corpus_saved_as_a_json_array_is_refused(tmp_path, lines):
    """json.dump of a list: its brackets, braces and keys were pretrained on as documents (or, on
    one line, the whole corpus was one document), whatever the file's name."""
    for name in ("corpus.json", "corpus.jsonl"):
        corpus = write_lines(tmp_path / name, lines)
        assert [p.error_line for p in check_corpus(corpus)] == [
            f"{corpus}:1: a JSON array, but a corpus is one document a line, as text or as JSON lines "
            '({"text": ...}) in a file named .jsonl (as text its syntax would be pretrained on)']
    assert list(iter_corpus([write_lines(tmp_path / "talk.txt", ["[Applause] Thank you", "text"])])) == [
        "[Applause] Thank you", "text"]


@pytest.mark.parametrize("header, kind, names", [
    ("id,text,label", "CSV", "id, text, label"), ('"Sentence","Label"', "CSV", "Sentence, Label"),
    ("text\tlabel", "TSV", "text, label"),
])
def test_a_spreadsheet_export_named_txt_is_refused_by_its_header(tmp_path, header, kind, names):
    """A CSV or TSV saved as corpus.txt was read as text: its header and every row's id, quotes and
    label were pretrained on (a .csv or .tsv name alone was refused)."""
    corpus = write_lines(tmp_path / "corpus.txt", [header, '1,"a review, with a comma",pos'])
    assert [p.error_line for p in check_corpus(corpus)] == [
        f"{corpus}:1: a {kind} header ({names}): a spreadsheet export? a corpus is text, one document a line, or "
        'JSON lines ({"text": ...}, .jsonl); as text its separators and columns would be pretrained on: export its '
        "text column"]
    with pytest.raises(UserError, match="a spreadsheet export"):
        list(iter_corpus([corpus]))
    prose = ["Text, content and sentences, in a first line of prose", "text,label", "Review, text"]
    assert list(iter_corpus([write_lines(tmp_path / "prose.txt", prose)])) == prose


def test_a_task_folder_of_csv_splits_beside_a_good_one_is_an_error_naming_the_csv(tmp_path, capsys):
    """`dontstop data check data` of a study whose one task is JSON lines and another CSV: the CSV
    task folder was skipped (no train.jsonl, no corpus suffix) and the check said 0 errors."""
    for split in ("train", "dev", "test"):
        write_lines(tmp_path / "tema" / f"{split}.jsonl", [record(f"{split} envío", 0), record(f"{split} pantalla", 1)])
        write_lines(tmp_path / "sentimiento" / f"{split}.csv", ["text,label", f"{split} genial,positivo"])
    assert main(["data", "check", str(tmp_path)]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"{tmp_path / 'sentimiento' / 'train.jsonl'}: file not found (train.csv is there: a "
                        'split is JSON lines, one {"text": ..., "label": ...} a line, named train.jsonl) [error]')
    assert lines[-1] == "checked 2 item(s): 3 error(s), 0 warning(s)"
    with pytest.raises(UserError, match=r"dev.jsonl: file not found \(dev.csv is there"):
        load_split(tmp_path / "sentimiento" / "dev.jsonl")

def test_data_check_refuses_a_folder_with_nothing_to_check_and_links_to_nothing(tmp_path, capsys):
    task = tmp_path / "comments"   # a spreadsheet export: nothing was checked, and it said "0 errors"
    write_lines(task / "comments.csv", ["text,label", "a comment,a"])
    assert main(["data", "check", str(task)]) == 2
    assert capsys.readouterr().out.splitlines() == [
        f"{task}: nothing to check in this folder: no task folder (train.jsonl), no corpus or pool (.txt, .jsonl) "
        "[error]", "checked 0 item(s): 1 error(s), 0 warning(s)"]
    (task / "comments.csv").unlink()
    for split in ("train", "dev", "test"):   # .json, not .jsonl: each split is named beside its file
        write_lines(task / f"{split}.json", [record(f"{split} text", "a"), record(f"{split} more", "b")])
    assert main(["data", "check", str(task)]) == 2
    assert capsys.readouterr().out.splitlines() == [
        f"{task / split}.jsonl: file not found ({split}.json is there: a split is JSON lines, one "
        f'{{"text": ..., "label": ...}} a line, named {split}.jsonl) [error]' for split in ("train", "dev", "test")
    ] + ["checked 1 item(s): 3 error(s), 0 warning(s)"]
    for split in ("train", "dev", "test"):
        (task / f"{split}.json").rename(task / f"{split}.jsonl")
    os.symlink("loop.txt", tmp_path / "loop.txt")   # an OSError, exit 1
    os.symlink(".", tmp_path / "again")             # the same task checked again, 40 links deep
    assert main(["data", "check", str(tmp_path)]) == 2
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path / 'loop.txt'}: not a readable file (a link to nothing, or to itself?) [error]",
        "checked 2 item(s): 1 error(s), 0 warning(s)"]


def test_data_check_of_a_study_file_is_an_error_naming_the_command_that_checks_its_data(tmp_path, capsys):
    """`dontstop data check study.yaml` read the study file as a corpus, one document a line, and
    said "0 error(s)" of a study whose data it never looked at (a corpus named .yaml too)."""
    study = write_lines(tmp_path / "study.yaml", ["name: comments-study", "extends: mini"])
    assert main(["data", "check", str(study)]) == 2
    assert capsys.readouterr().out.splitlines() == [
        f"{study}:1: a YAML file (a suite or study file?), but a corpus is text, one document a line (.txt), or "
        f'JSON lines ({{"text": ...}}, .jsonl); `dontstop reproduce --suite {study} --dry-run` checks every file '
        "a study reads [error]", "checked 1 item(s): 1 error(s), 0 warning(s)"]
