"""An offline stand-in for the real world of the paper suite, built in a temporary folder.

The project's real code paths run against it unchanged:
- the Hugging Face hub: a hub cache laid out as huggingface_hub lays it out, holding a tiny
  RoBERTa under every published id (roberta-base, the 4 DAPT models, the TAPT-family models),
  so `from_pretrained(id)` with HF_HUB_CACHE=<cache> and HF_HUB_OFFLINE=1 runs the real
  loading code; the two ids the official README names but the hub never had are absent;
- S3: the paper's task files (`<task>/{train,dev,test}.jsonl`) for all 9 task keys, served
  over HTTP by `serve_directory`, plus one small corpus per domain under `corpora/`.

Text is generated from a small vocabulary per domain (so domains differ) with a
label-specific cue phrase (so labels are learnable-ish). No dev or test text occurs in any
train split or corpus, and RCT-500's train is a subset of RCT's train (its curated pool).

Usage:
    world = build_paper_world(tmp_path)
    world.apply(monkeypatch)            # env vars + this process's huggingface_hub
    with serve_directory(world.s3_root) as url: ...
    subprocess.run(..., env={**os.environ, **world.env})
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import io
import json
import os
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

# --- The published checkpoints (copied from shared/paper/FACTS.md; exact case) ---------------

DAPT_HUB_IDS = ("allenai/biomed_roberta_base", "allenai/cs_roberta_base",
                "allenai/news_roberta_base", "allenai/reviews_roberta_base")
TAPT_HUB_IDS = (
    "allenai/dsp_roberta_base_tapt_chemprot_4169",
    "allenai/dsp_roberta_base_dapt_biomed_tapt_chemprot_4169",
    "allenai/dsp_roberta_base_tapt_rct_180K",
    "allenai/dsp_roberta_base_dapt_biomed_tapt_rct_180K",
    "allenai/dsp_roberta_base_tapt_rct_500",
    "allenai/dsp_roberta_base_dapt_biomed_tapt_rct_500",
    "allenai/dsp_roberta_base_tapt_citation_intent_1688",
    "allenai/dsp_roberta_base_dapt_cs_tapt_citation_intent_1688",
    "allenai/dsp_roberta_base_tapt_sciie_3219",
    "allenai/dsp_roberta_base_tapt_hyperpartisan_news_515",
    "allenai/dsp_roberta_base_tapt_hyperpartisan_news_5015",
    "allenai/dsp_roberta_base_dapt_news_tapt_hyperpartisan_news_5015",
    "allenai/dsp_roberta_base_tapt_ag_115K",
    "allenai/dsp_roberta_base_dapt_news_tapt_ag_115K",
    "allenai/dsp_roberta_base_tapt_amazon_helpfulness_115K",
    "allenai/dsp_roberta_base_dapt_reviews_tapt_amazon_helpfulness_115K",
    "allenai/dsp_roberta_base_tapt_imdb_20000",
    "allenai/dsp_roberta_base_dapt_reviews_tapt_imdb_20000",
    "allenai/dsp_roberta_base_tapt_imdb_70000",
    "allenai/dsp_roberta_base_dapt_reviews_tapt_imdb_70000",
)
PAPER_HUB_IDS = ("roberta-base",) + DAPT_HUB_IDS + TAPT_HUB_IDS
# Named in the official README, but no hub page was seen: loading them must fail.
MISSING_HUB_IDS = ("allenai/dsp_roberta_base_dapt_cs_tapt_sciie_3219",
                   "allenai/dsp_roberta_base_dapt_news_tapt_hyperpartisan_news_515")

ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0-4, as in roberta-base

# What each kind of hub repo holds. roberta-base: the files transformers reads from the
# FacebookAI/roberta-base repo (it also has pytorch_model.bin, dict.txt, TF/Flax weights; it
# has no tokenizer_config.json, so transformers 5 leaves model_max_length unset there).
# allenai/*: what the official repo's scripts/download_tapt_model.sh fetches, transformers
# 2.x era: PyTorch pickle weights, slow-tokenizer files, no tokenizer.json, no safetensors.
ROBERTA_BASE_FILES = ("config.json", "merges.txt", "model.safetensors", "tokenizer.json", "vocab.json")
RELEASED_FILES = ("added_tokens.json", "config.json", "merges.txt", "pytorch_model.bin",
                  "special_tokens_map.json", "tokenizer_config.json", "vocab.json")
LFS_SUFFIXES = (".bin", ".safetensors")  # the hub stores these in LFS: blob name is their sha256

# --- The tasks (label strings of FACTS.md; the rest as in the released files, see below) ----

DOMAINS = ("biomed", "cs", "news", "reviews")


@dataclass(frozen=True)
class TaskSpec:
    domain: str
    labels: tuple[str, ...]
    sizes: tuple[int, int, int]   # train / dev / test lines in the fixture
    words: tuple[int, int] = (12, 30)  # words per text, min and max


TASKS: dict[str, TaskSpec] = {
    "chemprot": TaskSpec("biomed", (
        "ACTIVATOR", "AGONIST", "AGONIST-ACTIVATOR", "AGONIST-INHIBITOR", "ANTAGONIST",
        "DOWNREGULATOR", "INDIRECT-DOWNREGULATOR", "INDIRECT-UPREGULATOR", "INHIBITOR",
        "PRODUCT-OF", "SUBSTRATE", "SUBSTRATE_PRODUCT-OF", "UPREGULATOR"), (39, 13, 13)),
    "rct-20k": TaskSpec("biomed", ("BACKGROUND", "OBJECTIVE", "METHODS", "RESULTS", "CONCLUSIONS"),
                        (60, 15, 15)),
    # rct-sample is derived from rct-20k (see write_paper_tasks); its size here is its train size.
    "rct-sample": TaskSpec("biomed", ("BACKGROUND", "OBJECTIVE", "METHODS", "RESULTS", "CONCLUSIONS"),
                           (25, 15, 15)),
    "citation_intent": TaskSpec("cs", ("Background", "CompareOrContrast", "Extends", "Future",
                                       "Motivation", "Uses"), (30, 12, 12)),
    # SciERC's relation types. The registry reads sciie/ag/amazon/imdb labels from the data,
    # so these strings only need to be plausible; they are our best knowledge of the files.
    "sciie": TaskSpec("cs", ("COMPARE", "CONJUNCTION", "EVALUATE-FOR", "FEATURE-OF", "HYPONYM-OF",
                             "PART-OF", "USED-FOR"), (35, 14, 14)),
    # Articles longer than 512 tokens, so truncation really happens.
    "hyperpartisan_news": TaskSpec("news", ("false", "true"), (24, 12, 12), words=(800, 1000)),
    "ag": TaskSpec("news", ("1", "2", "3", "4"), (40, 12, 12)),
    "amazon": TaskSpec("reviews", ("helpful", "unhelpful"), (30, 12, 12)),
    "imdb": TaskSpec("reviews", ("0", "1"), (30, 12, 12)),
}

# Cue phrases for labels whose string says nothing; other labels cue with their own words.
CUES = {
    "hyperpartisan_news": {"false": "according to officials", "true": "radical outrageous elites"},
    "ag": {"1": "world diplomats", "2": "sports match", "3": "business earnings", "4": "science technology"},
    "amazon": {"helpful": "detailed measurements", "unhelpful": "whatever meh"},
    "imdb": {"0": "awful boring", "1": "wonderful brilliant"},
}

FUNCTION_WORDS = "the of and in to a with for on by was were is that from as at this these".split()
DOMAIN_WORDS = {
    "biomed": ("protein receptor kinase cells patients clinical trial dose enzyme gene expression "
               "tumor mice plasma serum insulin binding ligand pathway mutation therapy randomized "
               "cohort placebo hepatic renal cardiac neuronal assay antibody peptide membrane "
               "transcription mitochondrial oxidative glucose lipid chronic acute infection").split(),
    "cs": ("algorithm model network neural parsing corpus semantic syntactic training dataset "
           "embedding graph query compiler runtime benchmark accuracy baseline annotation entity "
           "classifier learning optimization gradient inference kernel lexical token sentence "
           "translation retrieval evaluation framework citation approach").split(),
    "news": ("government president election minister police court senator campaign policy economy "
             "market reporters city council vote congress law investigation protest statement "
             "spokesman tuesday wednesday administration parliament budget crisis troops governor "
             "republican democrat border taxes").split(),
    "reviews": ("product quality price battery screen movie film plot actor acting character camera "
                "sound delivery seller purchase recommend bought works broke cheap sturdy comfortable "
                "size color pages ending scene director stars returned warranty charger").split(),
}
CORPUS_DOCUMENTS = 300  # lines per domain corpus


def normalize(text: str) -> str:
    """The project's key for duplicate and leakage checks (dontstop.data.formats.normalize):
    copied, not imported, so this fixture stands apart from the code under test."""
    return " ".join(text.split()).lower()


# --- Text ---------------------------------------------------------------------------------------

def cue(task: str, label: str) -> str:
    if label in CUES.get(task, {}):
        return CUES[task][label]
    return label.lower().replace("-", " ").replace("_", " ")


def make_text(rng: random.Random, domain: str, length: int, cue_phrase: str | None = None) -> str:
    """`length` words of the domain, with the cue phrase in 1 to 3 places (more in long texts)."""
    words = [rng.choice(DOMAIN_WORDS[domain] if rng.random() < 0.6 else FUNCTION_WORDS)
             for _ in range(length)]
    if cue_phrase:
        for _ in range(rng.randint(1, 3) + length // 200):
            words.insert(rng.randrange(len(words) + 1), cue_phrase)
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


def unique_text(rng: random.Random, seen: set[str], domain: str, lengths: tuple[int, int],
                cue_phrase: str | None = None) -> str:
    """A text no other part of the world has (by the project's normalized key)."""
    while True:
        text = make_text(rng, domain, rng.randint(*lengths), cue_phrase)
        if normalize(text) not in seen:
            seen.add(normalize(text))
            return text


def make_split(task: str, split: str, size: int, seen: set[str]) -> list[dict]:
    """`size` records with every label at least once when size allows (labels cycle, then shuffle)."""
    spec = TASKS[task]
    rng = random.Random(f"{task}/{split}")  # str seeds are stable across runs and platforms
    labels = [spec.labels[i % len(spec.labels)] for i in range(size)]
    rng.shuffle(labels)
    records = [{"text": unique_text(rng, seen, spec.domain, spec.words, cue(task, label)), "label": label}
               for label in labels]
    if task == "hyperpartisan_news":  # the released files carry an article id
        records = [{"id": f"{split}-{i:04d}", **r} for i, r in enumerate(records)]
    return records


def corpus_documents(domain: str, count: int, seen: set[str]) -> list[str]:
    rng = random.Random(f"corpus/{domain}")
    return [unique_text(rng, seen, domain, (15, 40)) for _ in range(count)]


# --- Task files and corpora --------------------------------------------------------------------

def write_jsonl(path: Path, records: Iterable[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def write_paper_tasks(root: str | Path) -> dict[str, Path]:
    """`<root>/<task>/{train,dev,test}.jsonl` for the 9 task keys and `<root>/corpora/<domain>.txt`.

    Dev and test are drawn first so that train texts and corpus documents can avoid them.
    Returns the corpus path of each domain.
    """
    root = Path(root)
    seen: set[str] = set()
    drawn = [task for task in TASKS if task != "rct-sample"]  # rct-sample is cut from rct-20k
    splits = {task: {"dev": make_split(task, "dev", TASKS[task].sizes[1], seen),
                     "test": make_split(task, "test", TASKS[task].sizes[2], seen)} for task in drawn}
    for task in drawn:
        splits[task]["train"] = make_split(task, "train", TASKS[task].sizes[0], seen)
    splits["rct-sample"] = rct_sample(splits["rct-20k"], TASKS["rct-sample"].sizes[0])
    for task, by_split in splits.items():
        for split in ("train", "dev", "test"):
            write_jsonl(root / task / f"{split}.jsonl", by_split[split])
    corpora = {}
    (root / "corpora").mkdir(parents=True, exist_ok=True)
    for domain in DOMAINS:
        corpora[domain] = root / "corpora" / f"{domain}.txt"
        corpora[domain].write_text("\n".join(corpus_documents(domain, CORPUS_DOCUMENTS, seen)) + "\n",
                                   encoding="utf-8")
    return corpora


def rct_sample(rct: dict[str, list[dict]], size: int) -> dict[str, list[dict]]:
    """RCT-500 as released: train a sample of RCT train (so RCT train is its curated pool),
    dev and test the same as RCT's (the paper gives both tasks the same dev/test sizes)."""
    train = rct["train"]
    labels = sorted({r["label"] for r in train})
    first_of_each = [next(r for r in train if r["label"] == label) for label in labels]
    rest = [r for r in train if r not in first_of_each]
    sample = first_of_each + random.Random("rct-sample").sample(rest, size - len(first_of_each))
    return {"train": sample, "dev": rct["dev"], "test": rct["test"]}


def fixture_texts() -> list[str]:
    """Text to train the tiny tokenizer on: every domain's words and every cue phrase."""
    texts = [doc for domain in DOMAINS for doc in corpus_documents(domain, CORPUS_DOCUMENTS, set())]
    texts += [cue(task, label) for task, spec in TASKS.items() for label in spec.labels]
    return texts


# --- The tiny model ------------------------------------------------------------------------------

def build_tiny_roberta(directory: str | Path, texts: Iterable[str] | None = None,
                       vocab_size: int = 1000) -> int:
    """A seeded RobertaForMaskedLM (2 layers, hidden 32) with a byte-level BPE trained on `texts`.

    Writes what save_pretrained writes (config.json, model.safetensors, tokenizer.json,
    tokenizer_config.json) plus vocab.json, merges.txt and, as transformers 2.x saved it,
    pytorch_model.bin. Returns the vocabulary size.
    """
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(list(texts or fixture_texts()), vocab_size=vocab_size,
                            special_tokens=ROBERTA_SPECIALS, show_progress=False)
    bpe.save_model(str(directory))  # vocab.json + merges.txt, the files the released models ship
    # In transformers 5 only vocab=dict, merges=pairs builds the trained tokenizer: the fast
    # class's vocab_file=/merges_file= keywords silently give a 5-token vocabulary.
    model_json = json.loads(bpe._tokenizer.to_str())["model"]
    tokenizer = RobertaTokenizer(vocab=model_json["vocab"], merges=[tuple(m) for m in model_json["merges"]],
                                 model_max_length=512)
    assert len(tokenizer) == bpe.get_vocab_size(), "tokenizer lost its trained vocabulary"
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=64,
                           max_position_embeddings=514,  # 512 tokens + RoBERTa's padding offset 2
                           type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    torch.manual_seed(0)
    model = RobertaForMaskedLM(config)
    model.save_pretrained(directory)
    torch.save(model.state_dict(), directory / "pytorch_model.bin")
    tokenizer.save_pretrained(directory)
    return len(tokenizer)


# --- The hub cache -------------------------------------------------------------------------------

def repo_folder(hub_id: str) -> str:
    """huggingface_hub's repo_folder_name: `models--org--name`, `models--roberta-base` without org."""
    return "models--" + hub_id.replace("/", "--")


def fake_commit(hub_id: str) -> str:
    """A distinct, stable 40-hex commit per id (the hub's REGEX_COMMIT_HASH accepts it)."""
    return hashlib.sha1(f"paper-world:{hub_id}".encode()).hexdigest()


def blob_name(filename: str, content: bytes) -> str:
    """The hub names LFS blobs by sha256 and others by their git blob sha1."""
    if filename.endswith(LFS_SUFFIXES):
        return hashlib.sha256(content).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def repo_files(hub_id: str, model_dir: Path) -> dict[str, bytes]:
    """The file contents of one hub repo, shaped like the real one (see ROBERTA_BASE_FILES)."""
    if hub_id == "roberta-base":
        return {name: (model_dir / name).read_bytes() for name in ROBERTA_BASE_FILES}
    config = json.loads((model_dir / "config.json").read_text())
    config.pop("architectures", None)  # the released configs declare none
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
                "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}
    written = {
        "config.json": json.dumps(config, indent=2),
        "added_tokens.json": "{}",
        "special_tokens_map.json": json.dumps(specials),
        "tokenizer_config.json": json.dumps({"max_len": 512}),  # transformers 2.x's key (inferred)
    }
    files = {name: text.encode() for name, text in written.items()}
    for name in ("merges.txt", "pytorch_model.bin", "vocab.json"):
        files[name] = (model_dir / name).read_bytes()
    assert sorted(files) == sorted(RELEASED_FILES)
    return files


def add_repo(cache_dir: Path, hub_id: str, files: dict[str, bytes]) -> Path:
    """One repo as hf_hub_download leaves it: blobs/, snapshots/<commit>/ of relative
    symlinks into blobs, refs/main holding the commit. Returns the snapshot folder."""
    repo = cache_dir / repo_folder(hub_id)
    commit = fake_commit(hub_id)
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        blob = repo / "blobs" / blob_name(name, content)
        blob.write_bytes(content)
        (snapshot / name).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)  # no newline, as the hub writes it
    return snapshot


def fill_hf_cache(cache_dir: str | Path, model_dir: str | Path,
                  hub_ids: Iterable[str] = PAPER_HUB_IDS) -> dict[str, Path]:
    """Put the tiny model under every id; returns each id's snapshot folder."""
    cache_dir, model_dir = Path(cache_dir), Path(model_dir)
    return {hub_id: add_repo(cache_dir, hub_id, repo_files(hub_id, model_dir)) for hub_id in hub_ids}


# --- S3 --------------------------------------------------------------------------------------------

class QuietRangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single byte-range support as S3 has it (`Range: bytes=N-` answered with
    206, unless If-Range names another version than the ETag S3 sends), which resumable
    downloads rely on, and no access log on stderr."""

    def end_headers(self):
        path = Path(self.translate_path(self.path))
        if path.is_file():
            self.send_header("ETag", _etag(path))
        super().end_headers()

    def send_head(self):
        requested = self.headers.get("Range", "")
        path = Path(self.translate_path(self.path))
        if not requested.startswith("bytes=") or not path.is_file() \
                or self.headers.get("If-Range", _etag(path)) != _etag(path):
            return super().send_head()
        size = path.stat().st_size
        start_text, _, end_text = requested[len("bytes="):].partition("-")
        if start_text:  # bytes=N- or bytes=N-M
            start, end = int(start_text), min(int(end_text or size - 1), size - 1)
        else:  # bytes=-N: the last N bytes
            start, end = max(size - int(end_text), 0), size - 1
        if start >= size:
            self.send_error(416, "Requested Range Not Satisfiable")
            return None
        with open(path, "rb") as f:
            f.seek(start)
            body = f.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)  # do_GET copies it to the socket and closes it

    def log_message(self, *args):
        pass


def _etag(path: Path) -> str:
    return f'"{hashlib.md5(path.read_bytes()).hexdigest()}"'   # S3's, for a file sent in one part


@contextlib.contextmanager
def serve_directory(root: str | Path) -> Iterator[str]:
    """Serve `root` on 127.0.0.1 at a free port; yields the base URL (no trailing slash)."""
    handler = functools.partial(QuietRangeHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll interval: shutdown() waits for it, and the default 0.5 s adds up in tests.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- The whole world ---------------------------------------------------------------------------------

@dataclass
class PaperWorld:
    root: Path
    model_dir: Path               # the tiny model as save_pretrained wrote it
    vocab_size: int
    hf_cache: Path
    hf_home: Path
    s3_root: Path                 # serve it with serve_directory: <url>/<task>/<split>.jsonl
    corpora: dict[str, Path]      # domain -> one document a line
    env: dict[str, str]           # for subprocesses: {**os.environ, **world.env}

    def apply(self, monkeypatch) -> None:
        """Point this process at the world. Setting the env vars is not enough once
        huggingface_hub is imported: it reads HF_HUB_CACHE and HF_HUB_OFFLINE into module
        constants at import time, so those are patched too."""
        from huggingface_hub import constants

        for name, value in self.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(self.hf_cache))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def build_paper_world(tmp_path: str | Path) -> PaperWorld:
    root = Path(tmp_path)
    model_dir, hf_home, s3_root = root / "tiny-roberta", root / "hf_home", root / "s3"
    hf_cache = hf_home / "hub"
    vocab_size = build_tiny_roberta(model_dir)
    fill_hf_cache(hf_cache, model_dir, PAPER_HUB_IDS)
    corpora = write_paper_tasks(s3_root)
    env = {"HF_HUB_CACHE": str(hf_cache), "HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home)}
    return PaperWorld(root, model_dir, vocab_size, hf_cache, hf_home, s3_root, corpora, env)
