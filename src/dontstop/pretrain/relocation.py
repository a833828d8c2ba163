"""An unfinished run's folder moved: where the paths its saved files name lie now.

A resume state (progress.json) and the token file's description (tokens.bin.json) name the run's
inputs by path: its corpora, its base model's folder, its output folder. A folder moved whole
(another disk, a cache under another --cache-dir, a study folder renamed or copied to a cluster
with its corpora and its cache) names every one of them by another path, which read as "an
unfinished run with another recipe" (its trained steps lost unless it went back) and tokenized the
corpus again. Each file records where its folder was (`saved_in`) and the working folder its
relative paths start from (`started_in`), both absolute. The folder's path then
and now share a tail (`cache/mini/checkpoints/dapt-cs-1a2b3c4d`); what lay under the old head
(`/tmp/study`) lies under the new one (`/scratch/study`) if it moved with the folder, and what did
not move is where it was.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

Relocation = Callable[[str], set[str]]   # a path named then -> the places it may name now


def where_saved(folder: Path | str) -> dict[str, str]:
    """What a saved file records of where it was made: its folder (`saved_in`) and the working
    folder its relative paths start from (`started_in`), both absolute, symbolic links kept."""
    return {"saved_in": os.path.abspath(folder), "started_in": os.getcwd()}


def relocation(saved: Mapping[str, Any], now: Path | str, output_dir: Any = None) -> Relocation:
    """The places a path named by a `saved` file (a resume state's progress, a token file's
    description file) may name now that its folder is at `now`: the path as written, where it was
    (a relative one against `started_in`), and, if that was under the old head, where it lies now.
    A file saved before they were recorded: its `output_dir` and relative paths against the
    working folder (the runner's, as then)."""
    then, started = saved.get("saved_in"), saved.get("started_in")
    if then is None and isinstance(output_dir, str) and output_dir:
        then = os.path.abspath(output_dir)
    if not (isinstance(then, str) and os.path.isabs(then)):
        return lambda path: {path}
    started = started if isinstance(started, str) and os.path.isabs(started) else os.getcwd()
    old, new = Path(then).parts, Path(os.path.abspath(now)).parts
    tail = 0   # parts shared at the end; each head keeps at least its root
    while tail < min(len(old), len(new)) - 1 and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    old_head, new_head = Path(*old[:len(old) - tail]), Path(*new[:len(new) - tail])

    def places(path: str) -> set[str]:
        was = os.path.normpath(os.path.join(started, path))   # an absolute path is kept as it is
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


def without_place(recipe: dict[str, Any]) -> dict[str, Any]:
    """A recipe less its output_dir: where its folder is, not what it trains or tokenizes."""
    return {key: value for key, value in recipe.items() if key != "output_dir"}


def recipe_differences(saved: dict[str, Any], asked: dict[str, Any], where_now: Relocation) -> list[str]:
    """Each field but output_dir in which a saved recipe differs from the one asked, as "field:
    saved there, asked asked"."""
    saved, asked = without_place(saved), without_place(asked)
    return [f"{key}: {saved.get(key)!r} there, {asked.get(key)!r} asked" for key in sorted(saved.keys() | asked.keys())
            if not same_place(saved.get(key), asked.get(key), where_now)]
