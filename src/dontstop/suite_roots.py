"""A root folder flag given one level too deep, as the suite's own folder (`--results-dir
results/mini`, `--cache-dir cache/mini`, `--data-dir data/mini`), refused: each is the root of
<suite>/..., and a command went on into <root>/<suite>/<suite>/ without a word."""
from __future__ import annotations

from pathlib import Path

from .fileio import UserError
from .tasks import QUICK_FOLDER

DATA_HOLDS = ("tasks", "corpora", "pools", "manifest.json")   # what <data>/<suite>/ holds: data_dir's one level too deep


def check_root_given(folder: str | Path, suite_name: str, task_keys: list[str], flag: str,
                     holds: tuple[str, ...] = ("RUN.json", "checkpoints", "selections")) -> None:
    """Refuse a results or cache root given one level too deep: `--results-dir results/mini`, the
    suite's own folder, when <results>/<suite>/ is where its runs go. `run` wrote them to
    results/mini/mini/ without a word, `aggregate` said "no metrics.json found" beside them, and
    `status` showed every job not started. A folder of the suite's name that does not hold its
    runs (a new `--results-dir runs/mini`) is a root like any other. A data root (`holds`
    DATA_HOLDS): `--data-dir data/mini` was read as data/mini/mini/ (its tasks "not found"; `run`
    and `data build-mini` built the benchmark again in there, `data download` fetched into it)."""
    root = Path(folder)
    root = root.parent if root.name == QUICK_FOLDER else root   # --quick: <results>/quick/<suite>/
    if root.name != suite_name or (root / suite_name).exists():
        return
    held = next((name for name in (*holds, *task_keys) if (root / name).exists()), None)
    if held:
        raise UserError(f"{flag} {root}: the folder of suite {suite_name} itself (it holds {held}); give the "
                        f"folder above it, {root.parent} ({flag} is the root of <suite>/...)")

