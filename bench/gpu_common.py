"""Shared by bench/gpu_paper.py and its row modules (gpu_dapt, gpu_finetune): the roberta-base
shape with random weights and random ids (no download), the paper's batch, the FLOPs formula,
the cards' dense bf16 peaks, and the run's settings. Not a script: run bench/gpu_paper.py.

FLOPs per token (PaLM, Chowdhery et al. 2022, appendix B) = 6 x params (all of them, embeddings
and tied decoder included: the stock model's nominal work, so the masked-only head gets no
discount) + 12 x layers x hidden x seq (attention scores and values). MFU = FLOPs/token x tokens/s
over the card's dense bf16 peak (PEAK_BF16_TFLOPS by device name, or --peak-tflops); an unknown
card (or the CPU) gets MFU null and says so.
"""
from __future__ import annotations

import gc
from dataclasses import dataclass

import torch

from dontstop.pretrain.cli import PRESETS
from dontstop.recipes import FinetuneRecipe

# roberta-base's config.json, minus the weights
ROBERTA_BASE = dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1,
                    layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)
SMOKE_SHAPE = {**ROBERTA_BASE, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
               "intermediate_size": 128}
FIRST_ID, MASK_ID = 5, 50264   # roberta-base: 0-4 are <s> <pad> </s> <unk> "."; 50264 is <mask>

PAPER_BATCH = PRESETS["dapt"]["batch_size"]      # 2048 sequences per DAPT optimizer step
PAPER_DAPT_STEPS = PRESETS["dapt"]["max_steps"]  # 12,500 steps
PAPER_DAPT_LR = PRESETS["dapt"]["lr"]            # 5e-4
PAPER_LENGTH = 512                               # tokens a sequence: 2048 x 512 = 1.05M tokens/step
FINETUNE_BATCH = FinetuneRecipe.batch_size       # 16 sequences
FINETUNE_LABELS = 13                             # ChemProt's, the most of any paper task

# Dense (no sparsity) bf16 tensor-core peaks, TFLOPS, from the vendors' data sheets. The first
# name that is a substring of torch.cuda.get_device_name() wins: specific variants come first.
PEAK_BF16_TFLOPS = (
    ("H100 NVL", 835.0), ("H100 PCIe", 756.0), ("H100", 989.0),   # plain "H100 80GB HBM3" = SXM
    ("H200 NVL", 835.0), ("H200", 989.0),
    ("A100", 312.0), ("L40S", 362.0), ("A10G", 125.0), ("RTX 4090", 165.0),
)


def peak_tflops(device_name: str) -> float | None:
    """The card's dense bf16 peak in TFLOPS, or None when the name is not in the table."""
    for fragment, tflops in PEAK_BF16_TFLOPS:
        if fragment.lower() in device_name.lower():
            return tflops
    return None


def training_flops_per_token(params: int, layers: int, hidden: int, seq: int) -> dict[str, int]:
    """Forward + backward FLOPs per token: 6 x params (dense) + 12 x layers x hidden x seq (attention)."""
    dense, attention = 6 * params, 12 * layers * hidden * seq
    return {"dense": dense, "attention": attention, "total": dense + attention}


def utilisation(flops_per_token: int, tokens_per_s: float, peak: float | None) -> dict:
    """Achieved TFLOPS and model FLOPs utilisation (None without a known peak)."""
    achieved = flops_per_token * tokens_per_s / 1e12
    return {"achieved_tflops": round(achieved, 2), "peak_tflops": peak,
            "mfu": round(achieved / peak, 4) if peak else None}


@dataclass(frozen=True)
class Settings:
    device: str                  # "cuda" or "cpu" (--smoke)
    device_name: str
    shape: dict                  # RobertaConfig keyword arguments
    seq: int                     # tokens per sequence
    micro_batch: int             # sequences per forward pass (DAPT)
    accumulation: int            # micro-batches per timed DAPT optimizer step
    steps: int                   # timed DAPT optimizer steps
    warmup_micro_batches: int    # one untimed optimizer step of this many micro-batches
    finetune_steps: int          # timed fine-tuning steps per precision
    finetune_warmup: int         # untimed fine-tuning steps before them
    mix_steps: int               # timed fine-tuning steps at the synthetic task's real lengths
    task_sizes: tuple            # train/dev/test examples of the synthetic ChemProt-sized task
    finetune_precision: str      # FinetuneRecipe.precision of the fine-tuning rows ("auto": bf16 on a GPU)
    compile: bool                # run the compiled DAPT paths (ours as on a GPU by default, stock + compile)
    peak_tflops: float | None
    peak_note: str

    @property
    def full_accumulation(self) -> int:
        return PAPER_BATCH // self.micro_batch   # 2048 / 32 = 64 micro-batches per paper step


def random_weight_model(auto_class, settings: Settings) -> torch.nn.Module:
    from transformers import RobertaConfig

    torch.manual_seed(0)
    config = RobertaConfig(**settings.shape)
    return auto_class.from_config(config, attn_implementation="sdpa").to(settings.device)


def random_ids(rows: int, seq: int, vocab: int, generator: torch.Generator) -> torch.Tensor:
    """<s> random ids in [5, <mask>) </s>: int64 [rows, seq]."""
    ids = torch.randint(FIRST_ID, min(vocab, MASK_ID), (rows, seq), generator=generator)
    ids[:, 0], ids[:, -1] = 0, 2
    return ids


class RobertaIds:
    """What mlm.mask_tokens reads of a tokenizer, for roberta-base's vocabulary (no download)."""
    mask_token = "<mask>"
    pad_token_id = 1
    all_special_ids = [0, 1, 2, 3, MASK_ID]

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size

    def __len__(self) -> int:          # the range of the 10% random replacements
        return self.vocab_size

    def convert_tokens_to_ids(self, token: str) -> int:
        assert token == self.mask_token
        return MASK_ID

    def get_special_tokens_mask(self, ids: list[int], already_has_special_tokens: bool = True) -> list[int]:
        """What DataCollatorForLanguageModeling asks of the stock path: 1 where an id is special."""
        return [int(i in self.all_special_ids) for i in ids]


def start_row(settings: Settings) -> None:
    gc.collect()
    if settings.device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def finetune_batch(settings: Settings, generator: torch.Generator) -> dict[str, torch.Tensor]:
    ids = random_ids(FINETUNE_BATCH, settings.seq, settings.shape["vocab_size"], generator)
    labels = torch.randint(0, FINETUNE_LABELS, (FINETUNE_BATCH,), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}   # 16 x 512
