"""The values a recipe or flag field allows, as rules (a range of numbers, a set of strings, a
torch device), and a value that breaks its rule as one Violation, said in the words of where it
was given: a recipe, a config file's key, a command-line flag. recipes.py gives each field its rule.

Shared basics: they import nothing of the package.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Range:
    """The numbers a field allows: from `low` (excluded unless `low_closed`) up to `high`
    (excluded unless `high_closed`), or without an upper end; never infinity or NaN (an lr of
    .inf passed every check and diverged after the base stage)."""
    low: float
    high: float | None = None
    low_closed: bool = True
    high_closed: bool = False

    def allows(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above = value >= self.low if self.low_closed else value > self.low
        return above and (self.high is None or (value <= self.high if self.high_closed else value < self.high))

    def __str__(self) -> str:
        if self.high is None:
            return f"must be {'>=' if self.low_closed else '>'} {_number(self.low)}"
        return (f"must be in {'[' if self.low_closed else '('}{_number(self.low)}, {_number(self.high)}"
                f"{']' if self.high_closed else ')'}")


@dataclass(frozen=True)
class OneOf:
    """The strings a field allows."""
    choices: tuple[str, ...]

    def allows(self, value: str) -> bool:
        return value in self.choices

    def __str__(self) -> str:
        return f"must be one of {', '.join(self.choices)}"


@dataclass(frozen=True)
class Device:
    """A torch device a run may ask for (whether this machine has it: finetune/trainer.py)."""

    def allows(self, value: str) -> bool:
        return re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value) is not None

    def __str__(self) -> str:
        return "must be auto, cpu, mps, cuda or cuda:<index>"


Rule = Range | OneOf | Device
AT_LEAST_1, NON_NEGATIVE, POSITIVE = Range(1), Range(0), Range(0, low_closed=False)
FRACTION = Range(0, 1)                       # [0, 1): warm-up, dropout, Adam's betas
SEED = Range(0, 2**32)                       # numpy and torch take 32-bit unsigned seeds
# Sequences a step (or a forward pass) takes: 32x the paper's largest batch, 2048. More is a typo
# (digits repeated): 10^20 passed the dry run, tokenized the corpus, then was a torch traceback;
# 10^6 built 13 GB of micro-batches in 90 s (every micro-batch of a step is built together).
BATCH = Range(1, 2**16, high_closed=True)


@dataclass(frozen=True)
class Violation:
    """A value a field does not allow: the field, the value, and what it allows."""
    field: str
    value: Any
    allowed: str                     # "must be >= 1"

    def __str__(self) -> str:        # in a recipe: "epochs 0: must be >= 1"
        return f"{self.field} {self.value!r}: {self.allowed}"

    def as_key(self) -> str:         # in a config file: "key 'epochs': 0; must be >= 1"
        return f"key '{self.field}': {self.value!r}; {self.allowed}"

    def as_flag(self, flag: str) -> str:  # on the command line: "--epochs 0: must be >= 1"
        return f"{flag} {self.value}: {self.allowed}"


def range_violations(ranges: Mapping[str, Rule], values: Mapping[str, Any]) -> list[Violation]:
    """Every given value outside its field's range; None (unset) and fields without one pass."""
    found = []
    for name, value in values.items():
        rule = ranges.get(name)
        items = value if isinstance(value, (list, tuple)) else [value]
        if rule is not None and value is not None and not all(rule.allows(item) for item in items):
            infinite = any(isinstance(item, float) and not math.isfinite(item) for item in items)
            found.append(Violation(name, value, "must be a finite number" if infinite else str(rule)))
    return found


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
