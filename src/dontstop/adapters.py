"""LoRA checkpoints (peft): what they hold, which base they name, and the base with them merged.

A LoRA pretraining stage (pretrain/adapter.py) writes a folder with only what it trained:

    adapter_config.json          peft's LoraConfig; base_model_name_or_path names the base
    adapter_model.safetensors    the low-rank A and B of each adapted Linear layer, and the
                                 MLM head's transform (trained in full: peft's modules_to_save)
    tokenizer files, pretrain_record.json

The base is written relative to the adapter's folder when it is a local folder
(`../base-1a2b3c4d`: a cache moved whole still loads), else as given (`bundled:bert-tiny`,
`roberta-base`). It may itself be a LoRA checkpoint (TAPT (LoRA) after DAPT (LoRA)).
`models.load_pretrained` loads such a folder as any other checkpoint: the base, loaded the
same way, with this adapter merged into its weights (`merge_and_unload`).

Shared basics: imports no stage; peft and transformers are imported where used.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

from .fileio import UserError
from .save_errors import written_or_os_error

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def is_adapter_checkpoint(path: str | Path) -> bool:
    """A folder holding a peft adapter (and no full model of its own)."""
    path = Path(path)
    return (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").is_file()


def adapter_base(directory: str | Path) -> str:
    """The model the adapter in `directory` was trained on: a folder, `bundled:<name>` or a hub id."""
    config_path = Path(directory) / ADAPTER_CONFIG
    try:
        base = json.loads(config_path.read_text(encoding="utf-8"))["base_model_name_or_path"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{config_path}: not a readable peft adapter config ({type(e).__name__}: {e})") from None
    if not isinstance(base, str) or not base:
        raise UserError(f"{config_path}: field 'base_model_name_or_path' names no base model")
    # "..": the adapter saved inside its base's folder (`--out base/lora`); read as a hub id, it
    # was looked up from wherever the command ran
    relative = base in (".", "..") or base.startswith(("./", "../"))
    return os.path.normpath(Path(directory) / base) if relative else base


def base_reference(base_model: str, adapter_dir: str | Path) -> str:
    """What adapter_config.json names as the base: a local folder relative to the adapter's
    (so that moving the cache keeps the pair together), anything else as given."""
    if base_model.startswith("bundled:") or not Path(base_model).expanduser().is_dir():
        return base_model
    relative = os.path.relpath(Path(base_model).expanduser().resolve(), Path(adapter_dir).resolve())
    return relative if relative.startswith("..") else f"./{relative}"


def encoder_linear_layers(model) -> dict[str, str]:
    """Full name -> leaf name of every Linear layer of a masked-LM model's encoder
    (`bert.encoder.layer.0.attention.self.query` -> `query`): where adapters may go. The MLM
    head is left out: its transform is trained in full, its decoder is tied to the embeddings."""
    import torch

    prefix = model.base_model_prefix
    return {f"{prefix}.{name}": name.rsplit(".", 1)[-1] for name, module in model.base_model.named_modules()
            if isinstance(module, torch.nn.Linear)}


def target_layers(model, leaf_names: list[str], rank: int, where: str) -> list[str]:
    """The encoder's Linear layers whose leaf name is one of `leaf_names`; an unknown name, or a
    `rank` past what a layer's update can have (min of its in and out features: beyond it, more
    weights and time for nothing; rank 100000 on BERT-tiny wrote a 1.8 GB adapter), is a
    one-line UserError naming what this model has."""
    layers = encoder_linear_layers(model)
    known = sorted(set(layers.values()))
    for name in leaf_names:
        if name not in known:
            raise UserError(f"{where}: target module {name!r} is not a Linear layer of "
                            f"{type(model).__name__}'s encoder; its Linear layers: {', '.join(known)}")
    chosen = [full for full, leaf in layers.items() if leaf in leaf_names]
    adapted = [model.get_submodule(full) for full in chosen]
    most = min(min(layer.in_features, layer.out_features) for layer in adapted)
    if rank > most:
        raise UserError(f"{where}: key 'rank': {rank}; the adapted layers of {type(model).__name__} take a rank of "
                        f"at most {most} (a higher one adds weights, not capacity)")
    return chosen


def head_transform(model) -> list[str]:
    """The MLM head's modules that hold no weight tied to the input embeddings (BERT:
    `cls.predictions.transform`; RoBERTa: `lm_head.dense`, `lm_head.layer_norm`), by full name."""
    tied = {id(p) for p in model.get_input_embeddings().parameters()}
    head_name = next((name for name in ("lm_head", "cls") if hasattr(model, name)), None)
    if head_name is None:
        raise UserError(f"{type(model).__name__}: no MLM head (lm_head or cls) to train beside the "
                        "adapters; use a BERT- or RoBERTa-family model")

    def untied(name: str, module) -> list[str]:
        if not any(id(p) in tied for p in module.parameters()):
            return [name] if any(True for _ in module.parameters()) else []
        return [found for child, sub in module.named_children() for found in untied(f"{name}.{child}", sub)]

    return untied(head_name, getattr(model, head_name))


@contextlib.contextmanager
def merged_checkpoint(base_model, adapter_dir: str | Path) -> Iterator[Path]:
    """A temporary folder holding `base_model` (a loaded *ForMaskedLM) with the adapter in
    `adapter_dir` merged into its weights, saved as a full checkpoint: any AutoModel class and
    keyword then loads it exactly as it would load a full checkpoint. Removed afterwards."""
    from peft import PeftModel

    folder = Path(tempfile.mkdtemp(prefix="dontstop-merged-"))
    try:
        with quiet_peft():
            try:
                merged = PeftModel.from_pretrained(base_model, str(adapter_dir)).merge_and_unload()
            except (OSError, ValueError, RuntimeError, KeyError) as e:
                first_line = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
                raise UserError(f"{adapter_dir}: cannot apply the LoRA adapter to its base ({first_line})") from None
            # transformers 5 writes a checkpoint from the process of rank 0 only once torch.distributed
            # is initialized: in a stage on several processes (a LoRA stage whose base is a LoRA
            # checkpoint) the others found this folder empty. The folder is this process's own.
            merged.should_save_on_this_rank = lambda is_main_process: is_main_process
            with written_or_os_error(folder):   # a full temporary folder ($TMPDIR): one line naming it
                merged.save_pretrained(folder)
        del merged
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """Without the noise of attaching and saving adapters, once per job (hundreds of jobs):
    peft 0.21 asks transformers 5 for `is_gradient_checkpointing`, which warns (FutureWarning),
    and every save_pretrained draws a "writing shards" progress bar."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
            yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()
