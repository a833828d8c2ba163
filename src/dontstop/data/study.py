"""The data of a study file's own tasks, checked before any work (study_file.py checks the file
itself: its keys, and that every path it names exists).

Each task folder goes through `dontstop data check`'s own validation (task_checks.check_task): every
split present and well-formed, and, since a study's labels are read from its training split, no
dev or test label that train never shows (fine-tuning could not score it). The first error
stops the run in one line naming the study file, the task's key and the problem's file and line:

    study.yaml: key 'tasks.comments.data': .../comments/dev.jsonl:3: field 'label': 'X' never occurs in train

Its warnings (leakage, a text given two labels, labels differing only in case) are one note per
task: the researcher's own data was never looked at by anyone else.
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
        problems = check_task(suite.task_dir(key))
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise UserError(f"{suite.source}: key 'tasks.{key}.data': {_plain(errors[0])}"
                            + _more(len(errors) - 1, "", suite.task_dir(key)))
        # A warning of the label field stopped the study as an error: a text given two labels on
        # purpose (a sentence per entity pair), which `data check` and a built-in suite tolerate.
        warnings = [p for p in problems if p.severity == "warning"]
        if warnings:
            print(f"note: task '{key}': {_plain(warnings[0])}"
                  + _more(len(warnings) - 1, " warning(s)", suite.task_dir(key)), flush=True)


def _more(count: int, what: str, directory) -> str:
    return f" (and {count} more{what}: dontstop data check {directory})" if count else ""


def _plain(problem: Problem) -> str:
    """The problem's line without its `[severity]` tag."""
    return str(problem).rsplit(" [", 1)[0]
