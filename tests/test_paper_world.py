"""The offline paper world works for real: hub loading through the HF cache, HTTP downloads,
and task files shaped (and kept leak-free) as the project expects."""
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dontstop.tasks import PAPER_DOMAINS, PAPER_TASKS, SPLITS
from paper_world import (MISSING_HUB_IDS, PAPER_HUB_IDS, TASKS, build_paper_world, build_tiny_roberta,
                         normalize, serve_directory, write_paper_tasks)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_paper_world(tmp_path_factory.mktemp("paper-world"))


@pytest.fixture
def hub(world, monkeypatch):
    world.apply(monkeypatch)
    return world


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def texts(world, task, *splits):
    """The normalized texts of some splits of a task, as the project's leakage check keys them."""
    return {normalize(record["text"])
            for split in splits for record in read_jsonl(world.s3_root / task / f"{split}.jsonl")}


def test_world_covers_the_registry():
    assert list(TASKS) == list(PAPER_TASKS)
    for key, task in PAPER_TASKS.items():
        assert task.labels is None or TASKS[key].labels == task.labels, key
        assert TASKS[key].domain == task.domain
    assert {d.dapt_checkpoint for d in PAPER_DOMAINS.values()} <= set(PAPER_HUB_IDS)
    assert len(set(PAPER_HUB_IDS)) == 25 and not set(MISSING_HUB_IDS) & set(PAPER_HUB_IDS)


def test_cache_is_laid_out_as_huggingface_hub_lays_it_out(world):
    from huggingface_hub import scan_cache_dir, try_to_load_from_cache

    scan = scan_cache_dir(world.hf_cache)  # reports any corrupted repo in `warnings`
    assert not scan.warnings
    assert {repo.repo_id for repo in scan.repos} == set(PAPER_HUB_IDS)
    assert len({rev.commit_hash for repo in scan.repos for rev in repo.revisions}) == len(PAPER_HUB_IDS)
    for hub_id in PAPER_HUB_IDS:
        assert try_to_load_from_cache(hub_id, "config.json", cache_dir=world.hf_cache), hub_id
    for hub_id in MISSING_HUB_IDS:
        assert try_to_load_from_cache(hub_id, "config.json", cache_dir=world.hf_cache) is None


def test_released_configs_declare_no_architecture(world):
    from huggingface_hub import try_to_load_from_cache

    for hub_id in PAPER_HUB_IDS[1:]:
        path = try_to_load_from_cache(hub_id, "config.json", cache_dir=world.hf_cache)
        config = json.loads(Path(path).read_text())
        assert "architectures" not in config and config["model_type"] == "roberta", hub_id


def test_tiny_roberta_is_deterministic(world, tmp_path):
    assert build_tiny_roberta(tmp_path) == world.vocab_size
    for name in ("vocab.json", "merges.txt", "model.safetensors"):
        assert (tmp_path / name).read_bytes() == (world.model_dir / name).read_bytes(), name


def test_published_models_load_offline(hub):
    import torch
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

    for hub_id in ("roberta-base", "allenai/cs_roberta_base"):
        model = AutoModelForMaskedLM.from_pretrained(hub_id)
        assert model.config.vocab_size == hub.vocab_size
    classifier = AutoModelForSequenceClassification.from_pretrained(
        "allenai/dsp_roberta_base_dapt_biomed_tapt_chemprot_4169", num_labels=13)
    ids = torch.randint(5, hub.vocab_size, (2, 512))  # the longest input the paper uses
    assert classifier(input_ids=ids).logits.shape == (2, 13)


def test_released_tokenizer_truncates_a_hyperpartisan_article(hub):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained("allenai/dsp_roberta_base_tapt_chemprot_4169")
    assert len(tokenizer) == hub.vocab_size and tokenizer.pad_token_id == 1
    article = read_jsonl(hub.s3_root / "hyperpartisan_news" / "train.jsonl")[0]["text"]
    assert len(tokenizer(article)["input_ids"]) > 512
    encoded = tokenizer(article, truncation=True, max_length=512)["input_ids"]
    assert len(encoded) == 512 and encoded[0] == 0 and encoded[-1] == 2
    # The released tokenizer_config.json says max_len 512; roberta-base's hub repo has no
    # tokenizer_config.json, so its tokenizer has no usable length limit: pass max_length.
    assert tokenizer.model_max_length == 512
    assert AutoTokenizer.from_pretrained("roberta-base").model_max_length > 10**9


@pytest.mark.parametrize("hub_id", MISSING_HUB_IDS)
def test_unpublished_ids_fail_to_load(hub, hub_id):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    with pytest.raises(OSError, match="couldn't find them in the cached files"):
        AutoModelForMaskedLM.from_pretrained(hub_id)
    with pytest.raises(OSError, match="couldn't find them in the cached files"):
        AutoTokenizer.from_pretrained(hub_id)


def test_env_alone_points_a_fresh_process_at_the_world(world):
    script = ("from transformers import AutoModelForMaskedLM as M\n"
              "print(M.from_pretrained('allenai/news_roberta_base').config.vocab_size)")
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, **world.env},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == str(world.vocab_size)


def test_task_files_download_over_http(world):
    path = world.s3_root / "chemprot" / "train.jsonl"
    with serve_directory(world.s3_root) as url:
        with urllib.request.urlopen(f"{url}/chemprot/train.jsonl") as response:
            assert response.status == 200 and response.read() == path.read_bytes()
        resume = urllib.request.Request(f"{url}/chemprot/train.jsonl", headers={"Range": "bytes=100-"})
        with urllib.request.urlopen(resume) as response:  # what a resumed download asks S3
            assert response.status == 206 and response.read() == path.read_bytes()[100:]
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"{url}/chemprot/missing.jsonl")


def test_task_files_have_the_paper_format(world):
    for task, spec in TASKS.items():
        splits = {split: read_jsonl(world.s3_root / task / f"{split}.jsonl") for split in SPLITS}
        for split, records in splits.items():
            want = {"id", "text", "label"} if task == "hyperpartisan_news" else {"text", "label"}
            assert all(set(r) == want for r in records), (task, split)
            assert {r["label"] for r in records} <= set(spec.labels), (task, split)
        assert {r["label"] for r in splits["train"]} == set(spec.labels), task
        assert 24 <= len(splits["train"]) <= 60 and 12 <= len(splits["dev"]) <= 20, task
    articles = read_jsonl(world.s3_root / "hyperpartisan_news" / "dev.jsonl")
    assert min(len(r["text"]) for r in articles) > 4000


def test_rct_sample_is_drawn_from_rct_train(world):
    assert texts(world, "rct-sample", "train") < texts(world, "rct-20k", "train")
    for split in ("dev", "test"):
        assert texts(world, "rct-sample", split) == texts(world, "rct-20k", split)


def test_no_dev_or_test_text_in_any_train_split_or_corpus(world):
    heldout = set().union(*(texts(world, task, "dev", "test") for task in TASKS))
    train = set().union(*(texts(world, task, "train") for task in TASKS))
    corpus = {normalize(line) for path in world.corpora.values() for line in path.read_text().splitlines()}
    assert heldout and not heldout & train and not heldout & corpus
    assert set(world.corpora) == set(PAPER_DOMAINS) and len(corpus) == 4 * 300


def test_domains_have_their_own_words(world):
    vocabularies = {d: set(p.read_text().lower().split()) for d, p in world.corpora.items()}
    assert len(vocabularies["biomed"] & vocabularies["news"]) < len(vocabularies["biomed"]) / 2


def test_task_files_are_deterministic(world, tmp_path):
    write_paper_tasks(tmp_path)
    for task in TASKS:
        for split in SPLITS:
            name = f"{task}/{split}.jsonl"
            assert (tmp_path / name).read_bytes() == (world.s3_root / name).read_bytes(), name
