"""An unfinished run's folder moved: where the paths its saved files name lie now.

A resume state (progress.json) and the token file's description (tokens.bin.json) name the run's
inputs by path: its corpora, its base model's folder, its output folder. A folder moved whole
(another disk, a cache under another --cache-dir, a study folder renamed or copied to a cluster
with its corpora and its cache) names every one of them by another path, which read as "an
unfinished run with another recipe" (its trained steps lost unless it went back) and tokenized the
corpus again. Each file records where its folder was (`saved_in`, absolute). The folder's path then
and now share a tail (`cache/mini/checkpoints/dapt-cs-1a2b3c4d`); what lay under the old head
(`/tmp/study`) lies under the new one (`/scratch/study`) if it moved with the folder, and what did
not move is where it was (a relative path: against the folder the run started from).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

Relocation = Callable[[str], set[str]]   # a path named then -> the places it may name now


def saved_in(folder: Path | str) -> str:
    """What a saved file records as its folder's place: absolute, symbolic links kept."""
    return os.path.abspath(folder)


def relocation(then: Any, now: Path | str, output_dir: Any = None) -> Relocation:
    """The places a path named by a file saved in a folder at `then` (its `saved_in`) may name now
    that the folder is at `now`: the path as written, where it was (a relative one against the
    folder the run started from: `then` less the saved `output_dir`), and where it lies now if it
    was under the old head. A file saved before `saved_in` was recorded gives its absolute
    `output_dir`, or a relative one taken from the working folder (the runner's, as then)."""
    if then is None and isinstance(output_dir, str) and output_dir:
        then = os.path.abspath(output_dir)
    if not (isinstance(then, str) and os.path.isabs(then)):
        return lambda path: {path}
    old, new = Path(then).parts, Path(saved_in(now)).parts
    given = Path(output_dir).parts if isinstance(output_dir, str) and not os.path.isabs(output_dir) else ()
    started = Path(*old[:len(old) - len(given)]) if 0 < len(given) < len(old) and old[-len(given):] == given else None
    tail = 0   # parts shared at the end; each head keeps at least its root
    while tail < min(len(old), len(new)) - 1 and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    old_head, new_head = Path(*old[:len(old) - tail]), Path(*new[:len(new) - tail])

    def places(path: str) -> set[str]:
        was = path if os.path.isabs(path) else str(started / path) if started else None
        if was is None:
            return {path}
        moved = {str(new_head / Path(was).relative_to(old_head))} if Path(was).is_relative_to(old_head) else set()
        return {path, was, *moved}
    return places


def same_place(saved: Any, asked: Any, where_now: Relocation) -> bool:
    """Whether a saved value names what `asked` names: equal, a path that moved with the folder
    to the path asked (absolute, or relative to the working folder), or lists or objects of such."""
    if isinstance(saved, list) and isinstance(asked, list):
        return len(saved) == len(asked) and all(same_place(s, a, where_now) for s, a in zip(saved, asked))
    if isinstance(saved, dict) and isinstance(asked, dict):
        return saved.keys() == asked.keys() and all(same_place(saved[key], asked[key], where_now) for key in saved)
    if isinstance(saved, str) and isinstance(asked, str) and saved != asked:
        return bool(where_now(saved) & {asked, os.path.abspath(asked)})
    return saved == asked


def recipe_differences(saved: dict[str, Any], asked: dict[str, Any], where_now: Relocation) -> list[str]:
    """Each field in which a saved recipe differs from the one asked, as "field: saved there, asked
    asked"; output_dir is where the folder is now, not what it trains, and is not compared."""
    return [f"{key}: {saved.get(key)!r} there, {asked.get(key)!r} asked" for key in sorted(saved.keys() | asked.keys())
            if key != "output_dir" and not same_place(saved.get(key), asked.get(key), where_now)]
