"""kNN-TAPT and RAND-TAPT corpora from a domain pool (paper section 5): `select_corpus`,
called by `dontstop select` (select/cli.py) and the runner.

kNN: every task sentence (query) takes its k nearest pool candidates by cosine similarity;
the union, without exact-text duplicates, is added to the task text. A query is a sentence of a
task text (`query_unit="sentence"`, the paper's) or the whole text (`"text"`); a candidate is a
sentence of a pool line (`unit="sentence"`, the paper's) or the whole line (`unit="line"`). RAND:
k uniformly random pool candidates per query instead (the paper's RAND-TAPT uses 50). Held-out
task text (`exclude`, data.text_key of dev/test) is never indexed, so it can never be selected.

The pool is streamed (tens of millions of lines fit): one pass keeps only line numbers and
sources, later passes embed it shard by shard and finally fetch the selected lines.
Writes `<out>/corpus.jsonl` and, last, `<out>/select_record.json` (records.SelectRecord).
"""
from __future__ import annotations

import json
import pickle
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from . import index as knn_index
from ..data.formats import text_key
from ..data.sentences import DEFAULT_POOL_UNIT, DEFAULT_QUERY_UNIT, POOL_UNITS, QUERY_UNITS, task_queries
from .embed import EMBEDDERS, Embedder, load_embedder, make_embedder
from ..fileio import (UserError, atomic_output, atomic_write_json, file_sha256, read_json,
                      sha256_text)
from ..records import INDEX_KEY_FILE, SELECT_RECORD_FILE, SELECTED_CORPUS_FILE, SelectRecord
from ..stage_identity import selection_rule
from .pool import PoolScan, fetch_candidates, load_scan, save_scan, scan_pool

METHODS = ("knn", "random")
FIT_SAMPLE = 100_000   # pool candidates the bow embedder and IVF lists are fitted on
SHARD = 20_000         # candidates embedded per step: 20K * 128 dims * 4 B = 10 MB of vectors
RECALL_QUERIES = 200   # queries on which an approximate index is checked against exact search


@dataclass(frozen=True)
class EmbeddingSettings:
    """What the pool vectors depend on; with the pool and queries, the index_dir's key."""
    embedder: str = "bow"
    encoder_model: str = "bundled:minilm"
    dim: int = 128
    index: str = "flat"
    seed: int = 0
    bow_tokens: str = "sklearn"   # embed.BOW_TOKENS; keyed only when not the default (older indexes)
    unit: str = DEFAULT_POOL_UNIT  # what a candidate is; keyed only when not "line" (older indexes)


def select_corpus(task_texts: list[str], pool_path: str | Path, out_dir: str | Path, *,
                  method: str = "knn", k: int = 50, embedder: str = "bow",
                  encoder_model: str = "bundled:minilm", dim: int = 128,
                  index: str = "flat", nprobe: int = knn_index.DEFAULT_NPROBE,
                  exclude: frozenset[bytes] | set[bytes] = frozenset(), seed: int = 0,
                  index_dir: str | Path | None = None, bow_tokens: str = "sklearn",
                  unit: str = DEFAULT_POOL_UNIT, query_unit: str = DEFAULT_QUERY_UNIT) -> SelectRecord:
    """Select, write corpus.jsonl + select_record.json into out_dir, return the record.

    `index_dir` keeps the fitted embedder, the faiss index and the pool scan so the next
    k for the same task and pool skips embedding; it is refused if built for other inputs.
    """
    started = time.time()
    out_dir, pool_path = Path(out_dir), Path(pool_path)
    _check_arguments(task_texts, pool_path, out_dir, method, k, nprobe, embedder, index, unit, query_unit)
    task_texts = task_queries(task_texts, "text")   # without exact copies
    queries = task_queries(task_texts, query_unit)
    # A pool candidate equal to a task text or sentence is in the corpus already, as task text.
    task_keys = {text_key(text) for text in task_texts + queries}
    if method == "random":
        scan = _nonempty(scan_pool(pool_path, task_keys, exclude, unit), pool_path)
        candidates = _random_candidates(len(scan.lines), len(queries), k, seed)
        details = {"embedder": None, "index": None, "recall_at_k": None}
    else:
        settings = EmbeddingSettings(embedder, encoder_model, dim, index, seed, bow_tokens, unit)
        # One BLAS and OpenMP thread: on more, the bow embedder's SVD and faiss's search sum in another
        # order (on 2 threads aclsum-roles' vectors moved by 1e-4 and 770 of its k = 500 neighbour ids
        # changed), so a selection depended on the machine's cores and on the launcher. On the mini's
        # pool one thread is no slower (the index in 6 s, not 21 s, beside another process).
        with threadpool_limits(limits=1):
            scan, candidates, details = _knn_candidates(queries, task_keys, pool_path, exclude, settings,
                                                        k, nprobe, index_dir)
    selected = np.unique(candidates[candidates >= 0])   # union over queries, pool order
    corpus_bytes = _write_corpus(out_dir / SELECTED_CORPUS_FILE, task_texts, pool_path, scan, selected)
    found = int((candidates >= 0).sum())
    record = SelectRecord(method=method, k=k, seed=seed, **details, pool=str(pool_path),
                          pool_size=len(scan.lines), queries=len(queries),
                          candidates_before_dedup=found, selected=len(selected),
                          duplicates_removed=found - len(selected),
                          pool_duplicates_skipped=scan.duplicates,
                          excluded_heldout=scan.excluded_heldout, bytes=corpus_bytes,
                          selected_by_source=scan.count_by_source(selected),
                          pool_by_source=scan.count_by_source(), unit=unit,
                          query_unit=query_unit, task_texts=len(task_texts),
                          wall_time_s=round(time.time() - started, 3))
    record.write(out_dir)
    print(f"selected {len(selected)} of {len(scan.lines)} pool {unit}s for {len(queries)} "
          f"queries in {record.wall_time_s:.1f} s -> {out_dir}")
    return record


def _check_arguments(task_texts: list[str], pool_path: Path, out_dir: Path, method: str, k: int,
                     nprobe: int, embedder: str, index: str, unit: str, query_unit: str) -> None:
    if (out_dir / SELECT_RECORD_FILE).exists():
        raise UserError(f"{out_dir}: already holds a selection; choose another output folder")
    if (out_dir / SELECTED_CORPUS_FILE).resolve() == pool_path.resolve():   # it was replaced, pool lost
        raise UserError(f"{pool_path}: the pool is the {SELECTED_CORPUS_FILE} this selection "
                        f"would write in {out_dir}; choose another output folder")
    if method not in METHODS:
        raise UserError(f"unknown selection method {method!r}; known: {', '.join(METHODS)}")
    if embedder not in EMBEDDERS or index not in knn_index.INDEX_TYPES:
        raise UserError(f"unknown embedder {embedder!r} or index {index!r}; known: "
                        f"{', '.join(EMBEDDERS)} / {', '.join(knn_index.INDEX_TYPES)}")
    if unit not in POOL_UNITS:
        raise UserError(f"unknown pool unit {unit!r}; known: {', '.join(POOL_UNITS)}")
    if query_unit not in QUERY_UNITS:
        raise UserError(f"unknown query unit {query_unit!r}; known: {', '.join(QUERY_UNITS)}")
    if k < 1 or nprobe < 1:
        raise UserError(f"k and nprobe must be at least 1 (got k={k}, nprobe={nprobe})")
    if not task_texts:
        raise UserError("no task text to select for (empty queries)")


def _nonempty(scan: PoolScan, pool_path: Path) -> PoolScan:
    """The scan, unless no candidate is left once task text and held-out text are dropped (a
    pool that is the task's own text: RAND-TAPT would be TAPT, kNN has nothing to search)."""
    if len(scan.lines) == 0:
        raise UserError(f"{pool_path}: no pool {scan.unit}s left to select from ({scan.duplicates} "
                        f"duplicate(s) of task text or of each other, {scan.excluded_heldout} "
                        "held-out dev/test text)")
    return scan


def _random_candidates(pool_size: int, n_queries: int, k: int, seed: int) -> np.ndarray:
    """k distinct uniformly random pool ids per query, [n_queries, min(k, pool_size)]: past the
    pool's size every id is drawn (a k of 5e10 allocated 102 TiB of -1 pads)."""
    rng = np.random.default_rng(seed)
    draws = min(k, pool_size)
    candidates = np.empty((n_queries, draws), dtype=np.int64)
    for row in candidates:
        row[:] = rng.choice(pool_size, size=draws, replace=False)
    return candidates


def _sample(vectors: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), size=min(RECALL_QUERIES, len(vectors)), replace=False)
    return vectors[np.sort(rows)]


def _knn_candidates(queries: list[str], task_keys: set[bytes], pool_path: Path, exclude,
                    settings: EmbeddingSettings, k: int, nprobe: int, index_dir: str | Path | None
                    ) -> tuple[PoolScan, np.ndarray, dict]:
    """Pool scan, neighbour ids [queries, k] and the record's embedding fields."""
    scan, model, faiss_index = _knn_model(queries, task_keys, pool_path, exclude, settings, index_dir)
    query_vectors = model.transform(queries)
    # past the pool's size every candidate is found (the rest are -1 pads): a k of 5e10 allocated 102 TiB
    k = min(k, faiss_index.ntotal)
    candidates = knn_index.search(faiss_index, query_vectors, k, nprobe)
    # A query of no word the bow embedder knows (stop words, '2 .') is a zero vector, as near every
    # candidate as any other: faiss returned the pool's first k. It has no neighbours, and no part in
    # the recall (an IVF index's first k of its probed lists, against all lists': it counted as 0).
    searched = query_vectors.any(axis=1)
    candidates[~searched] = -1
    recall = knn_index.recall_at_k(faiss_index, _sample(query_vectors[searched], settings.seed), k, nprobe)
    details = {"embedder": settings.embedder, "dim": model.dim, "index": settings.index,
               "encoder_model": settings.encoder_model if settings.embedder == "encoder" else None,
               "nprobe": nprobe if settings.index == "ivf" else None,
               "nlist": getattr(faiss_index, "nlist", None), "recall_at_k": recall,
               "bow_tokens": settings.bow_tokens if settings.embedder == "bow" else None}
    return scan, candidates, details


def _knn_model(queries: list[str], task_keys: set[bytes], pool_path: Path, exclude,
               settings: EmbeddingSettings, index_dir: str | Path | None
               ) -> tuple[PoolScan, Embedder, object]:
    """The pool scan, fitted embedder and filled faiss index: reused from index_dir if built
    for the same inputs, else built (and saved there when index_dir is given)."""
    if not index_dir:
        return _build_knn_model(queries, task_keys, pool_path, exclude, settings)
    folder = Path(index_dir)
    # The pool by content (memoised in the folder by size and mtime): a copied or touched pool of
    # the same bytes is the same pool, and the runner names its index folders by content too.
    key = {"pool_sha256": file_sha256(pool_path, folder),
           "queries": sha256_text("\n".join(queries)),
           "exclude": sha256_text(b"".join(sorted(exclude)).hex()), **asdict(settings),
           "selection_rule": selection_rule(asdict(settings))}   # one saved under another (on several threads) is refused
    if settings.bow_tokens == EmbeddingSettings.bow_tokens:   # as saved before the setting existed
        del key["bow_tokens"]
    if settings.unit == "line":   # as saved before pools were cut into sentences
        del key["unit"]
    if (folder / INDEX_KEY_FILE).is_file():
        saved = read_json(folder / INDEX_KEY_FILE)
        if saved != key:   # named: it said "another pool, task or embedder" when only --dim changed
            differ = ", ".join(name for name in sorted(saved.keys() | key.keys()) if saved.get(name) != key.get(name))
            raise UserError(f"{folder}: index was built for another pool, task or embedder ({differ} differ); "
                            "give a new --index-dir")
        print(f"reusing index from {folder}")
        return _load_knn_model(folder)
    scan, model, faiss_index = _build_knn_model(queries, task_keys, pool_path, exclude, settings)
    model.save(folder / "embedder")
    save_scan(scan, folder / "pool_scan.npz")
    knn_index.save_index(faiss_index, folder / "index.faiss")
    atomic_write_json(folder / INDEX_KEY_FILE, key)   # last: a folder without it is rebuilt
    return scan, model, faiss_index


def _load_knn_model(folder: Path) -> tuple[PoolScan, Embedder, object]:
    try:   # numpy's, joblib's and pickle's words for a missing or cut file
        scan, model = load_scan(folder / "pool_scan.npz"), load_embedder(folder / "embedder")
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as e:
        raise UserError(f"{folder}: cannot read the saved pool scan or embedder, missing or "
                        f"truncated? ({str(e)[:120]}); remove the folder to build it again") from None
    return scan, model, knn_index.load_index(folder / "index.faiss")


def _build_knn_model(queries: list[str], task_keys: set[bytes], pool_path: Path, exclude,
                     settings: EmbeddingSettings) -> tuple[PoolScan, Embedder, object]:
    scan = _nonempty(scan_pool(pool_path, task_keys, exclude, settings.unit), pool_path)
    rng = np.random.default_rng(settings.seed)
    sample_rows = np.sort(rng.choice(len(scan.lines), min(FIT_SAMPLE, len(scan.lines)),
                                     replace=False))
    sample = [text for text, _ in fetch_candidates(pool_path, scan, sample_rows)]
    print(f"fitting the {settings.embedder} embedder on {len(sample)} pool {settings.unit}s "
          f"+ {len(queries)} task queries")
    model = make_embedder(settings.embedder, dim=settings.dim, seed=settings.seed,
                          encoder_model=settings.encoder_model, bow_tokens=settings.bow_tokens
                          ).fit(sample + queries)
    train_vectors = model.transform(sample) if settings.index == "ivf" else None
    faiss_index = knn_index.new_index(settings.index, model.dim, len(scan.lines), train_vectors)
    knn_index.add_in_shards(faiss_index, _embedded_shards(model, pool_path, scan), len(scan.lines))
    return scan, model, faiss_index


def _embedded_shards(model: Embedder, pool_path: Path, scan: PoolScan):
    shard: list[str] = []
    for text, _ in fetch_candidates(pool_path, scan, np.arange(len(scan.lines))):
        shard.append(text)
        if len(shard) == SHARD:
            yield model.transform(shard)
            shard = []
    if shard:
        yield model.transform(shard)


def _write_corpus(path: Path, task_texts: list[str], pool_path: Path, scan: PoolScan, rows: np.ndarray) -> int:
    """Task text (source "task") then the selected pool candidates in pool order; bytes."""
    with atomic_output(path) as f:
        for text in task_texts:
            f.write(json.dumps({"text": text, "source": "task"}, ensure_ascii=False) + "\n")
        for text, source in fetch_candidates(pool_path, scan, rows):
            f.write(json.dumps({"text": text, "source": source}, ensure_ascii=False) + "\n")
    return path.stat().st_size
