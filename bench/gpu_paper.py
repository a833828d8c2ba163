"""python bench/gpu_paper.py [--smoke --results PATH] [--micro-batch 32] [--accumulation 64] [--steps 3] [--finetune-steps 30] [--peak-tflops T]

Paper-scale speed of our two training steps on one GPU, with no download: a roberta-base-shaped
model (its known config, RANDOM weights) fed random token ids in [5, 50264) (no tokenizer).

DAPT row: our trainer's optimizer step, unchanged (dontstop.pretrain.trainer.PretrainRun._step:
accelerate with bf16 mixed precision, SDPA attention, mlm.mask_tokens 80/10/10 masking,
mlm.MaskedOnlyMLM loss, fused AdamW with the paper's betas (0.9, 0.98), eps 1e-6, weight decay
0.01) at 512 tokens, the paper's batch of 2048 sequences reached by gradient accumulation of
--micro-batch sequences. A few warm-up micro-batches (one small optimizer step), then --steps
timed optimizer steps of --accumulation micro-batches each (default 2048 / micro-batch: full paper
steps). Reported: tokens/s, seconds per 2048 x 512 optimizer step, hours for the paper's 12.5K
DAPT steps, MFU and peak GPU memory. With --accumulation below 2048 / micro-batch, the step is
projected from tokens/s, which charges the optimizer update to fewer tokens (slightly pessimistic).

Fine-tuning rows: finetune.trainer.train_step (cross-entropy, grad clip 1, fused AdamW, weight
decay 0.1 off biases/LayerNorm) of finetune.classifier.SequenceClassifier over the same encoder
shape, batch 16 x 512 tokens, once under bf16 autocast and once in fp32 (what finetune/trainer.py
runs today: it sets no autocast). Reported: sequences/s and minutes per epoch (and per the
profile's 3 or 10 epochs, before early stopping) for each paper task's train size, every
batch padded to 512: an upper bound, since the trainer pads to each batch's longest text.

FLOPs per token (PaLM, Chowdhery et al. 2022, appendix B) = 6 x params (all of them, embeddings
and tied decoder included: the stock model's nominal work, so the masked-only head gets no
discount) + 12 x layers x hidden x seq (attention scores and values). MFU = FLOPs/token x tokens/s
over the card's dense bf16 peak (PEAK_BF16_TFLOPS by device name, or --peak-tflops); an unknown
card (or the CPU) gets MFU null and says so. Peak memory: torch.cuda.max_memory_allocated
(on CPU: the process's peak resident set).

Rows are printed and appended as JSON lines to bench/results/gpu_paper.jsonl (--results). Without
CUDA it exits 2 unless --smoke: a tiny shape (2 layers, hidden 64, seq 64, micro-batch 4, 2 steps)
on the CPU through the same code, in a few seconds, written only to the --results path given.
"""
from __future__ import annotations

import argparse
import gc
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from common import RESULTS_DIR, peak_memory_mb, record, stamp, step_figures
from dontstop.finetune.trainer import build_optimizer, train_step
from dontstop.pretrain.cli import PRESETS
from dontstop.pretrain.mlm import BatchSchedule
from dontstop.pretrain.trainer import PretrainRun
from dontstop.recipes import FinetuneRecipe, PretrainRecipe
from dontstop.tasks import PAPER_TASKS

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


class RandomSequences:
    """mlm.PackedSequences' interface: full sequences of random ids, a pure function of the indices."""

    def __init__(self, seq: int, vocab: int):
        self.seq, self.vocab = seq, vocab

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(int(indices[0]))
        ids = random_ids(len(indices), self.seq, self.vocab, generator)
        return ids, torch.ones_like(ids)   # packed: no padding


class BenchRun(PretrainRun):
    """Our trainer's `_step`, unchanged, over a random-weight model and random ids: this
    constructor sets what `_step` reads, as PretrainRun.__init__ does, minus corpus and checkpoints."""

    def __init__(self, settings: Settings):
        from accelerate import Accelerator
        from transformers import AutoModelForMaskedLM, get_linear_schedule_with_warmup

        from dontstop.pretrain.mlm import MaskedOnlyMLM

        self.recipe = PretrainRecipe(base_model="random:roberta-base-shaped", corpora=[], output_dir="unused",
                                     max_steps=PAPER_DAPT_STEPS, lr=PAPER_DAPT_LR, max_length=settings.seq,
                                     batch_size=settings.micro_batch * settings.accumulation,
                                     per_device_batch_size=settings.micro_batch)   # paper betas/eps/wd
        self.accelerator = Accelerator(mixed_precision="bf16" if settings.device == "cuda" else "no",
                                       cpu=settings.device == "cpu",
                                       gradient_accumulation_steps=settings.accumulation)
        self.tokenizer = RobertaIds(settings.shape["vocab_size"])
        self.model = random_weight_model(AutoModelForMaskedLM, settings)
        self.sequences = RandomSequences(settings.seq, settings.shape["vocab_size"])
        sequences = self.recipe.batch_size * (settings.steps + 1)   # every timed step sees new ids
        self.schedule = BatchSchedule(self.recipe, sequences, process=0, processes=1)
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.recipe.lr, betas=tuple(self.recipe.betas),
                                      eps=self.recipe.eps, weight_decay=self.recipe.weight_decay, fused=True)
        warmup = math.ceil(self.recipe.warmup_ratio * PAPER_DAPT_STEPS)
        self.scheduler = get_linear_schedule_with_warmup(optimizer, warmup, PAPER_DAPT_STEPS)
        self.trainer, self.optimizer = self.accelerator.prepare(MaskedOnlyMLM(self.model), optimizer)
        self.trainer.train()

    def timed_step(self, micro_batches: list) -> tuple[float, float, int]:
        """(seconds, loss, tokens) of one optimizer step over `micro_batches`; `_step` reads the
        loss back, so the GPU has finished when the clock stops."""
        self.accelerator.gradient_accumulation_steps = len(micro_batches)
        self.accelerator.step = 0       # accelerate's micro-batch counter: sync on our last one
        began = time.perf_counter()
        loss, tokens = self._step(micro_batches)
        seconds = time.perf_counter() - began
        assert self.accelerator.sync_gradients, "the optimizer step was skipped (accumulation misaligned)"
        return seconds, loss, tokens


def start_row(settings: Settings) -> None:
    gc.collect()
    if settings.device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def dapt_row(settings: Settings) -> dict:
    start_row(settings)
    run = BenchRun(settings)
    run.timed_step(run.schedule.micro_batches(0)[:settings.warmup_micro_batches])   # kernels, allocator
    step_seconds, tokens, loss = [], 0, float("nan")
    for step in range(1, settings.steps + 1):
        seconds, loss, step_tokens = run.timed_step(run.schedule.micro_batches(step))
        step_seconds.append(seconds)
        tokens += step_tokens                  # 64 micro-batches x 32 seqs x 512 = 1.05M tokens/step
    figures = step_figures(step_seconds, tokens)
    params = sum(p.numel() for p in run.model.parameters())     # tied decoder counted once
    flops = training_flops_per_token(params, settings.shape["num_hidden_layers"],
                                     settings.shape["hidden_size"], settings.seq)
    paper_step_s = PAPER_BATCH * settings.seq / figures["tokens_per_s"]   # 2048 seqs x seq tokens
    row = {"row": "dapt", **figures, "final_loss": round(loss, 4), "params": params,
           "micro_batch": settings.micro_batch, "accumulation": settings.accumulation,
           "full_accumulation": settings.full_accumulation, "effective_batch": PAPER_BATCH,
           "seq": settings.seq, "precision": "bf16 (accelerate mixed_precision)" if settings.device == "cuda"
           else "fp32", "seconds_per_paper_step": round(paper_step_s, 3),
           "projected_dapt_hours": round(paper_step_s * PAPER_DAPT_STEPS / 3600, 2),   # 12.5K steps
           "flops_per_token": flops, **utilisation(flops["total"], figures["tokens_per_s"], settings.peak_tflops),
           "peak_memory_mb": round(peak_memory_mb(settings.device), 1)}
    del run
    return row


def finetune_batch(settings: Settings, generator: torch.Generator) -> dict[str, torch.Tensor]:
    ids = random_ids(FINETUNE_BATCH, settings.seq, settings.shape["vocab_size"], generator)
    labels = torch.randint(0, FINETUNE_LABELS, (FINETUNE_BATCH,), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}   # 16 x 512


def finetune_row(settings: Settings, precision: str) -> dict:
    """finetune.trainer.train_step on random batches of 16 x seq, under bf16 autocast or in fp32."""
    from transformers import AutoModel

    from dontstop.finetune.classifier import SequenceClassifier

    start_row(settings)
    recipe = FinetuneRecipe(model="random:roberta-base-shaped", task="chemprot", suite="paper",
                            device=settings.device)
    model = SequenceClassifier(random_weight_model(AutoModel, settings), FINETUNE_LABELS, recipe.dropout)
    model.to(settings.device).train()
    optimizer = build_optimizer(model, recipe)
    generator, step_seconds = torch.Generator().manual_seed(0), []
    for step in range(settings.finetune_warmup + settings.finetune_steps):
        batch = finetune_batch(settings, generator)
        began = time.perf_counter()
        with torch.autocast(settings.device, torch.bfloat16, enabled=precision == "bf16"):
            loss = train_step(model, batch, optimizer, recipe)     # .item(): waits for the GPU
        if step >= settings.finetune_warmup:
            step_seconds.append(time.perf_counter() - began)
    sequences = FINETUNE_BATCH * len(step_seconds)
    figures = step_figures(step_seconds, sequences, unit="sequences")
    tokens_per_s = figures["sequences_per_s"] * settings.seq
    params = sum(p.numel() for p in model.parameters())
    flops = training_flops_per_token(params, settings.shape["num_hidden_layers"],
                                     settings.shape["hidden_size"], settings.seq)
    row = {"row": f"finetune {precision}", **figures, "final_loss": round(loss, 4), "params": params,
           "batch": FINETUNE_BATCH, "seq": settings.seq,
           "precision": "bf16 autocast" if precision == "bf16" else "fp32 (finetune/trainer.py today)",
           "tokens_per_s": round(tokens_per_s, 1), **task_projections(figures["sequences_per_s"]),
           "flops_per_token": flops, **utilisation(flops["total"], tokens_per_s, settings.peak_tflops),
           "peak_memory_mb": round(peak_memory_mb(settings.device), 1)}
    del model, optimizer
    return row


def task_projections(sequences_per_s: float) -> dict:
    """Minutes per epoch and per the profile's epochs (3 or 10) for each paper task's train set."""
    per_epoch = {key: round(task.sizes[0] / sequences_per_s / 60, 2) for key, task in PAPER_TASKS.items()}
    return {"projected_minutes_per_epoch": per_epoch,
            "projected_minutes_all_epochs": {key: round(minutes * PAPER_TASKS[key].epochs, 2)
                                             for key, minutes in per_epoch.items()}}


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shape on the CPU: a plumbing check")
    parser.add_argument("--micro-batch", type=int, help="DAPT sequences per forward pass (GPU 32, smoke 4)")
    parser.add_argument("--accumulation", type=int,
                        help="micro-batches per timed DAPT step (default 2048 / micro-batch; smoke 2)")
    parser.add_argument("--steps", type=int, help="timed DAPT optimizer steps (GPU 3, smoke 2)")
    parser.add_argument("--warmup-micro-batches", type=int, help="untimed DAPT micro-batches (GPU 4, smoke 1)")
    parser.add_argument("--finetune-steps", type=int, help="timed fine-tuning steps per precision (GPU 30, smoke 2)")
    parser.add_argument("--finetune-warmup", type=int, help="untimed fine-tuning steps (GPU 3, smoke 1)")
    parser.add_argument("--peak-tflops", type=float, help="the card's dense bf16 peak (default: by device name)")
    parser.add_argument("--results", help="JSON lines file to append to (default bench/results/gpu_paper.jsonl; "
                                          "required with --smoke)")
    args = parser.parse_args(argv)
    if args.smoke and not args.results:
        parser.error("--smoke needs --results PATH: smoke rows never go to bench/results/")
    return args


def build_settings(args: argparse.Namespace) -> Settings:
    device = "cpu" if args.smoke else "cuda"
    defaults = ({"micro_batch": 4, "accumulation": 2, "steps": 2, "warmup_micro_batches": 1,
                 "finetune_steps": 2, "finetune_warmup": 1, "seq": 64} if args.smoke else
                {"micro_batch": 32, "accumulation": None, "steps": 3, "warmup_micro_batches": 4,
                 "finetune_steps": 30, "finetune_warmup": 3, "seq": PAPER_LENGTH})
    chosen = {key: getattr(args, key, None) or value for key, value in defaults.items()}
    name = "cpu" if args.smoke else torch.cuda.get_device_name()
    peak = args.peak_tflops or (None if args.smoke else peak_tflops(name))
    note = ("given by --peak-tflops" if args.peak_tflops else "CPU: no peak, MFU null" if args.smoke
            else f"table entry for {name!r}" if peak else f"{name!r} not in the peak table: MFU null "
            "(pass --peak-tflops)")
    settings = Settings(device=device, device_name=name, shape=SMOKE_SHAPE if args.smoke else ROBERTA_BASE,
                        peak_tflops=peak, peak_note=note, **chosen)
    if PAPER_BATCH % settings.micro_batch:
        raise SystemExit(f"--micro-batch {settings.micro_batch} does not divide the paper's batch of {PAPER_BATCH}")
    accumulation = settings.accumulation or settings.full_accumulation
    if not 1 <= accumulation <= settings.full_accumulation:
        raise SystemExit(f"--accumulation must be 1..{settings.full_accumulation} (2048 / micro-batch)")
    return replace(settings, accumulation=accumulation)


def print_table(rows: list[dict], settings: Settings) -> None:
    print(f"\n{settings.device_name}: peak {settings.peak_tflops} TFLOPS ({settings.peak_note})")
    print(f"{'row':<16}{'tokens/s':>12}{'seqs/s':>10}{'step s':>9}{'MFU':>8}{'peak MB':>10}  projection")
    for row in rows:
        if row["row"] == "dapt":
            step, projection = row["seconds_per_paper_step"], f"{row['projected_dapt_hours']} h for 12.5K x 2048 seqs"
            sequences_per_s = row["tokens_per_s"] / row["seq"]
        else:
            step, sequences_per_s = row["median_step_s"], row["sequences_per_s"]
            minutes = row["projected_minutes_per_epoch"]
            projection = f"min/epoch: rct-20k {minutes['rct-20k']}, chemprot {minutes['chemprot']}"
        mfu = "null" if row["mfu"] is None else f"{row['mfu']:.1%}"
        print(f"{row['row']:<16}{row['tokens_per_s']:>12,.0f}{sequences_per_s:>10,.1f}{step:>9.3f}{mfu:>8}"
              f"{row['peak_memory_mb']:>10,.0f}  {projection}")


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if not args.smoke and not torch.cuda.is_available():
        print("no CUDA device; run with --smoke on CPU", file=sys.stderr)
        return 2
    settings = build_settings(args)
    run_id = time.strftime("%Y%m%d-%H%M%S")
    rows = [dapt_row(settings), finetune_row(settings, "bf16"), finetune_row(settings, "fp32")]
    config = {**asdict(settings), "paper_batch": PAPER_BATCH, "paper_dapt_steps": PAPER_DAPT_STEPS,
              "finetune_batch": FINETUNE_BATCH, "attention": "sdpa", "weights": "random",
              "flops_formula": "6 * params + 12 * layers * hidden * seq per token (PaLM appendix B)"}
    results = Path(args.results) if args.results else RESULTS_DIR / "gpu_paper.jsonl"
    for row in rows:
        record(results, {**row, "device": settings.device, "device_name": settings.device_name,
                         "peak_note": settings.peak_note, **stamp(run_id, config)})
    print_table(rows, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
