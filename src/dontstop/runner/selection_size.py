"""What a kNN or RAND stage's selection adds to its corpus, for the dry run's estimate
(runner/estimate.py): the selection's own corpus once made; before, the task's texts (the
selection writes them first) and the distinct pool candidates its queries are expected to draw,
each the size of a pool candidate (k x queries of query-sized text put the mini's 50NN, 150NN,
500NN and RAND stages at 24, 72, 240 and 24 steps where they ran 19, 44, 103 and 23; counted so,
and with bert-tiny's tokenizer, at 23, 60, 170 and 23; once selected, at 19, 45, 105 and 23).

RAND draws k distinct candidates per query uniformly, so Q queries draw on average
N (1 - (1 - k/N)^Q) distinct ones of a pool of N: its figure is an expectation. kNN's queries
stand for real task text, whose similar sentences share neighbours more than random draws do,
so its figure is mostly high (the mini's 500NN: 170 steps estimated, 103 run), not a bound: the
dry run says so under it, with the bound that holds, k x queries (knn_overlap_note).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.encoding import text_lines
from ..data.formats import blank, text_key
from ..data.sentences import pool_candidates
from ..records import SELECT_RECORD_FILE, SELECTED_CORPUS_FILE
from ..select.pool import parse_line
from .plan import Stage, scaled_k
from .text_size import document_tokens
from .token_count import GUESS, TokenCounter

# A pool is read whole up to this size (the mini's cs pool, 8.7 MB, in 1.4 s); of a larger one (the
# paper's are GBs) its first this many bytes are read, its candidates scaled by its size.
POOL_SAMPLE_BYTES = 16 * 2**20   # 16 MiB
SAMPLE_SEED = 0   # which sampled candidate sizes stand for the selected ones: the same each dry run


@dataclass(frozen=True)
class PoolSample:
    candidates: int        # distinct candidates of the pool; estimated past the sample
    tokens: np.ndarray     # tokens of each distinct candidate sampled (as a TokenCounter counts them)
    whole: bool            # the whole pool was read: `candidates` is its count


def selected_corpus(stage: Stage) -> Path | None:
    """The corpus a stage's selection wrote (task texts, then its candidates), once it is made."""
    folder = stage.selection_dir
    made = (folder / SELECT_RECORD_FILE).is_file() and (folder / SELECTED_CORPUS_FILE).is_file()
    return folder / SELECTED_CORPUS_FILE if made else None


def pool_sample(path: str | Path, unit: str, counter: TokenCounter = GUESS) -> PoolSample:
    """The distinct candidates of a pool (a sentence or a line each, data/sentences.pool_candidates)."""
    status = Path(path).stat()
    return _pool_sample(str(path), (status.st_mtime_ns, status.st_size), unit, counter)


@functools.lru_cache(maxsize=8)
def _pool_sample(path: str, _version: tuple[int, int], unit: str, counter: TokenCounter) -> PoolSample:
    """Scaled past the sample by bytes: a pool whose duplicates gather past its head counts more
    candidates than it has (the selection drops them, select/pool.scan_pool)."""
    keys, texts, read, whole = set(), [], 0, True
    for line_no, raw in text_lines(path):
        size = len(raw.encode())
        if read + size > POOL_SAMPLE_BYTES:
            whole = False
            break
        read += size
        if blank(raw):
            continue
        for candidate in pool_candidates(parse_line(Path(path), line_no, raw)[0], unit):
            if (key := text_key(candidate)) not in keys:
                keys.add(key)
                texts.append(candidate)
    share = 1.0 if whole else max(read, 1) / Path(path).stat().st_size   # of the pool's bytes read
    return PoolSample(round(len(keys) / share), counter.tokens(texts) if texts else np.zeros(1, np.int64), whole)


def expected_distinct(pool: int, per_query: int, queries: int) -> float:
    """Distinct candidates that `queries` draws of `per_query` distinct ones each from `pool`
    give on average (RAND's selection; kNN's is smaller)."""
    if per_query >= pool:
        return float(pool)
    return pool * (1.0 - (1.0 - per_query / pool) ** queries)


def drawn_candidates(stage: Stage, queries: int, counter: TokenCounter = GUESS) -> np.ndarray:
    """Tokens of each candidate a stage's selection is expected to add for `queries` queries:
    sizes drawn (seeded) from the pool's sampled candidates."""
    selection = stage.selection
    sample = pool_sample(selection["pool"], selection["unit"], counter)
    per_query = scaled_k(selection["k"], selection.get("k_scale", 1.0))
    count = round(expected_distinct(sample.candidates, per_query, queries))
    return np.random.default_rng(SAMPLE_SEED).choice(sample.tokens, size=count)


def whole_pool(stage: Stage, counter: TokenCounter = GUESS) -> int | None:
    """The candidates of a kNN / RAND stage's pool when its k per query (each task sentence) is at
    least their number, else None: each query then takes every candidate, and every larger k the
    same corpus (a pool of 3 lines gave 50NN, 150NN and 500NN one corpus, without a word)."""
    selection = stage.selection or {}
    pool = Path(selection.get("pool", ""))
    if not pool.is_file():
        return None
    sample = pool_sample(pool, selection["unit"], counter)   # the estimate's counter: read once
    per_query = scaled_k(selection.get("k", 0), selection.get("k_scale", 1.0))
    return sample.candidates if sample.whole and sample.candidates <= per_query else None


def knn_overlap_note(stage: Stage, counter: TokenCounter = GUESS) -> str | None:
    """What a kNN stage's figure counts before its selection is made, and the bound that does hold:
    its Q queries x k neighbours are at most k x Q distinct candidates (and at most the pool's), and
    are counted as distinct as RAND's random draws. Queries of similar task sentences share
    neighbours, so a kNN selection mostly has fewer: the mini's 50NN, 150NN and 500NN were estimated
    at 23, 60 and 170 steps and ran 19, 44 and 103 (14,094 candidates where 22,018 were expected).
    None for a RAND stage (its figure is the expectation), a made selection, a pool or task file not there."""
    selection = stage.selection or {}
    if selection.get("method") != "knn" or selected_corpus(stage) is not None \
            or not Path(selection["pool"]).is_file() or not Path(selection["queries"]).is_file():
        return None
    queries = len(document_tokens(selection["queries"], selection["query_unit"], counter))
    per_query = scaled_k(selection["k"], selection.get("k_scale", 1.0))
    sample = pool_sample(selection["pool"], selection["unit"], counter)
    drawn = per_query * queries   # the whole pool's count is known only when it was read whole
    most = min(drawn, sample.candidates) if sample.whole else drawn
    expected = round(expected_distinct(sample.candidates, per_query, queries))
    return (f"note: its {queries:,} queries x {per_query:,} neighbours select at most {most:,} distinct candidates; "
            f"counted as distinct as random draws ({expected:,}, RAND's expectation), while queries of similar "
            "text share neighbours: a figure mostly high, not a bound, until its selection is made and counted")
