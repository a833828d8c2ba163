"""What a pretraining leaves behind: the record of a finished run, and nothing from a diverged one.

`check_finite` stops a run whose loss became NaN or infinite (at an optimizer step, or on the
held-out documents after training) with one line, before anything is saved as finished: a
diverged checkpoint would otherwise be fine-tuned into one-class predictions that look like
results. `finished_record` is the run's PretrainRecord (docs/CONTRACTS.md), completed with the
weights' hashes once they are written.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import torch

from ..fileio import UserError, read_json, sha256_file
from ..provenance import git_commit, software_versions
from ..recipes import PretrainRecipe, with_added_fields
from ..records import PRETRAIN_RECORD_FILE, PretrainRecord
from .corpus import Corpus
from .mlm import BatchSchedule
from .relocation import recipe_differences, relocation

REMOVE_STATE = "remove that folder to resume from the state before it (or from the start)"


def recipe_json(recipe: PretrainRecipe) -> dict[str, Any]:
    """A recipe as its run saves it (progress.json, the token file's description, the record)."""
    return {**dataclasses.asdict(recipe), "betas": list(recipe.betas)}


def check_output_dir(output_dir: Path, remedy: str = "choose another --out") -> None:
    """A pretraining writes only into an empty folder or its own unfinished run (<out>/resume/):
    one line for a finished checkpoint, or for a folder of other files (weights without their
    record, a copy), whose files a pretraining would mix with its own."""
    if (output_dir / PRETRAIN_RECORD_FILE).exists():
        raise UserError(f"{output_dir}: already holds a finished checkpoint; {remedy}")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not (output_dir / "resume").is_dir():
        raise UserError(f"{output_dir}: not empty and not an unfinished pretraining run; {remedy}")


def check_resumable(resume_dir: Path, asked: dict[str, Any], remedy: str = "choose another --out") -> None:
    """Before the corpus is read: the latest saved state in <out>/resume/ was made with the recipe
    asked (as JSON, `asked`), its paths where they lie now if they moved with the folder
    (pretrain/relocation.py). Said after tokenizing, an unfinished run of another corpus had its
    token file written over by this one's (minutes to hours to tokenize again), naming no field."""
    states = sorted(resume_dir.glob("step-*"))
    if not states:
        return
    if not (states[-1] / "progress.json").is_file():   # "No such file or directory", exit 1, no advice
        raise UserError(f"{states[-1]}: a saved state without its progress.json (cut short?); {REMOVE_STATE}")
    progress = read_json(states[-1] / "progress.json")
    check_progress(states[-1], progress, asked.get("max_steps"))   # an epochs recipe: its total in load_saved_state
    saved = with_added_fields(progress["recipe"])
    where_now = relocation(progress, resume_dir.parent, saved.get("output_dir"))
    differ = recipe_differences(saved, asked, where_now)
    if differ:
        raise UserError(f"{states[-1]}: an unfinished run with another recipe ({'; '.join(differ[:3])}); {remedy}")


def _count(value: Any) -> bool:      # JSON's true is an int in Python; 115.0 is a float
    return type(value) is int and value >= 0


def _measure(value: Any) -> bool:    # JSON's NaN and 1e999 (inf) load as floats
    return type(value) in (int, float) and math.isfinite(value) and value >= 0


# The fields of a saved state's progress.json (PretrainRun.progress): field -> (check, what it must be)
PROGRESS_FIELDS = {
    "step": (lambda value: _count(value) and value >= 1, "a whole number >= 1"),   # saved after a step
    "resumed_from_step": (_count, "a whole number >= 0"),
    "tokens": (_count, "a whole number >= 0"), "loss": (_measure, "a finite number >= 0"),
    "train_time_s": (_measure, "a finite number >= 0"), "wall_time_s": (_measure, "a finite number >= 0"),
    "heldout_loss_before": (lambda value: value is None or _measure(value),   # None: no held-out documents
                            "a finite number >= 0 or null"),
    "recipe": (lambda value: isinstance(value, dict), "an object"),
}
OPTIONAL_PROGRESS_FIELDS = {   # absent from a state saved before it was recorded
    "saved_in": (lambda value: isinstance(value, str) and Path(value).is_absolute(), "an absolute path"),
    "started_in": (lambda value: isinstance(value, str) and Path(value).is_absolute(), "an absolute path"),
}


def check_progress(state: Path, progress: Any, total_steps: int | None) -> None:
    """A saved state's progress.json holds what PretrainRun saved: every field of it, and a step
    below the recipe's `total_steps` (None: not known yet) that is its folder's (step-<n>). Edited
    by hand, a step past the end finished at once, exit 0, with a record of steps never trained
    (5000 claimed, 115 trained); a negative step, a string, a list were tracebacks, exit 1."""
    problem = _progress_problem(state.name, progress, total_steps)
    if problem:
        raise UserError(f"{state}: a saved state whose progress.json is not as it was saved (edited by "
                        f"hand?): {problem}; {REMOVE_STATE}")


def _progress_problem(folder: str, progress: Any, total_steps: int | None) -> str | None:
    if not isinstance(progress, dict):
        return f"it holds {json.dumps(progress)[:40]}, not an object"
    for field, (valid, allowed) in {**PROGRESS_FIELDS, **OPTIONAL_PROGRESS_FIELDS}.items():
        if field not in progress and field in PROGRESS_FIELDS:
            return f"{field} missing"
        if field in progress and not valid(progress[field]):
            return f"{field} {json.dumps(progress[field])[:40]}: must be {allowed}"
    step = progress["step"]
    if total_steps is not None and step >= total_steps:   # the last step's state is the finished checkpoint
        return f"step {step}: must be below the recipe's {total_steps} steps"
    if folder != f"step-{step:09d}":    # the name _save_resume_state gives it
        return f"step {step}: not the step of its folder {folder}"
    if progress["resumed_from_step"] >= step:
        return f"resumed_from_step {progress['resumed_from_step']}: must be below step {step}"
    return None


def load_saved_state(accelerator, state: Path, total_steps: int) -> dict[str, Any]:
    """The progress of a saved state in <out>/resume/, after loading it into `accelerator`'s
    model, optimizer and scheduler. A file of it cut short or emptied was a traceback (a
    SafetensorError of 36 lines, an EOFError), exit 1."""
    progress = read_json(state / "progress.json")
    check_progress(state, progress, total_steps)   # the total of an epochs recipe is known only now
    try:
        accelerator.load_state(str(state))
    except Exception as e:   # whatever torch, safetensors or pickle raise on a damaged file
        first_line = (str(e).strip().splitlines() or [""])[0][:160]
        raise UserError(f"{state}: a saved state that cannot be loaded ({type(e).__name__}: {first_line}); "
                        f"{REMOVE_STATE}") from None
    return progress


def check_finite(name: str, what: str, loss: float | None, lr: float) -> None:
    """`what`: where the loss was seen ("step 3", "the held-out documents after training")."""
    if loss is not None and not math.isfinite(loss):
        raise UserError(f"{name}: pretraining diverged: loss {loss} at {what} (recipe lr {lr:g}); "
                        "nothing was saved as finished; lower the lr")


def device_name(device: torch.device) -> str:
    """"cpu", or the accelerator's kind and model: "cuda:NVIDIA H200"."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return device.type


def finished_record(recipe, recipe_fields: dict[str, Any], name: str, schedule: BatchSchedule,
                    corpus: Corpus, stream: dict[str, int], progress: dict[str, Any],
                    heldout_after: float | None, processes: int, device: str,
                    guarded: dict[str, str]) -> PretrainRecord:
    """The record of a finished run; `weights_sha256` is filled in once the weights are saved."""
    return PretrainRecord(
        name=name, base_model=recipe.base_model, corpus_files=list(recipe.corpora),
        corpus_sha256={path: sha256_file(path) for path in recipe.corpora},
        recipe=recipe_fields, steps=progress["step"], resumed_from_step=progress["resumed_from_step"],
        warmup_steps=schedule.warmup_steps,
        epochs=progress["step"] / schedule.steps_per_epoch,
        sequences=progress["step"] * recipe.batch_size, tokens=progress["tokens"],
        documents=stream["documents"], heldout_documents=len(corpus.heldout_positions),
        excluded_documents=corpus.excluded, guarded_sha256=guarded,
        excluded_keys=sorted(key.hex() for key in corpus.excluded_keys), bytes=stream["bytes"],
        wall_time_s=progress["wall_time_s"],
        tokens_per_s=progress["tokens"] / max(progress["train_time_s"], 1e-9),
        final_train_loss=progress["loss"],
        heldout_loss_before=progress["heldout_loss_before"], heldout_loss_after=heldout_after,
        versions=software_versions(), git_commit=git_commit(), processes=processes, device=device)
