"""Whether a model that continued pretraining starts from has a trained MLM head, read from the
names of its saved weights before any work: a sentence encoder (`bundled:minilm`, an `*Model`
saved without its head) loaded as `*ForMaskedLM` gets a random head, transformers prints a table
of missing weights, and the stage trains on without a word, its MLM losses (the domain
analysis, Table 12) meaningless. Reading the names costs a file header, not a load."""
from __future__ import annotations

import json
from pathlib import Path

from .. import adapters
from ..fileio import UserError
from .mlm import MLM_HEAD_ATTRIBUTES

# What save_pretrained writes the weights as, one file or an index of shards; the first one found is read.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def check_masked_lm(name: str, tokenizer) -> None:
    """The model a pretraining starts from, its tokenizer loaded: a mask token, and an MLM head."""
    if tokenizer.mask_token is None:
        raise UserError(f"{name}: tokenizer has no mask token; not a masked-LM model")
    check_mlm_head(name)


def check_mlm_head(name: str) -> None:
    """Refuse in one line a model whose saved weights hold no MLM head (no `lm_head.*` nor
    `cls.*`). A LoRA checkpoint is ours (its base was checked when it was built); a hub id not
    downloaded yet is not checked here (its load names what is missing)."""
    from ..models import resolve_model

    path = resolve_model(name)
    found = None if adapters.is_adapter_checkpoint(path) else _weights_file(path)
    try:
        names = _weight_names(found) if found else None
    except Exception:   # a damaged file: loading it says so in one line (models.load_pretrained)
        return
    if names is not None and not any(key.split(".")[0] in MLM_HEAD_ATTRIBUTES for key in names):
        raise UserError(f"{name}: no MLM head among its weights ({found.name} holds no "
                        f"{' or '.join(f'{a}.*' for a in MLM_HEAD_ATTRIBUTES)}: a sentence encoder?); continued "
                        "pretraining would start from a random head; give a masked-LM checkpoint")


def _weights_file(path: str) -> Path | None:
    """The first of WEIGHT_FILES in a model folder, or in the Hugging Face cache for a hub id."""
    if Path(path).is_dir():
        return next((Path(path) / file for file in WEIGHT_FILES if (Path(path) / file).is_file()), None)
    from huggingface_hub import try_to_load_from_cache

    cached = (try_to_load_from_cache(path, file) for file in WEIGHT_FILES)
    return next((Path(file) for file in cached if isinstance(file, str)), None)


def _weight_names(path: Path) -> list[str]:
    """The tensor names a weights file (or an index of shards) holds, without loading a tensor."""
    if path.name.endswith(".index.json"):
        return list(json.loads(path.read_text(encoding="utf-8")).get("weight_map", {}))
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as weights:
            return list(weights.keys())
    import torch

    return list(torch.load(path, map_location="meta", weights_only=True))
