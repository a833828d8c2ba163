"""Streaming a selection pool by line number, keeping each document's `source`.

A pool is jsonl ({"text": str, "source": str}, source defaulting to the file's stem) or
plain text (one document a line, source = the file's stem). Tens of millions of lines do
not fit in memory as text, so `scan_pool` keeps per document only its line number (8 B)
and a source code (2 B); `fetch_documents` streams the file again and parses only the
wanted lines.
"""
from __future__ import annotations

import json
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from tqdm import tqdm

from ..data.encoding import text_lines
from ..data.formats import blank, text_key
from ..fileio import UserError, atomic_output


@dataclass
class PoolScan:
    lines: np.ndarray          # int64 [n]: 1-based line of each usable document, in file order
    source_codes: np.ndarray   # uint16 [n]: index into `sources`
    sources: list[str]
    duplicates: int            # exact duplicates of an earlier document or of a task text
    excluded_heldout: int      # documents equal to held-out (dev/test) task text

    def count_by_source(self, rows: np.ndarray | None = None) -> dict[str, int]:
        codes = self.source_codes if rows is None else self.source_codes[rows]
        counts = np.bincount(codes, minlength=len(self.sources))
        return {name: int(n) for name, n in zip(self.sources, counts) if n}


def scan_pool(path: str | Path, skip_keys: Iterable[bytes], exclude: Iterable[bytes]
              ) -> PoolScan:
    """One pass: keep the first copy of each text, drop task texts and held-out text."""
    path = Path(path)
    seen, exclude = set(skip_keys), set(exclude)
    lines, codes, source_index = array("q"), array("H"), {}   # 10 B a document
    duplicates = excluded = 0
    for line_no, raw in tqdm(_raw_lines(path), desc="scan pool", unit="line", mininterval=2):
        text, source = parse_line(path, line_no, raw)
        key = text_key(text)
        if key in exclude:
            excluded += 1
        elif key in seen:
            duplicates += 1
        else:
            seen.add(key)
            lines.append(line_no)
            codes.append(source_index.setdefault(source, len(source_index)))
    return PoolScan(np.asarray(lines, dtype=np.int64), np.asarray(codes, dtype=np.uint16),
                    list(source_index), duplicates, excluded)


def fetch_documents(path: str | Path, lines: np.ndarray) -> Iterator[tuple[str, str]]:
    """(text, source) of the given line numbers, in file order; `lines` must be sorted."""
    path = Path(path)
    wanted = iter(np.asarray(lines).tolist())
    target = next(wanted, None)
    for line_no, raw in _raw_lines(path):
        if target is None:
            return
        if line_no == target:
            yield parse_line(path, line_no, raw)
            target = next(wanted, None)


def parse_line(path: Path, line_no: int, raw: str) -> tuple[str, str]:
    if path.suffix != ".jsonl":
        return raw.strip(), path.stem   # never blank: _raw_lines skips those lines
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{line_no}: malformed JSON ({e.msg})") from None
    text = record.get("text") if isinstance(record, dict) else None
    if not isinstance(text, str) or blank(text):
        raise UserError(f"{path}:{line_no}: field 'text': missing, empty or not a string")
    source = record.get("source", path.stem)
    if not isinstance(source, str):
        raise UserError(f"{path}:{line_no}: field 'source': not a string")
    return text.strip(), source


def _raw_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) of every non-blank line."""
    if not path.is_file():
        raise UserError(f"{path}: pool file not found")
    for line_no, raw in text_lines(path):   # bytes that are not UTF-8: one line naming the offset
        if not blank(raw):
            yield line_no, raw


def save_scan(scan: PoolScan, path: str | Path) -> None:
    with atomic_output(path, "wb") as f:
        np.savez(f, lines=scan.lines, source_codes=scan.source_codes,
                 sources=np.asarray(scan.sources, dtype=str),
                 counts=np.asarray([scan.duplicates, scan.excluded_heldout]))


def load_scan(path: str | Path) -> PoolScan:
    with np.load(path) as saved:
        duplicates, excluded = saved["counts"].tolist()
        return PoolScan(saved["lines"], saved["source_codes"], saved["sources"].tolist(),
                        duplicates, excluded)
