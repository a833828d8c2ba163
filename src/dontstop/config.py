"""YAML in, dataclass out: keys are exactly a dataclass's fields; unknown keys, a key given twice
at any depth, and wrong types are rejected with one line naming the file, the line and the key.

    experiments/tapt/config.yaml:3: key 'epoch': unknown; known keys: condition, stages, ...
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .fileio import UserError, lone_surrogate, under_home

T = TypeVar("T")
# Field metadata of a dataclass field that is filled by code, never read from a YAML file.
NOT_YAML = {"yaml": False}


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `1e-4` as the number YAML 1.2 says it is (YAML 1.1 wants
    `1.0e-4` and reads `1e-4` as a string): the files and `--set` share it."""


def _no_octal(loader: _Loader, node: yaml.ScalarNode) -> int:
    """An integer, refusing YAML 1.1's octal: `seeds: [000, 001, 010]` ran seeds 0, 1 and 8, and
    `max_train_examples: 0100` trained on 64 examples, without a word; and its base 60."""
    if re.fullmatch(r"[-+]?0[0-7_]+", node.value):
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value} is an octal number to YAML ({loader.construct_yaml_int(node)}); write "
            "the number without leading zeros, or quote it", node.start_mark)
    _no_base_60(loader, node, loader.construct_yaml_int)
    return loader.construct_yaml_int(node)


def _no_base_60_float(loader: _Loader, node: yaml.ScalarNode) -> float:
    _no_base_60(loader, node, loader.construct_yaml_float)
    return loader.construct_yaml_float(node)


def _no_base_60(loader: _Loader, node: yaml.ScalarNode, construct) -> None:
    """YAML 1.1 reads digits joined by colons as one number in base 60: `seeds: [1:5]` (a range, as
    Python slices it) ran seed 65 alone, `lr: 1:30` was 90, without a word."""
    if ":" in node.value:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value} is a number in base 60 to YAML ({construct(node)}); write one number, "
            "a list of them ([1, 2, 3]), or quote it", node.start_mark)


_Loader.add_constructor("tag:yaml.org,2002:int", _no_octal)
_Loader.add_constructor("tag:yaml.org,2002:float", _no_base_60_float)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(
    r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
    r"|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))


# The sections of a suite or study file whose mappings are merged key by key (nested mappings
# too) into those they are given over: a study's over the suite it extends, `--set` over the file.
MERGED_SECTIONS = ("recipes", "quick", "finetune", "selection")


def merged(base: dict, given: dict) -> dict:
    """`given` over `base`, key by key, nested mappings too."""
    out = dict(base)
    for key, value in given.items():
        out[key] = merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def yaml_problem(error: yaml.YAMLError, invalid: str) -> str:
    """What a YAML error says: as it is for text YAML reads, but not as meant (an octal number),
    else `<invalid> (<its problem>)` for text that is no YAML."""
    problem = getattr(error, "problem", error)
    return str(problem) if isinstance(error, yaml.constructor.ConstructorError) else f"{invalid} ({problem})"


def parse_yaml(text: str) -> Any:
    """A YAML document (a file's text, or one value given on the command line)."""
    return yaml.load(text, Loader=_Loader)


def load_yaml_dataclass(cls: type[T], path: str | Path) -> T:
    data, key_lines = read_yaml_mapping(path)
    return from_dict(cls, data, str(path), key_lines)


def read_yaml_mapping(path: str | Path) -> tuple[dict[str, Any], dict[str, int]]:
    """A YAML file's top-level mapping and the line of each top-level key."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:   # a file saved as Latin-1 or UTF-16, or an archive
        line = raw[:e.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 at byte offset {e.start} "
                        f"(byte 0x{raw[e.start]:02x}: {e.reason}); save it as UTF-8") from None
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = parse_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{path}{line}: {yaml_problem(e, 'invalid YAML')}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of keys to values")
    _refuse_what_yaml_keeps_silently(path, node)
    return data, _key_lines(node)


# What YAML makes of an unquoted key that is not a string: `no`, `yes`, `on`, `off`, `2024`, `1e3`, `null`.
YAML_KINDS = {"bool": "boolean", "int": "number", "float": "number", "null": "null", "timestamp": "date"}


def unquoted_hint(value: Any) -> str:
    """For a value YAML read as no string where a name was meant (`name: no` is false): say so."""
    if value is None or isinstance(value, (bool, int, float)):
        return " (YAML reads an unquoted no, yes, on, off, null or number so: quote a name)"
    return ""


def _refuse_what_yaml_keeps_silently(path: Path, root: yaml.Node) -> None:
    """A key given twice in any mapping of the file: YAML keeps the last one silently, so a task's
    `data:` pasted twice trained it on another task's data, a domain's corpus on another's. And a
    value holding a lone surrogate ("\\ud800" in quotes): a task's display name of one ran every
    job, then failed writing the tables. And a key YAML reads as no string (`no:`, Norway's code,
    is false; `2024:` a number): names are strings."""
    walked: set[int] = set()   # an alias repeats its anchor's node: walk it once

    def walk(node: yaml.Node, above: str) -> None:
        if id(node) in walked:
            return
        walked.add(id(node))
        if isinstance(node, yaml.ScalarNode) and (problem := lone_surrogate(node.value)):
            raise UserError(f"{path}:{node.start_mark.line + 1}: key '{above.rstrip('.')}': {problem}")
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item, above)
        if not isinstance(node, yaml.MappingNode):
            return
        first: dict[str, int] = {}
        for key, value in node.value:
            name, line, kind = f"{above}{key.value}", key.start_mark.line + 1, key.tag.rsplit(":", 1)[-1]
            if kind not in ("str", "merge"):   # a domain `no:` failed in a join (TypeError)
                raise UserError(f"{path}:{line}: key '{name}': YAML reads {key.value} as a "
                                f"{YAML_KINDS.get(kind, 'value')}, not a name; quote it ('{key.value}')")
            if name in first and key.value != "<<":   # "<<" merges an anchor's keys; given twice, two merges
                raise UserError(f"{path}:{line}: key '{name}': given twice (first on line {first[name]})")
            first.setdefault(name, line)
            walk(value, f"{name}.")

    walk(root, "")


def yaml_fields(cls_or_instance: Any) -> list[str]:
    """The fields of a dataclass that a YAML file may set (those not marked NOT_YAML)."""
    return [f.name for f in dataclasses.fields(cls_or_instance) if f.metadata.get("yaml", True)]


def from_dict(cls: type[T], data: dict[str, Any], source: str,
              key_lines: dict[str, int | str] | None = None) -> T:
    """Build `cls` from a plain dict, checking keys and types against its fields."""
    key_lines = key_lines or {}
    fields = {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("yaml", True)}
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        where = located(source, key_lines, key)
        if key not in fields:
            raise UserError(f"{where}: key '{key}': unknown; known keys: {', '.join(fields)}")
        if not matches_type(value, hints[key]):
            name, hint, value = _wrong_part(key, value, hints[key])
            raise UserError(f"{where}: key '{name}': expected {type_name(hint)}, got {type(value).__name__} {value!r}")
    missing = [name for name, f in fields.items() if name not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise UserError(f"{source}: missing required key(s): {', '.join(missing)}")
    return cls(**{key: _nested(value, hints[key], f"{source}: {key}") for key, value in data.items()})


def _wrong_part(key: str, value: Any, hint: Any) -> tuple[str, Any, Any]:
    """(name, hint, value) of what does not match: in a list of records (RUN.json's invocations) the
    first item that is none, in a mapping of str keys (a study's `quick`) the first value of
    another type, not the whole list or section (a 2.8 kB line naming no entry)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list and args and dataclasses.is_dataclass(args[0]) and isinstance(value, list):
        parts = [(f"{key}[{i}]", args[0], item) for i, item in enumerate(value)]
    elif origin is dict and len(args) == 2 and args[0] is str and isinstance(value, dict):
        parts = [(f"{key}.{name}", args[1], item) for name, item in value.items() if isinstance(name, str)]
    else:
        parts = []
    return next((part for part in parts if not matches_type(part[2], part[1])), (key, hint, value))


def _nested(value: Any, hint: Any, source: str) -> Any:
    """A list of mappings under a `list[SomeDataclass]` field becomes a list of that dataclass."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is list and args and dataclasses.is_dataclass(args[0]):
        return [from_dict(args[0], item, f"{source}[{i}]") for i, item in enumerate(value)]
    return value


def located(source: str, key_lines: dict[str, int | str], key: str) -> str:
    """Where a top-level key was given: "file:line", the command-line flag that gave it (a str in
    `key_lines`: overrides.py), or the file alone."""
    where = key_lines.get(key)
    return where if isinstance(where, str) else f"{source}:{where}" if where else source


def parse_pairs(values: list[str], flag: str) -> dict[str, str]:
    """["cs=data/cs.txt", ...] -> {"cs": "data/cs.txt"}, in the order given (NAME=PATH flags); a
    PATH starting with ~ under the home folder (fileio.under_home: `'cs=~/cs.txt'`, quoted)."""
    parsed: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise UserError(f"{flag} {value}: expected NAME=PATH")
        if name in parsed:
            raise UserError(f"{flag} {value}: name {name!r} given twice")
        parsed[name] = under_home(path)
    return parsed


def _key_lines(node: yaml.Node | None) -> dict[str, int]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {key.value: key.start_mark.line + 1 for key, _ in node.value}


def nested_key_lines(path: str | Path) -> dict[tuple[str, ...], int]:
    """The line of every mapping key of a YAML file, by its keys from the top:
    ("recipes", "base", "batch_size") -> 47. For messages about nested sections."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node | None, above: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[above + (str(key.value),)] = key.start_mark.line + 1
                walk(value, above + (str(key.value),))

    walk(yaml.compose(Path(path).read_text(encoding="utf-8")), ())
    return lines


def as_shown(name: str) -> str:
    """A display name as a table shows it: runs of spaces are one, none at either end ("TAPT "
    and "TAPT" were two columns that read the same)."""
    return " ".join(name.split())


def unprintable(name: str) -> str | None:
    """The first line break or other control character of a display name, if one (a Markdown
    table's row, split in two by it)."""
    return next((character for character in name if not character.isprintable()), None)


def shared_names(names: dict[str, str]) -> list[tuple[str, str, str]]:
    """(key, name, the first key of that name) for every key whose display name an earlier key
    already has: two table rows (or columns) of one name, which no reader can tell apart."""
    first: dict[str, str] = {}
    return [(key, name, first[name]) for key, name in names.items() if first.setdefault(name, key) != key]


def matches_type(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(matches_type(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple):   # YAML gives lists; a recipe built in Python may hold a tuple
        sequence = isinstance(value, list) or (origin is tuple and isinstance(value, tuple))
        if origin is tuple and args and args[-1] is not Ellipsis:   # tuple[float, float]: exactly two
            return sequence and len(value) == len(args) and all(map(matches_type, value, args))
        return sequence and all(matches_type(v, args[0]) for v in value) if args else sequence
    if dataclasses.is_dataclass(hint):
        return isinstance(value, dict)
    if origin is dict:
        return isinstance(value, dict) and all(matches_type(v, args[1]) for v in value.values())
    return isinstance(value, origin or hint)


def type_name(hint: Any) -> str:
    """How an error names a type: list[int] with its items (a list of strings is not seeds)."""
    if typing.get_args(hint):
        return str(hint).replace("typing.", "")
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
