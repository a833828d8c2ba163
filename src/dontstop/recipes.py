"""The recipes of the two training stages, and the rule of each field (value_rules.py). A suite's
`recipes.<kind>`, `finetune` and `quick.*` sections and the CLI flags map onto these fields
exactly, and every one of them is checked against the same table (`violations`): the suite
loader (suites.py), `dontstop pretrain|finetune` flags, the runner's flags and the
trainers themselves, so a value out of range is refused before any work and never twice
differently.

Shared basics: the runner, the trainers and the suite loader read them; they import no stage.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from .config import matches_type, type_name
from .fileio import raise_problems
from .value_rules import (AT_LEAST_1, BATCH, FRACTION, NON_NEGATIVE, POSITIVE, SEED, Device, OneOf, Range, Rule,
                          Violation, range_violations)

# a suite's pretraining recipes
RECIPE_KINDS = ("base", "dapt", "tapt", "tapt_large", "dapt_lora", "tapt_lora", "tapt_large_lora")
# A LoRA recipe is its full-parameter kind's recipe (the same corpus, steps, batch and length: the
# same data seen) with its own keys on top (lr, adapter); only these take an `adapter` section.
# tapt_large_lora is TAPT (LoRA) on a task whose TAPT is tapt_large (the paper's RCT, AGNews,
# Helpfulness, IMDB: batch 2048), so that it sees the batches its full-parameter row saw.
LORA_RECIPES = {"dapt_lora": "dapt", "tapt_lora": "tapt", "tapt_large_lora": "tapt_large"}


@dataclass
class PretrainRecipe:
    base_model: str
    corpora: list[str]
    output_dir: str
    max_steps: int | None = None       # exactly one of max_steps and epochs
    epochs: int | None = None
    batch_size: int = 256               # sequences per optimizer step, over all processes
    per_device_batch_size: int = 32     # sequences per forward pass; the rest is accumulation
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    mask_prob: float = 0.15
    max_length: int = 512               # tokens per sequence, special tokens included
    # True: documents joined and cut into full max_length sequences (RoBERTa's FULL-SENTENCES;
    # DAPT). False: one document a sequence, so that a batch and an epoch count documents as the
    # paper's TAPT did (Table 9); a longer one goes on in the next sequence, where the official
    # GPU recipe (`--line_by_line`) cut it: the same on short texts, more text on HyperPartisan's
    # and IMDB's long ones. pretrain/sequences.py.
    pack_documents: bool = True
    heldout_documents: int = 200        # held out from training to score MLM loss before/after
    checkpoint_every: int = 500         # optimizer steps between resumable states
    seed: int = 0
    # CPU threads for this stage (None: the caller's; a runner worker has one). The mini suite's
    # base stage runs alone, before anything else can, so it takes both cores. Part of the
    # recipe, so every launcher builds the stage with the same arithmetic.
    threads: int | None = None
    # torch.compile the encoder and the masked head + loss (MaskedOnlyMLM). None: on a GPU, where
    # it pays; off on a CPU, where compiling (~30 s a process) costs more than the mini stages save.
    compile: bool | None = None
    # Train low-rank adapters instead of every weight: the fields of AdapterRecipe (None: full
    # training). Only the LoRA recipes (dapt_lora, tapt_lora) take it; pretrain/adapter.py.
    adapter: dict[str, Any] | None = None


# Unset (None) values pass; a list (betas) is checked element by element.
PRETRAIN_RANGES: dict[str, Rule] = {
    "max_steps": AT_LEAST_1, "epochs": AT_LEAST_1, "batch_size": BATCH,
    "per_device_batch_size": BATCH, "lr": POSITIVE, "betas": FRACTION, "eps": POSITIVE,
    "weight_decay": NON_NEGATIVE, "warmup_ratio": FRACTION, "mask_prob": Range(0, 1, low_closed=False),
    "max_length": Range(8),                  # room for the special tokens and some text
    "heldout_documents": NON_NEGATIVE, "checkpoint_every": AT_LEAST_1, "seed": SEED,
    "threads": AT_LEAST_1,
}


@dataclass
class FinetuneRecipe:
    model: str                        # starting checkpoint: bundled:<name>, a directory or a hub id
    task: str                         # task key in the suite's registry
    suite: str
    data_dir: str = "data"
    seed: int = 0
    lr: float = 2e-5
    batch_size: int = 16
    epochs: int | None = None         # None: the task profile's (10 low-resource, 3 high-resource)
    patience: int = 3                 # epochs without a better dev metric before stopping
    max_length: int = 512             # tokens; longer texts are truncated
    dropout: float = 0.1
    weight_decay: float = 0.1         # not applied to biases and LayerNorm weights
    schedule: str | None = None       # "constant" | "linear" (warm-up, linear decay); None: by profile
    warmup_ratio: float = 0.06        # fraction of all steps; linear schedule only
    grad_clip: float = 1.0            # max global gradient norm
    eval_batch_size: int = 128
    max_train_examples: int | None = None  # the first N training examples (quick runs); None: all
    device: str = "auto"              # "auto": cuda when available, else cpu
    precision: str = "auto"           # "auto": bf16 autocast on a GPU that has it, else fp32; "fp32" | "bf16"
    # Batches are padded to their longest text, rounded up to a multiple of this: a GPU then sees
    # a few shapes (at most 512 / 32 = 16) instead of a new one per batch, each of which makes its
    # attention kernel plan anew. None: 32 on a GPU, 1 (no rounding) on a CPU.
    pad_to_multiple_of: int | None = None


FINETUNE_RANGES: dict[str, Rule] = {
    "seed": SEED, "lr": POSITIVE, "batch_size": BATCH, "epochs": AT_LEAST_1,
    "patience": AT_LEAST_1, "max_length": Range(8), "dropout": FRACTION,   # 1 token: not cut at all; 2: no text
    "weight_decay": NON_NEGATIVE, "schedule": OneOf(("constant", "linear")), "warmup_ratio": FRACTION,
    "grad_clip": POSITIVE, "eval_batch_size": BATCH, "max_train_examples": AT_LEAST_1,
    "precision": OneOf(("auto", "fp32", "bf16")), "pad_to_multiple_of": AT_LEAST_1, "device": Device(),
}
RANGES = {PretrainRecipe: PRETRAIN_RANGES, FinetuneRecipe: FINETUNE_RANGES}
# Fields the runner gives each stage and run itself (runner/job_actions.py), whatever a suite's
# `recipes.*`, `finetune` or `quick.*` section says: a section giving one was silently replaced
# (`finetune: {seed: 3}` ran seed 0), so the suite checks refuse it, naming the key that sets it.
SET_BY_THE_RUNNER: dict[type, dict[str, str]] = {
    PretrainRecipe: {"base_model": "base_model (a condition's stages start from it)",
                     "corpora": "base_corpus, domain_corpora, pools or curated",
                     "output_dir": "cache_dir (each stage's folder is named by its key)", "seed": "pretrain_seed"},
    FinetuneRecipe: {"model": "base_model (a condition's stages start from it)", "task": "tasks (or --tasks)",
                     "suite": "name", "data_dir": "data_dir (or --data-dir)", "seed": "seeds (or --seeds)"},
}
# FinetuneRecipe fields left to the machine ("auto" / None): a run made on a CPU is not made from
# other settings than one on a GPU (runner/finished.py, report/runs.py).
MACHINE_FIELDS = {"device": "auto", "precision": "auto", "pad_to_multiple_of": None}
# PretrainRecipe fields that say how fast a stage trains, not what it trains (report/runs.py).
MACHINE_PRETRAIN_FIELDS = ("threads", "compile")
# PretrainRecipe fields added after stages had been built, with the value those stages were built
# with: at that value a field stays out of a stage's key (stage_identity), and a record written
# before it existed reads as that value, so an upgrade neither rebuilds nor refuses a checkpoint
# (a DAPT stage of the paper's suite is 10.6 GPU-hours on an H200: bench/results/gpu_paper.jsonl 'dapt', 2026-11-25)
# that it would build the same way.
ADDED_PRETRAIN_FIELDS: dict[str, Any] = {"pack_documents": True}


def with_added_fields(saved: Mapping[str, Any]) -> dict[str, Any]:
    """A pretraining recipe as a record or resume state saved it, the fields added since it was
    written (ADDED_PRETRAIN_FIELDS) at the value it was built with."""
    return {**ADDED_PRETRAIN_FIELDS, **saved}


def violations(cls: type, values: Mapping[str, Any], *, whole: bool = False,
               num_processes: int = 1) -> list[Violation]:
    """Every value of `values` (fields of `cls`, a recipe or a suite section's overrides) of
    the wrong type or out of its range. `whole`: `values` (with the class defaults for what
    they lack) is a whole recipe, so the rules between fields apply too."""
    hints = typing.get_type_hints(cls)
    wrong_type = [Violation(name, value, f"expected {type_name(hints[name])}")
                  for name, value in values.items() if name in hints and not matches_type(value, hints[name])]
    typed = {name: value for name, value in values.items()
             if name in hints and not any(v.field == name for v in wrong_type)}
    found = wrong_type + range_violations(RANGES[cls], typed)
    if whole and cls is PretrainRecipe and not found:
        found += _pretrain_rules({**_defaults(cls), **typed}, num_processes)
    return found


def _pretrain_rules(recipe: Mapping[str, Any], num_processes: int) -> list[Violation]:
    found = []
    if (recipe.get("max_steps") is None) == (recipe.get("epochs") is None):
        # both set is most often a study's max_steps over its extended suite's epochs (merged key by key)
        both = f"epochs is {recipe['epochs']!r} too: " if recipe.get("epochs") is not None else ""
        found.append(Violation("max_steps", recipe.get("max_steps"), f"{both}give exactly one of max_steps "
                               "(--steps) and epochs (--epochs)" + (", the other null" if both else "")))
    per_step = recipe["per_device_batch_size"] * num_processes
    if recipe["batch_size"] % per_step:
        found.append(Violation("batch_size", recipe["batch_size"], "must be a multiple of per_device_batch_size "
                               f"{recipe['per_device_batch_size']} x {num_processes} process(es)"))
    if recipe["mask_prob"] * recipe["batch_size"] * recipe["max_length"] < 1:   # a TAPT of loss 0 was saved, exit 0
        found.append(Violation("mask_prob", recipe["mask_prob"], "masks under one token a step of batch_size x "
                               f"max_length ({recipe['batch_size']} x {recipe['max_length']}): it would train nothing"))
    return found


def check_recipe(recipe: PretrainRecipe | FinetuneRecipe, source: str, num_processes: int = 1) -> None:
    """Refuse a whole recipe with any value out of range: one line per value, `source` first."""
    found = violations(type(recipe), dataclasses.asdict(recipe), whole=True, num_processes=num_processes)
    raise_problems([f"{source}: {violation}" for violation in found])


def check_flags(cls: type, values: Mapping[str, Any], flags: Mapping[str, str] | None = None) -> None:
    """Refuse command-line values (field -> value, of `cls`) out of range, naming each flag:
    `--steps 0: must be >= 1`. `flags` maps a field to its flag when it is not --<field>."""
    raise_problems([v.as_flag((flags or {}).get(v.field) or "--" + v.field.replace("_", "-"))
                    for v in violations(cls, values)])


def _defaults(cls: type) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


@dataclass
class AdapterRecipe:
    """LoRA (Hu et al. 2021) in the encoder's Linear layers, through peft; docs/lora.md says
    how these defaults were chosen (pretrain/adapter.py trains them)."""
    kind: str = "lora"                 # the only kind so far
    rank: int = 8                      # r: rows of A, columns of B
    alpha: float = 16.0                # the update B @ A is scaled by alpha / rank
    dropout: float = 0.1               # on the adapter's input, in training only
    # leaf names of the encoder's Linear layers; BERT and RoBERTa: every one of them
    target_modules: list[str] = field(default_factory=lambda: ["query", "key", "value", "dense"])
    train_head: bool = True            # also the MLM head's transform, in full (its decoder is tied: frozen)


# What an `adapter` section allows: the suite checks (suite_checks.py) and the trainer (pretrain/adapter.py) ask
# `adapter_violations`, so a section refused in a running stage was refused by the suite first.
ADAPTER_RANGES: dict[str, Rule] = {"kind": OneOf(("lora",)), "rank": AT_LEAST_1, "alpha": POSITIVE,
                                            "dropout": FRACTION}


def adapter_violations(adapter: AdapterRecipe) -> list[Violation]:
    """Every value of `adapter` out of its range, and an empty `target_modules` (no layer to adapt)."""
    found = range_violations(ADAPTER_RANGES, dataclasses.asdict(adapter))
    if not adapter.target_modules or len(set(adapter.target_modules)) < len(adapter.target_modules):
        found.append(Violation("target_modules", adapter.target_modules, "must name layers, each once"))
    return found


def whole_floats(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` (fields of `cls`) with a whole number given to a float field as that float:
    YAML and `--set` read `alpha: 16` or `warmup_ratio: 0` as ints, which a stage key hashed
    apart from the defaults' 16.0 and 0.0, so the very same stage was built again under a second
    key and its runs called stale. Elements of a float pair (`betas`) too."""
    hints = typing.get_type_hints(cls)

    def as_float(value: Any, hint: Any) -> Any:
        floats = hint is float or float in typing.get_args(hint)   # float | None too
        if floats and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, (list, tuple)) and typing.get_origin(hint) in (tuple, list):
            return type(value)(as_float(item, typing.get_args(hint)[0]) for item in value)
        return value

    return {key: as_float(value, hints[key]) if key in hints else value for key, value in values.items()}
