"""The mini benchmark's data, built before a run that needs it and finds it missing, or written by
an older version of the builder (`dontstop reproduce` on a fresh machine, or after a pull that
changed what the builder writes: `make reproduce`)."""
from __future__ import annotations

from typing import Any

from ..fileio import check_writable_dir, read_json
from ..suites import Suite


def ensure_mini_data(suite: Suite, dry_run: bool = False) -> None:
    """Build <data_dir>/mini/ (dontstop data build-mini) if the suite reads it and it is missing or
    an older builder wrote it; with `dry_run`, only say that the real run will (a dry run writes
    nothing, and a mistyped --data-dir must not get a benchmark built in it)."""
    if not suite.built_data:
        return
    manifest = suite.data_folder / "manifest.json"
    built = read_json(manifest) if manifest.exists() else None
    why = why_build(built)
    if not why:
        return
    check_writable_dir(suite.data_folder.parent)   # a --data-dir under a file: one line, not OSError
    if dry_run:
        print(f"mini benchmark data {why} in {suite.data_folder}: the run builds it first "
              "(dontstop data build-mini)")
        return
    from ..data.mini import build_mini

    print(f"mini benchmark data {why}: building it (dontstop data build-mini)")
    build_mini(suite.data_folder.parent, seed=built.get("seed", 0) if built else 0)   # an older build: its seed


def why_build(built: dict[str, Any] | None) -> str | None:
    """Why the benchmark must be built, given its manifest (None: there is none), or None. An older
    build's corpora and pools are not the ones the committed results were made from: their stages
    would get other keys, and every run from them would be refused as stale. A manifest that names
    no sources was not written by build_mini (a test's stand-in) and is taken as it is."""
    if built is None:
        return "missing"
    if "sources" not in built:
        return None
    from ..data.mini import BUILDER_VERSION   # pandas and the sources' readers: only for a real build's manifest

    if built.get("builder", 1) != BUILDER_VERSION:
        return (f"written by an older dontstop (builder {built.get('builder', 1)}, now {BUILDER_VERSION}: "
                "other corpus and pool files)")
    return None
