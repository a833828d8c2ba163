"""Inner-product nearest-neighbour search with faiss, exact or approximate, and its recall.

- `flat`  IndexFlatIP: exact search, what the paper used; memory n * d * 4 bytes, time per
          query grows linearly with the pool.
- `ivf`   IndexIVFFlat: k-means splits the pool into `nlist` lists (~4 * sqrt(n)); a query
          scans only its `nprobe` nearest lists. Probing every list is exact search again,
          which is how `recall_at_k` gets its ground truth without a second copy of the pool.
Vectors are float32 and L2-normalised by the embedder, so inner product = cosine.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import faiss
import numpy as np
from tqdm import tqdm

from ..fileio import UserError, atomic_output

INDEX_TYPES = ("flat", "ivf")
DEFAULT_NPROBE = 32
MIN_TRAIN_PER_LIST = 39   # faiss's k-means warns below 39 training points per centroid
SEARCH_BATCH = 1024       # queries per faiss call: 1024 * k ids bound the scratch memory
# From this many queries in one call, faiss scores them with one BLAS matrix product instead of
# a SIMD loop per query-vector pair. faiss 1.15 sets it at 128,000, so our 1,024-query batches
# never reached BLAS; at 20 (faiss's old default), exact search of 1e5 vectors (d 64, k 50,
# 1,000 queries) takes 0.17 s instead of 0.78 s on 2 cores (bench/select_scale.py, flat-vs-sklearn).
BLAS_QUERY_THRESHOLD = 20


def ivf_list_count(pool_size: int, train_size: int) -> int:
    """~4 * sqrt(n) lists (faiss's rule of thumb), as many as the training sample supports."""
    return max(1, min(int(4 * math.sqrt(pool_size)), train_size // MIN_TRAIN_PER_LIST))


def new_index(kind: str, dim: int, pool_size: int = 0,
              train_vectors: np.ndarray | None = None) -> faiss.Index:
    """An empty index; `ivf` is trained on `train_vectors` (a sample of the pool)."""
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind != "ivf":
        raise ValueError(f"unknown index type {kind!r}; known: {', '.join(INDEX_TYPES)}")
    nlist = ivf_list_count(pool_size, len(train_vectors))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = 0  # k-means initialisation: same sample -> same lists
    index.train(np.ascontiguousarray(train_vectors, dtype=np.float32))
    return index


def add_in_shards(index: faiss.Index, shards: Iterable[np.ndarray], total: int) -> None:
    """Add vectors shard by shard so only one shard of float32 is in flight at a time."""
    with tqdm(total=total, unit="vec", desc="index", mininterval=2) as bar:
        for shard in shards:
            index.add(np.ascontiguousarray(shard, dtype=np.float32))
            bar.update(len(shard))


def search(index: faiss.Index, queries: np.ndarray, k: int,
           nprobe: int = DEFAULT_NPROBE) -> np.ndarray:
    """ids [n_queries, k] of the nearest pool vectors, best first; -1 pads a short pool."""
    params = _probe(index, nprobe)
    faiss.cvar.distance_compute_blas_threshold = BLAS_QUERY_THRESHOLD
    batches = [index.search(np.ascontiguousarray(queries[start:start + SEARCH_BATCH]), k,
                            params=params)[1]
               for start in range(0, len(queries), SEARCH_BATCH)]
    return np.concatenate(batches) if batches else np.zeros((0, k), dtype=np.int64)


def recall_at_k(index: faiss.Index, queries: np.ndarray, k: int, nprobe: int) -> float | None:
    """Mean fraction of each query's exact top-k that the approximate search returns.

    None for a flat index (exact by construction). Exact ids come from probing all lists.
    """
    if not isinstance(index, faiss.IndexIVF) or len(queries) == 0:
        return None
    return overlap(search(index, queries, k, nprobe), search(index, queries, k, index.nlist))


def overlap(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean over rows of the fraction of `exact` ids (-1 = none) that `found` also holds."""
    hits = [len(np.intersect1d(f[f >= 0], e[e >= 0])) / max(1, int((e >= 0).sum()))
            for f, e in zip(found, exact)]
    return float(np.mean(hits))


def _probe(index: faiss.Index, nprobe: int):
    if isinstance(index, faiss.IndexIVF):
        return faiss.SearchParametersIVF(nprobe=min(nprobe, index.nlist))
    return None


def save_index(index: faiss.Index, path: str | Path) -> None:
    with atomic_output(path, "wb") as f:
        f.write(faiss.serialize_index(index).tobytes())


def load_index(path: str | Path) -> faiss.Index:
    try:
        return faiss.deserialize_index(np.fromfile(path, dtype=np.uint8))
    except (OSError, RuntimeError) as e:   # faiss reports a truncated file as a RuntimeError
        raise UserError(f"{path}: cannot read the saved index, missing or truncated? "
                        f"({str(e).splitlines()[0][:120]}); remove its folder to build it again") from None
