"""The leakage guard: the dev and test text of a suite's tasks (the folders Suite.leakage_task_dirs
names), which no pretraining or selection may see. Pretraining and selection drop a document whose
text_key is one of the guard's `keys`, whatever the corpus files hold. A pretraining stage also
records the files it held out, by content (`files`, PretrainRecord.guarded_sha256), so that a task
added to the suite after it was built, or a dev file changed since, is known not to have been held
out (runner/stage_guard.py checks the stage before that task is fine-tuned on it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..fileio import UserError, file_sha256
from .formats import load_split, normalize, text_key
from .sentences import split_sentences

GUARDED_SPLITS = ("dev", "test")   # of a task folder (tasks.SPLITS adds train)
# A sentence of a held-out text that a selection keeps out on its own has at least this many letters
# and digits (data/formats.normalize; about four words): the splitter's fragments of ACL-Roles' dev
# and test texts ('.', '1.', '(2015) .') were 324 pool fragments kept out as held-out text.
SENTENCE_KEY_MIN_CHARACTERS = 20


@dataclass(frozen=True)
class LeakageGuard:
    keys: frozenset[bytes] = frozenset()              # text_key of every dev and test example
    files: dict[str, str] = field(default_factory=dict)   # each dev/test file read -> its sha256


def guarded_files(task_dirs: Iterable[str | Path]) -> list[Path]:
    """The dev and test file of each task folder. A missing one is an error: a mistyped folder
    must not turn the leakage guard off."""
    paths = []
    for directory in task_dirs:
        if Path(directory).is_file():   # it said "<file>/dev.jsonl: not found"
            raise UserError(f"{directory}: a file; give the task's folder, which holds dev.jsonl and test.jsonl")
        for split in GUARDED_SPLITS:
            path = Path(directory) / f"{split}.jsonl"
            if not path.is_file():
                raise UserError(f"{path}: not found; the leakage guard needs the dev and test "
                                "files of every task (build or download the data first)")
            paths.append(path)
    return paths


def leakage_keys(task_dirs: Iterable[str | Path]) -> set[bytes]:
    """text_key of every dev and test example of the given task folders."""
    return _text_keys(guarded_files(task_dirs))


def leakage_guard(task_dirs: Iterable[str | Path], memo_dir: str | Path | None = None) -> LeakageGuard:
    """The keys of leakage_keys and the files they were read from, for a stage's record
    (file_sha256 memoised in `memo_dir`, the cache)."""
    paths = guarded_files(task_dirs)
    return LeakageGuard(frozenset(_text_keys(paths)), {str(path): file_sha256(path, memo_dir) for path in paths})


def _text_keys(paths: list[Path]) -> set[bytes]:
    return {text_key(e.text) for path in paths for e in load_split(path)}


def held_out_texts(paths: Iterable[str | Path]) -> list[str]:
    """The text of every dev and test example of `paths` (the guard's files): read once, for both
    what a selection keeps out (exclude_of_texts) and the task text it refuses (leakage keys)."""
    return [e.text for path in paths for e in load_split(Path(path))]


def selection_exclude(paths: Iterable[str | Path]) -> set[bytes]:
    """What a kNN or RAND selection keeps out of its pool: the text_key of every dev and test text
    of `paths` (the guard's files) and of each sentence of one that says something of its own."""
    return exclude_of_texts(held_out_texts(paths))


def exclude_of_texts(texts: Iterable[str]) -> set[bytes]:
    """selection_exclude of held-out texts already read. A dev text of several sentences in a pool
    line is as many sentence candidates, none of them its text: each was selected, in order, and
    the kNN-TAPT model pretrained on the dev text."""
    return {key for text in texts
            for key in (text_key(text), *(text_key(sentence) for sentence in split_sentences(text)
                                          if len(normalize(sentence)) >= SENTENCE_KEY_MIN_CHARACTERS))}
