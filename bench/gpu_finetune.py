"""The "finetune step" and "finetune real path" rows of bench/gpu_paper.py (run that script; this
module has no entry point).

A stand-in world, built in seconds with no download: a ChemProt-sized synthetic task (the paper's
13 labels; texts of 15-90 pseudo-words, the lengths of ChemProt's sentences) in the paper's jsonl
format, and a roberta-base-shaped model with random weights plus a byte-level BPE tokenizer
trained on that text, saved in a Hugging Face cache under `roberta-base` (the model keeps
roberta-base's 50,265-token vocabulary), exactly where `from_pretrained("roberta-base")` looks
with HF_HUB_OFFLINE=1.

- finetune step: finetune.trainer.train_step, unchanged, with the recipe's resolved precision
  (what runs is read back from the encoder's output dtype, never assumed) at 16 x 512 and over
  one epoch of the task's real lengths (length-grouped batches, padded per batch to the recipe's
  multiple, and once to the exact longest text: what bounding the shapes buys);
- finetune real path: the `dontstop finetune --suite paper --task chemprot --model roberta-base`
  command itself, for one epoch, in a fresh process: its import time, and the phases its
  metrics.json records (load, tokenize, train, eval), against the epoch predicted from the step
  row's rate at those lengths plus the evaluation it measured.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import gpu_common as bench
from common import REPO, peak_memory_mb, step_figures
from dontstop.finetune.classifier import SequenceClassifier, encode
from dontstop.finetune.trainer import build_optimizer, length_grouped_batches, resolve_recipe, train_step
from dontstop.recipes import FinetuneRecipe
from dontstop.records import METRICS_FILE, MetricsRecord
from dontstop.tasks import PAPER_TASKS

sys.path.insert(0, str(REPO / "tests"))
from paper_world import ROBERTA_SPECIALS, add_repo  # noqa: E402  (the tests' hub-cache builder)

CHEMPROT = PAPER_TASKS["chemprot"]
SYLLABLES = ["ka", "to", "ri", "mu", "sen", "lo", "pha", "zi", "gen", "ase", "in", "ol", "tri", "ne", "dro"]


@dataclass(frozen=True)
class World:
    data_dir: Path        # <data_dir>/paper/tasks/chemprot/{train,dev,test}.jsonl
    hf_cache: Path        # models--roberta-base/...
    model_dir: Path       # the same files, as a plain folder (for the step row)
    train_lengths: list   # tokens of each training text, as the trainer encodes it


def pseudo_text(rng: random.Random, words: int) -> str:
    return " ".join("".join(rng.choices(SYLLABLES, k=rng.randint(1, 4))) for _ in range(words))


def build_world(root: Path, settings, sizes: tuple[int, int, int]) -> World:
    """The synthetic task, tokenizer and model (see the module docstring), under `root`."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizer

    rng = random.Random(0)
    task_dir = root / "data" / "paper" / "tasks" / CHEMPROT.key
    task_dir.mkdir(parents=True)
    texts = {}
    for split, size in zip(("train", "dev", "test"), sizes):
        texts[split] = [f"{pseudo_text(rng, rng.randint(15, 90))} {split} {i}" for i in range(size)]
        rows = [{"text": text, "label": rng.choice(CHEMPROT.labels), "id": f"{split}-{i}"}
                for i, text in enumerate(texts[split])]
        if split == "train":   # dev/test labels must occur in train: train has every label
            for i, label in enumerate(CHEMPROT.labels):
                rows[i]["label"] = label
        (task_dir / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts["train"], vocab_size=2000, special_tokens=ROBERTA_SPECIALS, show_progress=False)
    trained = json.loads(bpe._tokenizer.to_str())["model"]
    tokenizer = RobertaTokenizer(vocab=trained["vocab"], merges=[tuple(m) for m in trained["merges"]],
                                 model_max_length=512)
    model_dir = root / "roberta-base"
    torch.manual_seed(0)
    RobertaForMaskedLM(RobertaConfig(**settings.shape)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    add_repo(root / "hf-cache", "roberta-base", {p.name: p.read_bytes() for p in model_dir.iterdir()})
    lengths = [len(f["input_ids"]) for f in encode(tokenizer, [_Example(t) for t in texts["train"]],
                                                   {"x": 0}, 512)]
    return World(root / "data", root / "hf-cache", model_dir, lengths)


@dataclass(frozen=True)
class _Example:          # what classifier.encode reads of data.formats.Example
    text: str
    label: str = "x"


def resolved_recipe(settings, precision: str, **overrides) -> FinetuneRecipe:
    recipe = FinetuneRecipe(model="roberta-base", task=CHEMPROT.key, suite="paper", device=settings.device,
                            precision=precision, **overrides)
    return resolve_recipe(recipe, CHEMPROT)


def classifier(world: World, settings) -> SequenceClassifier:
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(world.model_dir, attn_implementation="sdpa")
    encoder.pooler = None
    return SequenceClassifier(encoder, len(CHEMPROT.labels), 0.1, seed=0).to(settings.device).train()


def time_steps(model, optimizer, recipe, batches: list[dict], warmup: int) -> tuple[list[float], int, float]:
    """(seconds per timed step, real tokens in them, last loss) of train_step over `batches`."""
    seconds, tokens, loss = [], 0, float("nan")
    for i, batch in enumerate(batches):
        began = time.perf_counter()
        loss = train_step(model, batch, optimizer, recipe)       # .item(): waits for the GPU
        if i >= warmup:
            seconds.append(time.perf_counter() - began)
            tokens += int(batch["attention_mask"].sum())
    return seconds, tokens, loss


def observed_precision(model, recipe, batch: dict) -> str:
    """"bf16" or "fp32": the dtype every Linear layer of the model (encoder and head) computed in
    during one real training step (LayerNorm and softmax stay fp32 under autocast by design)."""
    seen = set()
    hooks = [module.register_forward_hook(lambda module, args, out: seen.add(out.dtype))
             for module in model.modules() if isinstance(module, torch.nn.Linear)]
    train_step(model, batch, build_optimizer(model, recipe), recipe)
    for hook in hooks:
        hook.remove()
    names = {torch.bfloat16: "bf16", torch.float32: "fp32"}
    return " + ".join(sorted(names.get(dtype, str(dtype)) for dtype in seen))


def mix_batches(world: World, settings, pad_to_multiple_of: int, count: int) -> list[dict]:
    """`count` training batches at the task's real lengths, grouped and padded as the trainer does."""
    from transformers import DataCollatorWithPadding, RobertaTokenizer

    tokenizer = RobertaTokenizer.from_pretrained(world.model_dir)
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt")
    generator, rng = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    batches = length_grouped_batches(world.train_lengths, 16, generator)[:count]
    return [collator([{"input_ids": torch.randint(5, 2000, (world.train_lengths[i],), generator=rng).tolist(),
                       "labels": 0} for i in indices]) for indices in batches]


def finetune_step_row(settings, world: World, precision: str) -> dict:
    bench.start_row(settings)
    recipe = resolved_recipe(settings, precision)
    model = classifier(world, settings)
    generator = torch.Generator().manual_seed(0)
    full = [bench.finetune_batch(settings, generator) for _ in range(settings.finetune_warmup + settings.finetune_steps)]
    ran = observed_precision(model, recipe, full[0])
    optimizer = build_optimizer(model, recipe)
    seconds, _, loss = time_steps(model, optimizer, recipe, full, settings.finetune_warmup)
    figures = step_figures(seconds, bench.FINETUNE_BATCH * len(seconds), unit="sequences")
    params = sum(p.numel() for p in model.parameters())
    layers, hidden = settings.shape["num_hidden_layers"], settings.shape["hidden_size"]
    flops = bench.training_flops_per_token(params, layers, hidden, settings.seq)
    tokens_per_s = figures["sequences_per_s"] * settings.seq
    mix = {}
    for multiple in sorted({recipe.pad_to_multiple_of, 1}):   # the recipe's bounded shapes, and none
        batches = mix_batches(world, settings, multiple, settings.finetune_warmup + settings.mix_steps)
        step_seconds, real_tokens, _ = time_steps(model, optimizer, recipe, batches, settings.finetune_warmup)
        mix[multiple] = {"real_tokens_per_s": round(real_tokens / sum(step_seconds), 1),
                         "sequences_per_s": round(16 * len(step_seconds) / sum(step_seconds), 1),
                         "steps": len(step_seconds)}
    mean_length = sum(world.train_lengths) / len(world.train_lengths)
    mix_flops = bench.training_flops_per_token(params, layers, hidden, round(mean_length))["total"]
    chosen = mix[recipe.pad_to_multiple_of]
    return {"row": "finetune step", "precision": ran, "recipe_precision": recipe.precision, **figures,
            "final_loss": round(loss, 4), "params": params, "batch": bench.FINETUNE_BATCH, "seq": settings.seq,
            "tokens_per_s": round(tokens_per_s, 1), "flops_per_token": flops,
            **bench.utilisation(flops["total"], tokens_per_s, settings.peak_tflops),
            "mix_pad_to_multiple_of": recipe.pad_to_multiple_of, "mix_mean_length": round(mean_length, 1),
            "mix_sequences_per_s": chosen["sequences_per_s"], "mix_real_tokens_per_s": chosen["real_tokens_per_s"],
            "mix_mfu": bench.utilisation(mix_flops, chosen["real_tokens_per_s"], settings.peak_tflops)["mfu"],
            "mix_by_pad_multiple": {str(k): v for k, v in mix.items()},
            "peak_memory_mb": round(peak_memory_mb(settings.device), 1)}


def finetune_real_path_row(settings, world: World, step_row: dict) -> dict:
    """`dontstop finetune` on the stand-in task for one epoch, in a fresh process."""
    env = {**os.environ, "HF_HUB_CACHE": str(world.hf_cache), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import dontstop.cli, dontstop.finetune.trainer"], env=env, check=True)
    import_s = time.perf_counter() - began
    with tempfile.TemporaryDirectory(prefix="finetune-real-") as out:
        command = [sys.executable, "-m", "dontstop", "finetune", "--suite", "paper", "--task", CHEMPROT.key,
                   "--model", "roberta-base", "--seed", "0", "--epochs", "1", "--data-dir", str(world.data_dir),
                   "--out", str(Path(out) / "seed_0"), "--no-wandb"]
        began = time.perf_counter()
        completed = subprocess.run(command, env=env, capture_output=True, text=True)
        command_s = time.perf_counter() - began
        if completed.returncode:
            raise SystemExit(f"dontstop finetune failed:\n{completed.stderr[-3000:]}")
        metrics = MetricsRecord.read(Path(out) / "seed_0" / METRICS_FILE)
    timings = metrics.timings
    train_tokens = sum(world.train_lengths)
    predicted_train_s = train_tokens / step_row["mix_real_tokens_per_s"]
    epoch_s = timings["train_s"] + timings["eval_s"]
    predicted = predicted_train_s + timings["eval_s"]
    return {"row": "finetune real path", "finetune_command": " ".join(command[1:]), "command_s": round(command_s, 2),
            "import_s": round(import_s, 2), **{k: round(v, 2) for k, v in timings.items()},
            "epoch_s": round(epoch_s, 2), "predicted_epoch_s": round(predicted, 2),
            "ratio_epoch_to_predicted": round(epoch_s / predicted, 3),
            "outside_run_s": round(command_s - metrics.wall_time_s, 2),
            "train_examples": metrics.train_examples, "train_tokens": train_tokens,
            "precision": metrics.config["precision"], "pad_to_multiple_of": metrics.config["pad_to_multiple_of"],
            "device": metrics.config["device"]}
