"""Optional Weights & Biases logging. The JSON records (metrics.json, pretrain_record.json) are
the source of truth; W&B is a view of them, and a W&B failure never fails a run: it is one
warning line on stderr, and a failed `wandb.init` turns W&B off for the rest of the process
(an unreachable server would otherwise cost its init timeout on every run).

What is logged, by whom:
- `finetune/trainer.py`: one run per (task, condition, seed): group `<task>/<condition>` (W&B's
  grouped view: mean ± std over seeds), job_type `finetune`, name `<task>/<condition>/seed_<n>`,
  the resolved config, per-epoch `train/loss` and `dev/<score>`, the test scores in the summary;
- `pretrain/trainer.py`: one run per stage: job_type `pretrain`, per-step `train/loss`, `train/lr`,
  `train/tokens_per_s`, and the checkpoint as an artifact of type `model`;
- `report/wandb_upload.py` (`dontstop aggregate --wandb`): every table and plot, one run.

Modes: `--no-wandb` or `WANDB_MODE=disabled`: nothing. `WANDB_MODE=offline`: local runs in
`$WANDB_DIR/wandb/offline-run-*` (without WANDB_DIR: `./wandb/`, git-ignored; never inside
results/ or a checkpoint, whose folder is an artifact's contents). Otherwise online, when a key is
configured (`configured`). Project: `WANDB_PROJECT`, else "dontstop"; entity: wandb's own
(`WANDB_ENTITY`). Run names are deterministic, run ids random: a Slurm sweep of many machines logs
into one project, and a rerun of a killed job is a new run of the same name.

Lineage. Every checkpoint is a `model` artifact logged BY REFERENCE (never uploaded): a file://
reference to its folder (one manifest entry per file, `checksum=False`: digests of the paths, so
GBs are never read), or the https://huggingface.co/<id> page of a hub id. Its name comes from the
model string alone (`model_artifact`), so the run that writes a checkpoint and every run that
starts from it agree without talking: a folder pretraining wrote is named after its folder (the
runner's `<lineage>-<hash8>`: `dapt-cs--tapt-aclsum-roles-1a2b3c4d`), anything we did not build
is `base-<model>` (`base-bundled-bert-tiny`, `base-roberta-base`, `base-allenai-cs_roberta_base`).
A pretraining run logs its checkpoint as output and declares its parent as input; a fine-tuning
run declares its starting checkpoint as input (and puts its name in the config, `input_artifact`).
The lineage view then reads base -> DAPT -> DAPT+TAPT -> fine-tuning runs.

Declaring the input, online: the public `run.use_artifact(draft)` with a draft artifact built
exactly like the producer's: W&B creates it if nobody logged it (a base model) and otherwise
finds the producer's version by its digest (same references, same digest), and records the edge.
Offline, wandb 0.31 refuses `use_artifact` (TypeError "Cannot use artifact when in offline
mode."), so we write what that call writes first: the private `run._log_artifact(draft,
use_after_commit=True)`, an ArtifactRecord with `use_after_commit` set (`_log_artifact`
passes the flag on offline too). Why not a bare UseArtifactRecord
(`run._interface._publish_use_artifact`)? `wandb sync` hands that record only to the launch
job builder ("sender: sendUseArtifact: job builder disabled, skipping"), so the edge would be
lost. An ArtifactRecord is replayed by `wandb sync` like a live run's: wandb-core's artifact
saver creates or finds the version and, when `use_after_commit` is set, calls the useArtifact
mutation (the saver's "gql.UseArtifact: %w" path): the edge survives syncing. What is verified
here: the record, in the offline file (tests/test_wandb_lineage.py). What is read, not run (no
W&B server here): the sync side, from wandb-core's strings. Caveats: sync the runs in start
order (parents first, README), so that each checkpoint's version is created by the run that
wrote it; a checkpoint seen at another absolute path (another mount point) has another digest,
so another version, linked to its own users only. `input_artifact` in the config names the edge
whatever the server does.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .fileio import UserError, check_writable_dir
from .records import PRETRAIN_RECORD_FILE

PROJECT = "dontstop"
ARTIFACT_TYPE = "model"
HUB_URL = "https://huggingface.co/"
NAME_MAX = 128                       # W&B artifact names: [A-Za-z0-9_.-], at most 128 characters
_init_failed = False                 # after a failed wandb.init, this process stops trying


def configured() -> bool:
    """True when W&B has somewhere to write: an explicit WANDB_MODE or a stored API key."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode != "disabled"
    netrc = Path.home() / ".netrc"
    has_netrc_key = netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="replace")
    return bool(os.environ.get("WANDB_API_KEY")) or has_netrc_key


@dataclass(frozen=True)
class ModelArtifact:
    name: str                        # a valid W&B artifact name
    uri: str                         # what it references: file:///... or https://huggingface.co/<id>


def artifact_name(text: str, prefix: str = "") -> str:
    """A valid W&B artifact name: a lineage's '+' becomes '--' (`dapt-cs+tapt-aclsum-roles` ->
    `dapt-cs--tapt-aclsum-roles`), any other run of invalid characters one '-'
    (`bundled:bert-tiny` -> `bundled-bert-tiny`); over 128 characters, cut and hashed."""
    name = prefix + re.sub(r"[^A-Za-z0-9_.-]+", "-", text.replace("+", "--")).strip("-")
    if len(name) > NAME_MAX:
        name = f"{name[:NAME_MAX - 9]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return name


def model_artifact(model: str) -> ModelArtifact:
    """The artifact of the checkpoint `model` names (a folder, `bundled:<name>` or a hub id)."""
    if model.startswith("bundled:"):
        from .models import bundled_model_dir

        folder = bundled_model_dir(model.removeprefix("bundled:")).resolve()
        return ModelArtifact(artifact_name(model, "base-"), folder.as_uri())
    path = Path(model).expanduser()
    if path.is_dir():
        built = (path / PRETRAIN_RECORD_FILE).is_file()   # a checkpoint pretraining wrote
        return ModelArtifact(artifact_name(path.resolve().name, "" if built else "base-"),
                             path.resolve().as_uri())
    return ModelArtifact(artifact_name(model, "base-"), HUB_URL + model)


def wanted(no_wandb: bool) -> bool:
    """Whether a command logs to W&B (no --no-wandb, and W&B configured), its settings checked
    first (check_settings): `finetune` and `pretrain` trained on without logging, and a dry run
    passed, where `run` refused a mistyped WANDB_MODE."""
    on = not no_wandb and configured()
    if on:
        check_settings()
    return on


def check_settings() -> None:
    """The W&B settings this process reads from its environment, by wandb's own checks, before any
    work: the project (WANDB_PROJECT, else "dontstop"), WANDB_MODE and WANDB_DIR. W&B refused a bad
    one only at its first run, after the work, in a warning line, and then logged nothing. A
    mistyped setting, unlike an unreachable server, is the user's to fix."""
    mode = os.environ.get("WANDB_MODE")
    if mode == "disabled":
        return
    project = os.environ.get("WANDB_PROJECT") or PROJECT
    import wandb

    try:
        wandb.Settings(project=project)
    except wandb.errors.UsageError as error:
        raise UserError(f"WANDB_PROJECT={project!r}: W&B refuses this project name ({error}); "
                        "set another, or turn W&B off") from None
    try:
        if mode:
            wandb.Settings(mode=mode)   # a mistyped one ("offlne") failed each run's start
    except ValueError:   # pydantic's ValidationError
        raise UserError(f"WANDB_MODE={mode!r}: not a W&B mode; give online, offline or disabled") from None
    if os.environ.get("WANDB_DIR"):   # where wandb/ goes: under a file, the same late warning
        try:
            check_writable_dir(os.environ["WANDB_DIR"])
        except UserError as error:   # named by its variable: set in a shell profile, the path alone said nothing
            raise UserError(f"WANDB_DIR={error}") from None


def start_run(enabled: bool, *, group: str, job_type: str, name: str, config: dict[str, Any],
              tags: Sequence[str] = (), input_model: str | None = None,
              directory: str | None = None, project: str | None = None) -> "Run | None":
    """A W&B run (a `Run`), or None when logging is off or W&B fails to start.

    `input_model`: the checkpoint this run starts from, declared as its input artifact.
    `directory`: where wandb/ goes; default $WANDB_DIR, else the working directory.
    """
    global _init_failed
    if not enabled or _init_failed or os.environ.get("WANDB_MODE") == "disabled":
        return None
    try:
        model = model_artifact(input_model) if input_model else None
    except Exception as error:  # noqa: BLE001 - e.g. a bundled model's package gone
        model = None
        _warn("use_artifact", error, "the run is logged without its input")
    if model:
        config = {**config, "input_artifact": model.name}
    try:
        import wandb  # imported lazily: it is slow to import and optional at run time

        # mode and dir read now, not once per process by wandb's settings singleton
        directory = directory or os.environ.get("WANDB_DIR")
        if directory:
            os.makedirs(directory, exist_ok=True)
        run = wandb.init(project=project or os.environ.get("WANDB_PROJECT") or PROJECT, group=group,
                         job_type=job_type, name=name, tags=list(tags), config=config,
                         dir=directory, mode=os.environ.get("WANDB_MODE") or None,
                         reinit="finish_previous")
    except Exception as error:  # noqa: BLE001 - W&B must never fail a run
        _init_failed = True
        _warn("start", error, "W&B logging is off for the rest of this process")
        return None
    logged = Run(run)
    if model:
        logged.use_model(model)
    return logged


class Run:
    """A wandb run whose every call is guarded: a failure is one warning per kind of call."""

    def __init__(self, run):
        self.run = run
        self._warned: set[str] = set()

    def guard(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as error:  # noqa: BLE001 - W&B must never fail a run
            if what not in self._warned:
                self._warned.add(what)
                _warn(what, error, "the run goes on without it")
            return None

    def log(self, data: dict[str, Any], step: int | None = None) -> None:
        self.guard("log", lambda: self.run.log(data, step=step))

    def use_model(self, model: ModelArtifact) -> None:
        """Declare `model` as this run's input (see the module docstring for offline)."""
        def declare():
            artifact = _reference_artifact(model)
            if self.run.offline:
                self.run._log_artifact(artifact, is_user_created=True, use_after_commit=True)
            else:
                self.run.use_artifact(artifact)
        self.guard("use_artifact", declare)

    def log_model(self, folder: str | Path, metadata: dict[str, Any] | None = None) -> str | None:
        """Log the checkpoint in `folder` as this run's output, by reference; its name."""
        def log():
            model = model_artifact(str(folder))
            self.run.log_artifact(_reference_artifact(model, metadata))
            return model.name
        return self.guard("log_artifact", log)

    def finish(self, summary: dict[str, Any] | None = None) -> None:
        if summary:
            self.guard("summary", lambda: self.run.summary.update(summary))
        self.guard("finish", self.run.finish)


def finish(run: Run | None, summary: dict[str, Any] | None = None) -> None:
    if run is not None:
        run.finish(summary)


def _reference_artifact(model: ModelArtifact, metadata: dict[str, Any] | None = None):
    import wandb

    artifact = wandb.Artifact(model.name, type=ARTIFACT_TYPE, metadata=metadata)
    artifact.add_reference(model.uri, checksum=False)
    return artifact


def _warn(what: str, error: Exception, consequence: str) -> None:
    reason = (str(error).strip().splitlines() or [""])[0][:200]
    print(f"dontstop: warning: W&B {what} failed ({type(error).__name__}: {reason}); {consequence}",
          file=sys.stderr, flush=True)
