"""Continued pretraining through LoRA adapters (peft): the recipe's `adapter` section, the
wrapped model, what the optimizer gets, and the checkpoint (adapter only).

What trains (docs/lora.md says why and what it measured):
- LoRA (Hu et al. 2021) on the encoder's Linear layers named by `target_modules`: each keeps its
  frozen weight W and learns W + (alpha / rank) * B @ A, with A (rank x in) and B (out x rank);
- the MLM head's transform (dense + LayerNorm), in full, as peft's `modules_to_save`: the
  masked-LM loss needs a head that follows the adapted encoder, and it is small (hidden^2);
- nothing else: the decoder is tied to the input embeddings (38.6M of roberta-base's 125M
  parameters) and stays frozen with them, as does its output bias (peft saves modules, not
  bare parameters, and the bias lives in the head beside the tied decoder).

peft injects the adapters into the model in place: `peft_model.get_base_model()` is the very
*ForMaskedLM object the trainer already holds, whose forward now runs them, so the masked-only
loss (mlm.masked_only_mlm_loss: `model.base_model(...)`, then `mlm_head(model)`) reaches the
encoder through peft's layers unchanged.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..adapters import base_reference, head_transform, quiet_peft, target_layers
from ..config import from_dict
from ..fileio import UserError, raise_problems
from ..recipes import AdapterRecipe, PretrainRecipe, adapter_violations
from ..save_errors import written_or_os_error


def adapter_recipe(recipe: PretrainRecipe) -> AdapterRecipe | None:
    """The recipe's adapter section with its defaults, checked as the suite checks it
    (recipes.adapter_violations); None for full pretraining."""
    if recipe.adapter is None:
        return None
    adapter = from_dict(AdapterRecipe, recipe.adapter, "pretrain recipe: adapter")
    raise_problems([f"pretrain recipe: adapter: {violation}" for violation in adapter_violations(adapter)])
    return adapter


def lora_config(model, adapter: AdapterRecipe, where: str = "pretrain recipe: adapter"):
    """peft's LoraConfig for `model` (a *ForMaskedLM): every encoder Linear layer whose leaf name
    is in `target_modules`, by full name (so the config says exactly which layers), and with
    `train_head` the MLM head's transform trained in full."""
    from peft import LoraConfig

    return LoraConfig(r=adapter.rank, lora_alpha=adapter.alpha, lora_dropout=adapter.dropout,
                      target_modules=target_layers(model, adapter.target_modules, adapter.rank, where),
                      modules_to_save=head_transform(model) if adapter.train_head else None, bias="none")


def wrap_for_training(model, recipe: PretrainRecipe):
    """`model` with LoRA injected in place (the peft model returned), or None for a full stage.
    The adapters' A matrices start from torch's global generator: seeded before this call."""
    adapter = adapter_recipe(recipe)
    if adapter is None:
        return None
    from peft import get_peft_model

    with quiet_peft():
        peft_model = get_peft_model(model, lora_config(model, adapter))
    assert peft_model.get_base_model() is model   # injected in place: the trainer keeps `model`
    return peft_model


def base_weights(recipe: PretrainRecipe) -> dict[str, str] | None:
    """The weights files of a LoRA stage's base folder -> sha256 (its record keeps them, and a
    checkpoint whose base holds others is refused when loaded); None for a hub id."""
    from ..models import resolve_model, weights_sha256

    base_dir = Path(resolve_model(recipe.base_model))
    return weights_sha256(base_dir) if base_dir.is_dir() else None


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """What the optimizer gets: every parameter of a full stage; the adapters and the head's
    transform of a LoRA stage (peft froze the rest)."""
    return [p for p in model.parameters() if p.requires_grad]


def save_model(mlm_model, peft_model, recipe: PretrainRecipe) -> None:
    """Into recipe.output_dir: a full stage's whole model (`save_pretrained`); a LoRA stage's
    adapter weights and config only, naming its base (adapters.base_reference). peft's
    generated model card (a template to fill in) is not kept."""
    output_dir = Path(recipe.output_dir)
    if peft_model is None:
        with written_or_os_error(output_dir):   # a full disk: one line naming the folder
            mlm_model.save_pretrained(output_dir)
        return
    peft_model.peft_config["default"].base_model_name_or_path = base_reference(recipe.base_model, output_dir)
    with quiet_peft(), written_or_os_error(output_dir):
        peft_model.save_pretrained(str(output_dir), save_embedding_layers=False)   # none are trained
    (output_dir / "README.md").unlink(missing_ok=True)


def check_target_modules(adapter: dict, model_name: str, where: str) -> None:
    """Before any work: every target name of the `adapter` section is a Linear layer of
    `model_name`'s encoder (the model built on the meta device from its config: no weights read;
    a LoRA checkpoint stands for its root model's architecture)."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    from ..adapters import adapter_base, is_adapter_checkpoint
    from ..models import resolve_model

    path = resolve_model(model_name)
    while is_adapter_checkpoint(path):
        path = resolve_model(adapter_base(path))
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as e:
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise UserError(f"{where}: cannot read the config of {path} to check the target modules "
                        f"({first_line})") from None
    with torch.device("meta"):
        model = AutoModelForMaskedLM.from_config(config)
    section = from_dict(AdapterRecipe, adapter, where)
    target_layers(model, section.target_modules, section.rank, where)
