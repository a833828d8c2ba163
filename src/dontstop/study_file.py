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
tasks.Domain, on the Suite itself; study_tasks.py checks those). The rules, each checked with one
line naming the file, the key and what is wrong:
- relative paths (a task's `data`, corpora, pools, curated pools, a local `base_model` or
  `selection.encoder_model`, the folders) resolve against the file's folder, and must exist;
  paths inherited from the extended suite stay relative to its data folder (<data_dir>/<that suite>/);
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
- `name` names results/<name>/ and may not be a built-in suite's (mini, paper); results/, cache/
  and tables/ lie beside the file unless it (or a study file it extends) or a flag says otherwise;
- with its own tasks, `selection.bow_tokens` defaults to `scripts`: kNN-TAPT's bag of words finds
  words in any script (select/embed.py; the built-in suites keep scikit-learn's `sklearn`).
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from .config import MERGED_SECTIONS, located, merged, unquoted_hint, yaml_fields
from .fileio import UserError
from .study_tasks import existing, is_folder_name, own_tasks, study_domains
from .tasks import QUICK_FOLDER, SUITES, Task

TASK_DATA = ("domain_corpora", "pools", "curated")         # about tasks: not inherited with own tasks
FOLDERS = ("data_dir", "results_dir", "cache_dir")
# A study's results and cache, where its file (or a study file it extends) does not say: beside the
# file, as its tables are (tables_dir). They were the working folder's `results/` and `cache/`: a
# study run from another folder left them there and its tables beside the file, and `status` from
# the study's folder found none of its runs. Relative to the working folder (`results` from the
# study's folder, as before), as the tables' index names its runs folder: a study moved whole keeps them.
OUTPUT_FOLDERS = {"results_dir": "results", "cache_dir": "cache"}
SECTIONS = {"domain_corpora": "domain to corpus file", "pools": "domain to pool file",   # key -> what it maps
            "curated": "task to curated file", "selection": "kNN selection setting to value",
            "domains": "domain to {display, irrelevant}"}


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
                 from_flags: Mapping[tuple[str, ...], str] = {}) -> tuple[dict, dict]:
    """(the Suite's YAML fields, its facts: task_table, domain_table, released, registry,
    own_tasks, data_name) of a study file; `parent` is the extended Suite, or None. `from_flags`:
    the key paths a command-line flag gave, each to that flag (`--domain-corpus reviews=F`:
    ("domain_corpora", "reviews")), which a mistake in them names; their files are checked by the
    command that reads them (runner/inputs.py), as a built-in suite's are, so that `status` still
    reports on a run whose corpus is gone."""
    folder = path.resolve().parent
    name = data.get("name")
    if not is_folder_name(name):
        raise UserError(f"{_at(path, lines, 'name')}: key 'name': expected a folder name "
                        f"(letters, digits, '.', '-', '_'), got {name!r}{unquoted_hint(name)}")
    twin = next((suite for suite in SUITES if suite.casefold() == name.casefold()), None)
    if twin:   # `Mini`: results/Mini/ is results/mini/ on a disk that ignores case (macOS, Windows)
        how = "" if twin == name else f"{twin!r} in all but case, "
        raise UserError(f"{_at(path, lines, 'name')}: key 'name': {name!r} is {how}a built-in suite's name; "
                        "give the study its own (its results go to results/<name>/)")
    if name.casefold() == QUICK_FOLDER:
        raise UserError(f"{_at(path, lines, 'name')}: key 'name': {name!r} is the folder of `--quick` runs "
                        f"(results/{QUICK_FOLDER}/<name>/); give the study another name")
    _check_sections(path, data, lines)
    has_own_tasks = isinstance(data.get("tasks"), dict)
    fields = {} if parent is None else {key: getattr(parent, key) for key in yaml_fields(parent)}
    for key in TASK_DATA if has_own_tasks else ():
        fields.pop(key, None)
    for key, value in data.items():
        if key in MERGED_SECTIONS and isinstance(value, dict) and isinstance(fields.get(key), dict):
            value = merged(fields[key], value)
        fields[key] = _resolved(path, lines, key, value, folder, from_flags)
    for key, default in OUTPUT_FOLDERS.items():   # beside the file, as its tables: not the working folder's
        if key not in data and not _given_by_a_study_file(parent, key):
            fields[key] = _beside(folder, default)
    domains_given = fields.pop("domains", None)
    if has_own_tasks:
        if not data["tasks"]:   # `--set 'tasks={}'` said the curated pool's task was none of ""
            raise UserError(f"{_at(path, lines, 'tasks')}: key 'tasks': empty; give at least one task")
        tasks = own_tasks(path, data["tasks"], folder, fields, from_flags)
        facts = {"task_table": tasks,
                 "domain_table": study_domains(path, lines, domains_given, tasks, fields, from_flags),
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


def _check_sections(path: Path, data: dict, lines: dict[str, int]) -> None:
    """The sections read before the Suite's own type checks, in their shape: a mapping of the
    sections keyed by domain or task, `tasks` a mapping or a list of task keys. Given as a string
    or a YAML list (`- polar: ...`) they were iterated as they came: a traceback (`curated`,
    `selection`, `tasks: - polar:`), or a domain named '/' or 'p', one letter of the string."""
    for key in SECTIONS:
        value = data.get(key)
        if value is not None and not isinstance(value, dict):
            raise UserError(f"{_at(path, lines, key)}: key '{key}': expected a mapping of {SECTIONS[key]}, "
                            f"got {_shown(value)}")
    tasks = data.get("tasks")
    if tasks is not None and not isinstance(tasks, dict) and not (
            isinstance(tasks, list) and all(isinstance(key, str) for key in tasks)):
        raise UserError(f"{_at(path, lines, 'tasks')}: key 'tasks': expected a mapping of task key to its display, "
                        f"data, metric and domain (the study's own tasks) or a list of the extended suite's task "
                        f"keys, got {_shown(tasks)}")


def _shown(value: Any) -> str:
    """What was given, in a line: a YAML list of mappings (`- reviews: corpora/reviews.txt`) by its
    first entry's key, since its dashes made the list (the whole list was a line of kilobytes)."""
    if isinstance(value, list) and value and all(isinstance(item, dict) and item for item in value):
        return f"a YAML list ('- {next(iter(value[0]))}: ...'); write each entry without its leading '- '"
    return f"{type(value).__name__} {value!r}"


def _given_by_a_study_file(parent: Any, key: str) -> bool:
    """Whether the extended suite's `key` was written in a study file of its chain (kept), not
    a built-in suite's working-folder default or a study's default beside its own file."""
    return (parent is not None and parent.is_study
            and getattr(parent, key) != _beside(Path(parent.source).resolve().parent, OUTPUT_FOLDERS[key]))


def _beside(folder: Path, name: str) -> str:
    """<folder>/<name>, relative to the working folder."""
    return os.path.relpath(folder / name)


def check_no_outputs_left_behind(suite: Any, given: set[str]) -> None:
    """A study's results or cache where they went before they lay beside its file (the working
    folder's results/<name>/, cache/<name>/), and none where they go now: one line saying to move
    them, not a run that starts every stage and run again beside them. `given`: the folder keys
    a flag gave (they are used as given). Not where a study file of that name lies in the working
    folder (a copy of the study, run from the original's folder): they are that one's, beside it."""
    for key, default in OUTPUT_FOLDERS.items():
        if key in given or getattr(suite, key) != _beside(Path(suite.source).resolve().parent, default):
            continue   # a flag's or the file's own folder: used as given
        for inner in (Path(suite.name), Path(QUICK_FOLDER) / suite.name):
            before, now = Path(default) / inner, Path(getattr(suite, key)) / inner
            if before.is_dir() and before.resolve() != now.resolve() and not now.exists() \
                    and not _a_study_here_named(suite):
                mkdir = "" if now.parent.is_dir() else f"mkdir -p {now.parent} && "   # else mv fails, or renames
                raise UserError(f"{before}: study {suite.name}'s {default} from before a study's {default} lay "
                                f"beside its file; move it there ({mkdir}mv {before} {now}), or give "
                                f"--{key.replace('_', '-')} {default}")


def _a_study_here_named(suite: Any) -> bool:
    """Whether another study file in the working folder is named as `suite` (its results/<name>/ are its own)."""
    import yaml

    for path in Path().glob("*.y*ml"):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and data.get("name") == suite.name and path.resolve() != Path(suite.source).resolve():
            return True
    return False


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


def _resolved(path: Path, lines: dict[str, int], key: str, value: Any, folder: Path,
              from_flags: Mapping[tuple[str, ...], str]) -> Any:
    """A given key's paths, absolute against the study file's folder; the file's inputs must exist."""
    at = _at(path, lines, key)

    def input_file(keys: tuple[str, ...], given: str) -> str:
        if not given.strip():   # refused naming its key or flag (suite_checks), as a built-in suite's:
            return given        # it was the study's own folder, "a folder, not a file"
        if keys in from_flags:
            return str(folder / Path(given).expanduser())
        return existing(at, ".".join(keys), folder, given)

    if key in ("domain_corpora", "pools", "curated") and isinstance(value, dict):
        return {name: input_file((key, name), given) if isinstance(given, str) else given
                for name, given in value.items()}
    if key == "base_corpus" and isinstance(value, str):
        return input_file((key,), value)
    if key in FOLDERS and isinstance(value, str):
        return str(folder / Path(value).expanduser())
    empty = {"base_model": value == "", "selection": isinstance(value, dict) and value.get("encoder_model") == ""}
    if empty.get(key):   # "" was the study's own folder, "not a model directory" once a job loaded it
        given = "selection.encoder_model" if key == "selection" else key
        raise UserError(f"{at}: key '{given}': empty; give a hub id, bundled:<name> or a model folder")
    if key == "base_model" and _local_model(value, folder):
        return existing(at, key, folder, value, is_folder=True)
    if key == "selection" and isinstance(value, dict) and _local_model(value.get("encoder_model"), folder):
        # against the file's folder too, not where the command runs (another folder there was used)
        return {**value, "encoder_model": existing(at, "selection.encoder_model", folder, value["encoder_model"],
                                                   is_folder=True)}
    return value


def _local_model(value: Any, folder: Path) -> bool:
    """A model given as a folder (a path, or a name found in the study's folder, or under a folder
    of the study's: `models/my-bert` mistyped, beside `models/`), not a hub id (`org/name`: it was
    looked up on the hub, "not in the local cache and offline", naming no key)."""
    from .models import mistyped_folder   # a hub id the cache holds is one, beside a folder of its org's name

    return isinstance(value, str) and (value.startswith((".", "/", "~")) or (folder / value).exists()
                                       or mistyped_folder(value, folder))


def _at(path: Path, lines: dict[str, int], key: str) -> str:
    return located(str(path), lines, key)
