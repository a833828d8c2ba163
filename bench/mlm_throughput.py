"""python bench/mlm_throughput.py [--steps 60] [--ablation-steps 20] [--repeats 1] [--threads N] [--compile] [--smoke]

MLM pretraining throughput of our trainer (dontstop.pretrain.trainer: vocabulary projection on the
masked positions only, packed sequences) against the stock path a user would otherwise run:
AutoModelForMaskedLM + DataCollatorForLanguageModeling + transformers.Trainer with the same
model, packed sequences, batch, sequence length, optimizer settings, schedule and steps.

CPU: bundled:bert-tiny, batch 16 x 128 tokens, data/mini/corpora/cs.txt (~5,000 sequences).
GPU (when torch.cuda.is_available()): a roberta-base-shaped model from its config (random
weights), bf16, batch 32 x 512, and model FLOPs utilisation = 6 x params x tokens/s over
--peak-tflops (the nominal work of the stock path, so masked-only rows get no FLOPs discount).

At equal loss: every row ends with the held-out MLM loss of its final weights, on the same
held-out documents with the same fixed masks (mlm.heldout_mlm_loss). Ablation rows run a
plain loop with the trainer's data order and masks and change one lever at a time. Each row
runs in a fresh process; speedup = tokens/s over the stock row's of the same run. Rows are
printed and appended to bench/results/mlm_throughput.jsonl.
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from transformers import DataCollatorForLanguageModeling, TrainerCallback

from common import RESULTS_DIR, DATA_DIR, ensure_mini_data, peak_memory_mb, record, run_isolated, stamp, step_figures
from dontstop.pretrain.mlm import BatchSchedule, MaskedOnlyMLM, heldout_mlm_loss, mask_tokens
from dontstop.pretrain.sequences import DocumentSequences, PackedSequences, write_token_stream
from dontstop.models import load_pretrained, resolve_model
from dontstop.data.leakage import LeakageGuard
from dontstop.pretrain.corpus import scan_corpus
from dontstop.pretrain.trainer import PretrainRun, check_recipe
from dontstop.recipes import PretrainRecipe

CPU = {"model": "bundled:bert-tiny", "batch_size": 16, "max_length": 128, "steps": 60}
GPU = {"batch_size": 32, "max_length": 512, "steps": 200}   # model: roberta_base_shaped()
LR = 5e-4  # the DAPT preset's peak: the held-out loss moves visibly within tens of steps


@dataclass(frozen=True)
class Setup:
    model: str
    corpus: str
    device: str
    batch_size: int
    max_length: int
    steps: int
    threads: int | None = None
    heldout_documents: int = 200

    def recipe(self, output_dir: str | Path = "unused") -> PretrainRecipe:
        return PretrainRecipe(base_model=self.model, corpora=[self.corpus], output_dir=str(output_dir),
                              max_steps=self.steps, batch_size=self.batch_size, lr=LR,
                              per_device_batch_size=self.batch_size, max_length=self.max_length,
                              heldout_documents=self.heldout_documents, checkpoint_every=self.steps + 1)


@dataclass(frozen=True)
class Lever:
    """One configuration of the plain loop; the defaults are everything our trainer does."""
    name: str
    masked_only: bool = True   # vocabulary projection on masked positions only
    attention: str = "sdpa"
    fused_adamw: bool = True
    packed: bool = True        # else one document a sequence, padded to the batch's longest
    compiled: bool = False


ABLATION = (
    Lever("loop: all-position head, eager attention, foreach AdamW", masked_only=False, attention="eager",
          fused_adamw=False),
    Lever("loop: all-position head (stock loss)", masked_only=False),
    Lever("loop: masked-only head, foreach AdamW", fused_adamw=False),
    Lever("loop: masked-only head, eager attention", attention="eager"),
    Lever("loop: masked-only head, line by line (no packing)", packed=False),
    Lever("loop: masked-only head (every lever)"),
)
COMPILED = Lever("loop: masked-only head + torch.compile", compiled=True)


def begin_row(setup: Setup) -> None:
    if setup.threads:
        torch.set_num_threads(setup.threads)
    torch.manual_seed(0)


def finish_row(name: str, setup: Setup, model, step_seconds: list[float], tokens: int, heldout: float) -> dict:
    return {"row": name, "device": setup.device, **step_figures(step_seconds, tokens),
            "heldout_loss": round(heldout, 4), "params": sum(p.numel() for p in model.parameters()),
            "peak_memory_mb": round(peak_memory_mb(setup.device), 1), "torch_threads": torch.get_num_threads()}


class StepTimer(TrainerCallback):
    """Seconds between the ends of consecutive optimizer steps (data, forward, backward, update)."""

    def __init__(self, device: str):
        self.device, self.step_seconds, self.last = device, [], 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.last = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.device == "cuda":
            torch.cuda.synchronize()  # our trainer syncs every step too (it reads the loss)
        now = time.perf_counter()
        self.step_seconds.append(now - self.last)
        self.last = now


class CountingCollator(DataCollatorForLanguageModeling):
    """The stock collator, noting the real (unpadded) tokens of each batch it hands out
    (the Trainer's loader collates one batch ahead: count only the first `steps`)."""

    def __call__(self, features, return_tensors=None):
        batch = super().__call__(features, return_tensors)
        self.__dict__.setdefault("batch_tokens", []).append(int(batch["attention_mask"].sum()))
        return batch


def stock_row(setup: Setup) -> dict:
    """AutoModelForMaskedLM + DataCollatorForLanguageModeling + Trainer on our packed sequences."""
    from datasets import Dataset
    from transformers import AutoModelForMaskedLM, AutoTokenizer, Trainer, TrainingArguments

    begin_row(setup)
    recipe, timer = setup.recipe(), StepTimer(setup.device)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(setup.model))
    token_dir = tempfile.TemporaryDirectory()
    sequences, heldout_documents = packed_corpus(recipe, tokenizer, Path(token_dir.name))
    dataset = Dataset.from_dict({"input_ids": [sequences.sequence(i) for i in range(len(sequences))]})
    model = load_pretrained(AutoModelForMaskedLM, setup.model)   # transformers' default: SDPA
    with tempfile.TemporaryDirectory() as scratch:
        arguments = TrainingArguments(
            output_dir=scratch, max_steps=setup.steps, per_device_train_batch_size=setup.batch_size,
            learning_rate=recipe.lr, weight_decay=recipe.weight_decay, adam_beta1=recipe.betas[0],
            adam_beta2=recipe.betas[1], adam_epsilon=recipe.eps, lr_scheduler_type="linear",
            warmup_steps=math.ceil(recipe.warmup_ratio * setup.steps), seed=recipe.seed,
            bf16=setup.device == "cuda", use_cpu=setup.device == "cpu", report_to="none",
            save_strategy="no", logging_steps=setup.steps, disable_tqdm=True,
            max_grad_norm=0.0)  # our recipe does not clip; Trainer's default would clip at 1.0
        collator = CountingCollator(tokenizer, mlm_probability=recipe.mask_prob)
        Trainer(model=model, args=arguments, train_dataset=dataset, data_collator=collator,
                callbacks=[timer]).train()
    heldout = heldout_mlm_loss(model, tokenizer, heldout_documents, setup.max_length, recipe.seed)
    token_dir.cleanup()
    return finish_row("stock: AutoModelForMaskedLM + collator + Trainer", setup, model, timer.step_seconds,
                      sum(collator.batch_tokens[:setup.steps]), heldout)


class TimedRun(PretrainRun):
    """Our trainer, unchanged, recording the seconds of each optimizer step."""

    def __init__(self, *args):
        self.step_seconds = []
        super().__init__(*args)

    def _step(self, micro_batches):
        began = time.perf_counter()
        result = super()._step(micro_batches)
        self.step_seconds.append(time.perf_counter() - began)
        return result


def ours_row(setup: Setup) -> dict:
    """dontstop.pretrain.trainer as `dontstop pretrain` runs it (accelerate, resumable, bf16 on GPU)."""
    begin_row(setup)
    with tempfile.TemporaryDirectory() as scratch:
        recipe = setup.recipe(Path(scratch) / "checkpoint")
        check_recipe(recipe)
        run = TimedRun(recipe, LeakageGuard(), "bench")
        run.train(None)
        result = run.finish()
    row = finish_row("ours: dontstop pretrain", setup, run.model, run.step_seconds, result.tokens,
                     result.heldout_loss_after)
    return {**row, "heldout_loss_at_start": round(result.heldout_loss_before, 4)}


def packed_corpus(recipe: PretrainRecipe, tokenizer, scratch: Path) -> tuple[PackedSequences, list[str]]:
    """The trainer's packed training sequences (token file in `scratch`) and held-out documents."""
    corpus = scan_corpus(recipe, exclude_keys=None)
    write_token_stream(tokenizer, corpus.training_documents(), scratch / "tokens.bin", show_progress=False)
    return PackedSequences(tokenizer, scratch / "tokens.bin", recipe.max_length), corpus.heldout_documents()


def loss_function(model, lever: Lever):
    if lever.masked_only:
        forward = MaskedOnlyMLM(model)
    else:  # the stock loss: logits for every position, then cross-entropy over the labelled ones
        def forward(input_ids, attention_mask, labels):
            return model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
    return torch.compile(forward) if lever.compiled else forward


def loop_row(setup: Setup, lever: Lever) -> dict:
    """A plain loop over the trainer's batch order and masks, with `lever`'s choices."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer, get_linear_schedule_with_warmup

    begin_row(setup)
    recipe, device = setup.recipe(), setup.device
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(setup.model))
    model = load_pretrained(AutoModelForMaskedLM, setup.model, attn_implementation=lever.attention).to(device)
    token_dir = tempfile.TemporaryDirectory()
    sequences, heldout_documents = packed_corpus(recipe, tokenizer, Path(token_dir.name))
    if not lever.packed:   # the trainer's `pack_documents: false`: one document a sequence, same token file
        sequences = DocumentSequences(tokenizer, Path(token_dir.name) / "tokens.bin", setup.max_length)
    schedule = BatchSchedule(recipe, len(sequences), process=0, processes=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=recipe.betas, eps=recipe.eps,
                                  weight_decay=recipe.weight_decay, fused=lever.fused_adamw)
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(recipe.warmup_ratio * setup.steps),
                                                setup.steps)
    forward, step_seconds, tokens = loss_function(model, lever), [], 0
    model.train()
    for step in range(setup.steps):
        began = time.perf_counter()
        (indices, generator), = schedule.micro_batches(step)   # one micro-batch: no accumulation
        input_ids, attention_mask = sequences.batch(indices)
        input_ids, labels = mask_tokens(tokenizer, input_ids, generator, recipe.mask_prob)
        with torch.autocast(device, torch.bfloat16, enabled=device == "cuda"):
            loss = forward(input_ids.to(device), attention_mask.to(device), labels.to(device))
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        loss.item()  # waits for the GPU, as our trainer does each step
        step_seconds.append(time.perf_counter() - began)
        tokens += int(attention_mask.sum())
    heldout = heldout_mlm_loss(model, tokenizer, heldout_documents, setup.max_length, recipe.seed)
    token_dir.cleanup()
    return finish_row(lever.name, setup, model, step_seconds, tokens, heldout)


def roberta_base_shaped(folder: Path) -> str:
    """A RobertaForMaskedLM of roberta-base's shape (random weights, ~125M parameters) saved
    with the bundled BERT tokenizer: no hub access, and its ids fit the 50,265-token vocabulary."""
    from transformers import AutoTokenizer, RobertaConfig, RobertaForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("bundled:bert-tiny"))
    config = RobertaConfig(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                           intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1,
                           pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    RobertaForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--steps", type=int, help=f"steps of the stock and ours rows (CPU {CPU['steps']}, "
                                                  f"GPU {GPU['steps']})")
    parser.add_argument("--ablation-steps", type=int, help="steps of each ablation row (default: steps / 3)")
    parser.add_argument("--corpus", default=str(DATA_DIR / "mini" / "corpora" / "cs.txt"))
    parser.add_argument("--compile", action="store_true", help="add a torch.compile row (slow to compile)")
    parser.add_argument("--no-ablation", action="store_true", help="stock and ours rows only")
    parser.add_argument("--threads", type=int, help="torch threads per row (default: torch's)")
    parser.add_argument("--repeats", type=int, default=1, help="run every row this many times, in turn")
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="device's dense bf16 peak for MFU (989: H100 SXM)")
    parser.add_argument("--results", default=str(RESULTS_DIR / "mlm_throughput.jsonl"))
    parser.add_argument("--smoke", action="store_true", help="2 steps of 4 x 32 tokens in one process: a plumbing check")
    return parser.parse_args()


def build_setup(args: argparse.Namespace, scratch: Path) -> Setup:
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no GPU visible to torch")
    shape = dict(GPU, model=roberta_base_shaped(scratch / "roberta-base-shaped")) if device == "cuda" else CPU
    setup = Setup(corpus=args.corpus, device=device, threads=args.threads, **shape)
    if args.steps:
        setup = replace(setup, steps=args.steps)
    if args.smoke:
        smoke_corpus = scratch / "smoke.txt"
        smoke_corpus.write_text("".join(Path(args.corpus).open(encoding="utf-8").readlines()[:300]), encoding="utf-8")
        setup = replace(setup, corpus=str(smoke_corpus), steps=2, batch_size=4, max_length=32,
                        heldout_documents=10)
    return setup


def main() -> None:
    args = parse_arguments()
    if not Path(args.corpus).exists():
        ensure_mini_data()   # the default corpus lives in data/mini
    if not Path(args.corpus).exists():
        raise SystemExit(f"{args.corpus}: corpus not found")
    run_id = time.strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory() as scratch:
        setup = build_setup(args, Path(scratch))
        ablation_steps = 1 if args.smoke else args.ablation_steps or max(1, setup.steps // 3)
        jobs = [(stock_row, setup), (ours_row, setup)]
        levers = () if args.no_ablation else ABLATION + ((COMPILED,) if args.compile else ())
        if args.smoke:  # between them, these two take every branch of the loop
            levers = (ABLATION[0], ABLATION[4])
        jobs += [(loop_row, replace(setup, steps=ablation_steps), lever) for lever in levers]
        rows = []
        for repeat in range(args.repeats):  # in turn, so that a shared machine's load hits every row
            for function, *job_args in jobs:
                # --smoke checks the plumbing in-process: a fresh process costs seconds of imports
                row = function(*job_args) if args.smoke else run_isolated(function, *job_args)
                rows.append({**row, "repeat": repeat})
                print(f"{row['row']}: {row['tokens_per_s']:,.0f} tokens/s", flush=True)
    config = {**asdict(setup), "ablation_steps": ablation_steps, "lr": LR, "peak_tflops": args.peak_tflops}
    for row in rows:
        stock = next(r for r in rows if r["repeat"] == row["repeat"])  # the first row of each repeat
        record(Path(args.results), {**row, **speedups(row, stock, setup, args.peak_tflops), **stamp(run_id, config)})


def speedups(row: dict, stock: dict, setup: Setup, peak_tflops: float) -> dict:
    figures = {"speedup": round(row["tokens_per_s"] / stock["tokens_per_s"], 2),
               "speedup_median": round(row["tokens_per_s_median"] / stock["tokens_per_s_median"], 2)}
    if setup.device == "cuda":
        figures["mfu"] = round(6 * row["params"] * row["tokens_per_s"] / (peak_tflops * 1e12), 4)
    return figures


if __name__ == "__main__":
    main()
