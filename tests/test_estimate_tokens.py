"""The `--dry-run` estimate counts a study's text with the study's own tokenizer (runner/token_count.py),
and says only what holds of a kNN stage before its selection (runner/selection_size.py).

At ~4 characters a token, a study in Chinese or Japanese (one token a character or more under
bert-tiny's WordPiece and roberta-base's BPE) was costed at a quarter of its steps; the mini's kNN
stages, whose neighbours overlap, at up to 1.8x theirs, as if that were an upper bound."""
import json
from pathlib import Path

import numpy as np
import pytest

from dontstop.conditions import EXPERIMENTS_DIR, load_condition
from dontstop.runner import token_count
from dontstop.runner.estimate import Estimator
from dontstop.runner.plan import plan_runs
from dontstop.runner.selection_size import knn_overlap_note
from dontstop.runner.token_count import GUESS, token_counter

HANZI = "自然语言处理是人工智能的一个分支研究计算机理解文本的方法模型数据训练"
WORDS = ("the model reads text and learns words from the data while the task asks which class each "
         "sentence takes so a network trains on labelled examples").split()


def chinese_texts(count: int, length: int) -> list[str]:
    """`count` distinct texts of `length` characters, no spaces (training drops a repeated text)."""
    return [str(i) + "".join(HANZI[(i * 7 + j) % len(HANZI)] for j in range(length - len(str(i))))
            for i in range(count)]


def english_texts(count: int, words: int) -> list[str]:
    return [f"text {i} " + " ".join(WORDS[(i + j) % len(WORDS)] for j in range(words)) for i in range(count)]


def write_jsonl(path: Path, texts: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": str(i), "text": text, "label": "ab"[i % 2]}, ensure_ascii=False) + "\n"
                            for i, text in enumerate(texts)), encoding="utf-8")


def bert_tiny_tokens(texts: list[str]) -> int:
    from transformers import AutoTokenizer

    from dontstop.models import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("bundled:bert-tiny"))
    return sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])


def test_a_chinese_study_is_counted_by_its_own_tokenizer_not_at_four_characters_a_token(mini_suite):
    texts = chinese_texts(300, 40)
    train = mini_suite.task_dir("aclsum-roles") / "train.jsonl"
    write_jsonl(train, texts)
    estimator = Estimator.for_suite(mini_suite)
    assert estimator.counter.model == "bundled:bert-tiny" and "bert-tiny's tokenizer" in estimator.counter.source
    tokens, exact = estimator.file_tokens(str(train), 128)
    assert exact and tokens == bert_tiny_tokens(texts) >= 300 * 38   # a token a character at least, not 10 a text
    stage = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "tapt"), ["aclsum-roles"])[0].stages[-1]
    stage.recipe.update(epochs=1, batch_size=1, max_length=128, pack_documents=True, heldout_documents=0)
    steps = estimator.stage_seconds(stage)[2]
    assert steps == -(-(tokens + 300) // 126)   # each text and its separator, 126 a sequence
    # without a tokenizer the guess still counts a character of a script without spaces as a token
    assert GUESS.tokens(["自然语言", "four words of english", "한국어 문장"]).tolist() == [4, 6, 6]


def test_the_guess_counts_a_token_a_character_of_every_unspaced_block_the_word_rule_knows():
    """The guess had its own list of unspaced scripts, without CJK Extension B (past U+FFFF: rare
    characters of names and Cantonese, "𠀀"), "々" or "〆": 8 such characters were guessed 2 tokens
    where bert-tiny's tokenizer counts 8. It reads data/scripts.UNSPACED_BLOCKS, the word rule's."""
    from dontstop.data.scripts import UNSPACED_BLOCKS

    texts = ["𠀀𠀁𠀂𠀃𠀄𠀅𠀆𠀇", "々〆々〆"] + ["".join(chr(low) * 4) for low, _ in UNSPACED_BLOCKS]
    assert GUESS.tokens(texts).tolist() == [8, 4] + [4] * len(UNSPACED_BLOCKS)
    assert token_counter("bundled:bert-tiny").tokens(texts[:1]).tolist() == [8]


def test_a_file_past_the_sample_is_tokenized_in_a_spread_sample_and_scaled(monkeypatch):
    """Tokenizing the mini's 8 MB cs pool whole took 2.7 s of a dry run; a spread sample of it is
    tokenized, the rest scaled by its tokens per character, its sampled texts counted exactly."""
    texts = english_texts(400, 12) + chinese_texts(400, 30)   # English first: a head alone would be wrong
    counter = token_counter("bundled:bert-tiny")
    exact = counter.tokens(texts)
    monkeypatch.setattr(token_count, "SAMPLE_CHARS", sum(map(len, texts)) // 10)
    sampled = counter.tokens(texts)
    assert sampled.sum() == pytest.approx(exact.sum(), rel=0.05) and sampled.sum() != exact.sum()
    assert np.sum(sampled == exact) >= 79   # the 79 texts tokenized; the others at the sample's rate


def test_a_plain_corpus_is_counted_at_its_heads_tokens_per_byte(tmp_path, monkeypatch):
    """A plain DAPT corpus (GBs) is not read whole: its head's tokens per byte, times its size. By
    bytes at 4 a token, UTF-8's 3-byte Chinese characters were 0.75 tokens each."""
    corpus = tmp_path / "corpus.txt"
    lines = chinese_texts(2_000, 50)
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(token_count, "HEAD_BYTES", corpus.stat().st_size // 4)
    counted = token_counter("bundled:bert-tiny").file_tokens(corpus)
    assert counted == pytest.approx(bert_tiny_tokens(lines), rel=0.05)
    assert GUESS.file_tokens(corpus) == pytest.approx(2_000 * 50, rel=0.05)   # a character a token


def test_a_tokenizer_not_on_this_machine_is_the_guess_and_the_dry_run_says_so(mini_suite, tmp_path, monkeypatch,
                                                                              capsys):
    from dontstop.runner.jobs import make_jobs
    from dontstop.runner.plan_printout import print_plan

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    counter = token_count.token_counter("someone/unseen-model")   # never downloaded for an estimate
    assert counter.model is None and "tokenizer of someone/unseen-model is not on this machine" in counter.source
    assert counter.tokens(["four words of english"]).tolist() == [6]

    plans = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "tapt"), ["aclsum-roles"])
    monkeypatch.setattr("dontstop.runner.estimate.token_counter", lambda model: counter)
    print_plan(plans, mini_suite, [], make_jobs(plans))
    assert f"  tokens {counter.source}\n" in capsys.readouterr().out


def test_a_knn_stage_before_its_selection_says_its_figure_is_no_bound_and_gives_the_one_that_holds(mini_suite,
                                                                                                     capsys):
    """The mini's 50NN, 150NN and 500NN were estimated at 23, 60 and 170 steps and ran 19, 44 and 103:
    neighbours of similar task sentences overlap. Before the selection the dry run says its figure is
    no bound and that k x queries is one; once made, the selection's corpus is counted."""
    from dontstop.runner.jobs import make_jobs
    from dontstop.runner.plan_printout import print_plan
    from dontstop.select.selection import select_corpus

    texts = english_texts(40, 8)
    write_jsonl(mini_suite.task_dir("aclsum-roles") / "train.jsonl", texts)
    write_jsonl(Path(mini_suite.data_path(mini_suite.pools["cs"])), english_texts(600, 10))
    plans = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "knn_tapt_50"), ["aclsum-roles"])
    stage = plans[0].stages[-1]
    per_query = round(stage.selection["k"] * stage.selection["k_scale"])   # 5
    note = knn_overlap_note(stage)
    assert note.startswith(f"note: its 40 queries x {per_query} neighbours select at most {40 * per_query} distinct")
    assert "not a bound" in note
    print_plan(plans, mini_suite, [], make_jobs(plans))
    assert f"    {knn_overlap_note(stage, token_counter('bundled:bert-tiny'))}\n" in capsys.readouterr().out

    record = select_corpus(texts, stage.selection["pool"], stage.selection_dir, method="knn", k=per_query,
                           embedder="bow", unit=stage.selection["unit"], query_unit=stage.selection["query_unit"])
    assert record.selected <= 40 * per_query   # the bound said holds
    assert knn_overlap_note(stage) is None     # made: its corpus is counted, exactly
    paths = Estimator.for_suite(mini_suite).stage_texts(stage, 128)[0]
    assert paths == [str(stage.selection_dir / "corpus.jsonl")]
    rand = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "rand_tapt"), ["aclsum-roles"])[0].stages[-1]
    assert knn_overlap_note(rand) is None      # RAND's figure is its expectation


def test_a_task_file_not_there_yet_is_a_guess_and_never_called_an_upper_bound(mini_suite, capsys):
    """Each example of a task not downloaded counts as one full max_length sequence. It was marked
    '<' and called an upper bound, but a TAPT text past max_length fills several sequences."""
    from dontstop.runner.jobs import make_jobs
    from dontstop.runner.plan_printout import print_plan

    import dataclasses

    (mini_suite.task_dir("aclsum-roles") / "train.jsonl").unlink()
    task = mini_suite.task_table["aclsum-roles"]   # a registry size, as the paper's tasks have
    mini_suite.task_table["aclsum-roles"] = dataclasses.replace(task, sizes=(500, 300, 500))
    plans = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "tapt"), ["aclsum-roles"], planning_only=True)
    print_plan(plans, mini_suite, [], make_jobs(plans))
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "base+tapt-aclsum-roles" in line)
    assert "steps?" in line and "tokens?" in line and "<" not in line
    assert "upper bound" not in out and "'?' above: no bound" in out


@pytest.mark.parametrize("pack_documents", [True, False])
# Chinese texts of 100 tokens: two one-document sequences of 64 each
@pytest.mark.parametrize("make_texts", [lambda: english_texts(900, 14), lambda: chinese_texts(500, 100)])
def test_a_packed_stage_is_costed_at_the_steps_the_trainer_takes_of_its_token_stream(mini_suite, tmp_path,
                                                                                      make_texts, pack_documents):
    """The trainer's sequences are its token stream (each document, then a separator) cut into
    max_length - 2 tokens and wrapped in [CLS] and [SEP]: the estimate at 4 characters a token and
    without the separators gave the mini's 500NN, its selection made, 114 steps where it ran 103.
    One document a sequence (the paper's TAPT): a document past max_length - 2 tokens fills more."""
    from transformers import AutoTokenizer

    from dontstop.models import resolve_model
    from dontstop.pretrain.sequences import DocumentSequences, PackedSequences, write_token_stream

    texts = make_texts()
    write_jsonl(mini_suite.task_dir("aclsum-roles") / "train.jsonl", texts)
    stage = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "tapt"), ["aclsum-roles"])[0].stages[-1]
    stage.recipe.update(epochs=3, batch_size=4, per_device_batch_size=4, max_length=64,
                        pack_documents=pack_documents, heldout_documents=0)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("bundled:bert-tiny"))
    write_token_stream(tokenizer, texts, tmp_path / "tokens.bin", show_progress=False)
    kind = PackedSequences if pack_documents else DocumentSequences
    sequences = len(kind(tokenizer, tmp_path / "tokens.bin", 64))
    assert Estimator.for_suite(mini_suite).stage_seconds(stage)[2] == 3 * -(-sequences // 4)
