"""One line of a JSON-lines file (a task split, a .jsonl corpus or pool) as a value, or what is
wrong with it, in one place: malformed JSON, and two things JSON itself accepts without a word
but no reader of text can use:

- a key given twice in one object (`{"label": "a", "text": ..., "label": "b"}`): json keeps the
  last one, so a row pasted into another trained with the other's label;
- a string holding a lone surrogate (`"\\ud800"`, half of a UTF-16 pair): valid JSON, but no
  Unicode text; the tokenizer raised a TypeError on it, after the stages before it had run.
"""
from __future__ import annotations

import json
from typing import Any

from ..fileio import lone_surrogate


class _KeyTwice(ValueError):
    pass


def parse_json_line(raw: str) -> tuple[Any, str | None, str | None]:
    """(value, field, problem): the parsed value and (None, None), or None and the field (or None
    for the whole line) and what is wrong, as a message without the file and line."""
    try:
        value = json.loads(raw, object_pairs_hook=_object)
    except json.JSONDecodeError as e:
        # json's "Invalid control character at" (a line cut short: its newline in a string) read "at at column"
        return None, None, f"malformed JSON ({e.msg.removesuffix(' at')} at column {e.colno})"
    except _KeyTwice as e:
        return None, e.args[0], "given twice in one object (JSON keeps the last one without a word)"
    if "\\u" in raw:   # a surrogate comes only from an escape: the line was read as UTF-8
        for field, text in _strings(value):
            if problem := lone_surrogate(text):
                return None, field, problem
    return value, None, None


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _KeyTwice(key)
        found[key] = value
    return found


def _strings(value: Any, field: str | None = None):
    """(field, string) of every string in a parsed value, keys included; the field is the
    top-level key it sits under (None for the whole line)."""
    if isinstance(value, str):
        yield field, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, field or key)
            yield from _strings(item, field or key)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, field)
