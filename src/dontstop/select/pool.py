"""Streaming a selection pool by line number, keeping each candidate's `source`.

A pool is jsonl ({"text": str, "source": str}, source defaulting to the file's stem) or
plain text (one document a line, source = the file's stem). A candidate is a sentence of a
line (unit "sentence", the paper's: data/sentences.py) or the whole line (unit "line").
Tens of millions of lines do not fit in memory as text, so `scan_pool` keeps per candidate
only its line number (8 B), its sentence in that line (4 B) and a source code (2 B);
`fetch_candidates` streams the file again and parses only the wanted lines.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from tqdm import tqdm

from ..data.encoding import text_lines
from ..data.corpus_format import wrong_format
from ..data.formats import blank, text_key
from ..data.json_lines import parse_json_line
from ..data.sentences import pool_candidates
from ..fileio import UserError, atomic_output, wrong_kind


@dataclass
class PoolScan:
    lines: np.ndarray          # int64 [n]: 1-based line of each usable candidate, in file order
    pieces: np.ndarray         # uint32 [n]: which sentence of its line (0 for the unit "line")
    source_codes: np.ndarray   # uint16 [n]: index into `sources`
    sources: list[str]
    duplicates: int            # exact duplicates of an earlier candidate or of a task text
    excluded_heldout: int      # candidates equal to held-out (dev/test) task text
    unit: str                  # data/sentences.POOL_UNITS

    def count_by_source(self, rows: np.ndarray | None = None) -> dict[str, int]:
        codes = self.source_codes if rows is None else self.source_codes[rows]
        counts = np.bincount(codes, minlength=len(self.sources))
        return {name: int(n) for name, n in zip(self.sources, counts) if n}


def scan_pool(path: str | Path, skip_keys: Iterable[bytes], exclude: Iterable[bytes],
              unit: str) -> PoolScan:
    """One pass: keep the first copy of each candidate, drop task texts and held-out text (a
    dev sentence inside a pool paragraph too, with the unit "sentence")."""
    path = Path(path)
    seen, exclude = set(skip_keys), set(exclude)
    lines, pieces, codes, source_index = array("q"), array("I"), array("H"), {}   # 14 B a candidate
    duplicates = excluded = 0
    for line_no, raw in tqdm(_raw_lines(path), desc="scan pool", unit="line", mininterval=2):
        text, source = parse_line(path, line_no, raw)
        for piece, candidate in enumerate(pool_candidates(text, unit)):
            key = text_key(candidate)
            if key in exclude:
                excluded += 1
            elif key in seen:
                duplicates += 1
            else:
                seen.add(key)
                lines.append(line_no)
                pieces.append(piece)
                codes.append(source_index.setdefault(source, len(source_index)))
    return PoolScan(np.asarray(lines, dtype=np.int64), np.asarray(pieces, dtype=np.uint32),
                    np.asarray(codes, dtype=np.uint16), list(source_index), duplicates, excluded, unit)


def fetch_candidates(path: str | Path, scan: PoolScan, rows: np.ndarray) -> Iterator[tuple[str, str]]:
    """(text, source) of the scan's candidates `rows`, which must be sorted (file order)."""
    path = Path(path)
    wanted = _line_and_piece(scan, np.asarray(rows))
    target = next(wanted, None)
    for line_no, raw in _raw_lines(path):
        if target is None:
            return
        if line_no == target[0]:
            text, source = parse_line(path, line_no, raw)
            candidates = pool_candidates(text, scan.unit)
            while target is not None and target[0] == line_no:   # several sentences of one line
                yield candidates[target[1]], source
                target = next(wanted, None)


def _line_and_piece(scan: PoolScan, rows: np.ndarray, chunk: int = 1_000_000) -> Iterator[tuple[int, int]]:
    """(line, sentence) of each row, a million at a time: as Python ints, all of a 1e7 pool's
    would take about 700 MB."""
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        yield from zip(scan.lines[part].tolist(), scan.pieces[part].tolist())


def parse_line(path: Path, line_no: int, raw: str) -> tuple[str, str]:
    if message := wrong_format(path, line_no, raw):   # a jsonl pool named .txt: its syntax was selected
        raise UserError(f"{path}:{line_no}: {message}")
    if path.suffix != ".jsonl":
        return raw.strip(), path.stem   # never blank: _raw_lines skips those lines
    record, field, problem = parse_json_line(raw)
    if problem:
        raise UserError(f"{path}:{line_no}:{f' field {field!r}:' if field else ''} {problem}")
    text = record.get("text") if isinstance(record, dict) else None
    if not isinstance(text, str) or blank(text):
        raise UserError(f"{path}:{line_no}: field 'text': missing, empty or not a string")
    source = record.get("source", path.stem)
    if not isinstance(source, str):
        raise UserError(f"{path}:{line_no}: field 'source': not a string")
    return text.strip(), source


def _raw_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) of every non-blank line."""
    if not path.is_file():   # a folder (or a fifo) was "pool file not found" beside the path that is there
        raise UserError(f"{path}: {wrong_kind(path) or 'pool file not found'}")
    for line_no, raw in text_lines(path):   # bytes that are not UTF-8: one line naming the offset
        if not blank(raw):
            yield line_no, raw


def save_scan(scan: PoolScan, path: str | Path) -> None:
    with atomic_output(path, "wb") as f:
        np.savez(f, lines=scan.lines, pieces=scan.pieces, source_codes=scan.source_codes,
                 sources=np.asarray(scan.sources, dtype=str),
                 counts=np.asarray([scan.duplicates, scan.excluded_heldout]), unit=np.asarray(scan.unit))


def load_scan(path: str | Path) -> PoolScan:
    with np.load(path) as saved:
        duplicates, excluded = saved["counts"].tolist()
        if "unit" not in saved:   # saved before pools were cut into sentences: whole lines
            return PoolScan(saved["lines"], np.zeros(len(saved["lines"]), dtype=np.uint32), saved["source_codes"],
                            saved["sources"].tolist(), duplicates, excluded, "line")
        return PoolScan(saved["lines"], saved["pieces"], saved["source_codes"], saved["sources"].tolist(),
                        duplicates, excluded, str(saved["unit"]))
