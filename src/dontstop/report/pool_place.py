"""Where a kNN selection's pool lies now, for the notebook's nearest neighbours (report/notebook.py).

A selection record names its pool as the run gave it: `data/mini/pools/cs.jsonl`, relative to the
folder the run started in, or `/old/study/pools/cs.jsonl`. After the project is moved or copied, or
the notebook is executed from another working folder (`cd sub && dontstop reproduce --data-dir
../data ...`), that path names nothing, while the pool lies under the data folder given now. So the
recorded path is tried first, then its tails under the data folder, longest first
(`../data/mini/pools/cs.jsonl`, `../data/pools/cs.jsonl`, `../data/cs.jsonl`); a file found is taken
only when its sha256 is the one a saved index of the selection was built on (`pool_sha256` of its
index_key.json): another pool's line numbers would show other text as neighbours.
"""
from __future__ import annotations

from pathlib import Path, PurePath

from ..fileio import file_sha256
from ..stage_identity import selection_rule


def find_pool(recorded: str, *, workdir: Path, data: Path | None, indexes: dict[Path, dict], unit: str,
              selection: Path, settings: dict | None = None) -> tuple[Path | None, Path | None, str]:
    """(the pool, the saved index folder built on it, "") or (None, None, why not).

    `recorded`: the selection record's pool; `workdir`: the folder its run started in (a relative
    `recorded` is read from it); `data`: the data folder given now (None: none); `indexes`: the saved
    indexes of the selection's task text, each with its key; `unit`: the selection's candidate
    unit; `selection`: its folder in the cache (named in the advice); `settings`: its record (the
    embedder, index and seed it was made with: an index of the same pool and task text built with
    others, by a study whose settings changed since, is not this selection's)."""
    first = Path(workdir) / recorded
    places = [first] + ([Path(data) / tail for tail in _tails(recorded)] if data is not None else [])
    found = list(dict.fromkeys(p for p in places if p.is_file()))   # one file named twice: hashed once
    if not found:
        under = f" (nor under the data folder {data})" if data is not None else ""
        return None, None, f"{first}: the pool file is gone{under}; the index alone cannot show its text"
    # A stage recorded before pools were cut into sentences selected whole lines
    built_on: dict[str, Path] = {}   # pool sha256 -> the first index (sorted) built on it for this unit
    # the index built under the rule a selection of these settings is made under now first: after a
    # rule changed (stage_identity) the cache holds the index of each rule, of the same pool and settings
    rule = selection_rule({"method": "knn", **{k: v for k, v in (settings or {}).items() if v is not None}})
    for folder, key in sorted(indexes.items(), key=lambda item: item[1].get("selection_rule") != rule):
        if key.get("unit", "line") == unit and _made_as(key, settings or {}):
            built_on.setdefault(key.get("pool_sha256"), folder)
    for path in found:
        index_dir = built_on.get(file_sha256(path))
        if index_dir is not None:
            return path, index_dir, ""
    index = next(iter(indexes))   # an index of another pool, or of one before the keys named pools by content
    where = (f"{found[0]}: not the pool the saved index {index} was built on (changed since, or an older index "
             "or another embedding)" if found[0] == first else
             f"{found[0]}: found under the data folder for the gone {first}, but not the pool the saved index "
             f"{index} was built on (its sha256 differs; no neighbours shown from another pool)")
    return None, None, f"{where}; remove that folder and {selection} and run `dontstop reproduce` again"


def _tails(recorded: str) -> list[PurePath]:
    """`data/mini/pools/cs.jsonl` -> itself, mini/pools/cs.jsonl, pools/cs.jsonl, cs.jsonl: the
    path after the old data folder, whatever that was called (`..`, `.` and a root dropped)."""
    path = PurePath(recorded)
    parts = [p for p in path.parts if p not in ("..", ".", path.anchor)]
    return [PurePath(*parts[i:]) for i in range(len(parts))]


def _made_as(key: dict, record: dict) -> bool:
    """Whether the saved index of `key` embeds as the selection `record` says it did (a field the
    record lacks, or holds None for, is not compared: an older record, or one of another embedder).
    Not the dimension: the record holds the embedder's own, which can be below the one asked for."""
    names = {"embedder": "bow", "index": "flat", "seed": 0, "encoder_model": None, "bow_tokens": "sklearn"}
    return all(record.get(name) is None or key.get(name, default) == record[name] for name, default in names.items())
