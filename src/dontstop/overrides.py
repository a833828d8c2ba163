"""Suite keys given on the command line, written into the suite file's mapping before it is checked.

    --set finetune.lr=1e-4 --set recipes.dapt.max_steps=200 --set seeds=[0,1,2]

`--set KEY=VALUE` names any key of a suite or study file by its dotted path and reads VALUE as
YAML (config.parse_yaml, as the file is read: an empty VALUE is null, as `key:` in the file).
The flags that stand for a suite key are overrides too: the NAME=PATH flags (`--domain-corpus`,
`--pool`, `--curated-corpus`, their paths made absolute: relative to where the command runs) and
`--from-released[-dapt]`. suites.load_suite writes them all into the file's mapping
(apply_overrides), then checks the result with the file's own checks (config.from_dict,
suite_checks.check_sections), so a wrong key, type or range is the same one line, naming the flag
that gave it instead of a file line. The folder flags (`--results-dir`, `--cache-dir`,
`--data-dir`) say where, not what: they replace the loaded suite's folder as given (relative to
where the command runs, a study's too), where `--set results_dir=...` is read as the file would
read it. A run made under an override records it as any suite value: in its resolved recipe
(metrics.json's `config`) and in the key of every pretraining stage it changes, so its results are
never mixed with those made without it (runner/finished.py refuses them as stale). An override that
no run of the suite reads (a quick key without --quick, an encoder model for the bow embedder) is
refused by unused_settings.py; one that --quick replaces, by suites.with_quick.
"""
from __future__ import annotations

import copy
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import MERGED_SECTIONS, matches_type, merged, parse_yaml, type_name, yaml_fields, yaml_problem
from .fileio import UserError, under_home

KEY = re.compile(r"^[\w-]+$")             # one part of a dotted path: a YAML key of ours
FIXED = {"name": "names the suite and its results folder (write a study file with `extends`)",
         "extends": "is the study file's own starting point"}


@dataclass(frozen=True)
class Override:
    keys: tuple[str, ...]     # ("recipes", "dapt", "max_steps")
    value: Any
    given: str                # as the command line said it: "--set recipes.dapt.max_steps=200"
    in_file: bool = True      # written into the file's mapping; False: a folder flag, set on the loaded suite


def parse_set(values: list[str]) -> list[Override]:
    """`--set KEY=VALUE` flags, in order; one line for a malformed one or a key given twice."""
    found: dict[tuple[str, ...], Override] = {}
    for text in values:
        key, sep, raw = text.partition("=")
        keys = tuple(key.split("."))
        if not sep or not all(KEY.match(part) for part in keys):
            raise UserError(f"--set {text}: expected KEY=VALUE, KEY a suite key or a dotted path into one "
                            "(finetune.lr=1e-4)")
        try:
            value = under_home(parse_yaml(raw))   # `--set results_dir=~/r`: the shell leaves that ~
        except yaml.YAMLError as e:
            raise UserError(f"--set {text}: {yaml_problem(e, 'the value is not YAML')}") from None
        if keys in found:
            raise UserError(f"--set {text}: key '{key}' given twice")
        found[keys] = Override(keys, value, f"--set {text}")
    return list(found.values())


def check_one_setting_each(overrides: list[Override]) -> None:
    """No two flags set one key, or a key and a part of it (`--set finetune.lr=1e-4 --set
    finetune={lr: 3e-4}`): the later one replaced the earlier without a word."""
    for i, later in enumerate(overrides):
        for earlier in overrides[:i]:
            shorter = min(len(earlier.keys), len(later.keys))
            if earlier.keys[:shorter] == later.keys[:shorter]:
                raise UserError(f"{later.given}: sets key '{'.'.join(later.keys)}', which {earlier.given} "
                                f"{'sets too' if earlier.keys == later.keys else 'sets a part of, or is part of'}; "
                                "give each setting once")


def from_pairs(flag: str, section: str, pairs: dict[str, str], given: list[str]) -> list[Override]:
    """NAME=PATH flags (config.parse_pairs) as overrides of `section`.NAME, paths made absolute."""
    texts = dict(zip(pairs, given))
    return [Override((section, name), str(Path(path).resolve()), f"{flag} {texts[name]}")
            for name, path in pairs.items()]


def folder(flag: str, key: str, path: str | None) -> list[Override]:
    """A folder flag (`--results-dir R`) as the override of `key`, as given; none if not given."""
    return [Override((key,), path, f"{flag} {path}", in_file=False)] if path else []


def apply_overrides(data: dict[str, Any], overrides: list[Override]) -> dict[str, Any]:
    """A copy of a suite file's mapping with every override written in (a mapping on the way is
    made when missing; a mapping given to one of the MERGED_SECTIONS merged into what is there)."""
    out = copy.deepcopy(data)
    for override in overrides:
        node = out
        for depth, key in enumerate(override.keys[:-1], 1):
            if node.get(key) is None:
                node[key] = {}
            if not isinstance(node[key], dict):
                raise UserError(f"{override.given}: key '{'.'.join(override.keys[:depth])}' is not a mapping")
            node = node[key]
        value, earlier = override.value, node.get(override.keys[-1])
        # a mapping given to a section merged key by key (`--set finetune={epochs: 3}`) is merged as a study
        # file's is: it replaced mini's fine-tuning recipe with the code's defaults (lr 2e-5, 512 tokens)
        if override.keys[0] in MERGED_SECTIONS and isinstance(value, dict) and isinstance(earlier, dict):
            value = merged(earlier, value)
        node[override.keys[-1]] = value
    return out


def override_problems(cls: type, data: dict[str, Any], overrides: list[Override]) -> list[str]:
    """The overridden top-level keys of `cls` (the Suite) that it does not have, that are not
    mappings though a dotted path goes into them, or whose value has the wrong type; the keys
    inside a section are the section checks' (suite_checks.check_sections)."""
    fields, hints = yaml_fields(cls), typing.get_type_hints(cls)
    problems = []
    for override in overrides:
        top = override.keys[0]
        if top in FIXED:
            problems.append(f"{override.given}: key '{top}' cannot be set here: it {FIXED[top]}")
        elif top not in fields:
            problems.append(f"{override.given}: key '{top}': unknown; known keys: {', '.join(fields)}")
        elif len(override.keys) > 1 and typing.get_origin(hints[top]) is not dict:
            problems.append(f"{override.given}: key '{top}' is not a mapping; set it whole "
                            f"(expected {type_name(hints[top])})")
        elif not matches_type(data[top], hints[top]):
            keys, hint = _innermost_hint(override.keys, hints[top])   # the value given, not its whole section
            value = override.value if len(keys) == len(override.keys) else data[top]
            problems.append(f"{override.given}: key '{'.'.join(keys)}': expected {type_name(hint)}, "
                            f"got {type(value).__name__} {value!r}")
    return problems


def _innermost_hint(keys: tuple[str, ...], hint: Any) -> tuple[tuple[str, ...], Any]:
    """How deep a dotted path goes into nested dict hints (quick.dapt: dict[str, Any] inside
    dict[str, dict[str, Any]]): (the keys it reaches, the hint there)."""
    depth = 1
    while depth < len(keys) and typing.get_origin(hint) is dict:
        hint, depth = typing.get_args(hint)[1], depth + 1
    return keys[:depth], hint


def given_for(overrides: list[Override], keys: tuple[str, ...]) -> str | None:
    """The flag that gave `keys`, a mapping holding them or a key inside them, if one did."""
    for override in overrides:
        depth = min(len(override.keys), len(keys))
        if override.keys[:depth] == keys[:depth]:
            return override.given
    return None

