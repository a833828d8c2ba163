"""kNN-TAPT / RAND-TAPT selection: embedders, faiss search, dedup, leakage, the record."""
import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from dontstop.select import index as knn_index
from dontstop.cli import main
from dontstop.data.formats import text_key
from dontstop.data.sentences import POOL_UNITS, QUERY_UNITS, split_sentences
from dontstop.select.embed import EMBEDDERS, BowEmbedder, EncoderEmbedder, load_embedder
from dontstop.fileio import UserError
from dontstop.records import SELECT_RECORD_FILE, SELECTED_CORPUS_FILE, SelectRecord
from dontstop.select.selection import select_corpus

CONTRACT_FIELDS = {"k", "method", "embedder", "index", "pool_size", "queries",
                   "candidates_before_dedup", "selected", "duplicates_removed",
                   "excluded_heldout", "bytes", "wall_time_s", "recall_at_k",
                   "selected_by_source", "pool_by_source", "seed"}


def topic_sentence(rng, topic, words=8):
    """Words of one topic (t3w0..t3w11) mixed with words every topic shares."""
    own = [f"t{topic}w{j}" for j in rng.choice(12, size=words - 3, replace=False)]
    shared = [f"common{j}" for j in rng.choice(30, size=3, replace=False)]
    return " ".join(rng.permutation(own + shared))


def write_pool(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def topic_pool(tmp_path, seed=0, per_topic=15, topics=12):
    """Topic 0 is the task's topic ("planted"); every other topic is a distractor."""
    rng = np.random.default_rng(seed)
    records = [{"text": topic_sentence(rng, t), "source": "planted" if t == 0 else "other"}
               for t in range(topics) for _ in range(per_topic)]
    return write_pool(tmp_path / "pool.jsonl", records), rng


def clustered_vectors(n, dim, clusters, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    points = centres[rng.integers(clusters, size=n)] + 0.3 * rng.normal(size=(n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def read_corpus(out_dir):
    return [json.loads(line) for line in (out_dir / SELECTED_CORPUS_FILE).read_text().splitlines()]


def test_knn_selects_the_planted_neighbours(tmp_path):
    pool, rng = topic_pool(tmp_path)
    queries = [topic_sentence(rng, 0) for _ in range(4)]
    record = select_corpus(queries, pool, tmp_path / "out", method="knn", k=10)
    # 4 queries x 10 neighbours all fall among the 15 topic-0 documents, none elsewhere
    assert set(record.selected_by_source) == {"planted"}
    assert 10 <= record.selected <= 15
    assert record.pool_by_source == {"planted": 15, "other": 165}
    corpus = read_corpus(tmp_path / "out")
    assert [r["text"] for r in corpus[:4]] == queries and corpus[0]["source"] == "task"
    assert len(corpus) == 4 + record.selected


@pytest.mark.parametrize("query_count", [5, 40])  # below / above knn_index.BLAS_QUERY_THRESHOLD
def test_exact_faiss_search_equals_numpy_top_k(query_count):
    rng = np.random.default_rng(1)
    pool = rng.normal(size=(3000, 24)).astype(np.float32)
    queries = rng.normal(size=(query_count, 24)).astype(np.float32)
    index = knn_index.new_index("flat", 24)
    knn_index.add_in_shards(index, np.array_split(pool, 7), len(pool))
    found = knn_index.search(index, queries, 25)
    brute = np.argsort(-(queries @ pool.T), axis=1)[:, :25]
    assert np.array_equal(found, brute)
    assert knn_index.recall_at_k(index, queries, 25, 1) is None  # exact index: no estimate


def test_ivf_recall_on_clustered_vectors_at_default_nprobe():
    pool = clustered_vectors(20_000, 32, clusters=40, seed=2)
    queries = clustered_vectors(200, 32, clusters=40, seed=2)
    index = knn_index.new_index("ivf", 32, len(pool), pool[:5000])  # nlist = 128
    knn_index.add_in_shards(index, np.array_split(pool, 4), len(pool))
    assert index.nlist == 128
    recall = knn_index.recall_at_k(index, queries, 50, knn_index.DEFAULT_NPROBE)
    assert recall > 0.95
    assert knn_index.recall_at_k(index, queries, 50, 1) < recall  # one list is too few


def test_ivf_selection_reports_recall(tmp_path):
    pool, rng = topic_pool(tmp_path, per_topic=60)
    queries = [topic_sentence(rng, 0) for _ in range(5)]
    record = select_corpus(queries, pool, tmp_path / "out", k=20, index="ivf", nprobe=4)
    assert record.index == "ivf" and record.nprobe == 4
    assert 0.0 < record.recall_at_k <= 1.0


def test_dedup_and_heldout_text_is_never_selected(tmp_path):
    held_out = "t0w1 t0w2 t0w3 t0w4 t0w5 common1 common2"
    task_text = "t0w1 t0w2 t0w3 t0w6 t0w7 common3"
    records = [{"text": held_out, "source": "cs"},                      # nearest, but dev text
               {"text": "t0w1 t0w2 t0w3 t0w4 t0w8 common4", "source": "cs"},
               {"text": "T0W1  t0w2 t0w3 t0w4 t0w8 COMMON4", "source": "cs"},  # same text_key
               {"text": task_text.upper(), "source": "cs"},             # a copy of the query
               *({"text": f"other{i} filler{i % 7} words", "source": "general"} for i in range(30))]
    pool = write_pool(tmp_path / "pool.jsonl", records)
    task_dir = tmp_path / "task"
    task_dir.mkdir()
    (task_dir / "train.jsonl").write_text(json.dumps({"text": task_text, "label": "a"}) + "\n")
    (task_dir / "dev.jsonl").write_text(json.dumps({"text": held_out, "label": "a"}) + "\n")
    (task_dir / "test.jsonl").write_text(json.dumps({"text": "a test sentence", "label": "a"}) + "\n")
    out = tmp_path / "out"
    assert main(["select", "--task-text", str(task_dir / "train.jsonl"), "--pool", str(pool),
                 "--out", str(out), "--k", "5", "--exclude-dev-test-of", str(task_dir)]) == 0
    record = SelectRecord.read(out / SELECT_RECORD_FILE)
    texts = [r["text"] for r in read_corpus(out)]
    assert held_out not in texts and record.excluded_heldout == 1
    assert record.pool_duplicates_skipped == 2 and record.pool_size == 31
    assert len({text_key(t) for t in texts}) == len(texts) == 1 + record.selected
    assert record.candidates_before_dedup - record.duplicates_removed == record.selected


def test_sentences_end_at_terminal_punctuation_in_any_script():
    assert split_sentences("It works! Dr. Smith agrees, see e.g. the table. (Then) more") == [
        "It works!", "Dr.", "Smith agrees, see e.g. the table.", "(Then) more"]   # a capital after "Dr." cuts
    assert split_sentences('Smith et al. (2019) show it. He said "stop." Then left...') == [
        "Smith et al. (2019) show it.", 'He said "stop."', "Then left..."]
    assert split_sentences("今天天气很好。我们去公园吧！你觉得呢？") == ["今天天气很好。", "我们去公园吧！", "你觉得呢？"]
    assert split_sentences("नमस्ते। यह दूसरा वाक्य है।") == ["नमस्ते।", "यह दूसरा वाक्य है।"]
    assert split_sentences("ประโยคแรก ประโยคที่สอง") == ["ประโยคแรก ประโยคที่สอง"]   # no terminal punctuation: one
    assert split_sentences("The value is 3.5 m.\n\n  Next one.  ") == ["The value is 3.5 m.", "Next one."]
    assert split_sentences(" \u3000 ") == []


def test_knn_selects_sentences_of_pool_paragraphs_and_a_held_out_sentence_inside_one_is_never_indexed(tmp_path):
    """The paper's candidates are domain sentences. A pool of paragraphs gave whole paragraphs (the
    topic's sentence and the off-topic ones around it), and a dev sentence inside a paragraph was
    pretrained on; with `unit="line"` they still are (a pool already one sentence a line)."""
    rng = np.random.default_rng(0)

    def sentence(topic):
        return topic_sentence(rng, topic).capitalize() + "."

    held_out = sentence(0)
    paragraphs = [" ".join([sentence(0 if i % 4 == 0 else 1 + i % 11), sentence(1 + (i + 3) % 11),
                            sentence(1 + (i + 7) % 11)]) for i in range(40)]
    paragraphs.append(f"{held_out} {sentence(5)}")
    pool = write_pool(tmp_path / "pool.jsonl", [{"text": t, "source": "cs"} for t in paragraphs])
    queries = [sentence(0) for _ in range(3)]
    exclude = frozenset({text_key(held_out)})
    by_sentence = select_corpus(queries, pool, tmp_path / "sentences", k=5, exclude=exclude)
    texts = [r["text"] for r in read_corpus(tmp_path / "sentences")[3:]]
    assert by_sentence.unit == "sentence" and by_sentence.pool_size == 40 * 3 + 1 and by_sentence.excluded_heldout == 1
    assert len(texts) == by_sentence.selected and 5 <= len(texts) <= 10   # of the 10 topic-0 sentences
    def topics(text):
        return {word.split("w")[0] for word in text.lower().rstrip(".").split() if not word.startswith("common")}

    assert all(split_sentences(t) == [t] and topics(t) == {"t0"} for t in texts), texts
    by_line = select_corpus(queries, pool, tmp_path / "lines", k=5, exclude=exclude, unit="line")
    texts = [r["text"] for r in read_corpus(tmp_path / "lines")[3:]]
    assert by_line.unit == "line" and by_line.pool_size == 41 and by_line.excluded_heldout == 0
    assert set(texts) <= set(paragraphs) and all(len(split_sentences(t)) >= 2 for t in texts)


def test_each_sentence_of_a_task_text_is_a_query_and_a_pool_copy_of_one_is_not_selected(tmp_path):
    """The paper takes the k nearest domain sentences of every task *sentence*. A task text of two
    sentences queried as one text: k candidates near neither topic's centre (RAND: k draws for two
    sentences), and a pool copy of one of its sentences was selected (only copies of the whole
    text were dropped), so the task's sentence was pretrained on twice. `query_unit="text"` keeps
    that older behaviour (a task already one sentence a text selects the same either way)."""
    rng = np.random.default_rng(0)

    def sentence(topic):
        return topic_sentence(rng, topic).capitalize() + "."

    task_sentences = [sentence(0), sentence(5)]
    records = [{"text": sentence(t), "source": f"topic{t}"} for t in range(12) for _ in range(12)]
    pool = write_pool(tmp_path / "pool.jsonl", records + [{"text": task_sentences[0], "source": "topic0"}])
    task_texts = [" ".join(task_sentences)] * 2   # a copy of the text: one text, two sentences
    by_sentence = select_corpus(task_texts, pool, tmp_path / "sentences", k=6)
    corpus = read_corpus(tmp_path / "sentences")
    assert (by_sentence.query_unit, by_sentence.task_texts, by_sentence.queries) == ("sentence", 1, 2)
    assert corpus[0] == {"text": task_texts[0], "source": "task"} and corpus[1]["source"] != "task"
    assert by_sentence.pool_size == 144 and by_sentence.candidates_before_dedup == 12
    assert by_sentence.selected_by_source == {"topic0": 6, "topic5": 6}   # each sentence its own topic's
    by_text = select_corpus(task_texts, pool, tmp_path / "texts", k=6, query_unit="text")
    texts = [row["text"] for row in read_corpus(tmp_path / "texts")[1:]]
    assert (by_text.query_unit, by_text.queries, by_text.pool_size) == ("text", 1, 145)
    assert task_sentences[0] in texts and by_text.candidates_before_dedup == 6
    rand = select_corpus(task_texts, pool, tmp_path / "rand", method="random", k=6)
    assert rand.candidates_before_dedup == 12
    assert task_sentences[0] not in [row["text"] for row in read_corpus(tmp_path / "rand")[1:]]


def test_a_held_out_text_of_several_sentences_is_never_selected_sentence_by_sentence(tmp_path):
    """With sentence candidates a dev text of two sentences in the pool, as a line of its own or
    inside a paragraph, was two candidates whose keys were not the dev text's: both were selected,
    in order, so the kNN-TAPT model pretrained on the dev text. Each sentence of a held-out text is
    kept out of the pool now (one on a line of its own too), with either unit; a fragment the
    splitter makes ('Five stars.', '1.', '(2015) .') says nothing of the text and is not."""
    from dontstop.data.leakage import guarded_files, leakage_keys, selection_exclude

    dev = "The held out review praises the acting. It also hates the ending! Five stars."
    task = tmp_path / "task"
    task.mkdir()
    write_pool(task / "dev.jsonl", [{"text": dev, "label": "pos"}])
    write_pool(task / "test.jsonl", [{"text": "A test review.", "label": "neg"}])
    others = ["Another review of a film.", "Nothing more here.", "Plain line about cars."]
    pool = write_pool(tmp_path / "pool.jsonl", [{"text": t, "source": "rev"} for t in (
        dev, f"{others[0]} {dev.upper()}  {others[1]}", others[2], "It also hates the ending.")])
    query = ["A task review sentence about films."]
    whole_texts_only = select_corpus(query, pool, tmp_path / "before", method="random", k=100,
                                     exclude=frozenset(leakage_keys([task])))   # k past the pool: all selected
    assert "The held out review praises the acting." in [row["text"] for row in read_corpus(tmp_path / "before")]
    assert whole_texts_only.excluded_heldout == 0
    exclude = frozenset(selection_exclude(guarded_files([task])))
    record = select_corpus(query, pool, tmp_path / "all", method="random", k=100, exclude=exclude)
    assert [row["text"] for row in read_corpus(tmp_path / "all")[1:]] == ["Five stars.", *others]
    assert (record.excluded_heldout, record.pool_size) == (5, 4)
    by_line = select_corpus(query, pool, tmp_path / "lines", method="random", k=100, exclude=exclude, unit="line")
    assert (by_line.excluded_heldout, by_line.pool_size) == (2, 2)   # the paragraph is a line of other text


def test_a_selection_stage_is_keyed_by_the_selection_rule_and_other_stages_are_not(mini_suite, monkeypatch):
    """A corpus selected under another rule (before dev sentences were kept out and empty kNN
    queries took nothing) is another corpus: its stage is built again, its runs are stale."""
    from dontstop import stage_identity
    from dontstop.conditions import EXPERIMENTS_DIR, load_condition
    from dontstop.runner.plan import plan_runs

    def keys():
        return {name: plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / name), ["aclsum-roles"])[0].stages[-1].key
                for name in ("knn_tapt_50", "rand_tapt", "tapt")}

    now = keys()
    monkeypatch.setattr(stage_identity, "SELECTION_RULE", 1)
    before = keys()
    assert now["knn_tapt_50"] != before["knn_tapt_50"] and now["rand_tapt"] != before["rand_tapt"]
    assert now["tapt"] == before["tapt"]


def test_a_knn_selection_embeds_and_searches_on_one_thread_whatever_the_machine(tmp_path, monkeypatch):
    """On 2 threads the bow embedder's SVD and faiss's search summed in another order than on 1
    (aclsum-roles' vectors moved by 1e-4, 770 of its k = 500 neighbour ids changed): a selection
    depended on the machine's cores and the launcher. Both run on one BLAS and OpenMP thread."""
    from threadpoolctl import threadpool_info, threadpool_limits

    threads, search = [], knn_index.search
    def counting_search(*args, **kwargs):
        threads.extend(library["num_threads"] for library in threadpool_info())
        return search(*args, **kwargs)

    monkeypatch.setattr(knn_index, "search", counting_search)
    pool, rng = topic_pool(tmp_path)
    with threadpool_limits(limits=2):
        before = {library["filepath"]: library["num_threads"] for library in threadpool_info()}
        select_corpus([topic_sentence(rng, 0)], pool, tmp_path / "out", k=5)
        after = {library["filepath"]: library["num_threads"] for library in threadpool_info()}
        assert {path: after[path] for path in before} == before   # given back after
    assert threads and set(threads) == {1} and 2 in before.values()


@pytest.mark.parametrize("shell", [{}, {"OPENBLAS_NUM_THREADS": "4"}, {"OMP_NUM_THREADS": "1"}])
def test_every_dontstop_process_starts_openblas_on_one_thread_whatever_the_shell_says(shell):
    """Started on one thread or limited to one later, OpenBLAS gave ACL-Roles' `select --k 500` 44,149 or
    44,148 candidates: a selection followed the shell's OPENBLAS_NUM_THREADS / OMP_NUM_THREADS and
    the launcher (submitit loads numpy first; its sbatch script exports it: test_slurm_launcher.py)."""
    import os
    import subprocess
    import sys

    code = ("import dontstop, numpy, threadpoolctl; print(sorted({l['num_threads'] for l in "
            "threadpoolctl.threadpool_info() if l['internal_api'] == 'openblas'}))")
    env = {**{k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}, **shell}
    started = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert started.stdout.strip() == "[1]"


def test_an_index_saved_under_an_older_selection_rule_is_refused_naming_it(tmp_path):
    """A `select --index-dir` folder saved before SELECTION_RULE 2 holds an embedder fitted and a
    pool embedded on several threads (and a scan that kept dev sentences): reused, a new k selected
    from it. Its index_key.json lacks the rule, so it is refused."""
    pool, rng = topic_pool(tmp_path)
    queries = [topic_sentence(rng, 0)]
    select_corpus(queries, pool, tmp_path / "k5", k=5, index_dir=tmp_path / "index")
    key_file = tmp_path / "index" / "index_key.json"
    key = json.loads(key_file.read_text())
    assert key.pop("selection_rule") == 2
    key_file.write_text(json.dumps(key))
    with pytest.raises(UserError, match=r"\(selection_rule differ\); give a new --index-dir"):
        select_corpus(queries, pool, tmp_path / "k10", k=10, index_dir=tmp_path / "index")


def test_a_query_with_no_known_word_selects_no_neighbours(tmp_path):
    """A query whose words the bow embedder does not know (stop words, a fragment such as '2 .',
    of which ACL-Roles has five) is a zero vector, equally near every candidate: it took the first
    k candidates of the pool, whatever they were. It now takes none."""
    rng = np.random.default_rng(0)
    records = [{"text": topic_sentence(rng, t), "source": "planted" if t == 0 else "other"}
               for t in (*range(1, 12), 0) for _ in range(15)]   # the task's topic last in the pool
    pool = write_pool(tmp_path / "pool.jsonl", records)
    record = select_corpus([topic_sentence(rng, 0), "It is what it is."], pool, tmp_path / "out", k=5)
    assert record.queries == 2 and record.candidates_before_dedup == 5
    assert record.selected_by_source == {"planted": 5}


def test_a_query_with_no_known_word_takes_no_part_in_the_recall(tmp_path):
    """An IVF index's recall@k is measured on queries that search: a zero vector (no known word)
    took its probed lists' first k against all lists' first k, a recall of 0 that lowered the
    record's recall_at_k by its share of the sampled queries."""
    pool, rng = topic_pool(tmp_path, per_topic=40)   # 480 lines: 12 lists, one probed
    query = topic_sentence(rng, 0)
    alone = select_corpus([query], pool, tmp_path / "alone", k=20, index="ivf", nprobe=1)
    with_empty = select_corpus([query, "It is what it is.", "It was."], pool, tmp_path / "empty",
                               k=20, index="ivf", nprobe=1)
    assert with_empty.nlist == alone.nlist > 1 and with_empty.candidates_before_dedup == 20
    assert with_empty.recall_at_k == alone.recall_at_k > 0


def test_a_knn_stage_names_its_pool_and_query_units_so_another_unit_is_another_stage(mini_suite):
    """The stage key holds both units: a cache (or finished run) selected from whole pool lines,
    or queried with whole task texts, is not taken for one of sentences."""
    from dontstop.conditions import EXPERIMENTS_DIR, load_condition
    from dontstop.runner.plan import plan_runs

    def knn_stage(**settings):
        mini_suite.selection = {**mini_suite.selection, **settings}
        return plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "knn_tapt_50"), ["aclsum-roles"])[0].stages[-1]

    stages = [knn_stage(), knn_stage(unit="line"), knn_stage(unit="sentence", query_unit="text")]
    assert [(s.selection["unit"], s.selection["query_unit"]) for s in stages] == [
        ("sentence", "sentence"), ("line", "sentence"), ("sentence", "text")]
    assert len({s.key for s in stages}) == len({s.selection_dir for s in stages}) == 3


def test_a_run_on_a_selection_made_with_another_setting_is_stale_naming_it(mini_suite):
    """A run fine-tuned on a kNN stage that queried with whole task texts (before query units) is
    stale, and its line says why: it named only the two checkpoints' hashes."""
    from dontstop.conditions import EXPERIMENTS_DIR, load_condition
    from dontstop.finetune.resolve import resolve_recipe
    from dontstop.records import MetricsRecord
    from dontstop.runner.finished import run_difference
    from dontstop.runner.job_actions import finetune_recipe
    from dontstop.runner.plan import plan_runs
    from conftest import REPO

    plan = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "knn_tapt_50"), ["aclsum-roles"])[0]
    base, knn = plan.stages
    old_checkpoint = knn.checkpoint_dir[:-8] + "51800bbd"
    committed = MetricsRecord.read(REPO / "results" / "mini" / "aclsum-roles" / "baseline" / "seed_0" / "metrics.json")
    old_selection = {"method": "knn", "k": 5, "seed": 0, "embedder": "bow", "index": "flat", "dim": 128,
                     "unit": "sentence", "queries": 500, "selected": 2288}   # a record before query units
    record = dataclasses.replace(
        committed, model=old_checkpoint, published=False,
        config=dataclasses.asdict(resolve_recipe(finetune_recipe(plan, mini_suite, 0), plan.task)),
        pretraining=[{"name": base.name, "recipe": {"output_dir": base.checkpoint_dir}},
                     {"name": knn.name, "recipe": {"output_dir": old_checkpoint}, "selection": old_selection}])
    reason = run_difference(record, plan, 0, mini_suite, allow_mixed=True)
    assert reason == (f"starting checkpoint: finished from {old_checkpoint}, asked {knn.checkpoint_dir} "
                      "(stage knn50-aclsum-roles's selection: query_unit 'text', asked 'sentence')")
    record.pretraining[1]["selection"]["query_unit"] = "sentence"   # the same selection: another input
    assert run_difference(record, plan, 0, mini_suite, allow_mixed=True).endswith(
        "(stage knn50-aclsum-roles was built from other settings or inputs)")


def test_random_selection_is_reproducible_by_seed(tmp_path):
    pool, rng = topic_pool(tmp_path)
    queries = [topic_sentence(rng, 3) for _ in range(6)]
    runs = {name: select_corpus(queries, pool, tmp_path / name, method="random", k=5, seed=seed)
            for name, seed in (("a", 7), ("b", 7), ("c", 8))}
    assert read_corpus(tmp_path / "a") == read_corpus(tmp_path / "b")
    assert read_corpus(tmp_path / "a") != read_corpus(tmp_path / "c")
    assert runs["a"].candidates_before_dedup == 30 and runs["a"].embedder is None
    # random draws ignore the topic: "other" topics hold 11/12 of the pool
    assert runs["a"].selected_by_source.get("other", 0) > runs["a"].selected / 2


@pytest.mark.parametrize("method", ["knn", "random"])
def test_a_k_past_the_pools_size_selects_the_whole_pool(method, tmp_path):
    """--k 50000000000 scanned the pool, then asked numpy for 102 TiB (a traceback, exit 1)."""
    pool, rng = topic_pool(tmp_path)
    queries = [topic_sentence(rng, 0) for _ in range(3)]
    whole = select_corpus(queries, pool, tmp_path / "whole", method=method, k=180)   # the pool's 180 lines
    huge = select_corpus(queries, pool, tmp_path / "huge", method=method, k=50_000_000_000)
    assert huge.selected == whole.selected == huge.pool_size == 180 and huge.k == 50_000_000_000
    assert read_corpus(tmp_path / "huge") == read_corpus(tmp_path / "whole")


def test_bow_embedder_save_load_gives_identical_vectors(tmp_path):
    pool, rng = topic_pool(tmp_path)
    texts = [json.loads(line)["text"] for line in pool.read_text().splitlines()]
    embedder = BowEmbedder(dim=16, seed=0).fit(texts)
    embedder.save(tmp_path / "bow")
    vectors = embedder.transform(texts[:20])
    assert vectors.dtype == np.float32 and vectors.shape == (20, 16)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(load_embedder(tmp_path / "bow").transform(texts[:20]), vectors)


def test_encoder_embedder_mean_pools_unit_vectors():
    embedder = EncoderEmbedder("bundled:minilm", batch_size=2)
    vectors = embedder.transform(["a cat sat on the mat", "a kitten sat on a rug",
                                  "stock markets fell sharply today"])
    assert vectors.shape == (3, embedder.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_record_has_every_contract_field_and_index_is_reused(tmp_path):
    pool, rng = topic_pool(tmp_path)
    queries = [topic_sentence(rng, 0) for _ in range(3)]
    first = select_corpus(queries, pool, tmp_path / "k5", k=5, index_dir=tmp_path / "index")
    again = select_corpus(queries, pool, tmp_path / "k5b", k=5, index_dir=tmp_path / "index")
    assert CONTRACT_FIELDS <= set(dataclasses.asdict(first))
    assert SelectRecord.read(tmp_path / "k5" / SELECT_RECORD_FILE) == first   # the file reads back typed
    assert read_corpus(tmp_path / "k5") == read_corpus(tmp_path / "k5b")
    assert again.selected == first.selected
    with pytest.raises(UserError, match="already holds a selection"):
        select_corpus(queries, pool, tmp_path / "k5", k=5)
    with pytest.raises(UserError, match=r"built for another pool, task or embedder \(queries differ\)"):
        select_corpus(queries[:2], pool, tmp_path / "k6", k=5, index_dir=tmp_path / "index")
    with pytest.raises(UserError, match=r"\(dim differ\)"):   # it said "another pool, task or embedder" alone
        select_corpus(queries, pool, tmp_path / "k7", k=5, dim=16, index_dir=tmp_path / "index")


def test_bad_pool_line_is_a_one_line_user_error(tmp_path, capsys):
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"text": "fine words here", "source": "cs"}\n{"text": 3}\n')
    task = tmp_path / "task.txt"
    task.write_text("some task sentence\n")
    assert main(["select", "--task-text", str(task), "--pool", str(pool),
                 "--out", str(tmp_path / "out"), "--method", "random"]) == 2
    assert f"{pool}:2: field 'text'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags, message", [
    (["--dim", "0"], "--dim 0: must be in [1, 1024)"),                     # failed inside scikit-learn
    (["--dim", "100000"], "--dim 100000: must be in [1, 1024)"),          # killed for memory (22 GB), no word
    (["--seed", "-1", "--method", "random"], "--seed -1: must be in [0, 4294967296)"),   # a traceback
    (["--k", "0"], "--k 0: must be >= 1"),
    (["--index-dir", "{file}/index"], "{file}/index: not a writable directory ({file} is a file)"),  # after embedding
    # found after the pool scan: transformers' two lines, naming no model, exit 1
    (["--embedder", "encoder", "--encoder-model", "org/not-cached"], "org/not-cached: not in the local cache and "
                                                                     "offline"),
    (["--embedder", "encoder", "--encoder-model", "./no-model"], "--encoder-model ./no-model: no such folder"),
    (["--exclude-dev-test-of", "{file}"], "{file}: a file; give the task's folder, which holds dev.jsonl and "
                                          "test.jsonl"),   # "{file}/dev.jsonl: not found"
    # ignored without a word: a bag-of-words selection, an exact search, a random one
    (["--encoder-model", "bundled:bert-tiny"], "--encoder-model bundled:bert-tiny: only --method knn --embedder "
                                               "encoder uses it; leave it out"),
    (["--nprobe", "5"], "--nprobe 5: only --method knn --index ivf uses it; leave it out"),
    (["--method", "random", "--dim", "5"], "--dim 5: only --method knn with the bow embedder uses it; leave it out"),
])
def test_a_bad_select_flag_is_one_line_before_any_work(flags, message, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    task = tmp_path / "task.txt"
    task.write_text("some task sentence\n")
    pool = tmp_path / "pool.txt"
    pool.write_text("fine words here\nother words there\n")
    flags = [flag.format(file=tmp_path / "file") for flag in flags]
    assert main(["select", "--task-text", str(task), "--pool", str(pool), "--out", str(tmp_path / "out"), *flags]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"dontstop: error: {message.format(file=tmp_path / 'file')}"), line
    assert not (tmp_path / "out").exists()


def test_a_jsonl_pool_named_txt_and_an_output_folder_holding_a_corpus_are_refused(tmp_path, capsys):
    """A JSON-lines pool named .txt was read as text (its syntax selected into the corpus to pretrain
    on, though `data check` refuses it); a --out holding a corpus.jsonl of the user's was written over."""
    task = tmp_path / "task.txt"
    task.write_text("some task sentence\n")
    pool = tmp_path / "pool.txt"
    pool.write_text('{"text": "fine words here"}\n{"text": "other words there"}\n')
    select = ["select", "--task-text", str(task), "--method", "random", "--k", "1"]
    assert main([*select, "--pool", str(pool), "--out", str(tmp_path / "a")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (f"dontstop: error: {pool}:1: a JSON object, but only a file named "
                                                        ".jsonl is read as JSON (as text its syntax would be "
                                                        "pretrained on); rename it to .jsonl")   # after the scan bar
    pool = pool.rename(tmp_path / "pool.jsonl")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / SELECTED_CORPUS_FILE).write_text('{"text": "my own corpus"}\n')
    assert main([*select, "--pool", str(pool), "--out", str(tmp_path / "mine")]) == 2
    assert "holds a corpus.jsonl that no selection made" in capsys.readouterr().err
    assert (tmp_path / "mine" / SELECTED_CORPUS_FILE).read_text() == '{"text": "my own corpus"}\n'


def test_a_pool_that_is_a_folder_is_said_so(tmp_path, capsys):
    """`--pool data/mini/pools` (the folder, not a file in it) was "pool file not found" beside the
    folder that is there."""
    task = tmp_path / "task.txt"
    task.write_text("some task sentence\n")
    (tmp_path / "pools").mkdir()
    assert main(["select", "--task-text", str(task), "--pool", str(tmp_path / "pools"), "--out", str(tmp_path / "out"),
                 "--method", "random", "--k", "1"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"dontstop: error: {tmp_path / 'pools'}: a folder, not a file"
    assert not (tmp_path / "out").exists()


def test_a_suites_selection_keys_are_select_corpus_keywords():
    """suite_checks.SelectionSettings (what a suite's `selection` and `--set selection.*` may give)
    names select_corpus's embedding keywords with their defaults, and the runner's k_scale."""
    import inspect

    from dontstop.suite_checks import SELECTION_RANGES, SelectionSettings

    keywords = inspect.signature(select_corpus).parameters
    settings = {f.name: f.default for f in dataclasses.fields(SelectionSettings) if f.name != "k_scale"}
    assert settings == {name: keywords[name].default for name in settings}
    assert SELECTION_RANGES["embedder"].choices == EMBEDDERS     # the suite checks' choices are select's
    assert SELECTION_RANGES["index"].choices == knn_index.INDEX_TYPES
    assert SELECTION_RANGES["unit"].choices == POOL_UNITS
    assert SELECTION_RANGES["query_unit"].choices == QUERY_UNITS


def test_an_output_folder_holding_the_pool_or_the_task_text_is_refused_and_they_are_kept(tmp_path, capsys):
    """--out whose corpus.jsonl is the pool (or the task text): the selection was written over it."""
    folder = tmp_path / "sel"
    folder.mkdir()
    pool, rng = topic_pool(tmp_path)
    (folder / SELECTED_CORPUS_FILE).write_bytes(pool.read_bytes())
    task = tmp_path / "task.txt"
    task.write_text(topic_sentence(rng, 0) + "\n")
    for task_text, pool_path, named in ((task, folder / SELECTED_CORPUS_FILE, "the pool"),
                                        (folder / SELECTED_CORPUS_FILE, pool, "the task text")):
        before = (folder / SELECTED_CORPUS_FILE).read_bytes()
        assert main(["select", "--task-text", str(task_text), "--pool", str(pool_path), "--out", str(folder),
                     "--method", "random", "--k", "2"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{named} is the {SELECTED_CORPUS_FILE} this selection would write" in err[0]
        assert (folder / SELECTED_CORPUS_FILE).read_bytes() == before
        assert not (folder / SELECT_RECORD_FILE).exists()


@pytest.mark.parametrize("method", ["random", "knn"])
def test_a_pool_of_nothing_but_task_text_is_refused_by_both_methods(method, tmp_path, capsys):
    """A pool that is the task's own train file: RAND-TAPT wrote a corpus of the task text alone
    (a TAPT corpus under another name), with exit 0."""
    task = tmp_path / "train.txt"
    task.write_text("first task sentence here\nsecond task sentence there\n")
    assert main(["select", "--task-text", str(task), "--pool", str(task), "--out", str(tmp_path / "out"),
                 "--method", method, "--k", "2"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1:] == [   # after the scan's progress bar
        f"dontstop: error: {task}: no pool sentences left to select from (2 duplicate(s) of task text "
        "or of each other, 0 held-out dev/test text)"]
    assert not (tmp_path / "out").exists()


def task_of_topic_sentences(tmp_path: Path, rng) -> Path:
    """A task folder whose train, dev and test splits are 3 topic sentences each."""
    task_dir = tmp_path / "task"
    task_dir.mkdir()
    for split in ("train", "dev", "test"):
        (task_dir / f"{split}.jsonl").write_text(
            "".join(json.dumps({"text": topic_sentence(rng, 0), "label": "a"}) + "\n" for _ in range(3)))
    return task_dir


def test_held_out_text_given_as_the_task_text_is_refused(tmp_path, capsys):
    """--task-text <task>/dev.jsonl: its texts opened the selected corpus as "task" documents
    (pretrained on), though --exclude-dev-test-of named that very task."""
    pool, rng = topic_pool(tmp_path)
    task_dir = task_of_topic_sentences(tmp_path, rng)
    args = ["select", "--pool", str(pool), "--k", "2", "--exclude-dev-test-of", str(task_dir)]
    assert main([*args, "--task-text", str(task_dir / "dev.jsonl"), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{task_dir / 'dev.jsonl'}: 3 of its 3 texts are dev/test text" in err[0]
    assert not (tmp_path / "bad").exists()
    assert main([*args, "--task-text", str(task_dir / "train.jsonl"), "--out", str(tmp_path / "good")]) == 0


def test_select_reads_each_dev_and_test_file_once(tmp_path, monkeypatch):
    """`dontstop select --exclude-dev-test-of` read each dev and test file twice: once for the task
    text it refuses, once more for what the selection keeps out of the pool."""
    import builtins

    pool, rng = topic_pool(tmp_path)
    task_dir = task_of_topic_sentences(tmp_path, rng)
    real_open, opened = builtins.open, []

    def counting_open(file, mode="r", *args, **kwargs):
        if "b" not in mode:   # a parse; its UTF-8 check (data/encoding.utf8_problem) reads the bytes first
            opened.append(Path(file).name if isinstance(file, (str, Path)) else None)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    assert main(["select", "--pool", str(pool), "--k", "2", "--exclude-dev-test-of", str(task_dir),
                 "--task-text", str(task_dir / "train.jsonl"), "--out", str(tmp_path / "out")]) == 0
    monkeypatch.undo()
    assert (opened.count("dev.jsonl"), opened.count("test.jsonl")) == (1, 1)
    dev_text = json.loads((task_dir / "dev.jsonl").read_text().splitlines()[0])["text"]
    assert dev_text not in (tmp_path / "out" / SELECTED_CORPUS_FILE).read_text()   # still kept out


def test_a_saved_index_is_reused_by_content_and_a_damaged_one_is_one_line(tmp_path, capsys):
    """A touched pool of the same bytes reuses the index (its mtime changed the key: the runner,
    which names index folders by content, then failed mid-run); a truncated index.faiss or a
    missing pool scan is one line naming the folder (a faiss RuntimeError traceback)."""
    pool, rng = topic_pool(tmp_path)
    queries = [topic_sentence(rng, 0) for _ in range(3)]
    first = select_corpus(queries, pool, tmp_path / "a", k=3, index_dir=tmp_path / "index")
    pool.touch()
    pool.write_bytes(pool.read_bytes())   # same bytes, new mtime
    capsys.readouterr()
    assert select_corpus(queries, pool, tmp_path / "b", k=3, index_dir=tmp_path / "index").selected == first.selected
    assert "reusing index" in capsys.readouterr().out
    saved = tmp_path / "index" / "index.faiss"
    saved.write_bytes(saved.read_bytes()[:100])
    with pytest.raises(UserError, match="index.faiss: cannot read the saved index, missing or truncated"):
        select_corpus(queries, pool, tmp_path / "c", k=3, index_dir=tmp_path / "index")
    (tmp_path / "index" / "pool_scan.npz").unlink()
    with pytest.raises(UserError, match="cannot read the saved pool scan or embedder"):
        select_corpus(queries, pool, tmp_path / "d", k=3, index_dir=tmp_path / "index")


class Killed(BaseException):
    """A kill -9 at that point: nothing after it runs (not an Exception, which a handler might catch)."""


@pytest.mark.parametrize("kill_at", ["index", "record"])
def test_a_selection_killed_mid_index_or_before_its_record_is_made_again_as_an_uninterrupted_one(
        kill_at, tmp_path, monkeypatch):
    """A worker killed while it saved the index (its embedder and pool scan written, not the index
    nor its key) or after the selected corpus, before select_record.json: the same call again builds
    the index again and selects into the same folder what an uninterrupted selection selects."""
    from dontstop.records import SelectRecord as Record

    pool, rng = topic_pool(tmp_path)
    queries = [topic_sentence(rng, 0) for _ in range(3)]
    whole = select_corpus(queries, pool, tmp_path / "whole", k=4, index_dir=tmp_path / "whole-index")

    def killed(*args, **kwargs):
        raise Killed
    monkeypatch.setattr(*((knn_index, "save_index", killed) if kill_at == "index" else (Record, "write", killed)))
    with pytest.raises(Killed):
        select_corpus(queries, pool, tmp_path / "out", k=4, index_dir=tmp_path / "index")
    monkeypatch.undo()
    left = {path.name for path in (tmp_path / "index").iterdir()}
    assert {"embedder", "pool_scan.npz"} <= left and ("index_key.json" in left) == (kill_at == "record")
    assert not (tmp_path / "out" / SELECT_RECORD_FILE).exists()
    again = select_corpus(queries, pool, tmp_path / "out", k=4, index_dir=tmp_path / "index")
    assert (again.selected, read_corpus(tmp_path / "out")) == (whole.selected, read_corpus(tmp_path / "whole"))
    assert (tmp_path / "index" / "index_key.json").read_text() == (
        tmp_path / "whole-index" / "index_key.json").read_text()


@pytest.mark.parametrize("settings, message", [
    (["selection.index=hnsw"], "--set selection.index=hnsw: selection: key 'index': 'hnsw'; must be one of flat, ivf"),
    (["selection.embedder=vampire"], "--set selection.embedder=vampire: selection: key 'embedder': 'vampire'; "
                                     "must be one of bow, encoder"),
    (["selection.embedder=encoder", "selection.encoder_model=./no/model"], "./no/model: model path does not exist"),
    (["selection.unit=sentences"], "--set selection.unit=sentences: selection: key 'unit': 'sentences'; "
                                   "must be one of sentence, line"),
])
def test_a_selection_setting_the_runner_cannot_select_with_is_one_line_before_any_work(settings, message, tmp_path,
                                                                                          capsys):
    """An unknown embedder or index, or an encoder that does not load: select_corpus refused them
    once the kNN stage's turn came, after the base stage (and every job before it) had run."""
    from conftest import REPO, write_tiny_mini_tasks

    write_tiny_mini_tasks(tmp_path / "data")
    flags = [flag for setting in settings for flag in ("--set", setting)]
    assert main(["run", str(REPO / "experiments" / "knn_tapt_50"), "--dry-run", "--no-wandb", "--tasks", "aclsum-roles",
                 "--data-dir", str(tmp_path / "data"), "--results-dir", str(tmp_path / "results"),
                 "--cache-dir", str(tmp_path / "cache"), *flags]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"dontstop: error: {message}"]


def test_the_runners_knn_stages_share_an_index_only_under_one_leakage_guard(mini_suite, tmp_path, capsys):
    """50NN then 150NN of one task, the second after the pool was touched (same bytes) and under a
    larger leakage guard (a task downloaded, a dev file edited since): each selects (the index
    folder, named by content but not by the guard, was refused as `built for another pool`, mid-run)."""
    from dontstop.conditions import EXPERIMENTS_DIR, load_condition
    from dontstop.runner.job_actions import _select
    from dontstop.runner.plan import plan_runs

    pool, rng = topic_pool(tmp_path)
    mini_suite.pools["cs"] = str(pool)
    stages = [plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / name), ["aclsum-roles"])[0].stages[-1]
              for name in ("knn_tapt_50", "knn_tapt_150", "knn_tapt_500")]
    guard = {text_key("a held-out sentence")}
    _select(stages[0], mini_suite, guard)
    pool.write_bytes(pool.read_bytes())   # same bytes, new mtime
    _select(stages[1], mini_suite, guard)
    assert "reusing index" in capsys.readouterr().out
    _select(stages[2], mini_suite, guard | {text_key("a dev sentence edited since")})
    assert "reusing index" not in capsys.readouterr().out
    assert all((stage.selection_dir / SELECT_RECORD_FILE).is_file() for stage in stages)


def test_a_curated_file_or_pool_of_nothing_but_task_text_is_refused_when_the_plan_is_checked(mini_suite, tmp_path):
    """A task file given as a curated file or pool: pretraining and selection drop the task's train
    and the suite's dev/test text, so Curated-TAPT pretrained on the train text alone (TAPT, exit 0)
    and a kNN stage stopped once the stages before it were built. Refused with the plan's checks."""
    from dontstop.conditions import EXPERIMENTS_DIR, load_condition
    from dontstop.runner.inputs import check_inputs
    from dontstop.runner.plan import plan_runs

    task_dir = Path(mini_suite.task_dir("aclsum-roles"))
    curated = tmp_path / "curated.txt"   # the task's test text, copied out of its jsonl
    curated.write_text("".join(json.loads(line)["text"] + "\n" for line in (task_dir / "test.jsonl").open()))
    mini_suite.curated["aclsum-roles"], mini_suite.pools["cs"] = str(curated), str(task_dir / "train.jsonl")
    plans = [plan for name in ("curated_tapt", "knn_tapt_50", "rand_tapt")
             for plan in plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / name), ["aclsum-roles"])]
    with pytest.raises(UserError) as refused:
        check_inputs(plans, mini_suite)
    lines = str(refused.value).splitlines()
    assert [line.split(":")[0] for line in lines] == [str(curated), str(task_dir / "train.jsonl")]
    assert all("would pretrain on the task's text alone" in line for line in lines)
    curated.write_text("a curated document of its own\n")   # one document beyond the task's text is enough
    mini_suite.pools["cs"] = str(write_pool(tmp_path / "pool.jsonl", [{"text": "a pool document"}]))
    plans = [plan for name in ("curated_tapt", "knn_tapt_50")
             for plan in plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / name), ["aclsum-roles"])]
    check_inputs(plans, mini_suite)


def test_a_domain_or_base_corpus_of_nothing_but_dev_and_test_text_is_refused_when_the_plan_is_checked(
        mini_suite, tmp_path):
    """A task's dev file given as a domain corpus: pretraining drops dev/test text, so DAPT stopped
    with nothing to pretrain on once the base stage had been built (minutes; hours on a real model)."""
    from dontstop.conditions import EXPERIMENTS_DIR, load_condition
    from dontstop.runner.inputs import check_inputs
    from dontstop.runner.plan import plan_runs

    dev = Path(mini_suite.task_dir("rt-polarity")) / "dev.jsonl"
    mini_suite.domain_corpora["reviews"] = str(dev)
    plans = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "dapt"), ["rt-polarity"])
    with pytest.raises(UserError) as refused:
        check_inputs(plans, mini_suite)
    assert str(refused.value) == (f"{dev}: every document of this dapt corpus is dev/test text of the suite's tasks, "
                                  "which pretraining drops: dapt-reviews would pretrain on nothing (a task file "
                                  "given by mistake?)")
    mini_suite.domain_corpora["reviews"] = str(write_pool(tmp_path / "reviews.jsonl", [{"text": "a review"}]))
    check_inputs(plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "dapt"), ["rt-polarity"]), mini_suite)


@pytest.mark.parametrize("given", ["train.jsonl", "its text"])
def test_a_domain_corpus_of_nothing_but_the_tasks_train_text_is_refused_when_the_plan_is_checked(given, mini_suite, tmp_path):
    """A task's train split given as a domain corpus (the file, or its texts one a line): DAPT trained on
    the task's own text, TAPT under DAPT's name in every table, with exit 0. A corpus holding some of it
    beside text of its own is a corpus."""
    from dontstop.conditions import EXPERIMENTS_DIR, load_condition
    from dontstop.runner.inputs import check_inputs
    from dontstop.runner.plan import plan_runs

    train = Path(mini_suite.task_dir("rt-polarity")) / "train.jsonl"
    texts = [json.loads(line)["text"] for line in train.read_text().splitlines()]
    corpus = train if given == "train.jsonl" else tmp_path / "reviews.txt"
    corpus.write_text(corpus.read_text() if corpus == train else "\n".join(texts) + "\n")
    mini_suite.domain_corpora["reviews"] = str(corpus)
    with pytest.raises(UserError) as refused:
        check_inputs(plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "dapt"), ["rt-polarity"]), mini_suite)
    assert str(refused.value) == (f"{corpus}: every document of this dapt corpus is train text of the suite's tasks "
                                  "or their dev/test text, which pretraining drops: dapt-reviews would pretrain on the "
                                  "tasks' train text alone, TAPT under another name (a task file given by mistake?)")
    (tmp_path / "more.txt").write_text("\n".join([*texts, "a review of its own"]) + "\n")
    mini_suite.domain_corpora["reviews"] = str(tmp_path / "more.txt")
    check_inputs(plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "dapt"), ["rt-polarity"]), mini_suite)


def test_the_tasks_train_text_is_read_once_for_every_domain_corpus_and_leniently(mini_suite, monkeypatch):
    """The check above read every task's train split once per base and domain corpus (the paper's
    suite: 440K texts, ~8 s each on 2 cores, four domains), on every dry run and status call until
    DAPT was built; now once, and not again while the files stay as they were. A bad line in the
    train split of a task the plan does not run refused the plan, naming that file (the run never
    reads it)."""
    from dontstop.conditions import EXPERIMENTS_DIR, load_condition
    from dontstop.data import formats
    from dontstop.runner import inputs
    from dontstop.runner.plan import plan_runs

    other = Path(mini_suite.task_dir("aclsum-roles")) / "train.jsonl"   # a task no plan here runs
    reads = []

    def counted(path, *args, **kwargs):
        reads.append(Path(path))
        return parse_split(path, *args, **kwargs)

    parse_split = formats.parse_split
    monkeypatch.setattr(formats, "parse_split", counted)
    monkeypatch.setattr(inputs, "parse_split", counted)
    plans = [plan for task in ("rt-polarity", "bbc-topic")   # the base, reviews and news corpora
             for plan in plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "dapt"), [task])]
    inputs.check_inputs(plans, mini_suite)
    assert reads.count(other) == 1
    reads.clear()
    inputs.check_inputs(plans, mini_suite)
    assert reads.count(other) == 0
    with other.open("a") as f:
        f.write('{"text": "cut short", "label": \n')
    inputs.check_inputs(plans, mini_suite)
    assert reads.count(other) == 1


def test_a_tapt_corpus_of_nothing_but_another_tasks_test_text_is_refused_when_the_plan_is_checked(mini_suite):
    """A task whose train split is another task's test split: TAPT dropped every document as
    dev/test text and stopped once jobs had started."""
    import shutil

    from dontstop.conditions import EXPERIMENTS_DIR, load_condition
    from dontstop.runner.inputs import check_inputs
    from dontstop.runner.plan import plan_runs

    train = Path(mini_suite.task_dir("rt-polarity")) / "train.jsonl"
    shutil.copy(train, Path(mini_suite.task_dir("bbc-topic")) / "test.jsonl")
    with pytest.raises(UserError) as refused:
        check_inputs(plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "tapt"), ["rt-polarity"]), mini_suite)
    assert str(refused.value) == (f"{train}: every document of this tapt corpus is dev/test text of the suite's "
                                  "tasks, which pretraining drops: tapt-rt-polarity would pretrain on nothing (a "
                                  "split copied from another task's?)")


def test_a_finished_selection_copied_from_another_stage_or_cut_is_refused_before_any_work(mini_suite, tmp_path):
    """A kNN stage pretrains on its selection folder's corpus.jsonl once the stages before it are
    built: a folder copied from 50NN into 150NN's place was pretrained on as 150NN, and one whose
    corpus.jsonl was deleted failed then. Both refused with the run's model checks (dry run too)."""
    import shutil

    from dontstop.conditions import EXPERIMENTS_DIR, load_condition
    from dontstop.runner.job_actions import _select
    from dontstop.runner.jobs import check_job_models, make_jobs
    from dontstop.runner.plan import plan_runs
    from dontstop.runner.slurm_queue import slug
    from dontstop.runner.status import damaged_stages

    mini_suite.pools["cs"] = str(topic_pool(tmp_path)[0])
    plans = [plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / name), ["aclsum-roles"])[0]
             for name in ("knn_tapt_50", "knn_tapt_150")]
    knn50, knn150 = (plan.stages[-1] for plan in plans)
    _select(knn50, mini_suite, set())
    jobs = make_jobs(plans)
    check_job_models(jobs, mini_suite)   # a whole selection of the stage asked is reused
    shutil.copytree(knn50.selection_dir, knn150.selection_dir)
    with pytest.raises(UserError, match=r"a finished selection, not the one its stage asks \(k 5, asked 15;"):
        check_job_models(jobs, mini_suite)
    shutil.rmtree(knn150.selection_dir)
    record = json.loads((knn50.selection_dir / SELECT_RECORD_FILE).read_text())
    for field, value, says in (("pool", "/elsewhere/news.jsonl", "pool news.jsonl, asked pool.jsonl"),
                               ("task_texts", 7, "7 task texts, ")):   # another pool's or task's, copied in
        (knn50.selection_dir / SELECT_RECORD_FILE).write_text(json.dumps({**record, field: value}))
        with pytest.raises(UserError, match=re.escape(f"not the one its stage asks ({says}")):
            check_job_models(jobs, mini_suite)
    (knn50.selection_dir / SELECT_RECORD_FILE).write_text(json.dumps(record))
    (knn50.selection_dir / SELECTED_CORPUS_FILE).unlink()
    with pytest.raises(UserError, match=rf"{knn50.selection_dir}: .*corpus.jsonl missing, recorded \d+; .*remove "
                                        "the folder to select again"):
        check_job_models(jobs, mini_suite)
    damaged = damaged_stages(jobs, mini_suite)   # `dontstop status` shows the same line
    assert list(damaged) == [slug(job) for job in jobs if job.kind == "pretrain" and job.stage is knn50]
    assert "corpus.jsonl missing" in next(iter(damaged.values()))


def test_reproduce_makes_again_the_knn_selections_its_notebook_shows_when_the_cache_lacks_them(
        mini_suite, tmp_path, capsys, monkeypatch):
    """A clean clone holds finished kNN runs and no cache: the notebook's nearest-neighbour cell
    found no selection, so a clean clone's `reproduce` changed the committed notebook. The
    selection of each kNN stage with a finished run is made again (not its pretraining), once."""
    from conftest import metrics_record
    from dontstop.conditions import EXPERIMENTS_DIR, load_condition
    from dontstop.report.notebook import nearest_neighbours
    from dontstop.runner.job_actions import build_missing_selections
    from dontstop.runner.plan import plan_runs

    from dontstop.runner import job_actions

    mini_suite.pools["cs"] = str(topic_pool(tmp_path)[0])
    plans = [plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / name), ["aclsum-roles"])[0]
             for name in ("knn_tapt_50", "knn_tapt_150")]
    knn50, knn150 = (plan.stages[-1] for plan in plans)
    metrics_record(condition="knn_tapt_50").write(plans[0].run_dir(0))   # knn_tapt_150: no run
    monkeypatch.setattr(job_actions, "NOTEBOOK_POOL_MAX_MB", 0)   # a paper-size pool: hours to embed
    build_missing_selections(plans, mini_suite)
    assert not knn50.selection_dir.exists() and "too large to select from again" in capsys.readouterr().out
    monkeypatch.undo()
    build_missing_selections(plans, mini_suite)
    assert (knn50.selection_dir / SELECT_RECORD_FILE).exists() and not knn150.selection_dir.exists()
    assert not knn50.record_path.exists()   # no pretraining
    assert capsys.readouterr().out.startswith(
        "selection base+knn50-aclsum-roles: not in the cache (or its index); made again for the notebook\n")
    record = {"lineage": knn50.lineage, "corpus_files": [str(knn50.selection_dir / SELECTED_CORPUS_FILE)],
              "selection": {"pool": mini_suite.pools["cs"], "k": 5, "unit": "sentence"}}
    found, why = nearest_neighbours(mini_suite.cache_dir, mini_suite.name, record)
    assert why == "" and len(found) > 0
    pool = Path(mini_suite.pools["cs"])   # a record's relative pool path: read from where the run started
    relative = {**record, "selection": {**record["selection"], "pool": pool.name}}
    assert nearest_neighbours(mini_suite.cache_dir, mini_suite.name, relative, workdir=pool.parent)[1] == ""
    with open(pool, "a", encoding="utf-8") as f:   # the pool edited since: its line numbers moved
        f.write(json.dumps({"text": "one more document", "source": "other"}) + "\n")
    found, why = nearest_neighbours(mini_suite.cache_dir, mini_suite.name, record)
    assert found is None and why.startswith(f"{pool}: not the pool the saved index ")
    build_missing_selections(plans, mini_suite)   # made: nothing more to do (for the edited pool, below)
    assert capsys.readouterr().out.endswith("its index is not made again, and the notebook skips its nearest neighbours\n")
    pool.write_text("".join(pool.read_text(encoding="utf-8").splitlines(keepends=True)[:-1]), encoding="utf-8")
    build_missing_selections(plans, mini_suite)
    assert capsys.readouterr().out == ""
    made = (knn50.selection_dir / SELECTED_CORPUS_FILE).read_bytes()
    shutil.rmtree(Path(mini_suite.cache_dir) / mini_suite.name / "indexes")   # removed to free the disk
    build_missing_selections(plans, mini_suite)   # the index alone: the selection made is left as it is
    assert capsys.readouterr().out.startswith(
        "selection base+knn50-aclsum-roles: not in the cache (or its index); made again for the notebook\n")
    assert (knn50.selection_dir / SELECTED_CORPUS_FILE).read_bytes() == made
    assert sorted(p.name for p in knn50.selection_dir.parent.iterdir()) == [   # no scratch left; its lock
        f".{knn50.selection_dir.name}.lock", knn50.selection_dir.name]
    assert nearest_neighbours(mini_suite.cache_dir, mini_suite.name, record)[1] == ""


def test_a_selection_made_again_for_its_index_and_killed_leaves_no_scratch_once_made_again(
        mini_suite, tmp_path, capsys, monkeypatch):
    """`reproduce` makes a selection again in a hidden scratch folder beside it for the index the
    notebook reads; killed while it saved the index, the scratch folder and the index's temporary
    (`.index.faiss.<8>.tmp`: GBs for a paper-size pool) stayed in the cache for good. The next call
    removes both under the selection's and the index's locks, in one line, and makes the index as an
    uninterrupted call does."""
    import tempfile

    from conftest import metrics_record
    from dontstop.conditions import EXPERIMENTS_DIR, load_condition
    from dontstop.fileio import atomic_output
    from dontstop.runner.job_actions import build_missing_selections
    from dontstop.runner.plan import plan_runs

    mini_suite.pools["cs"] = str(topic_pool(tmp_path)[0])
    plan = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "knn_tapt_50"), ["aclsum-roles"])[0]
    stage = plan.stages[-1]
    metrics_record(condition="knn_tapt_50").write(plan.run_dir(0))
    build_missing_selections([plan], mini_suite)   # the selection and its index, uninterrupted
    indexes = Path(mini_suite.cache_dir) / mini_suite.name / "indexes"
    [index] = [path for path in indexes.iterdir() if path.is_dir()]
    whole = {str(path.relative_to(index)): path.read_bytes() for path in index.rglob("*") if path.is_file()}
    made = (stage.selection_dir / SELECTED_CORPUS_FILE).read_bytes()
    shutil.rmtree(indexes)   # removed to free the disk: the next reproduce makes the selection again
    left = []

    class Killed(BaseException):
        pass

    def killed_saving(faiss_index, path):   # mid-write: atomic_output's temporary, as a kill leaves it
        write = atomic_output(path, "wb")
        half = write.__enter__()
        half.write(b"half an index")
        half.flush()
        left.append(write)
        raise Killed

    class KilledScratch(tempfile.TemporaryDirectory):   # a kill runs no cleanup, on exit or collection
        def __exit__(self, *exc):
            self._finalizer.detach()
    monkeypatch.setattr(knn_index, "save_index", killed_saving)
    monkeypatch.setattr(tempfile, "TemporaryDirectory", KilledScratch)
    with pytest.raises(Killed):
        build_missing_selections([plan], mini_suite)
    monkeypatch.undo()
    [scratch] = [path for path in stage.selection_dir.parent.iterdir() if path.name.startswith(f".{stage.selection_dir.name}-")
                 and not path.name.endswith(".lock")]
    [temporary] = index.glob(".index.faiss.*.tmp")
    capsys.readouterr()
    build_missing_selections([plan], mini_suite)
    out = capsys.readouterr().out
    assert re.search(rf"^note: selection {re.escape(stage.lineage)}: removed what a killed earlier attempt left in "
                     rf"{re.escape(str(indexes.parent))} \(13 B\): "
                     rf"selections/{re.escape(scratch.name)}, indexes/{index.name}/{re.escape(temporary.name)}$",
                     out, re.MULTILINE), out
    assert not scratch.exists() and not temporary.exists()
    assert sorted(path.name for path in stage.selection_dir.parent.iterdir()) == [
        f".{stage.selection_dir.name}.lock", stage.selection_dir.name]
    assert {str(path.relative_to(index)): path.read_bytes() for path in index.rglob("*") if path.is_file()} == whole
    assert (stage.selection_dir / SELECTED_CORPUS_FILE).read_bytes() == made


def test_reproduce_makes_a_selection_whose_pool_changed_again_once_per_change_of_the_pool(
        mini_suite, tmp_path, capsys, monkeypatch):
    """A pool edited after its kNN selection was made: `reproduce` makes the selection again in a
    scratch folder for the notebook's index, finds it differs from the one made and drops the index.
    Every later reproduce did all of that again (up to NOTEBOOK_POOL_MAX_MB of pool embedded, for
    nothing); the outcome is remembered now, by the pool's content: a pool changed again is redone."""
    from conftest import metrics_record
    from dontstop.conditions import EXPERIMENTS_DIR, load_condition
    from dontstop.runner.job_actions import build_missing_selections
    from dontstop.runner.plan import plan_runs
    from dontstop.select import selection

    mini_suite.pools["cs"] = str(topic_pool(tmp_path)[0])
    plan = plan_runs(mini_suite, load_condition(EXPERIMENTS_DIR / "knn_tapt_50"), ["aclsum-roles"])[0]
    metrics_record(condition="knn_tapt_50").write(plan.run_dir(0))
    build_missing_selections([plan], mini_suite)   # the selection and its index, made
    made = (plan.stages[-1].selection_dir / SELECTED_CORPUS_FILE).read_bytes()
    real_select, calls = selection.select_corpus, []
    monkeypatch.setattr(selection, "select_corpus", lambda *args, **kwargs: calls.append(1) or real_select(*args, **kwargs))
    pool = Path(mini_suite.pools["cs"])
    redone = ("note: selection base+knn50-aclsum-roles: its inputs changed since it was made; its index is not "
              "made again, and the notebook skips its nearest neighbours\n")
    for change in range(2):
        with open(pool, "a", encoding="utf-8") as f:   # the pool edited since
            f.write(json.dumps({"text": f"one more document, change {change}", "source": "other"}) + "\n")
        capsys.readouterr()
        build_missing_selections([plan], mini_suite)
        assert len(calls) == change + 1 and capsys.readouterr().out.endswith(redone)
        build_missing_selections([plan], mini_suite)   # the same pool: nothing made again
        assert len(calls) == change + 1 and capsys.readouterr().out == (
            "note: selection base+knn50-aclsum-roles: its inputs changed since it was made (an earlier reproduce "
            "made it again); its index is not made again, and the notebook skips its nearest neighbours\n")
    assert (plan.stages[-1].selection_dir / SELECTED_CORPUS_FILE).read_bytes() == made   # left as it is
