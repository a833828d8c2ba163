"""The "dapt vs stock" row of bench/gpu_paper.py (run that script; this module has no entry point).

Three DAPT steps at the same shape (micro-batches of `micro_batch` x seq tokens, accumulated to
the paper's batch of 2048 sequences), on the same random roberta-base-shaped model and random ids:

- ours: dontstop.pretrain.trainer.PretrainRun's `_step` and input pipeline, unchanged
  (accelerate bf16, SDPA, masks built ahead in pinned memory by pipeline.MicroBatchStream,
  mlm.MaskedOnlyMLM loss, fused AdamW with the paper's betas), compiled as the recipe's default
  on a GPU does, and once eager (what compiling brings);
- stock eager: what a user of the library would write: RobertaForMaskedLM with labels (the
  vocabulary projection at every position), bf16 autocast, DataCollatorForLanguageModeling's
  masking on the CPU in the loop, a pageable copy to the GPU, grad clip 1, fused AdamW;
- stock + torch.compile: the same with `model.compile()`.

Each path runs one untimed warm-up step (compilation, allocator), then `steps` timed optimizer
steps; the loss of the last step is kept so that a reader sees the three paths learn alike.
"""
from __future__ import annotations

import math
import time

import torch

import gpu_common as bench
from common import peak_memory_mb, step_figures
from dontstop.pretrain.mlm import BatchSchedule
from dontstop.pretrain.trainer import PretrainRun
from dontstop.recipes import PretrainRecipe


class RandomSequences:
    """sequences.PackedSequences' interface: full sequences of random ids, a pure function of the indices."""

    def __init__(self, seq: int, vocab: int):
        self.seq, self.vocab = seq, vocab

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(int(indices[0]))
        ids = bench.random_ids(len(indices), self.seq, self.vocab, generator)
        return ids, torch.ones_like(ids)   # packed: no padding


class BenchRun(PretrainRun):
    """Our trainer's `_step` and input pipeline, unchanged, over a random-weight model and random
    ids: this constructor sets what they read, as PretrainRun.__init__ does, minus corpus and
    checkpoints."""

    def __init__(self, settings, micro_batch: int, compiled: bool, steps: int):
        from accelerate import Accelerator
        from transformers import AutoModelForMaskedLM, get_linear_schedule_with_warmup

        from dontstop.pretrain.mlm import MaskedOnlyMLM

        self.recipe = PretrainRecipe(base_model="random:roberta-base-shaped", corpora=[], output_dir="unused",
                                     max_steps=bench.PAPER_DAPT_STEPS, lr=bench.PAPER_DAPT_LR,
                                     max_length=settings.seq, batch_size=micro_batch * settings.accumulation,
                                     per_device_batch_size=micro_batch, compile=compiled)  # paper betas/eps/wd
        self.accelerator = Accelerator(mixed_precision="bf16" if settings.device == "cuda" else "no",
                                       cpu=settings.device == "cpu",
                                       gradient_accumulation_steps=settings.accumulation)
        self.tokenizer = bench.RobertaIds(settings.shape["vocab_size"])
        self.model = bench.random_weight_model(AutoModelForMaskedLM, settings)
        self.sequences = RandomSequences(settings.seq, settings.shape["vocab_size"])
        sequences = self.recipe.batch_size * (steps + 1)   # every timed step sees new ids
        self.schedule = BatchSchedule(self.recipe, sequences, process=0, processes=1)
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.recipe.lr, betas=tuple(self.recipe.betas),
                                      eps=self.recipe.eps, weight_decay=self.recipe.weight_decay, fused=True)
        warmup = math.ceil(self.recipe.warmup_ratio * bench.PAPER_DAPT_STEPS)
        self.scheduler = get_linear_schedule_with_warmup(optimizer, warmup, bench.PAPER_DAPT_STEPS)
        self.compiled = compiled
        self.trainer, self.optimizer = self.accelerator.prepare(MaskedOnlyMLM(self.model, compiled), optimizer)
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


def ours(settings, micro_batch: int, compiled: bool) -> dict:
    """Our step: tokens/s over `settings.steps` optimizer steps, final loss, peak memory."""
    bench.start_row(settings)
    run = BenchRun(settings, micro_batch, compiled, settings.steps)
    stream = run.micro_batch_stream(0, settings.steps + 1)
    run.timed_step(stream.next_step()[:settings.warmup_micro_batches])   # compile, kernels, allocator
    step_seconds, tokens, loss = [], 0, float("nan")
    for _ in range(settings.steps):
        seconds, loss, step_tokens = run.timed_step(stream.next_step())
        step_seconds.append(seconds)
        tokens += step_tokens
    params = sum(p.numel() for p in run.model.parameters())     # tied decoder counted once
    return {**step_figures(step_seconds, tokens), "final_loss": round(loss, 4), "params": params,
            "peak_memory_mb": round(peak_memory_mb(settings.device), 1)}


def stock(settings, compiled: bool) -> dict:
    """The library's own path, eager or under torch.compile, at the same shape and accumulation."""
    from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling

    bench.start_row(settings)
    device, micro_batch, accumulation = settings.device, settings.micro_batch, settings.accumulation
    model = bench.random_weight_model(AutoModelForMaskedLM, settings).train()
    if compiled:
        from torch._inductor import config as inductor_config

        inductor_config.fallback_random = False   # torch.compile's default (ours sets True)
        model.compile()
    collator = DataCollatorForLanguageModeling(bench.RobertaIds(settings.shape["vocab_size"]), mlm_probability=0.15)
    optimizer = torch.optim.AdamW(model.parameters(), lr=bench.PAPER_DAPT_LR, betas=(0.9, 0.98), eps=1e-6,
                                  weight_decay=0.01, fused=True)
    generator = torch.Generator().manual_seed(0)

    def step(micro_batches: int) -> float:
        for _ in range(micro_batches):
            ids = bench.random_ids(micro_batch, settings.seq, settings.shape["vocab_size"], generator)
            input_ids, labels = collator.torch_mask_tokens(ids)          # on the CPU, in the loop
            with torch.autocast(device, torch.bfloat16, enabled=device == "cuda"):
                loss = model(input_ids=input_ids.to(device), attention_mask=torch.ones_like(input_ids).to(device),
                             labels=labels.to(device)).loss
            (loss / micro_batches).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())                                       # waits for the GPU

    step(settings.warmup_micro_batches)
    step_seconds, loss = [], float("nan")
    for _ in range(settings.steps):
        began = time.perf_counter()
        loss = step(accumulation)
        step_seconds.append(time.perf_counter() - began)
    tokens = settings.steps * accumulation * micro_batch * settings.seq
    return {**step_figures(step_seconds, tokens), "final_loss": round(loss, 4),
            "peak_memory_mb": round(peak_memory_mb(device), 1)}


def dapt_vs_stock_row(settings) -> dict:
    """Ours (compiled as on a GPU by default, and eager), stock eager and stock compiled, one run.
    With `settings.compile` off (the CPU smoke: compiling takes minutes there) the compiled paths
    are not run and their fields are null."""
    eager = ours(settings, settings.micro_batch, compiled=False)
    compiled = ours(settings, settings.micro_batch, compiled=True) if settings.compile else eager
    stock_eager = stock(settings, compiled=False)
    stock_compiled = stock(settings, compiled=True) if settings.compile else dict.fromkeys(eager)
    layers, hidden = settings.shape["num_hidden_layers"], settings.shape["hidden_size"]
    flops = bench.training_flops_per_token(compiled["params"], layers, hidden, settings.seq)
    rate = compiled["tokens_per_s"]
    paper_step_s = bench.PAPER_BATCH * settings.seq / rate   # 2048 seqs x seq tokens
    return {"row": "dapt vs stock", **compiled, "tokens_per_s": rate,
            "ours_eager_tokens_per_s": eager["tokens_per_s"],
            "stock_eager_tokens_per_s": stock_eager["tokens_per_s"],
            "stock_compile_tokens_per_s": stock_compiled["tokens_per_s"],
            "ratio_vs_stock_eager": round(rate / stock_eager["tokens_per_s"], 3),
            "ratio_vs_stock_compile": stock_compiled["tokens_per_s"] and round(rate / stock_compiled["tokens_per_s"], 3),
            "final_losses": {"ours": compiled["final_loss"], "ours_eager": eager["final_loss"],
                             "stock_eager": stock_eager["final_loss"], "stock_compile": stock_compiled["final_loss"]},
            "ours_eager_peak_memory_mb": eager["peak_memory_mb"],
            "stock_eager_peak_memory_mb": stock_eager["peak_memory_mb"],
            "stock_compile_peak_memory_mb": stock_compiled["peak_memory_mb"],
            "micro_batch": settings.micro_batch, "accumulation": settings.accumulation,
            "full_accumulation": settings.full_accumulation, "effective_batch": bench.PAPER_BATCH,
            "seq": settings.seq, "precision": "bf16" if settings.device == "cuda" else "fp32",
            "compiled": settings.compile, "seconds_per_paper_step": round(paper_step_s, 3),
            "projected_dapt_hours": round(paper_step_s * bench.PAPER_DAPT_STEPS / 3600, 2),   # 12.5K steps
            "flops_per_token": flops, **bench.utilisation(flops["total"], rate, settings.peak_tflops)}
