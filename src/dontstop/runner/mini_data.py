"""The mini benchmark's data, built before a run that needs it and finds it missing
(`dontstop reproduce` on a fresh machine: `make reproduce`)."""
from __future__ import annotations

from ..fileio import check_writable_dir
from ..suites import Suite


def ensure_mini_data(suite: Suite, dry_run: bool = False) -> None:
    """Build <data_dir>/mini/ (dontstop data build-mini) if the suite reads it and it is missing;
    with `dry_run`, only say that the real run will (a dry run writes nothing, and a mistyped
    --data-dir must not get a benchmark built in it)."""
    if not suite.built_data or (suite.data_folder / "manifest.json").exists():
        return
    check_writable_dir(suite.data_folder.parent)   # a --data-dir under a file: one line, not OSError
    if dry_run:
        print(f"mini benchmark data missing in {suite.data_folder}: the run builds it first "
              "(dontstop data build-mini)")
        return
    from ..data.mini import build_mini

    print("mini benchmark data missing: building it (dontstop data build-mini)")
    build_mini(suite.data_folder.parent)
