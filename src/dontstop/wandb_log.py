"""Optional Weights & Biases logging; the project's own JSON files stay the source of truth.

Mode: `--no-wandb` (or `WANDB_MODE=disabled`) turns it off; `WANDB_MODE=offline` writes a
local run under `<dir>/wandb/`; otherwise wandb logs online if a key is configured.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PROJECT = "dontstop"


def configured() -> bool:
    """True when W&B has somewhere to write: an explicit WANDB_MODE or a stored API key."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode != "disabled"
    netrc = Path.home() / ".netrc"
    has_netrc_key = netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="replace")
    return bool(os.environ.get("WANDB_API_KEY")) or has_netrc_key


def start_run(enabled: bool, *, group: str, job_type: str, name: str, config: dict[str, Any],
              directory: str, project: str = PROJECT):
    """A wandb run, or None when logging is off. Callers log with `run.log(...)` if run."""
    if not enabled or os.environ.get("WANDB_MODE") == "disabled":
        return None
    import wandb  # imported lazily: it is slow to import and optional at run time

    os.makedirs(directory, exist_ok=True)
    return wandb.init(project=project, group=group, job_type=job_type, name=name,
                      config=config, dir=directory, reinit="finish_previous")


def finish(run, summary: dict[str, Any] | None = None) -> None:
    if run is None:
        return
    if summary:
        run.summary.update(summary)
    run.finish()
