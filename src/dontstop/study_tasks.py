"""A study file's own tasks and domains (study_file.py reads the rest of the file): each task's
keys checked one by one, its data folder found against the file's folder, and each domain's
irrelevant domain (for ¬DAPT). Every mistake is one line naming the file, its line and the key.
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any, Mapping

from .config import located, nested_key_lines, shared_names, unprintable, unquoted_hint
from .fileio import UserError, unicode_twin, wrong_kind
from .records import SUITE_RESULTS_OWN
from .tasks import EPOCHS_BY_PROFILE, Domain, Task

TASK_KEYS = ("display", "data", "metric", "domain", "profile", "transfer")
REQUIRED_TASK_KEYS = ("data", "metric", "domain")
DOMAIN_KEYS = ("display", "irrelevant")
METRICS = ("macro_f1", "micro_f1", "accuracy")
FOLDER_CHARACTERS = re.compile(r"^\w[\w.-]*$")   # checked with combining marks as letters


def is_folder_name(name: Any) -> bool:
    """A results path component in any script: letters, digits, '.', '-', '_' and the combining
    marks of a word (Hindi and Thai vowel signs: the regex `\\w` alone refused "टिप्पणी" and "ความเห็น")."""
    return isinstance(name, str) and bool(FOLDER_CHARACTERS.match(
        "".join("_" if unicodedata.category(c).startswith("M") else c for c in name)))


def existing(at: str, key: str, folder: Path, given: str, is_folder: bool = False) -> str:
    candidate = folder / Path(given).expanduser()
    if not (candidate.is_dir() if is_folder else candidate.is_file()):
        wrong = wrong_kind(candidate, folder=is_folder)   # a fifo or /dev/zero was "no such file"
        raise UserError(f"{at}: key '{key}': {candidate}: {wrong or 'no such ' + ('folder' if is_folder else 'file')}"
                        + unicode_twin(candidate))
    return str(candidate)


def own_tasks(path: Path, given: dict, folder: Path, fields: dict,
              from_flags: Mapping[tuple[str, ...], str] = {}) -> dict[str, Task]:
    """The study's Task objects, each checked key by key; a mistake names the flag that gave the
    value (`from_flags`: key path -> flag), else the file's line of the task or of its field."""
    lines = nested_key_lines(path)
    specs = {}
    for key, spec in given.items():
        at = (from_flags.get(("tasks", key)) or from_flags.get(("tasks",))
              or (f"{path}:{lines[('tasks', key)]}" if ("tasks", key) in lines else str(path)))
        if isinstance(spec, dict):   # a field a flag gave (--set tasks.T.metric=...) names the flag
            at = next((from_flags[("tasks", key, field)] for field in spec if ("tasks", key, field) in from_flags), at)

        def at_field(field: str, key: str = key, at: str = at) -> str:
            return _field_at(path, lines, from_flags, ("tasks", key, field), at)
        if not is_folder_name(key):
            raise UserError(f"{at}: key 'tasks': task key {key!r} is not a folder name")
        if key.casefold() in {name.casefold() for name in SUITE_RESULTS_OWN}:
            raise UserError(f"{at}: key 'tasks': task key {key!r} names what the results folder holds beside "
                            f"its tasks ({', '.join(SUITE_RESULTS_OWN)}); choose another")
        if not isinstance(spec, dict):
            raise UserError(f"{at}: key 'tasks.{key}': expected a mapping of {', '.join(TASK_KEYS)}")
        for field in spec:
            if field not in TASK_KEYS:
                raise UserError(f"{at_field(field)}: key 'tasks.{key}.{field}': unknown; known keys: {', '.join(TASK_KEYS)}")
        missing = [field for field in REQUIRED_TASK_KEYS if spec.get(field) is None]
        if missing:
            raise UserError(f"{at}: key 'tasks.{key}': missing required key(s): {', '.join(missing)}")
        for field, known in (("metric", METRICS), ("profile", tuple(EPOCHS_BY_PROFILE))):
            if field in spec and spec[field] not in known:
                raise UserError(f"{at_field(field)}: key 'tasks.{key}.{field}': {spec[field]!r} is not one of "
                                f"{', '.join(known)}")
        for field in ("display", "domain", "data", "transfer"):
            if field in spec and not isinstance(spec[field], str):
                raise UserError(f"{at_field(field)}: key 'tasks.{key}.{field}': expected str, "
                                f"got {spec[field]!r}{unquoted_hint(spec[field])}")
            if field in spec and not spec[field].strip():   # data "" was the study's own folder
                raise UserError(f"{at_field(field)}: key 'tasks.{key}.{field}': empty" +
                                ("; it is the task's table row" if field == "display" else ""))
        if character := unprintable(spec.get("display", "")):   # a line break split the task's Markdown rows
            raise UserError(f"{at_field('display')}: key 'tasks.{key}.display': holds {character!r}; it is the "
                            "task's table row, "
                            "one line")
        specs[key] = (at, {**spec, "data": existing(at_field("data"), f"tasks.{key}.data", folder, spec["data"],
                                                    is_folder=True)})
    clash = shared_names({key: key.casefold() for key in specs})
    if clash:   # one results folder, results/<name>/<task>/, on a disk that ignores case
        key, _, first = clash[0]
        raise UserError(f"{specs[key][0]}: key 'tasks.{key}': differs from task {first!r} only in case; their "
                        "results folders would be one on macOS or Windows: rename one")
    folders = shared_names({key: str(Path(spec["data"]).resolve()) for key, (_, spec) in specs.items()})
    if folders:   # pasted twice: two identical table rows, and Transfer-TAPT was TAPT on the same text
        key, folder_of_both, first = folders[0]
        raise UserError(f"{specs[key][0]}: key 'tasks.{key}.data': {folder_of_both} is the data of task {first!r} "
                        "too; each task needs its own")
    pools, curated = fields.get("pools") or {}, fields.get("curated") or {}
    tasks = {}
    for key, (at, spec) in specs.items():
        partners = [other for other, (_, s) in specs.items() if other != key and s["domain"] == spec["domain"]]
        transfer = spec.get("transfer", partners[0] if partners else None)
        if transfer is not None and transfer not in partners:
            where = _field_at(path, lines, from_flags, ("tasks", key, "transfer"), at)
            raise UserError(f"{where}: key 'tasks.{key}.transfer': {transfer!r} is not another task of "
                            f"domain {spec['domain']!r}")
        tasks[key] = Task(key, spec.get("display", key), spec["domain"], spec["metric"], spec.get("profile", "low"),
                          curated=curated.get(key), transfer=transfer,
                          knn=isinstance(pools, dict) and spec["domain"] in pools, data=spec["data"])
    return tasks


def study_domains(path: Path, lines: dict[str, int], given: Any, tasks: dict[str, Task], fields: dict,
             from_flags: Mapping[tuple[str, ...], str]) -> dict[str, Domain]:
    """Every domain of a task or a corpus; each one's irrelevant domain (for ¬DAPT) is the given
    one, else the first other domain that has a corpus."""
    corpora = fields.get("domain_corpora") or {}
    keys = list(dict.fromkeys([t.domain for t in tasks.values()] + list(corpora)))
    given = given or {}
    at = located(str(path), lines, "domains")
    for key in keys:   # `news/comments` made nested stage folders, checkpoints/dapt-news/comments-1a2b3c4d/
        if not is_folder_name(key):
            where = "domain_corpora" if key in corpora else "tasks"
            raise UserError(f"{located(str(path), lines, where)}: key '{where}': domain {key!r} is not a folder "
                            "name (letters, digits, '.', '-', '_'): it names the DAPT stage's folder")
    if not isinstance(given, dict) or not all(isinstance(v, dict) for v in given.values()):
        raise UserError(f"{at}: key 'domains': expected a mapping of domain to {{display, irrelevant}}")
    for key, spec in given.items():   # a typo of `irrelevant` chose another ¬DAPT domain silently
        for field in spec:
            if field not in DOMAIN_KEYS:
                raise UserError(f"{at}: key 'domains.{key}.{field}': unknown; known keys: {', '.join(DOMAIN_KEYS)}")
    in_file = {keys[1] for keys in nested_key_lines(path) if keys[0] == "domain_corpora" and len(keys) == 2}
    for key in corpora:   # `--domain-corpus review=F` for the study's `reviews` added an unused domain
        if ("domain_corpora", key) in from_flags and key not in in_file | {t.domain for t in tasks.values()}:
            known = [k for k in keys if k in in_file or k in {t.domain for t in tasks.values()}]
            raise UserError(f"{located(str(path), lines, 'domain_corpora')}: unknown domain {key!r} in study "
                            f"{fields.get('name')!r}; known: {', '.join(known)} (a new domain goes in the "
                            "study file's domain_corpora)")
    for mapping, what in ((given, "domains"), (fields.get("pools") or {}, "pools")):
        for key in mapping:
            if key not in keys:
                raise UserError(f"{located(str(path), lines, what)}: key '{what}.{key}': no task or domain corpus "
                                f"has domain {key!r}; known: {', '.join(keys)}")
    for key in fields.get("curated") or {}:
        if key not in tasks:
            raise UserError(f"{located(str(path), lines, 'curated')}: key 'curated.{key}': not a task of this study; "
                            f"known: {', '.join(tasks)}")
    domains = {}
    for key in keys:
        spec = given.get(key, {})
        irrelevant = spec.get("irrelevant", next((other for other in corpora if other != key), None))
        if irrelevant is not None and (not isinstance(irrelevant, str) or irrelevant == key or irrelevant not in corpora):
            raise UserError(f"{at}: key 'domains.{key}.irrelevant': {irrelevant!r} is not another domain "
                            "of domain_corpora")
        domains[key] = Domain(key, str(spec.get("display", key)), irrelevant)
    return domains


def _field_at(path: Path, lines: dict[tuple[str, ...], int], from_flags: Mapping[tuple[str, ...], str],
              keys: tuple[str, ...], fallback: str) -> str:
    """Where a task's field was given: its flag, else its line (the task's line named the task, not
    the wrong field), else `fallback`."""
    return from_flags.get(keys) or (f"{path}:{lines[keys]}" if keys in lines else fallback)
