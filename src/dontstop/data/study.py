"""The data of a study file's own tasks, checked before any work (study_file.py checks the file
itself: its keys, and that every path it names exists).

Each task folder goes through `dontstop data check`'s own validation (task_checks.check_task): every
split present and well-formed, and, since a study's labels are read from its training split, no
dev or test label that train never shows (fine-tuning could not score it). The first problem
stops the run in one line naming the study file, the task's key and the problem's file and line:

    study.yaml: key 'tasks.comments.data': .../comments/dev.jsonl:3: field 'label': 'X' never occurs in train
"""
from __future__ import annotations

from ..suites import Suite
from ..fileio import UserError
from .formats import Problem
from .task_checks import check_task


def check_study_data(suite: Suite) -> None:
    """Raise on the first problem of the study's own tasks; a built-in suite's data is left to
    `dontstop data check` and to the run (its label sets are known)."""
    if not suite.own_tasks:
        return
    for key in suite.tasks:
        problems = [p for p in check_task(suite.task_dir(key)) if stops_a_study(p)]
        if problems:
            raise UserError(f"{suite.source}: key 'tasks.{key}.data': {_plain(problems[0])}"
                            + (f" (and {len(problems) - 1} more: dontstop data check {suite.task_dir(key)})"
                               if len(problems) > 1 else ""))


def stops_a_study(problem: Problem) -> bool:
    """Errors, and a dev or test label absent from train (only a warning for `data check`)."""
    return problem.severity == "error" or problem.field == "label"


def _plain(problem: Problem) -> str:
    """The problem's line without its `[severity]` tag."""
    return str(problem).rsplit(" [", 1)[0]
