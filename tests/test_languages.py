"""Studies in other languages than English: words in scripts without spaces (kNN-TAPT's bag of
words), one text in two Unicode forms (dedup and the leakage guard), text that is only
whitespace or invisible characters of another script, labels and task keys in any script.
"""
import json
import random
import unicodedata
from pathlib import Path


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
