"""One word in the spellings a text may hold it in (data/scripts.word_form), for the vocabulary
overlap and kNN-TAPT's bag of words (`selection.bow_tokens: scripts`): Arabic and Hebrew with and
without vowel points, tatweel, presentation forms (text copied out of a PDF), halfwidth katakana,
joiners and soft hyphens; Persian and Urdu typed on a Persian, Urdu or Arabic keyboard; and the
letters of the CJK punctuation block ("々").
"""
import json
import random
from pathlib import Path

from dontstop.analysis.vocab import vocab_overlap, words
from dontstop.select.selection import select_corpus

# Two topics of Arabic news words, bare (as most Arabic text is written) and fully vowelled (as a
# school text or scripture is): the same words.
ARABIC = {"politics": "الحكومة الوزير البرلمان الانتخابات أعلن قرر".split(),
          "sport": "المباراة الفريق اللاعب الملعب فاز سجل".split()}
VOWELLED = {"الحكومة": "الحُكُومَةُ", "الوزير": "الوَزِيرُ", "البرلمان": "البَرْلَمَانُ",
            "الانتخابات": "الاِنْتِخَابَاتُ", "أعلن": "أَعْلَنَ", "قرر": "قَرَّرَ"}


def headline(rng: random.Random, topic: str, vowelled: bool = False) -> str:
    picked = [rng.choice(ARABIC[topic]) for _ in range(5)]
    return " ".join(VOWELLED.get(word, word) if vowelled else word for word in picked)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_a_word_is_one_word_with_or_without_its_vowel_points_tatweel_or_presentation_forms():
    """Before, each spelling was a word of its own: "كَتَبَ" and "كتب", "كـتـب" with tatweel, the
    PDF glyphs "ﻛﺘﺐ", "שָׁלוֹם" and "שלום", "ｶﾞ" and "ガ"; a Persian word written with its
    zero-width non-joiner was two words, and "inter\\u00adnational" two."""
    assert words("كَتَبَ الطالبُ الدرسَ") == words("كتب الطالب الدرس") == ["كتب", "الطالب", "الدرس"]
    assert words("كـتـب الطــالب") == ["كتب", "الطالب"]
    assert words("ﻛﺘﺐ ﺍﻟﻄﺎﻟﺐ ﷲ") == ["كتب", "الطالب", "الله"]
    assert words("أحمد إلى آخر مؤتمر") == ["أحمد", "إلى", "آخر", "مؤتمر"]   # hamza and madda are letters
    assert words("שָׁלוֹם עוֹלָם") == words("שלום עולם") == ["שלום", "עולם"]
    assert words("ｶﾞｲﾄﾞ") == words("ガイド") == ["ガ", "イ", "ド"]
    assert words("می\u200cخواهم") == ["ميخواهم"]   # its Farsi yeh read as Arabic's (KEYBOARD_LETTERS)
    assert words("inter\u00adnational") == ["international"]
    assert words("الطا\u200fلب \u2067שלום\u2069") == ["الطالب", "שלום"]   # direction marks, inside a word or around it


def test_the_iteration_marks_of_japanese_are_letters_of_their_own():
    """"々" (人々), "〆" and the kana repeat marks are letters of the CJK punctuation block; as
    letters of a spaced script each was a run of one letter, no word, and went uncounted."""
    assert words("人々は時々") == ["人", "々", "は", "時", "々"]
    assert words("〆切") == ["〆", "切"]
    assert words("abc々") == ["abc", "々"]


def test_the_vocabulary_overlap_of_a_vowelled_and_a_bare_corpus_of_the_same_words_is_complete(tmp_path):
    """The same headlines, one corpus vowelled: the overlap was 50% on a study's corpora like these."""
    rng = random.Random(0)
    bare = [headline(rng, rng.choice(list(ARABIC))) for _ in range(60)]
    vowelled = [" ".join(VOWELLED.get(word, word) for word in line.split()) for line in bare]
    stretched = [line.replace("ال", "الـ") for line in bare]   # tatweel after the article
    corpora = {"bare": write_lines(tmp_path / "bare.txt", bare),
               "vowelled": write_lines(tmp_path / "vowelled.txt", vowelled),
               "stretched": write_lines(tmp_path / "stretched.txt", stretched)}
    matrix = vocab_overlap(corpora, top=10, sample_docs=60)
    assert (matrix.values == 100.0).all(), matrix


def assert_selects_politics(tmp_path, rows: list[dict], queries: list[str]) -> None:
    """kNN-TAPT with the scripts bow words selects, for politics `queries`, politics lines of the pool
    `rows` ({"text", "source"}) and no sport line."""
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    record = select_corpus(queries, pool, tmp_path / "knn", k=3, dim=8, bow_tokens="scripts")
    assert record.selected_by_source.get("sport", 0) == 0 and record.selected_by_source["politics"] > 0, \
        record.selected_by_source


def test_the_bow_embedder_selects_a_vowelled_pools_lines_for_bare_queries_of_their_topic(tmp_path):
    """A pool whose politics lines are vowelled and whose sport lines are bare: bare politics
    queries shared no word with the politics lines, and their neighbours were sport."""
    rng = random.Random(0)
    rows = [{"text": headline(rng, "politics", vowelled=True), "source": "politics"} for _ in range(40)]
    rows += [{"text": headline(rng, "sport"), "source": "sport"} for _ in range(40)]
    queries = [headline(rng, "politics") for _ in range(8)]
    assert_selects_politics(tmp_path, rows, queries)


def test_an_overlap_of_chinese_corpora_says_that_it_compares_characters(tmp_path):
    """In Chinese every letter is a word: the top lists are characters, and the overlap of two
    topics is far above what words would give; the result said "top N words" and nothing else."""
    from dontstop.analysis.vocab import measure_overlap

    rng = random.Random(0)
    weather, football = "天气晴朗下雨气温阳光", "球队比赛球员进球教练"
    corpora = {"weather": write_lines(tmp_path / "weather.txt", ["".join(rng.sample(weather, 6)) for _ in range(20)]),
               "football": write_lines(tmp_path / "football.txt", ["".join(rng.sample(football, 6)) for _ in range(20)]),
               "english": write_lines(tmp_path / "english.txt", [f"sunny weather day {i}" for i in range(20)])}
    notes = measure_overlap(corpora, top=5, sample_docs=20, seed=0).notes
    [note] = [note for note in notes if "single letters" in note]
    assert note.startswith("'weather' (100%), 'football' (100%): most words are single letters") and "english" not in note
    english_only = {"english": corpora["english"], "copy": corpora["english"]}
    assert not [note for note in measure_overlap(english_only, 2, 20, 0).notes if "single letters" in note]


# Two topics of Persian news words, each holding a yeh or a kaf, and "امروز" (today) in every line,
# which holds neither: typed on a Persian keyboard ("ی", "ک") and on an Arabic one ("ي", "ك").
PERSIAN = {"politics": "وزیر کشور سیاسی رئیس حکومت کابینه".split(),
           "sport": "بازیکن ورزشکار مربی لیگ باشگاهی تیم".split()}


def persian(rng: random.Random, topic: str, arabic_keyboard: bool = False) -> str:
    line = "امروز " + " ".join(rng.choice(PERSIAN[topic]) for _ in range(5))
    return line.replace("ی", "ي").replace("ک", "ك") if arabic_keyboard else line


def test_persian_and_urdu_typed_on_an_arabic_keyboard_are_the_same_words():
    """Which yeh, kaf and heh a Persian or Urdu text holds depends on the keyboard it was typed on:
    "کتاب" and "كتاب" were two words. Letters Arabic tells apart stay apart."""
    assert words("کتاب یک") == words("كتاب يك") == ["كتاب", "يك"]
    assert words("ﮐﺘﺎﺏ") == ["كتاب"]   # a PDF's glyphs of keheh
    assert words("کہ یہ") == words("كه يه") == ["كه", "يه"]   # Urdu's heh goal
    assert words("خانۀ خانهٔ خانە") == ["خانه"] * 3   # heh with yeh above, heh and hamza, ae
    assert words("ۃ") == words("ة")
    assert words("على") != words("علي") and words("پھر") != words("پہر") and words("ہے") == ["هے"]


def test_the_vocabulary_overlap_of_persian_typed_on_two_keyboards_is_complete(tmp_path):
    """The same Persian lines typed on a Persian and on an Arabic keyboard overlapped by 10% ("امروز" alone)."""
    rng = random.Random(0)
    lines = [persian(rng, rng.choice(list(PERSIAN))) for _ in range(60)]
    corpora = {"persian": write_lines(tmp_path / "persian.txt", lines),
               "arabic": write_lines(tmp_path / "arabic.txt", [line.replace("ی", "ي").replace("ک", "ك")
                                                               for line in lines])}
    matrix = vocab_overlap(corpora, top=10, sample_docs=60)
    assert (matrix.values == 100.0).all(), matrix


def test_the_bow_embedder_finds_lines_typed_on_another_keyboard_for_queries_of_their_topic(tmp_path):
    """A pool whose politics lines were typed on an Arabic keyboard and whose sport lines on a Persian
    one: politics queries typed on a Persian keyboard shared only "امروز" with the politics lines,
    as with the sport lines, and a sport line was among their neighbours."""
    from dontstop.select.embed import BowEmbedder

    rng = random.Random(0)
    rows = [{"text": persian(rng, "politics", arabic_keyboard=True), "source": "politics"} for _ in range(40)]
    rows += [{"text": persian(rng, "sport"), "source": "sport"} for _ in range(40)]
    queries = [persian(rng, "politics") for _ in range(8)]
    assert_selects_politics(tmp_path, rows, queries)
    embedder = BowEmbedder(dim=8, tokens="scripts").fit([row["text"] for row in rows])
    vectors = embedder.transform(queries)
    copies = embedder.transform([query.replace("ی", "ي").replace("ک", "ك") for query in queries])
    assert (vectors * copies).sum(axis=1).min() > 0.999
