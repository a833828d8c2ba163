"""Studies in other languages than English: words in scripts without spaces (kNN-TAPT's bag of
words), one text in two Unicode forms (dedup and the leakage guard), text that is only
whitespace or invisible characters of another script, labels and task keys in any script.
"""
import json
import random
import re
import shutil
import unicodedata
from pathlib import Path

import pytest


from dontstop.data.scripts import bow_token_pattern
from dontstop.select.embed import BOW_TOKENS
from dontstop.select.selection import select_corpus
from dontstop.suites import load_suite
from korean_study import build_korean_study

# Two topics of Chinese text, written as Chinese is: without spaces between words.
TOPICS = {"weather": "今天 明天 天气 晴朗 下雨 气温 阳光 刮风 温度 寒冷 炎热 多云".split(),
          "football": "球队 比赛 球员 进球 教练 联赛 足球 射门 冠军 守门员 裁判 球迷".split()}


def chinese(rng: random.Random, topic: str, words: int = 6) -> str:
    return "".join(rng.choice(TOPICS[topic]) for _ in range(words)) + "。"


def write_pool(path: Path, rng: random.Random, per_topic: int = 40) -> Path:
    rows = [{"text": chinese(rng, topic), "source": topic} for topic in TOPICS for _ in range(per_topic)]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def test_the_bow_embedder_finds_words_in_chinese_so_knn_selects_the_tasks_topic(tmp_path):
    """With scikit-learn's default token pattern each Chinese sentence was one "word": no two
    documents shared one, and the 3 nearest pool documents of a weather sentence were as often
    about football (selected_by_source {'weather': 12, 'football': 14} here)."""
    rng = random.Random(0)
    pool = write_pool(tmp_path / "pool.jsonl", rng)
    queries = [chinese(rng, "weather") for _ in range(10)]
    record = select_corpus(queries, pool, tmp_path / "knn", k=3, dim=8, bow_tokens="scripts")
    assert record.selected_by_source.get("football", 0) <= record.selected // 10, record.selected_by_source


def test_dontstop_select_finds_the_words_of_chinese_without_being_told_and_records_them(tmp_path, capsys):
    """`dontstop select` without --bow-tokens took scikit-learn's words whatever the text: on a
    Chinese task each sentence was one word, and the neighbours of weather queries were football as
    often, exit 0 and no word. Now a note names the letter and the words of every script are used;
    English text (an emoji's variation selector is a mark in no word) and an explicit --bow-tokens
    keep their words; the record says which."""
    from dontstop.cli import main
    from dontstop.records import SelectRecord

    rng = random.Random(0)
    pool = write_pool(tmp_path / "pool.jsonl", rng)
    task = tmp_path / "task.txt"
    task.write_text("".join(chinese(rng, "weather") + "\n" for _ in range(10)), encoding="utf-8")
    select = ["select", "--task-text", str(task), "--pool", str(pool), "--k", "3", "--dim", "8"]
    assert main([*select, "--out", str(tmp_path / "auto")]) == 0
    [note] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert note.startswith(f"note: {task}: its text holds '") and "(--bow-tokens scripts)" in note, note
    record = SelectRecord.read(tmp_path / "auto" / "select_record.json")
    assert record.bow_tokens == "scripts" and record.selected_by_source.get("football", 0) <= record.selected // 10
    assert main([*select, "--out", str(tmp_path / "asked"), "--bow-tokens", "sklearn"]) == 0
    assert "note:" not in capsys.readouterr().err
    assert SelectRecord.read(tmp_path / "asked" / "select_record.json").bow_tokens == "sklearn"
    english = tmp_path / "english.txt"
    english.write_text("sunny weather today \u2764\ufe0f\nrain and wind tomorrow\n", encoding="utf-8")   # an emoji's mark
    (tmp_path / "pool.txt").write_text("sunny skies and warm weather\nthe striker scored a goal\n", encoding="utf-8")
    assert main(["select", "--task-text", str(english), "--pool", str(tmp_path / "pool.txt"), "--k", "1",
                 "--out", str(tmp_path / "english")]) == 0
    assert "note:" not in capsys.readouterr().err
    assert SelectRecord.read(tmp_path / "english" / "select_record.json").bow_tokens == "sklearn"


def test_the_bow_token_pattern_splits_every_script_and_keeps_englishs_tokens():
    import re

    from sklearn.feature_extraction.text import TfidfVectorizer

    default = TfidfVectorizer().build_analyzer()
    ours = TfidfVectorizer(token_pattern=bow_token_pattern()).build_analyzer()
    english = "Don't stop pretraining: GPT_2 in 2020, a b-c RoBERTa's 12-layer model!"
    assert ours(english) == default(english)
    assert ours("天气晴朗，球队进球。") == ["天", "气", "晴", "朗", "球", "队", "进", "球"]
    assert ours("東京タワー") == ["東", "京", "タ", "ワ", "ー"]
    assert ours("आज मौसम बहुत अच्छा") == ["आज", "मौसम", "बहुत", "अच्छा"]   # vowel signs stay in their word
    assert ours(unicodedata.normalize("NFD", "café")) == [unicodedata.normalize("NFD", "café")]
    assert ours("ภาษาไทย") == ["ภ", "า", "ษ", "า", "ไ", "ท", "ย"]   # Thai: letters, as BERT's tokenizer
    assert re.compile(bow_token_pattern())   # one pattern, pickled with the fitted embedder


def test_a_study_of_its_own_tasks_selects_with_the_words_of_every_script(tmp_path):
    from dontstop.suite_checks import SELECTION_RANGES

    study = build_korean_study(tmp_path / "study", rich=True)
    assert load_suite(str(study)).selection["bow_tokens"] == "scripts"
    assert "bow_tokens" not in load_suite("mini").selection   # the English suites keep their words
    assert SELECTION_RANGES["bow_tokens"].choices == BOW_TOKENS
    text = study.read_text(encoding="utf-8").replace("selection:\n", "selection:\n  bow_tokens: sklearn\n")
    study.write_text(text, encoding="utf-8")
    assert load_suite(str(study)).selection["bow_tokens"] == "sklearn"   # the file's word is kept


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def write_task(folder: Path, dev: list[str], labels=("좋음", "나쁨")) -> Path:
    train = [{"text": f"훈련 문장 {i}", "label": labels[i % 2]} for i in range(6)]
    write_jsonl(folder / "train.jsonl", train)
    write_jsonl(folder / "dev.jsonl", [{"text": text, "label": labels[0]} for text in dev])
    write_jsonl(folder / "test.jsonl", [{"text": "시험 문장", "label": labels[1]}])
    return folder


def test_one_text_in_two_unicode_forms_is_one_document_for_dedup_and_the_leakage_guard(tmp_path):
    """Korean saved as NFD (macOS, some editors) is every syllable split into jamo; a full-width
    copy is how Chinese and Japanese input methods type ASCII. Both were other documents: the NFD
    copy of a dev sentence was pretrained on and could be selected by kNN-TAPT."""
    from dontstop.data.formats import iter_corpus, text_key
    from dontstop.data.leakage import leakage_keys
    from dontstop.select.pool import scan_pool

    dev = ["오늘 날씨가 정말 좋네요", "Phở ở Hà Nội rất ngon"]
    task = write_task(tmp_path / "task", dev)
    assert nfd(dev[0]) != dev[0] and text_key(nfd(dev[0])) == text_key(dev[0])
    assert text_key("ＧＰＴ－２はすごい！") == text_key("GPT-2はすごい!")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join([nfd(dev[0]), nfd(dev[1]), "다른 문장", nfd("다른 문장")]) + "\n", encoding="utf-8")
    assert list(iter_corpus([corpus], exclude=leakage_keys([task]))) == ["다른 문장"]
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"text": nfd(dev[0])}, {"text": "다른 문장"}, {"text": nfd("다른 문장")}])
    scan = scan_pool(pool, [], leakage_keys([task]), "sentence")
    assert (scan.excluded_heldout, scan.duplicates, scan.lines.tolist()) == (1, 1, [2])


def test_a_tokenized_copy_of_raw_text_is_one_document_for_dedup_and_the_leakage_guard(tmp_path, monkeypatch):
    """Task datasets are often tokenized ("can not", "sentence ,"), corpora and pools are not: the
    mini benchmark's DAPT corpus held two ACL-Roles dev sentences so, and pretrained on them, and
    kNN could select six from the pool. Every text with a letter or digit is keyed by its letters,
    marks and digits alone; one without keeps its punctuation (':)' is not ':(')."""
    from dontstop.data.formats import iter_corpus, text_key
    from dontstop.data.leakage import leakage_keys
    from dontstop import stage_identity
    from dontstop.select.pool import scan_pool

    tokenized = "Since it can not translate such a simple sentence , it obviously can not translate ( 2018 ) ."
    raw = "Since it cannot translate such a simple sentence, it obviously cannot translate (2018)."
    task = write_task(tmp_path / "task", [tokenized, "Our findings are as follows :"])
    assert text_key(tokenized) == text_key(raw) and text_key("don't") == text_key("do n't")
    assert len({text_key(t) for t in (":)", ":(", "---", "a b", "1 2")}) == 5 and text_key("a b") != text_key("a c")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(f"{raw}\nOur findings are as follows:\nAnother sentence.\nANOTHER   sentence!\n", encoding="utf-8")
    assert list(iter_corpus([corpus], exclude=leakage_keys([task]))) == ["Another sentence."]
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"text": f"We try. {raw} It fails."}])
    scan = scan_pool(pool, [], leakage_keys([task]), "sentence")
    assert (scan.excluded_heldout, len(scan.lines)) == (1, 2)
    stage = {"parent": "base", "name": "dapt-cs", "kind": "dapt", "inputs": {}, "recipe": {}, "seed": 0}
    key = stage_identity.stage_key(**stage)
    monkeypatch.setattr(stage_identity, "TEXT_KEY_RULE", 1)   # the rule is in the key: a stage built
    assert stage_identity.stage_key(**stage) != key           # under the old one is built again


def test_a_label_stored_in_two_unicode_forms_is_one_label(tmp_path):
    """A label typed on macOS (NFD) in one split and elsewhere (NFC) in another was a class of its
    own: 'never occurs in train' naming a label that reads the same, or two classes in train."""
    from dontstop.data.formats import load_split
    from dontstop.data.task_checks import check_task

    task = write_task(tmp_path / "task", ["un texte"], labels=("négatif", "positif"))
    rows = [json.loads(line) for line in (task / "dev.jsonl").read_text(encoding="utf-8").splitlines()]
    write_jsonl(task / "dev.jsonl", [{**row, "label": nfd(row["label"])} for row in rows])
    assert check_task(task) == []
    assert {e.label for e in load_split(task / "dev.jsonl")} == {"négatif"}


@pytest.mark.parametrize("blank", ["\u3000\u3000", "\u00a0", "\u200b", "\ufeff\u200c", " \u200d\u2060 ", "\u200f"])
def test_text_of_only_whitespace_or_invisible_characters_is_empty(tmp_path, blank):
    """U+3000 and U+00A0 were already blank; a zero-width space, a joiner or a bidi mark alone was
    an example of no visible text, and a document of nothing in a corpus or pool."""
    from dontstop.data.formats import check_corpus, iter_corpus, parse_split

    split = write_jsonl(tmp_path / "train.jsonl", [{"text": "보이는 글", "label": "a"}, {"text": blank, "label": "b"}])
    _, problems = parse_split(split)
    assert [(p.line, p.field, p.message) for p in problems] == [(2, "text", "empty")]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(f"보이는 글\n{blank}\n", encoding="utf-8")
    assert list(iter_corpus([corpus])) == ["보이는 글"]
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"text": "보이는 글"}, {"text": blank}])
    assert [p.error_line for p in check_corpus(pool, pool=True)] == [f"{pool}:2: field 'text': empty"]
    nothing = tmp_path / "nothing.txt"
    nothing.write_text(f"{blank}\n{blank}\n", encoding="utf-8")
    assert [p.message for p in check_corpus(nothing)] == ["empty corpus (no documents)"]


def test_the_vocabulary_overlap_counts_a_word_in_two_unicode_forms_once(tmp_path):
    """A corpus saved as NFD (every Hangul syllable as jamo) had no word in common with the same
    text saved as NFC: 0% overlap where it is 100%."""
    from dontstop.analysis.vocab import vocab_overlap, words

    assert words(nfd("날씨가 좋네요 café")) == ["날씨가", "좋네요", "café"]
    assert words("ＧＰＴ－２は") == ["gpt", "は"]
    lines = ["오늘 날씨가 정말 좋네요", "Phở ở Hà Nội rất ngon", "ＧＰＴ モデル"]
    (tmp_path / "nfc.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "nfd.txt").write_text("\n".join(nfd(line.replace("ＧＰＴ", "GPT")) for line in lines) + "\n",
                                      encoding="utf-8")
    matrix = vocab_overlap({"nfc": tmp_path / "nfc.txt", "nfd": tmp_path / "nfd.txt"}, top=10, sample_docs=10)
    assert matrix.loc["nfc", "nfd"] == 100.0


# Two topics of Spanish text whose words carry accents: a pool stored decomposed (NFD) shares them
# with a task stored precomposed (NFC) only when both are compared in one form.
SPANISH_TOPICS = {"cocina": "café sartén limón jamón azúcar pastelería panadería cafetería".split(),
           "fútbol": "árbitro fútbol campeón él balón estadio delantero portería".split()}


def test_the_bow_embedder_of_every_script_reads_a_word_in_two_unicode_forms_as_one(tmp_path):
    """The vocabulary overlap read "café" in NFC and NFD as one word, the kNN bag of words of
    `bow_tokens: scripts` (which the README says counts words the same way) as two: a text and its
    NFD copy were at cosine 0.27, and an NFD pool (macOS) shared no accented word with an NFC task:
    its neighbours were the other topic's lines. Its selections are another stage; sklearn's are not."""
    from dontstop import stage_identity
    from dontstop.select.embed import BowEmbedder

    rng = random.Random(0)
    lines = {topic: [" ".join(rng.choice(words) for _ in range(5)) for _ in range(30)] for topic, words in SPANISH_TOPICS.items()}
    embedder = BowEmbedder(dim=16, tokens="scripts").fit(lines["cocina"] + lines["fútbol"])
    texts = lines["cocina"][:5] + ["ＣＡＦÉ con azúcar"]
    vectors = embedder.transform(texts)
    copies = embedder.transform([nfd(text) for text in texts[:5]] + ["café con azúcar"])
    assert (vectors * copies).sum(axis=1) == pytest.approx([1.0] * 6, abs=1e-5)
    # the kitchen stored NFD, football NFC: kitchen queries in NFC find the kitchen
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"text": nfd(line), "source": "cocina"} for line in lines["cocina"]]
                       + [{"text": line, "source": "fútbol"} for line in lines["fútbol"]])
    queries = [" ".join(rng.choice(SPANISH_TOPICS["cocina"]) for _ in range(5)) for _ in range(6)]
    record = select_corpus(queries, pool, tmp_path / "knn", k=3, dim=8, bow_tokens="scripts")
    assert record.selected_by_source.get("fútbol", 0) == 0 and record.selected_by_source["cocina"] > 0
    knn = {"method": "knn", "embedder": "bow"}
    assert stage_identity.selection_rule({**knn, "bow_tokens": "scripts"}) == stage_identity.SCRIPTS_WORDS_RULE
    assert stage_identity.selection_rule({**knn, "bow_tokens": "sklearn"}) == stage_identity.SELECTION_RULE
    assert stage_identity.selection_rule(knn) == stage_identity.SELECTION_RULE   # the built-in suites'
    assert stage_identity.selection_rule({"method": "random", "bow_tokens": "scripts"}) == stage_identity.SELECTION_RULE
    assert stage_identity.SCRIPTS_WORDS_RULE != stage_identity.SELECTION_RULE


def test_task_keys_and_study_names_in_scripts_with_vowel_signs_are_folder_names(korean_study, tmp_path, capsys):
    """Hindi and Thai write vowels as combining marks, which `\\w` is not: a study named in Hindi,
    or with a Thai task key, was refused as 'not a folder name'. They run into folders of that name."""
    import shutil

    import yaml

    from dontstop.cli import main
    from dontstop.runner.init_study import name_of

    folder = shutil.copytree(korean_study, tmp_path / "study")
    spec = yaml.safe_load((folder / "study.yaml").read_text(encoding="utf-8"))
    spec["name"], spec["tasks"] = "हिंदी-अध्ययन", {"ความเห็น": spec["tasks"]["comments"]}
    (folder / "study.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    suite = load_suite(str(folder / "study.yaml"))
    assert suite.tasks == ["ความเห็น"] and suite.name == "हिंदी-अध्ययन"
    assert main(["run", "experiments/baseline", "--suite", str(folder / "study.yaml"), "--tasks", "ความเห็น",
                 "--seeds", "0", "--no-wandb", "--results-dir", str(tmp_path / "results"),
                 "--cache-dir", str(tmp_path / "cache")]) == 0, capsys.readouterr().err
    assert (tmp_path / "results" / "हिंदी-अध्ययन" / "ความเห็น" / "baseline" / "seed_0" / "metrics.json").is_file()
    assert name_of("हिंदी अध्ययन") == "हिंदी-अध्ययन" and name_of("my study") == "my-study"


def test_a_task_key_or_folder_in_another_unicode_form_is_one_line_that_says_so(korean_study, tmp_path, capsys):
    """A Hangul task key written composed (NFC) in the study and given decomposed (NFD, as macOS
    keeps file names) to --tasks is another string: 'unknown task' alone, with the same-looking
    key listed as known, left the researcher guessing."""
    import shutil
    import unicodedata

    import yaml

    from dontstop.cli import main

    folder = shutil.copytree(korean_study, tmp_path / "study")
    spec = yaml.safe_load((folder / "study.yaml").read_text(encoding="utf-8"))
    spec["tasks"] = {"감정": spec["tasks"]["comments"]}
    (folder / "study.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    typed = unicodedata.normalize("NFD", "감정")
    assert typed != "감정"
    assert main(["run", "experiments/baseline", "--suite", str(folder / "study.yaml"), "--tasks", typed,
                 "--dry-run", "--results-dir", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert f"--tasks {typed}: unknown task {typed!r}" in line
    assert line.endswith("('감정' is the same letters in another Unicode form, NFC and NFD: typed or copied "
                         "from macOS? retype one)")
    # the task's folder copied from macOS (its name decomposed): "no such folder" beside it, and why
    spec["tasks"]["감정"]["data"] = "data/감정"
    (folder / "study.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    (folder / "data" / "comments").rename(folder / "data" / typed)
    assert main(["run", "experiments/baseline", "--suite", str(folder / "study.yaml"), "--dry-run",
                 "--results-dir", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert f"key 'tasks.감정.data': {folder / 'data' / '감정'}: no such folder ({typed!r} is there: the same " \
           "letters in another Unicode form, NFC and NFD, as macOS keeps file names; rename it or retype" in line


SPANISH = {"찬성": "El año pasado la película fue muy buena", "반대": "La canción del niño no tenía ningún sentido"}


def test_a_study_is_told_when_its_model_cannot_read_its_language(korean_study, tmp_path, capsys):
    """A study that kept the template's bundled:bert-tiny (uncased English WordPiece) trained on
    unknown tokens (Korean) or on words without their accents ('año' as 'ano'), without a word.
    Now `run` and `reproduce` say so before any work; a model of the language says nothing."""
    from dontstop.cli import main
    from dontstop.overrides import Override
    from dontstop.runner.language_fit import language_notes

    study = korean_study / "study.yaml"
    english = [Override(("base_model",), "bundled:bert-tiny", "--set base_model=bundled:bert-tiny")]
    assert language_notes(load_suite(str(study))) == []   # its own WordPiece vocabulary
    [note] = language_notes(load_suite(str(study), overrides=english))
    assert note.startswith("note: task 'comments' (its first 40 training texts), base_model bundled:bert-tiny: ")
    assert re.search(r"bert-tiny: \d+% of its tokens are unknown to the tokenizer \(\[UNK\]; first in '\S+'\): its "
                     "vocabulary does not cover this text's language or script; a model of the language as "
                     "base_model reads it$", note), note
    spanish = tmp_path / "spanish"
    shutil.copytree(korean_study, spanish)
    for split in (spanish / "data" / "comments").glob("*.jsonl"):   # the same labels, in Spanish
        rows = [json.loads(line) for line in split.read_text(encoding="utf-8").splitlines()]
        rows = [{**row, "text": f"{SPANISH[row['label']]} {split.stem} {i}"} for i, row in enumerate(rows)]
        split.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    [note] = language_notes(load_suite(str(spanish / "study.yaml"), overrides=english))
    assert note.endswith("bundled:bert-tiny: its tokenizer strips accents and marks ('año' -> 'ano'): the model "
                         "never sees them; where they matter, a model that keeps them (a cased one) as base_model "
                         "reads them")
    assert main(["run", "experiments/tapt", "--suite", str(spanish / "study.yaml"), "--set", "base_model=bundled:bert-tiny",
                 "--dry-run", "--results-dir", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert note in capsys.readouterr().out.splitlines()


def test_a_note_on_a_japanese_task_quotes_the_letter_it_means_not_the_sentence(korean_study, tmp_path):
    """Between spaces a Japanese sentence is one word: the notes quoted whole sentences ("first in
    '財布を届いた炊飯器、おすすめです。66点'", "'…おすすめです。…' -> '…おすすめてす。…'"), where
    they meant '財' and 'が'."""
    from dontstop.overrides import Override
    from dontstop.runner.language_fit import language_notes

    japanese = tmp_path / "japanese"
    shutil.copytree(korean_study, japanese)
    for split in (japanese / "data" / "comments").glob("*.jsonl"):
        rows = [json.loads(line) for line in split.read_text(encoding="utf-8").splitlines()]
        rows = [{**row, "text": f"財布が届いた、おすすめです。{i}点"} for i, row in enumerate(rows)]
        split.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    english = [Override(("base_model",), "bundled:bert-tiny", "--set base_model=bundled:bert-tiny")]
    unknown, stripped = language_notes(load_suite(str(japanese / "study.yaml"), overrides=english))
    assert re.search(r"unknown to the tokenizer \(\[UNK\]; first in '.'\)", unknown), unknown
    assert "strips accents and marks ('が' -> 'か')" in stripped, stripped
