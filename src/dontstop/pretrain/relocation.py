"""An unfinished run's folder moved: where the paths its saved files name lie now.

A resume state (progress.json) and the token file's description (tokens.bin.json) name the run's
inputs by path: its corpora, its base model's folder, its output folder. A folder moved whole
(another disk, a cache under another --cache-dir, a study folder renamed or copied to a cluster
with its corpora and its cache) names every one of them by another path, which read as "an
unfinished run with another recipe" (its trained steps lost unless it went back) and tokenized the
corpus again. Each file records where its folder was (`saved_in`, absolute). The folder's path then
and now share a tail (`cache/mini/checkpoints/dapt-cs-1a2b3c4d`); what lay under the old head
(`/tmp/study`) lies under the new one (`/scratch/study`) if it moved with the folder. A path
outside the old head, or a file saved before `saved_in` was recorded, is compared as written.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

Relocation = Callable[[str], str]   # a path named then -> where it lies now, if it moved with the folder
NOT_MOVED: Relocation = lambda path: path   # noqa: E731


def saved_in(folder: Path | str) -> str:
    """What a saved file records as its folder's place: absolute, symbolic links kept."""
    return os.path.abspath(folder)


def relocation(then: Any, now: Path | str) -> Relocation:
    """The paths that moved with a folder recorded at `then` (a saved `saved_in`; None or anything
    but an absolute path: nothing moved) and found at `now`."""
    if not (isinstance(then, str) and os.path.isabs(then)):
        return NOT_MOVED
    old, new = Path(then).parts, Path(saved_in(now)).parts
    tail = 0   # parts shared at the end; each head keeps at least its root
    while tail < min(len(old), len(new)) - 1 and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    old_head, new_head = Path(*old[:len(old) - tail]), Path(*new[:len(new) - tail])

    def where_now(path: str) -> str:
        if os.path.isabs(path) and Path(path).is_relative_to(old_head):
            return str(new_head / Path(path).relative_to(old_head))
        return path
    return where_now


def same_place(saved: Any, asked: Any, where_now: Relocation) -> bool:
    """Whether a saved value names what `asked` names: equal, a path that moved with the folder
    to the path asked (absolute, or relative to the working folder), or lists or objects of such."""
    if isinstance(saved, list) and isinstance(asked, list):
        return len(saved) == len(asked) and all(same_place(s, a, where_now) for s, a in zip(saved, asked))
    if isinstance(saved, dict) and isinstance(asked, dict):
        return saved.keys() == asked.keys() and all(same_place(saved[key], asked[key], where_now) for key in saved)
    if isinstance(saved, str) and isinstance(asked, str) and saved != asked:
        return where_now(saved) in (asked, os.path.abspath(asked))
    return saved == asked


def recipe_differences(saved: dict[str, Any], asked: dict[str, Any], where_now: Relocation) -> list[str]:
    """Each field in which a saved recipe differs from the one asked, as "field: saved there, asked
    asked"; output_dir is where the folder is now, not what it trains, and is not compared."""
    return [f"{key}: {saved.get(key)!r} there, {asked.get(key)!r} asked" for key in sorted(saved.keys() | asked.keys())
            if key != "output_dir" and not same_place(saved.get(key), asked.get(key), where_now)]
