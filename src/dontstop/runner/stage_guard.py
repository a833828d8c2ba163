"""Whether a finished pretraining stage held out the dev and test text of the tasks about to be
fine-tuned on it.

A stage drops the dev and test text of the suite's tasks as they were when it was built, and its
record names those files by content (PretrainRecord.guarded_sha256, data/leakage.py). A task added
to the suite since (the paper's tasks are downloaded one by one; a study gains a task), or one whose
dev or test file changed, was not held out: before any work, the stage's corpus is searched for
that task's dev and test text. Text found there that the stage did not drop is refused in one line
(a finished stage is never built over; removing its folder builds it again under today's guard).
The answer is kept in the cache (guard_checks/), so a 50 GB corpus is read once per stage and set
of unguarded files, not once per command.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from ..data.formats import iter_corpus, load_split, text_key
from ..data.leakage import GUARDED_SPLITS
from ..fileio import UserError, atomic_write_json, file_sha256, read_json, sha256_file, sha256_text
from ..records import SELECTED_CORPUS_FILE, PretrainRecord
from ..suites import Suite
from .plan import Stage

GUARD_CHECKS = "guard_checks"   # <cache>/<suite>/guard_checks/<checkpoint>-<hash16>.json


def tasks_on(stage: Stage, jobs) -> set[str]:
    """The tasks of the unfinished fine-tuning runs and probes that start from `stage` (directly or
    through a stage built on it)."""
    return {job.plan.task.key for job in jobs if job.plan is not None and not job.done()
            and any(s.key == stage.key for s in job.plan.stages)}


def check_stage_guard(stage: Stage, tasks: Iterable[str], suite: Suite) -> None:
    """Refuse a finished `stage` whose corpus holds dev or test text of `tasks` that it did not drop."""
    record_path = Path(stage.record_path)
    record = PretrainRecord.read(record_path)
    held_out = set((record.guarded_sha256 or {}).values())
    # a file not there yet (a paper task not downloaded: a dry run, status) has no text to search
    # for; `run` refuses it before this (runner/inputs.py)
    files = [Path(suite.task_dir(task)) / f"{split}.jsonl" for task in sorted(tasks) for split in GUARDED_SPLITS]
    unguarded = {str(path): sha for path in files
                 if path.is_file() and (sha := file_sha256(path, suite.cache_dir)) not in held_out}
    if not unguarded:
        return
    # the answer holds for this record (a stage built again is another) and these files' content
    identity = sha256_text(json.dumps([sha256_file(record_path), unguarded], sort_keys=True))
    answer = Path(suite.cache_dir) / suite.name / GUARD_CHECKS / f"{Path(stage.checkpoint_dir).name}-{identity[:16]}.json"
    if answer.is_file():
        leaked = read_json(answer)["leaked"]
    else:
        leaked = _leaked(stage, record, unguarded)
        try:
            atomic_write_json(answer, {"stage": stage.checkpoint_dir, "unguarded": unguarded, "leaked": leaked})
        except OSError:   # a cache this command only reads: the answer is a shortcut
            pass
    if leaked:
        tasks_found = sorted({Path(where.rsplit(":", 1)[0]).parent.name for where in leaked})
        raise UserError(f"{stage.checkpoint_dir}: its corpus holds {len(leaked)} dev/test text(s) of "
                        f"{', '.join(tasks_found)} that it did not hold out (the task's files were added or "
                        f"changed after it was built; the first: {leaked[0]}); fine-tuning on it would test "
                        "on text it was pretrained on; a finished stage is never built over: remove its "
                        "folder to build it again")


def _leaked(stage: Stage, record: PretrainRecord, unguarded: dict[str, str]) -> list[str]:
    """"file:line" of each text of the `unguarded` files that the stage's corpus holds and did not drop."""
    wanted: dict[bytes, str] = {}
    for path in unguarded:
        for example in load_split(path):
            wanted.setdefault(text_key(example.text), f"{path}:{example.line}")
    # the stage's corpora as its suite names them now (check_finished_stage found them the content
    # it was built from; the record's paths are relative to where it was built), and its selection
    corpora = [*stage.corpora, *([str(stage.selection_dir / SELECTED_CORPUS_FILE)] if stage.selection else [])]
    for path in corpora:
        if not Path(path).is_file():
            raise UserError(f"{path}: not found, so {stage.checkpoint_dir} cannot be searched for the dev/test "
                            f"text of {next(iter(unguarded))}, which it did not hold out when it was built: "
                            "restore the file, or remove the stage's folder to build it again")
    print(f"stage {stage.lineage}: searching its corpus for the dev/test text of {len(unguarded)} file(s) "
          "it did not hold out when it was built", flush=True)
    found = {}
    total = record.documents + record.heldout_documents + record.excluded_documents
    for text in tqdm(iter_corpus(corpora), total=total, desc="guard check", unit="doc",
                     mininterval=2, disable=None):
        key = text_key(text)
        if key in wanted:
            found[key] = wanted[key]
    if record.excluded_keys is None:   # built before records kept them: only a count to compare
        return sorted(found.values(), key=_in_file_order) if len(found) > record.excluded_documents else []
    dropped = set(record.excluded_keys)
    return sorted((where for key, where in found.items() if key.hex() not in dropped), key=_in_file_order)


def _in_file_order(where: str) -> tuple[str, int]:
    path, line = where.rsplit(":", 1)
    return path, int(line)
