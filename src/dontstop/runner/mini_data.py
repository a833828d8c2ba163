"""The mini benchmark's data, built before a run that needs it and finds it missing
(`dontstop reproduce` on a fresh machine: `make reproduce`)."""
from __future__ import annotations

from ..fileio import check_writable_dir
from ..suites import Suite


def ensure_mini_data(suite: Suite) -> None:
    """Build <data_dir>/mini/ (dontstop data build-mini) if the suite reads it and it is missing."""
    if not suite.built_data or (suite.data_folder / "manifest.json").exists():
        return
    from ..data.mini import build_mini

    check_writable_dir(suite.data_folder.parent)   # a --data-dir under a file: one line, not OSError
    print("mini benchmark data missing: building it (dontstop data build-mini)")
    build_mini(suite.data_folder.parent)
