"""A study file: your own tasks and domains, in a YAML file outside the repository.

    name: comments-study
    extends: mini                 # every key not given here comes from this suite
    base_model: beomi/kcbert-base # a hub id, or a local model folder
    base_corpus: null             # no base stage: the given model is the baseline
    tasks:
      comments: {display: "Controversial comments", data: data/comments, metric: macro_f1,
                 domain: news_comments}
    domain_corpora: {news_comments: corpora/comments.txt, wiki: corpora/wiki.txt}

suites.load_suite reads it into a Suite whose tasks and domains are the file's (tasks.Task,
tasks.Domain, on the Suite itself). The rules, each checked here with one line naming the file,
the key and what is wrong:
- relative paths (a task's `data`, corpora, pools, curated pools, a local `base_model`, the
  folders) resolve against the file's folder, and must exist; paths inherited from the extended
  suite stay relative to its data folder (<data_dir>/<that suite>/);
- `recipes`, `quick`, `finetune` and `selection` are merged key by key into the extended
  suite's; any other key given replaces the extended suite's value;
- `tasks` is a mapping (the study's own tasks: then `domain_corpora`, `pools` and `curated` are
  only what the file gives) or a list of the extended suite's task keys (a subset);
- a task is `display` (its table row, one per task; default: the key), `data` (a folder
  holding train, dev and test.jsonl in the paper's format; labels are read from train),
  `metric`, `domain`, and optionally `profile` (low: 10 epochs, high: 3, unless the recipe's
  `finetune.epochs` says) and `transfer` (the task whose TAPT model Transfer-TAPT starts from;
  default: the first other task of the same domain);
- conditions run where their inputs are given: kNN-TAPT and RAND-TAPT on a task whose domain
  has a pool (`pools`), Curated-TAPT on a task with a curated pool (`curated`), Transfer-TAPT
  where a task has a partner, ¬DAPT where another domain has a corpus: its DAPT model is the
  irrelevant one (the first other domain of `domain_corpora`, or `domains: {D: {irrelevant: E}}`);
- `name` names results/<name>/ and may not be a built-in suite's (mini, paper);
- with its own tasks, `selection.bow_tokens` defaults to `scripts`: kNN-TAPT's bag of words finds
  words in any script (select/embed.py; the built-in suites keep scikit-learn's `sklearn`).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from .config import located, yaml_fields
from .fileio import UserError, unicode_twin
from .tasks import EPOCHS_BY_PROFILE, SUITES, Domain, Task

MERGED = ("recipes", "quick", "finetune", "selection")    # merged into the extended suite's
TASK_DATA = ("domain_corpora", "pools", "curated")         # about tasks: not inherited with own tasks
FOLDERS = ("data_dir", "results_dir", "cache_dir")
TASK_KEYS = ("display", "data", "metric", "domain", "profile", "transfer")
REQUIRED_TASK_KEYS = ("data", "metric", "domain")
METRICS = ("macro_f1", "micro_f1", "accuracy")
FOLDER_CHARACTERS = re.compile(r"^\w[\w.-]*$")   # checked with combining marks as letters


def is_folder_name(name: Any) -> bool:
    """A results path component in any script: letters, digits, '.', '-', '_' and the combining
    marks of a word (Hindi and Thai vowel signs: the regex `\\w` alone refused "टिप्पणी" and "ความเห็น")."""
    return isinstance(name, str) and bool(FOLDER_CHARACTERS.match(
        "".join("_" if unicodedata.category(c).startswith("M") else c for c in name)))


def is_study(data: dict[str, Any]) -> bool:
    """A study file extends a suite or declares its own tasks; a built-in suite file does neither."""
    return "extends" in data or isinstance(data.get("tasks"), dict)


def extends_ref(path: Path, data: dict, lines: dict[str, int], root: Path, chain: tuple[str, ...]) -> str:
    """What `extends` names, for suites.load_suite: a built-in suite's name, or the path of
    another suite file (relative to this one's folder)."""
    value, at = data["extends"], _at(path, lines, "extends")
    if isinstance(value, str) and (Path(root) / "suites" / f"{value}.yaml").is_file():
        return value
    other = path.resolve().parent / str(value)
    if not isinstance(value, str) or not other.is_file():
        known = ", ".join(sorted(p.stem for p in (Path(root) / "suites").glob("*.yaml")))
        raise UserError(f"{at}: key 'extends': {value!r} names no suite; known: {known}, "
                        "or the path of a suite YAML")
    if str(other.resolve()) in chain + (str(path.resolve()),):
        raise UserError(f"{at}: key 'extends': {value!r} extends this file again (a cycle)")
    return str(other)


def builtin_facts(path: Path, name: str, tasks: list[str], root: Path, lines: dict[str, int]) -> dict:
    """The facts of a built-in suite (tasks.py's registry); a suite file without `extends` and
    without its own tasks must be that suite's own file."""
    own = Path(root) / "suites" / f"{name}.yaml"
    if name in SUITES and own.is_file() and own.resolve() == path.resolve():
        registry = SUITES[name]
        unknown = [key for key in tasks if key not in registry.tasks]
        if unknown:
            raise UserError(f"{_at(path, lines, 'tasks')}: key 'tasks': unknown task {unknown[0]!r} "
                            f"in suite {name!r}; known: {', '.join(registry.tasks)}")
        return {"task_table": dict(registry.tasks), "domain_table": dict(registry.domains), "registry": name,
                "released": dict(registry.released)}
    if name in SUITES:
        raise UserError(f"{_at(path, lines, 'name')}: key 'name': {name!r} is the built-in suite of "
                        f"{own}; a copy needs a name of its own (and `extends: {name}`)")
    raise UserError(f"{_at(path, lines, 'tasks')}: key 'tasks': a suite file outside {Path(root) / 'suites'} "
                    "declares its own tasks (a mapping) or `extends` a suite")


def study_fields(path: Path, data: dict, lines: dict[str, int], parent: Any,
                 from_flags: frozenset[tuple[str, ...]] = frozenset()) -> tuple[dict, dict]:
    """(the Suite's YAML fields, its facts: task_table, domain_table, released, registry,
    own_tasks, data_name) of a study file; `parent` is the extended Suite, or None. `from_flags`:
    the key paths a command-line flag gave (`--domain-corpus reviews=F`: ("domain_corpora",
    "reviews")); their files are checked by the command that reads them (runner/inputs.py), as a
    built-in suite's are, so that `status` still reports on a run whose corpus is gone."""
    folder = path.resolve().parent
    name = data.get("name")
    if not is_folder_name(name):
        raise UserError(f"{_at(path, lines, 'name')}: key 'name': expected a folder name "
                        f"(letters, digits, '.', '-', '_'), got {name!r}")
    if name in SUITES:
        raise UserError(f"{_at(path, lines, 'name')}: key 'name': {name!r} is a built-in suite's name; "
                        "give the study its own (its results go to results/<name>/)")
    _check_duplicates(path)
    own_tasks = isinstance(data.get("tasks"), dict)
    fields = {} if parent is None else {key: getattr(parent, key) for key in yaml_fields(parent)}
    for key in TASK_DATA if own_tasks else ():
        fields.pop(key, None)
    for key, value in data.items():
        if key in MERGED and isinstance(value, dict) and isinstance(fields.get(key), dict):
            value = _merged(fields[key], value)
        fields[key] = _resolved(path, lines, key, value, folder, from_flags)
    domains_given = fields.pop("domains", None)
    if own_tasks:
        tasks = _own_tasks(path, data["tasks"], folder, fields)
        facts = {"task_table": tasks, "domain_table": _domains(path, lines, domains_given, tasks, fields),
                 "released": {}, "registry": None, "own_tasks": True}
        fields["tasks"] = list(tasks)
        # A study's own tasks may be in any language: the bow embedder finds words in every
        # script, unless the file says otherwise (the built-in suites keep scikit-learn's words).
        fields["selection"] = {"bow_tokens": "scripts", **(fields.get("selection") or {})}
    elif parent is None:
        raise UserError(f"{_at(path, lines, 'tasks')}: key 'tasks': a study file without `extends` declares "
                        "its own tasks: a mapping of task key to display, data, metric and domain")
    else:
        facts = {name: getattr(parent, name)
                 for name in ("task_table", "domain_table", "released", "registry", "own_tasks")}
        if parent.own_tasks:   # another study's tasks: kNN and Curated follow this file's pools
            facts["task_table"] = refresh_tasks(parent.task_table, fields.get("pools") or {},
                                                fields.get("curated") or {})
        for key in data.get("tasks") or []:
            if key not in parent.task_table:
                raise UserError(f"{_at(path, lines, 'tasks')}: key 'tasks': unknown task {key!r} in suite "
                                f"{parent.name!r}; known: {', '.join(parent.task_table)}")
    facts["data_name"] = (parent.data_name or parent.name) if parent is not None else name
    return fields, facts


def tables_dir(suite: Any, given: str | None) -> Path:
    """Where a suite's tables go: `given` (--tables-dir, --out), else a study's beside its file
    (<its folder>/tables/<name>/), a built-in suite's in paper_tables/<name>/."""
    if given:
        return Path(given)
    return Path(suite.source).parent / "tables" if suite.is_study else Path("paper_tables")


def refresh_tasks(task_table: dict[str, Task], pools: dict[str, str], curated: dict[str, str]) -> dict[str, Task]:
    """A study's tasks after --pool / --curated-corpus: kNN where the domain has a pool, Curated
    where the task has a pool."""
    return {key: replace(task, knn=task.domain in pools, curated=curated.get(key, task.curated))
            for key, task in task_table.items()}


def _merged(base: dict, given: dict) -> dict:
    """`given` over `base`, key by key, nested mappings too."""
    out = dict(base)
    for key, value in given.items():
        out[key] = _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def _resolved(path: Path, lines: dict[str, int], key: str, value: Any, folder: Path,
              from_flags: frozenset[tuple[str, ...]]) -> Any:
    """A given key's paths, absolute against the study file's folder; the file's inputs must exist."""
    at = _at(path, lines, key)

    def input_file(keys: tuple[str, ...], given: str) -> str:
        if keys in from_flags:
            return str(folder / Path(given).expanduser())
        return _existing(at, ".".join(keys), folder, given)

    if key in ("domain_corpora", "pools", "curated") and isinstance(value, dict):
        return {name: input_file((key, name), given) if isinstance(given, str) else given
                for name, given in value.items()}
    if key == "base_corpus" and isinstance(value, str):
        return input_file((key,), value)
    if key in FOLDERS and isinstance(value, str):
        return str(folder / Path(value).expanduser())
    if key == "base_model" and isinstance(value, str) and (
            value.startswith((".", "/", "~")) or (folder / value).exists()):
        return _existing(at, key, folder, value, is_folder=True)
    return value


def _existing(at: str, key: str, folder: Path, given: str, is_folder: bool = False) -> str:
    candidate = folder / Path(given).expanduser()
    if not (candidate.is_dir() if is_folder else candidate.is_file()):
        wrong = "a file, not a folder" if candidate.is_file() else "a folder, not a file" if candidate.is_dir() else None
        raise UserError(f"{at}: key '{key}': {candidate}: {wrong or 'no such ' + ('folder' if is_folder else 'file')}"
                        + unicode_twin(candidate))
    return str(candidate)


def _own_tasks(path: Path, given: dict, folder: Path, fields: dict) -> dict[str, Task]:
    """The study's Task objects, each checked key by key."""
    task_lines = _task_lines(path)
    specs = {}
    for key, spec in given.items():
        at = f"{path}:{task_lines[key]}" if key in task_lines else str(path)
        if not is_folder_name(key):
            raise UserError(f"{at}: key 'tasks': task key {key!r} is not a folder name")
        if not isinstance(spec, dict):
            raise UserError(f"{at}: key 'tasks.{key}': expected a mapping of {', '.join(TASK_KEYS)}")
        for field in spec:
            if field not in TASK_KEYS:
                raise UserError(f"{at}: key 'tasks.{key}.{field}': unknown; known keys: {', '.join(TASK_KEYS)}")
        missing = [field for field in REQUIRED_TASK_KEYS if spec.get(field) is None]
        if missing:
            raise UserError(f"{at}: key 'tasks.{key}': missing required key(s): {', '.join(missing)}")
        for field, known in (("metric", METRICS), ("profile", tuple(EPOCHS_BY_PROFILE))):
            if field in spec and spec[field] not in known:
                raise UserError(f"{at}: key 'tasks.{key}.{field}': {spec[field]!r} is not one of {', '.join(known)}")
        for field in ("display", "domain", "data", "transfer"):
            if field in spec and not isinstance(spec[field], str):
                raise UserError(f"{at}: key 'tasks.{key}.{field}': expected str, got {spec[field]!r}")
        specs[key] = (at, {**spec, "data": _existing(at, f"tasks.{key}.data", folder, spec["data"], is_folder=True)})
    pools, curated = fields.get("pools") or {}, fields.get("curated") or {}
    tasks = {}
    for key, (at, spec) in specs.items():
        partners = [other for other, (_, s) in specs.items() if other != key and s["domain"] == spec["domain"]]
        transfer = spec.get("transfer", partners[0] if partners else None)
        if transfer is not None and transfer not in partners:
            raise UserError(f"{at}: key 'tasks.{key}.transfer': {transfer!r} is not another task of "
                            f"domain {spec['domain']!r}")
        tasks[key] = Task(key, spec.get("display", key), spec["domain"], spec["metric"], spec.get("profile", "low"),
                          curated=curated.get(key), transfer=transfer,
                          knn=isinstance(pools, dict) and spec["domain"] in pools, data=spec["data"])
    return tasks


def _domains(path: Path, lines: dict[str, int], given: Any, tasks: dict[str, Task], fields: dict) -> dict[str, Domain]:
    """Every domain of a task or a corpus; each one's irrelevant domain (for ¬DAPT) is the given
    one, else the first other domain that has a corpus."""
    corpora = fields.get("domain_corpora") or {}
    keys = list(dict.fromkeys([t.domain for t in tasks.values()] + list(corpora)))
    given = given or {}
    at = _at(path, lines, "domains")
    if not isinstance(given, dict) or not all(isinstance(v, dict) for v in given.values()):
        raise UserError(f"{at}: key 'domains': expected a mapping of domain to {{display, irrelevant}}")
    for mapping, what in ((given, "domains"), (fields.get("pools") or {}, "pools")):
        for key in mapping:
            if key not in keys:
                raise UserError(f"{_at(path, lines, what)}: key '{what}.{key}': no task or domain corpus "
                                f"has domain {key!r}; known: {', '.join(keys)}")
    for key in fields.get("curated") or {}:
        if key not in tasks:
            raise UserError(f"{_at(path, lines, 'curated')}: key 'curated.{key}': not a task of this study; "
                            f"known: {', '.join(tasks)}")
    domains = {}
    for key in keys:
        spec = given.get(key, {})
        irrelevant = spec.get("irrelevant", next((other for other in corpora if other != key), None))
        if irrelevant is not None and (irrelevant == key or irrelevant not in corpora):
            raise UserError(f"{at}: key 'domains.{key}.irrelevant': {irrelevant!r} is not another domain "
                            "of domain_corpora")
        domains[key] = Domain(key, str(spec.get("display", key)), irrelevant)
    return domains


def _check_duplicates(path: Path) -> None:
    """A key given twice (YAML would keep the last one silently), at the top or among the tasks."""
    root = yaml.compose(path.read_text(encoding="utf-8"))
    nodes = [("", root)] + [(f"{k.value}.", v) for k, v in getattr(root, "value", []) if k.value == "tasks"]
    for prefix, node in nodes:
        if not isinstance(node, yaml.MappingNode):
            continue
        seen: dict[str, int] = {}
        for key, _ in node.value:
            if key.value in seen:
                raise UserError(f"{path}:{key.start_mark.line + 1}: key '{prefix}{key.value}': given twice "
                                f"(first on line {seen[key.value]})")
            seen[key.value] = key.start_mark.line + 1


def _task_lines(path: Path) -> dict[str, int]:
    root = yaml.compose(path.read_text(encoding="utf-8"))
    for key, value in root.value:
        if key.value == "tasks" and isinstance(value, yaml.MappingNode):
            return {k.value: k.start_mark.line + 1 for k, _ in value.value}
    return {}


def _at(path: Path, lines: dict[str, int], key: str) -> str:
    return located(str(path), lines, key)
