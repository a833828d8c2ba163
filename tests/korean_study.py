"""A small study in Korean, written by the tests: comments that agree (찬성) or disagree (반대),
a news-comments domain corpus and a second, encyclopedic one, and a tiny BERT whose WordPiece
vocabulary is built from that text (so every Hangul word is covered), saved as a local model folder.

    study = build_korean_study(root)                  # root/study.yaml and everything it names
    study = build_korean_study(root, rich=True)       # + a second comments task, a pool, a curated pool

Nothing is downloaded; the text comes from the word lists below and a seeded random generator.
"""
import json
import random
from pathlib import Path

import yaml

TOPICS = "오늘 어제 이번 우리 동네 서울 부산 지난주".split()
NOUNS = "정부 정책 기사 선수 경기 가격 학교 도로 날씨 영화 음식 병원 시장 회사 공원 버스".split()
ADVERBS = "정말 너무 아주 조금 확실히 그냥 다시 벌써".split()
VERDICTS = {"찬성": "좋네요 동의합니다 감사합니다 훌륭합니다 멋집니다 응원합니다".split(),
            "반대": "반대합니다 실망입니다 거짓말입니다 최악입니다 부끄럽습니다 화납니다".split()}
WIKI = "역사 과학 도시 강 산 대학교 인구 세기 왕조 언어 문화 기후 철도 항구 사찰 박물관".split()
WIKI_VERBS = "시작되었다 발전하였다 기록되었다 알려져 있다 세워졌다 이어졌다".split()
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Every recipe shrunk to seconds; the rest (lr, patience, selection) comes from the mini suite.
TINY = {"batch_size": 8, "per_device_batch_size": 8, "max_length": 32, "heldout_documents": 5}


def comment(rng: random.Random, label: str, mixed: float = 0.0) -> str:
    """A comment; with probability `mixed` its verdict word is the other label's (a sarcastic or
    mislabelled one), so that seeds differ and the findings have something to test."""
    if rng.random() < mixed:
        label = next(other for other in VERDICTS if other != label)
    return (f"{rng.choice(TOPICS)} {rng.choice(NOUNS)} {rng.choice(NOUNS)} {rng.choice(ADVERBS)} "
            f"{rng.choice(VERDICTS[label])} {rng.randint(1, 9999)}번 댓글")


def encyclopedia(rng: random.Random) -> str:
    return f"{rng.choice(WIKI)}의 {rng.choice(WIKI)}는 {rng.randint(1000, 2020)}년에 {rng.choice(WIKI_VERBS)}"


def write_task(folder: Path, rng: random.Random, sizes=(40, 20, 20)) -> list[str]:
    """train/dev/test.jsonl, half of each split per label; returns every text written."""
    folder.mkdir(parents=True)
    texts = []
    for split, size in zip(("train", "dev", "test"), sizes):
        rows = [{"id": f"{split}-{i}", "text": comment(rng, label, mixed=0.2), "label": label}
                for i, label in enumerate(["찬성", "반대"] * (size // 2))]
        (folder / f"{split}.jsonl").write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
        texts += [row["text"] for row in rows]
    return texts


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def wordpiece_vocab(texts: list[str]) -> list[str]:
    """The tokenizer's vocabulary, the same at every build: the special tokens, every word of the
    word lists whole, and every character of `texts` alone and as a continuation ("##가"), so that
    any word (a number, a word and its particle) splits into known pieces. A trained WordPiece
    vocabulary is not the same at every build (its ids and, at ties, its tokens follow a hash
    map's per-process order), and a test's metrics would change with it."""
    lists = [TOPICS, NOUNS, ADVERBS, *VERDICTS.values(), WIKI, WIKI_VERBS, ["댓글"]]
    words = sorted({piece for words in lists for word in words for piece in word.split()})
    characters = sorted({char for text in texts for char in text if not char.isspace()})
    return SPECIALS + words + [c for c in characters if c not in words] + ["##" + c for c in characters]


def save_tiny_bert(folder: Path, texts: list[str]) -> None:
    """A BertForMaskedLM (2 layers, hidden 32) with a cased WordPiece tokenizer covering these texts."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    vocab = wordpiece_vocab(texts)
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=False,
                              strip_accents=False, model_max_length=64)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=66, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def study_spec(rich: bool) -> dict:
    """The study file's keys; `rich` adds a second task of the domain, a kNN pool and a curated pool."""
    spec = {"name": "korean-comments", "extends": "mini", "base_model": "model", "base_corpus": None,
            "seeds": [0, 1], "quick_seeds": [0], "probe": False,
            "tasks": {"comments": {"display": "논란 댓글", "data": "data/comments", "metric": "macro_f1",
                                   "domain": "news_comments"}},
            "domain_corpora": {"news_comments": "corpora/comments.txt", "wiki": "corpora/wiki.txt"},
            "recipes": {"dapt": {**TINY, "max_steps": 3}, "tapt": {**TINY, "epochs": 1},
                        "tapt_large": {**TINY, "epochs": None, "max_steps": 2}},
            "finetune": {"epochs": 12, "patience": 12, "max_length": 32, "batch_size": 8, "lr": 1.0e-3},
            "selection": {"dim": 8}}
    if rich:
        spec["tasks"]["replies"] = {"display": "답글", "data": "data/replies", "metric": "accuracy",
                                    "domain": "news_comments", "profile": "high"}
        spec["pools"] = {"news_comments": "pools/comments.jsonl"}
        spec["curated"] = {"comments": "curated/comments.txt"}
    return spec


def build_korean_study(root: Path, rich: bool = False) -> Path:
    """Write the study's data, corpora, model and study.yaml under `root`; returns the study file."""
    rng = random.Random(0)
    texts = write_task(root / "data" / "comments", rng)
    if rich:
        texts += write_task(root / "data" / "replies", rng)
    corpus = [comment(rng, rng.choice(["찬성", "반대"])) for _ in range(120)]
    wiki = [encyclopedia(rng) for _ in range(120)]
    write_lines(root / "corpora" / "comments.txt", corpus)
    write_lines(root / "corpora" / "wiki.txt", wiki)
    if rich:
        pool = [{"text": text, "source": "news_comments"} for text in corpus[:60]]
        pool += [{"text": text, "source": "wiki"} for text in wiki[:60]]
        write_lines(root / "pools" / "comments.jsonl", [json.dumps(row, ensure_ascii=False) for row in pool])
        write_lines(root / "curated" / "comments.txt", [comment(rng, "찬성") for _ in range(40)])
    save_tiny_bert(root / "model", texts + corpus + wiki)
    study = root / "study.yaml"
    study.write_text(yaml.safe_dump(study_spec(rich), allow_unicode=True, sort_keys=False), encoding="utf-8")
    return study
