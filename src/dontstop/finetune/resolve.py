"""A fine-tuning recipe made concrete for its task and this machine: what the task profile
decides (epochs, schedule) and what the device allows (precision, padding), validated.

Apart from the trainer so that `status` and `run` compare each finished run with what they ask
(runner/finished.py) without loading transformers, peft and sklearn (about 4 s on a 2-core CPU,
for every command on a results folder): torch alone says which device this machine has.
"""
from __future__ import annotations

import os
from dataclasses import asdict, replace

import torch

from ..fileio import UserError
from ..recipes import MACHINE_FIELDS, FinetuneRecipe, check_recipe
from ..tasks import Task

GPU_PAD_MULTIPLE = 32   # FinetuneRecipe.pad_to_multiple_of on a GPU: at most 512 / 32 = 16 shapes
COMPARED_ELSEWHERE = ("model", "data_dir")  # by identity (model_identity) and by content (data_sha256)


def resolve_recipe(recipe: FinetuneRecipe, task: Task) -> FinetuneRecipe:
    """Fill in what the task profile decides (epochs, schedule) and the device; validate
    (recipes.py: the ranges every caller shares)."""
    if recipe.task != task.key:
        raise UserError(f"recipe task {recipe.task!r} does not match task {task.key!r}")
    check_recipe(recipe, "fine-tuning recipe")
    device = recipe.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = recipe.precision
    if precision == "auto":  # bf16 is ~4.5x faster than fp32 at 512 tokens on an H200 (bench/gpu_paper.py)
        precision = "bf16" if device.startswith("cuda") and torch.cuda.is_bf16_supported() else "fp32"
    pad_to_multiple_of = recipe.pad_to_multiple_of or (GPU_PAD_MULTIPLE if device.startswith("cuda") else 1)
    return replace(recipe, epochs=task.epochs if recipe.epochs is None else recipe.epochs,
                   schedule=recipe.schedule or task.schedule, device=device,
                   precision=precision, pad_to_multiple_of=pad_to_multiple_of)


def recipe_difference(finished: dict, asked: FinetuneRecipe, task: Task) -> str | None:
    """The first field in which a finished run's resolved recipe (its metrics.json `config`)
    differs from what `asked` resolves to here, or None. What the machine chooses when left at
    `auto` (device, precision, padding) is not compared: a run is the same on another machine."""
    for name, value in asdict(resolve_recipe(asked, task)).items():
        machine = name in MACHINE_FIELDS and getattr(asked, name) == MACHINE_FIELDS[name]
        if not machine and name not in COMPARED_ELSEWHERE and finished.get(name) != value:
            return f"{name}: finished with {finished.get(name)!r}, asked {value!r}"
    return None


def check_device(device: str) -> None:
    """A device this machine has (recipes.py checked its spelling): `cuda` on a machine where torch
    sees no GPU failed with a traceback at the first fine-tuning run, after every pretraining stage.
    Checked where the run happens: by the trainer, and before any work by a local `run`/`reproduce`."""
    index = int(device.partition(":")[2] or 0)
    if device.startswith("cuda") and index >= torch.cuda.device_count():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        raise UserError(f"fine-tuning recipe: key 'device': {device!r}, but torch sees {torch.cuda.device_count()} "
                        f"CUDA device(s) here (CUDA_VISIBLE_DEVICES={'unset' if visible is None else repr(visible)})")
    if device == "mps" and not torch.backends.mps.is_available():
        raise UserError("fine-tuning recipe: key 'device': 'mps', but torch sees no Apple GPU here")
