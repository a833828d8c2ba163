"""The recipes of the two training stages. A suite's `recipes.<kind>` and `finetune` sections
and the CLI flags map onto these fields exactly (the suite loader checks its keys here).

Shared basics: the runner, the trainers and the suite loader read them; they import no stage.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    heldout_documents: int = 200        # held out from training to score MLM loss before/after
    checkpoint_every: int = 500         # optimizer steps between resumable states
    seed: int = 0
    # CPU threads for this stage (None: the caller's; a runner worker has one). The mini suite's
    # base stage runs alone, before anything else can, so it takes both cores. Part of the
    # recipe, so every launcher builds the stage with the same arithmetic.
    threads: int | None = None
    # Train low-rank adapters instead of every weight: the fields of AdapterRecipe (None: full
    # training). Only the LoRA recipes (dapt_lora, tapt_lora) take it; pretrain/adapter.py.
    adapter: dict[str, Any] | None = None


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
