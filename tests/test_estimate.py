"""The `--dry-run` cost estimate (runner/estimate.py) counts what the runs will read: the
examples a fine-tuning recipe trains on, cut at its max_length, and a kNN stage's k as the
runner selects it (the suite's k_scale). Before, the mini suite's fine-tuning was estimated at
7.9 h (every one of 500 examples, 3x the pretraining cost per token) for runs that took 37 min.

These tests count text at ~CHARS_PER_TOKEN characters a token (the counter without a tokenizer),
so that a file's tokens follow from its characters; test_estimate_tokens.py tests the counting by
a study's own tokenizer."""
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dontstop.conditions import EXPERIMENTS_DIR, load_condition
from dontstop.runner.estimate import FORWARD_SPEEDUP, Estimator, classifier_cost_share
from dontstop.runner.selection_size import whole_pool
from dontstop.runner.text_size import document_sequences, expected_longest
from dontstop.runner.token_count import CHARS_PER_TOKEN, GUESS
from dontstop.runner.plan import plan_runs


@pytest.fixture(autouse=True)
def counted_by_characters(monkeypatch):
    monkeypatch.setattr("dontstop.runner.estimate.token_counter", lambda model: GUESS)


def write_split(path, examples: int, chars: int) -> None:
    """`examples` texts of `chars` characters, none twice (training drops a repeated text)."""
    path.write_text("".join(json.dumps({"id": str(i), "text": f"{i:05d}" + "x" * (chars - 5), "label": "ab"[i % 2]})
                            + "\n" for i in range(examples)))


def test_fine_tuning_counts_the_examples_trained_on_each_cut_at_max_length(mini_suite):
    splits = mini_suite.task_dir("rt-polarity")
    for split, examples in (("train", 500), ("dev", 300), ("test", 500)):
        write_split(splits / f"{split}.jsonl", examples, chars=400)
    plan = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "baseline"), ["rt-polarity"])[0]
    estimator = Estimator.for_suite(mini_suite)
    # the text's 100 tokens and its [CLS] and [SEP]; its line's key, id and label are no text
    per_example = 400 / CHARS_PER_TOKEN + 2
    assert estimator.split_tokens(splits / "train.jsonl", 512) == (pytest.approx(500 * per_example), True)
    assert estimator.split_tokens(splits / "train.jsonl", 64, 200) == (200 * 64, True)   # cut, and capped
    # each example cut on its own: one of 30 tokens and one of 130, at 64, are 32 + 64, not 2 x 64
    splits.joinpath("train.jsonl").write_text("".join(json.dumps({"id": str(i), "text": "x" * size, "label": "a"})
                                                      + "\n" for i, size in enumerate((120, 520))))
    assert estimator.split_tokens(splits / "train.jsonl", 64) == (32 + 64, True)
    write_split(splits / "train.jsonl", 500, chars=400)

    mini_suite.finetune.update(max_length=64, max_train_examples=200, epochs=15)
    seconds, exact = estimator.finetune_seconds(plan)
    rate = estimator.pretrain.value / estimator.finetune_share   # BERT-tiny's classifier tokens/s
    assert estimator.finetune_share == pytest.approx(0.4006, abs=1e-4)
    assert exact and seconds == pytest.approx((15 * (200 * 64 + 300 * 64 / FORWARD_SPEEDUP)
                                               + 500 * 64 / FORWARD_SPEEDUP) / rate)
    mini_suite.finetune["max_train_examples"] = 100
    assert estimator.finetune_seconds(plan)[0] < seconds


def test_a_classifier_token_costs_the_masked_lm_steps_share_without_its_head():
    """The guess before any run priced a fine-tuning token as a masked-LM one: for BERT-tiny, whose
    vocabulary projection (128 x 30522, on the 15% masked tokens) outweighs its 2 layers, that put
    the mini study's fine-tuning at 88.2 min, where its 185 runs took 25.7 min (all epochs
    counted, the guess is now 35.3 min; early stopping is the rest)."""
    def shape(hidden, layers, inner, vocabulary):
        return SimpleNamespace(hidden_size=hidden, num_hidden_layers=layers, intermediate_size=inner,
                               vocab_size=vocabulary)
    encoder = 2 * (4 * 128**2 + 2 * 128 * 512)                 # per token: 393,216 multiply-adds
    head = 0.15 * (128**2 + 128 * 30522)                        # 588,480 on average
    assert classifier_cost_share(shape(128, 2, 512, 30522), 0.15) == pytest.approx(encoder / (encoder + head))
    assert classifier_cost_share(shape(768, 12, 3072, 50265), 0.15) == pytest.approx(0.935, abs=1e-3)
    assert classifier_cost_share(shape(768, 12, 3072, 50265), 0.3) < 0.935   # more masked tokens
    assert classifier_cost_share(SimpleNamespace(dim=768, n_layers=6), 0.15) is None   # fields unknown


@pytest.mark.parametrize("pack_documents", [True, False])
def test_a_knn_stage_counts_k_as_the_runner_selects_it(mini_suite, pack_documents):
    queries = mini_suite.task_dir("aclsum-roles") / "train.jsonl"
    write_split(queries, 100, chars=40)
    pool = Path(mini_suite.data_path(mini_suite.pools["cs"]))
    write_split(pool, 20_000, chars=40)   # larger than any selection here: the pool does not cap it
    stage = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "knn_tapt_50"), ["aclsum-roles"])[0].stages[-1]
    estimator = Estimator.for_suite(mini_suite)
    stage.recipe["pack_documents"] = pack_documents
    tokens = {}
    for k_scale in (1.0, 0.1):
        stage.selection["k_scale"] = k_scale
        tokens[k_scale] = estimator.stage_seconds(stage)[1]
    assert tokens[0.1] < tokens[1.0] / 5   # 5 documents a task text instead of 50


def test_a_selection_stage_counts_the_candidates_its_queries_draw_then_the_corpus_it_made(mini_suite):
    """k x queries of query-sized text put the mini's 50NN, 150NN, 500NN and RAND stages at 24, 72,
    240 and 24 steps where they ran 19, 44, 103 and 23: queries draw some candidates alike, and a
    candidate is a pool sentence. The distinct draws expected are RAND's; kNN's are an estimate."""
    from dontstop.select.selection import select_corpus

    queries = mini_suite.task_dir("aclsum-roles") / "train.jsonl"
    write_split(queries, 100, chars=40)
    pool = Path(mini_suite.data_path(mini_suite.pools["cs"]))
    write_split(pool, 2_000, chars=80)   # 2,000 candidates of 20 tokens, one sentence each
    stage = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "rand_tapt"), ["aclsum-roles"])[0].stages[-1]
    stage.selection["k_scale"] = 0.2   # 10 per query
    stage.recipe.update(epochs=1, batch_size=1, max_length=128, pack_documents=True, heldout_documents=0)
    estimator = Estimator.for_suite(mini_suite)
    paths, drawn, exact = estimator.stage_texts(stage, 128)
    expected = 2_000 * (1 - (1 - 10 / 2_000) ** 100)   # 788.5, where 100 x 10 = 1,000
    assert paths == [str(queries)] and len(drawn) == round(expected) and set(drawn) == {20} and exact

    texts = [json.loads(line)["text"] for line in queries.read_text().splitlines()]
    record = select_corpus(texts, pool, stage.selection_dir, method="random", k=10, seed=3)
    assert record.selected == pytest.approx(expected, rel=0.05)
    made, drawn, exact = estimator.stage_texts(stage, 128)   # once made, the selection's own corpus
    assert made == [str(stage.selection_dir / "corpus.jsonl")] and len(drawn) == 0 and exact
    # its texts' tokens and a separator after each, 126 a step (128 less [CLS] and [SEP])
    steps = math.ceil((100 * 11 + record.selected * 21) / 126)
    assert estimator.stage_seconds(stage)[1:] == (steps * 128, steps, True)


def test_a_selection_counts_its_queries_not_the_sequences_they_fill(mini_suite):
    """A query longer than max_length (`selection.query_unit: text`, a long task text) is one query
    of the selection, but filled 3 sequences of 128 tokens: Q was taken as 300 where 100 query."""
    write_split(mini_suite.task_dir("aclsum-roles") / "train.jsonl", 100, chars=1_200)   # 300 tokens a text
    write_split(Path(mini_suite.data_path(mini_suite.pools["cs"])), 2_000, chars=80)
    stage = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "rand_tapt"), ["aclsum-roles"])[0].stages[-1]
    stage.selection.update(k_scale=0.2, query_unit="text")   # 10 per query
    drawn = Estimator.for_suite(mini_suite).stage_texts(stage, 128)[1]
    assert len(drawn) == round(2_000 * (1 - (1 - 10 / 2_000) ** 100))   # 788, not 1,554


def test_a_pool_past_the_sample_is_counted_from_its_head_scaled_by_its_bytes(tmp_path, monkeypatch):
    """A paper-size pool (GBs) is not read for an estimate: its first POOL_SAMPLE_BYTES are."""
    from dontstop.runner import selection_size

    pool = tmp_path / "pool.jsonl"
    write_split(pool, 2_000, chars=80)   # ~110 bytes a line, one candidate each
    monkeypatch.setattr(selection_size, "POOL_SAMPLE_BYTES", 11_000)   # ~100 lines
    sample = selection_size.pool_sample(pool, "sentence")
    assert not sample.whole and sample.candidates == pytest.approx(2_000, rel=0.02) and set(sample.tokens) == {20}
    assert selection_size.expected_distinct(2_000, 10, 100) == pytest.approx(788.46, abs=0.01)
    assert selection_size.expected_distinct(2_000, 3_000, 1) == 2_000   # k past the pool: all of it


def test_a_stage_trains_on_its_documents_but_those_held_out(mini_suite):
    """Pretraining holds out recipes.heldout_documents of a corpus, at most 10% of them (50 of the
    mini's 500 TAPT texts), to score its MLM loss: they are no steps."""
    write_split(mini_suite.task_dir("rt-polarity") / "train.jsonl", 500, chars=40)   # 10 tokens a text
    stage = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "tapt"), ["rt-polarity"])[0].stages[-1]
    stage.recipe.update(epochs=1, batch_size=1, max_length=10, pack_documents=True, heldout_documents=200)
    estimator = Estimator.for_suite(mini_suite)
    assert estimator.stage_seconds(stage)[2] == math.ceil(450 * 11 / 8)   # a separator each, 8 a sequence
    stage.recipe["heldout_documents"] = 20
    assert estimator.stage_seconds(stage)[2] == math.ceil(480 * 11 / 8)
    stage.recipe.update(pack_documents=False, max_length=128)   # one document a sequence
    assert estimator.stage_seconds(stage)[2] == 480


def test_a_knn_stage_whose_k_asks_for_the_whole_pool_says_so(mini_suite):
    """A pool of 3 lines gave 50NN, 150NN and 500NN one corpus, each "steps~1", without a word. Each
    query takes its k nearest, so only a k per query of at least the pool's candidates takes them
    all (k x queries past the pool does not: the queries share neighbours, and a selection of 538
    of 711 candidates differed from one of 679)."""
    write_split(mini_suite.task_dir("aclsum-roles") / "train.jsonl", 100, chars=40)
    pool = Path(mini_suite.data_path(mini_suite.pools["cs"]))
    stage = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "knn_tapt_50"), ["aclsum-roles"])[0].stages[-1]
    per_query = round(stage.selection["k"] * stage.selection.get("k_scale", 1.0))
    write_split(pool, per_query + 1, chars=40)   # one candidate a line, distinct; 100 queries ask 100 x k
    assert whole_pool(stage) is None
    write_split(pool, per_query, chars=40)
    assert whole_pool(stage) == per_query


def test_a_packed_stage_counts_the_tokens_of_a_jsonl_files_texts_not_of_its_bytes(mini_suite):
    """Counted by bytes, a line's keys, id and label were text: the dry run gave mini's TAPT stages
    40-96 steps where they ran 24-72 (their pretrain records)."""
    write_split(mini_suite.task_dir("rt-polarity") / "train.jsonl", 500, chars=40)   # 10 tokens a text
    stage = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "tapt"), ["rt-polarity"])[0].stages[-1]
    stage.recipe.update(epochs=1, batch_size=1, max_length=128, pack_documents=True)
    stage.recipe["heldout_documents"] = 0
    # 5,000 tokens and 500 separators (pretrain/sequences.py), 126 a sequence inside [CLS] and [SEP]
    assert Estimator.for_suite(mini_suite).stage_seconds(stage)[1:] == (44 * 128, 44, True)


def test_one_document_sequences_count_documents_for_the_steps_and_padding_for_the_compute(mini_suite):
    """The paper's TAPT (`pack_documents: false`): 500 documents of ~30 tokens, 100 epochs at batch
    256, are Table 9's 200 steps of 256 x 32 tokens; packed they were 100 steps of 256 x 512."""
    write_split(mini_suite.task_dir("rt-polarity") / "train.jsonl", 500, chars=120)
    stage = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "tapt"), ["rt-polarity"])[0].stages[-1]
    estimator = Estimator.for_suite(mini_suite)
    stage.recipe.update(epochs=100, batch_size=256, per_device_batch_size=32, max_length=512, pack_documents=False)
    assert estimator.stage_seconds(stage)[1:] == (200 * 256 * 32, 200, True)
    stage.recipe["pack_documents"] = True
    assert estimator.stage_seconds(stage)[1:] == (100 * 256 * 512, 100, True)

    # a document past max_length fills several sequences; a micro-batch is as wide as its longest
    assert document_sequences(np.array([10, 1020, 600]), 512).tolist() == [512, 512, 512, 12, 92]
    assert expected_longest(np.array([32] * 10), 32) == 32
    assert expected_longest(np.array([10, 100]), 1) == 55
    assert expected_longest(np.array([10, 100]), 2) == pytest.approx(10 * 0.25 + 100 * 0.75)


def test_the_wall_time_on_several_workers_follows_the_runners_order_and_dependencies():
    """The dry run's total is every job's time added up: on 2 workers the mini study took less
    than half of it. A list schedule as runner/jobs.work takes jobs: the first ready one."""
    from dontstop.runner.estimate import wall_seconds
    from dontstop.runner.jobs import Job

    def job(name, *needs):
        return Job("x", name, Path(name), tuple(Path(n) for n in needs))

    jobs = [job("base"), job("dapt-cs", "base"), job("dapt-news", "base"), job("run-cs-1", "dapt-cs"),
            job("run-cs-2", "dapt-cs"), job("run-news", "dapt-news"), job("run-base", "base"), job("done")]
    seconds = {Path(n): s for n, s in (("base", 10), ("dapt-cs", 5), ("dapt-news", 6), ("run-cs-1", 1),
                                       ("run-cs-2", 1), ("run-news", 1), ("run-base", 2))}   # "done": finished
    assert wall_seconds(jobs, seconds, 1) == sum(seconds.values()) == 26
    # 2 workers: base alone (10), both DAPT stages (to 15 and 16), then the runs as each is ready:
    # run-cs-1 and run-cs-2 at 15 and 16, run-news at 16, run-base (listed last) at 17, ending at 19
    assert wall_seconds(jobs, seconds, 2) == 19
    assert wall_seconds(jobs, seconds, 8) == 17   # never below the longest chain: base, dapt-news, run
    assert wall_seconds([job("run", "stage-built-earlier")], {Path("run"): 3}, 2) == 3


def test_damaged_records_and_memos_of_the_cache_are_no_traceback(mini_suite):
    """A stage record of another stage (its tokens_per_s a word, or a JSON list) ended the dry run in a
    TypeError; it is no estimate now. The cache's file-hash memo holding a list stopped every command
    that hashes a file: it is a shortcut, made again."""
    from dontstop.fileio import file_sha256
    from dontstop.records import PRETRAIN_RECORD_FILE
    from dontstop.suites import checkpoints_dir

    stages = checkpoints_dir(mini_suite)
    for name, text in (("a", '{"tokens_per_s": "fast"}'), ("b", "[1]"), ("c", "{cut"), ("d", '{"tokens_per_s": 5000}')):
        (stages / name).mkdir(parents=True)
        (stages / name / PRETRAIN_RECORD_FILE).write_text(text)
    estimator = Estimator.for_suite(mini_suite)
    assert estimator.tokens_per_s == 5000 and "1 pretraining record" in estimator.pretrain.source
    memo = Path(mini_suite.cache_dir) / "file_sha256.json"
    memo.write_text("[]")
    corpus = Path(mini_suite.data_path(mini_suite.base_corpus))
    assert len(file_sha256(corpus, mini_suite.cache_dir)) == 64 and str(corpus.resolve()) in memo.read_text()


def test_the_fp32_fine_tuning_row_is_a_rate_said_not_to_be_a_bound_and_a_real_path_row_replaces_it(tmp_path,
                                                                                                   monkeypatch):
    """The 16 x 512 fp32 row was printed as 'an upper bound', its runs' '<' too: it leaves out
    evaluation and a real run's per-batch costs, which took a real epoch past its step rate on the
    H200 of issue 20. The newer "finetune real path" row (a whole epoch) replaces it."""
    from dontstop.runner import estimate

    monkeypatch.setattr(estimate, "REPO", tmp_path)
    rows = [{"row": "finetune fp32", "device": "cuda", "device_name": "H200", "date": "2026-11-25T10:00:00",
             "tokens_per_s": 68000.0},
            {"row": "dapt", "device": "cuda", "device_name": "H200", "date": "2026-11-25T10:00:00",
             "tokens_per_s": 343000.0},
            {"row": "finetune fp32", "device": "cpu", "device_name": "cpu", "date": "2026-12-01T10:00:00",
             "tokens_per_s": 1.0}]   # a CPU smoke row is never a GPU rate
    bench = tmp_path / "gpu_paper.jsonl"
    bench.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    finetune = estimate.bench_rates(bench)["finetune"]
    assert finetune.value == 68000.0 and finetune.source.endswith("so not a bound")
    assert "H200, 2026-11-25, gpu_paper.jsonl 'finetune fp32'" in finetune.source
    real = {"row": "finetune real path", "device": "cuda", "device_name": "H200", "date": "2026-12-08T10:00:00",
            "train_tokens": 600000, "epoch_s": 12.0}
    bench.write_text(bench.read_text(encoding="utf-8") + json.dumps(real) + "\n", encoding="utf-8")
    assert estimate.bench_rates(bench)["finetune"] == estimate.Rate(50000.0, "H200, 2026-12-08, gpu_paper.jsonl "
                                                                             "'finetune real path'")
