"""A Slurm time limit as the launcher's --time flags take it: minutes, or one of sbatch's own forms
(`--time 10:00:00` was refused as "invalid int value", though sbatch and every cluster's docs write
it so)."""
from __future__ import annotations

import argparse
import math
import re

FORMS = "MIN, MIN:SEC, H:MIN:SEC, D-H, D-H:MIN or D-H:MIN:SEC"
_TIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")


def slurm_minutes(text: str) -> int:
    """Minutes of a time limit in sbatch's forms (sbatch --time); seconds round up to a minute."""
    match = _TIME.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: give minutes, or sbatch's {FORMS}")
    days, first, second, third = (None if part is None else int(part) for part in match.groups())
    if days is not None:   # D-H, D-H:MIN, D-H:MIN:SEC
        seconds = days * 86400 + first * 3600 + (second or 0) * 60 + (third or 0)
    elif third is not None:   # H:MIN:SEC
        seconds = first * 3600 + second * 60 + third
    else:   # MIN or MIN:SEC
        seconds = first * 60 + (second or 0)
    return math.ceil(seconds / 60)
