"""The paper's jsonl task format, its validation, and streamed text corpora.

Task files hold one JSON object a line: {"text": str, "label": str, "id": optional}; a label
is not blank, NaN or padded with spaces. Corpora and unlabeled pools are plain text (one document
per line) or jsonl with a `text` field (chosen by the `.jsonl` suffix); they are streamed so a
50 GB corpus never sits in memory. The rules across a task's splits are task_checks.py's.

Every problem is reported as one line naming file, line and field:
    data/mini/tasks/x/train.jsonl:17: field 'label': 'MAYBE' is not in the label set
"""
from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import AbstractSet, Iterable, Iterator

import regex

from ..fileio import UserError, wrong_kind
from ..tasks import Task
from .encoding import ENCODING, text_lines, utf8_problem
from .corpus_format import wrong_format
from .json_lines import parse_json_line


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    id: str | None
    line: int                 # 1-based line in its file, for messages


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    field: str | None
    message: str
    severity: str = "error"   # "error" stops a run; "warning" is printed and tolerated

    @property
    def error_line(self) -> str:
        """The problem without its severity: what a UserError prints."""
        where = f"{self.path}:{self.line}" if self.line else self.path
        what = f" field '{self.field}':" if self.field else ""
        return f"{where}:{what} {self.message}"

    def __str__(self) -> str:
        return f"{self.error_line} [{self.severity}]"


def task_dir(data_dir: str | Path, suite: str, task_key: str) -> Path:
    return Path(data_dir) / suite / "tasks" / task_key


def parse_split(path: str | Path, labels: Iterable[str] | None = None
                ) -> tuple[list[Example], list[Problem]]:
    """Read one split, collecting every problem instead of stopping at the first."""
    path = Path(path)
    allowed = set(labels) if labels is not None else None
    examples, problems, seen_ids = [], [], {}
    if not path.is_file():   # a folder, a link to nothing or a fifo was "file not found" too
        what = wrong_kind(path) or "file not found" + split_in_another_format(path)
        return [], [Problem(str(path), None, None, what)]
    not_utf8 = utf8_problem(path)
    if not_utf8:   # reported, then the other lines read with replacement characters for what else is wrong
        problems.append(Problem(str(path), not_utf8.line, None, not_utf8.error_message))
    with open(path, encoding=ENCODING, errors="replace") as f:
        for line_no, raw in enumerate(f, start=1):
            if not raw.strip() or (not_utf8 and line_no == not_utf8.line):
                continue
            example, line_problems = _parse_line(str(path), line_no, raw, allowed)
            problems += line_problems
            if example is None:
                continue
            if example.id is not None:
                if example.id in seen_ids:
                    problems.append(Problem(str(path), line_no, "id", f"duplicate id {example.id!r} "
                                            f"(first on line {seen_ids[example.id]})"))
                seen_ids.setdefault(example.id, line_no)
            examples.append(example)
    if not examples and not problems:
        problems.append(Problem(str(path), None, None, "no examples"))
    return examples, problems


def _parse_line(path: str, line_no: int, raw: str, allowed: set[str] | None
                ) -> tuple[Example | None, list[Problem]]:
    record, field, problem = parse_json_line(raw)
    if problem:
        return None, [Problem(path, line_no, field, problem)]
    if not isinstance(record, dict):
        return None, [Problem(path, line_no, None, "expected a JSON object")]
    text = record.get("text")
    if not isinstance(text, str):
        return None, [Problem(path, line_no, "text", "missing" if text is None else "not a string")]
    if blank(text):
        return None, [Problem(path, line_no, "text", "empty")]
    if "label" not in record or record["label"] is None:
        return None, [Problem(path, line_no, "label", "missing")]
    if isinstance(record["label"], (list, dict, bool)):   # multi-label data would train as one odd class
        return None, [Problem(path, line_no, "label", f"expected one label (a string or number), got "
                              f"{type(record['label']).__name__} {record['label']!r}")]
    label_problem = _label_problem(record["label"])
    if label_problem:
        return None, [Problem(path, line_no, "label", label_problem)]
    label = unicodedata.normalize("NFC", _label_text(record["label"]))   # one label, however its accents are stored
    if allowed is not None and label not in allowed:
        return None, [Problem(path, line_no, "label", f"{label!r} is not in the label set "
                              f"({', '.join(sorted(allowed))})")]
    raw_id = record.get("id")
    return Example(text, label, None if raw_id is None else str(raw_id), line_no), []


def split_in_another_format(path: Path) -> str:
    """What a missing split's folder holds in its place (train.csv, train.json, train.tsv), as
    the end of its message: only JSON lines are read; or a task folder holding it (`data: data`)."""
    others = sorted(p.name for p in path.parent.glob(f"{path.stem}.*") if p.is_file()) if path.parent.is_dir() else []
    nested = sorted(p.parent for p in path.parent.glob(f"*/{path.name}")) if path.parent.is_dir() else []
    if len(nested) > 1 and not others:   # the first alone was named as the fix: another task's, as like as not
        shown = ", ".join(map(str, nested[:3])) + (f" and {len(nested) - 3} more" if len(nested) > 3 else "")
        return f" (task folders holding {path.name} are there: {shown}; give the task's own)"
    if not others:
        return f" ({nested[0] / path.name} is there: give the task's own folder, {nested[0]})" if nested else ""
    return (f" ({others[0]} is there: a split is JSON lines, one {{\"text\": ..., \"label\": ...}} a line, "
            f"named {path.name})")


def _label_problem(label: object) -> str | None:
    """What makes a label no label: a blank one, or NaN (a spreadsheet's empty cell), would train
    as a class of its own; one with spaces at an end as a class apart from the same label without."""
    if isinstance(label, float) and not math.isfinite(label):
        return f"{json.dumps(label)} is not a label (an empty cell?)"
    if isinstance(label, str) and blank(label):
        return "empty"
    if isinstance(label, str) and label != label.strip():
        return f"{label!r} has spaces at an end (a class apart from {label.strip()!r}); remove them"
    # U+200B anywhere: a class apart that prints as another; the joiners U+200C/D only at an end (inside,
    # Persian and Indic words and emoji hold them)
    invisible = [c for i, c in enumerate(label) if unicodedata.category(c) in INVISIBLE
                 and (c not in JOINERS or i in (0, len(label) - 1))] if isinstance(label, str) else []
    if invisible:
        seen = "".join(c for c in label if c not in invisible)
        return (f"{label!r} holds an invisible character (U+{ord(invisible[0]):04X}: a class apart from "
                f"{seen!r}); remove it")
    return None


def _label_text(label: object) -> str:
    """A label as text; a JSON number by its value, so that 1 and 1.0 (one number, two spellings a
    spreadsheet export mixes) are one class, not '1' and '1.0'."""
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label)


def load_split(path: str | Path, labels: Iterable[str] | None = None) -> list[Example]:
    """Examples of one split; the first error becomes a one-line UserError."""
    examples, problems = parse_split(path, labels)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more; run `dontstop data check {path}`)" if len(errors) > 1 else ""
        raise UserError(f"{errors[0].error_line}{more}")
    return examples


def one_label_problem(train: str | Path, label: str) -> Problem:
    """A train split whose every example has one label: a classifier of one class has a loss of
    0 and scores 1.0 on a test split of that label."""
    return Problem(str(train), None, "label", f"every example has the label {label!r}; a classifier "
                   "needs two labels or more")


def label_set(task: Task, train: list[Example], train_path: str | Path = "train.jsonl") -> list[str]:
    """The task's known labels, else the sorted labels of its training data: two or more."""
    if task.labels:
        return list(task.labels)
    labels = sorted({e.label for e in train})
    if len(labels) == 1:
        raise UserError(one_label_problem(train_path, labels[0]).error_line)
    return labels


# Unicode categories no reader sees: format (U+200B zero-width space, U+FEFF, bidi marks) and control characters.
INVISIBLE = ("Cf", "Cc")
JOINERS = "\u200c\u200d"   # zero-width non-joiner and joiner: spelling, inside a Persian or Indic word
# Everything but letters, marks and digits: whitespace, punctuation, symbols (regex: \p{...} classes)
_NOT_WORD_CHARACTERS = regex.compile(r"[^\p{L}\p{M}\p{N}]+")


def normalize(text: str) -> str:
    """The key for duplicate and leakage checks: the text's letters, combining marks and digits,
    lowercased, in Unicode's NFKC form. One text saved in two forms is one document: an accent
    precomposed or as a combining mark (NFC and NFD: macOS, some editors and every Korean text
    split into jamo), a full-width copy of ASCII (Chinese and Japanese input), and a tokenized copy
    of raw text ("can not translate it ." and "cannot translate it.": most task datasets are
    tokenized, corpora and pools are not; a dev sentence came back into pretraining so). A text
    of none of them (":)", "---") keeps its whitespace-collapsed form."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _NOT_WORD_CHARACTERS.sub("", text) or " ".join(text.split())


def blank(text: str) -> bool:
    """No visible character: only whitespace of any script (U+3000 ideographic space, U+00A0 no-break
    space, ...), invisible format characters (U+200B zero-width space, U+200C/U+200D joiners,
    U+FEFF, bidi marks: Unicode category Cf), which text pasted from the web often holds alone,
    and control characters (Cc: U+0000, U+007F), which the tokenizer drops."""
    stripped = text.strip()
    if not stripped or unicodedata.category(stripped[0]) not in INVISIBLE:   # the common case, at C speed
        return not stripped
    return all(c.isspace() or unicodedata.category(c) in INVISIBLE for c in stripped)


def text_key(text: str) -> bytes:
    """An 8-byte digest of normalize(text): a set of 25M documents costs ~2 GB, not 50."""
    return hashlib.blake2b(normalize(text).encode("utf-8"), digest_size=8).digest()


def iter_corpus(paths: Iterable[str | Path], dedup: bool = True,
                exclude: AbstractSet[bytes] | None = None) -> Iterator[str]:
    """Stream documents from text or jsonl files, dropping exact duplicates and `exclude` keys."""
    seen: set[bytes] = set()
    for path in paths:
        for text in _iter_documents(Path(path)):
            key = text_key(text)
            if (dedup and key in seen) or (exclude and key in exclude):
                continue
            if dedup:
                seen.add(key)
            yield text


def _iter_documents(path: Path, pool: bool = False) -> Iterator[str]:
    if not path.is_file():
        raise UserError(f"{path}: " + ("a folder, not a corpus file" if path.is_dir()
                                       else wrong_kind(path) or "corpus file not found"))
    for line_no, raw in text_lines(path):
        text, problem = _corpus_line(path, line_no, raw, pool)
        if problem:
            raise UserError(problem.error_line)
        if text:
            yield text


def _corpus_line(path: Path, line_no: int, raw: str, pool: bool) -> tuple[str, Problem | None]:
    """The document on one line of a corpus (text: the line; jsonl: its `text`), "" for none.
    A pool's jsonl line must hold text and may name its `source` (select/pool.py); a first line
    of JSON or a table the file is not read as is refused (corpus_format.wrong_format)."""
    if message := wrong_format(path, line_no, raw):
        return "", Problem(str(path), line_no, None, message)
    if path.suffix != ".jsonl" or not raw.strip():
        return "" if blank(raw) else raw.strip(), None
    record, field, problem = parse_json_line(raw)
    if problem:
        return "", Problem(str(path), line_no, field, problem)
    if not isinstance(record, dict):
        return "", Problem(str(path), line_no, None, "expected a JSON object")
    text = record.get("text")
    if not isinstance(text, str):
        return "", Problem(str(path), line_no, "text", "missing" if text is None else "not a string")
    if pool and blank(text):
        return "", Problem(str(path), line_no, "text", "empty")
    if pool and not isinstance(record.get("source", ""), str):
        return "", Problem(str(path), line_no, "source", "not a string")
    return "" if blank(text) else text.strip(), None


def check_corpus(path: str | Path, pool: bool = False, duplicates: bool = True) -> list[Problem]:
    """The problems of a corpus, pool or curated file, in one streamed pass: not found, not
    UTF-8, its first malformed line, no documents at all (errors: pretraining and selection
    refuse them) and, with `duplicates`, its exact duplicates (a warning; a set of 8-byte keys,
    ~2 GB for 25M documents)."""
    path = Path(path)
    if not path.is_file():   # a fifo or a device too (never opened: a fifo blocks)
        return [Problem(str(path), None, None, wrong_kind(path) or "file not found")]
    not_utf8 = utf8_problem(path)
    if not_utf8:
        return [Problem(str(path), not_utf8.line, None, not_utf8.error_message)]
    documents, seen = 0, set()
    for line_no, raw in text_lines(path):
        text, problem = _corpus_line(path, line_no, raw, pool)
        if problem:
            return [problem]
        if text:
            documents += 1
            if duplicates:
                seen.add(text_key(text))
    if not documents:
        return [Problem(str(path), None, None, "empty corpus (no documents)")]
    if duplicates and len(seen) < documents:
        return [Problem(str(path), None, "text", f"{documents - len(seen)} exact duplicate "
                        f"document(s) of {documents}", "warning")]
    return []
