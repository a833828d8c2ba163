"""python bench/gpu_rehearsal.py --out DIR: the paper suite's real trainers on a GPU, offline.

Runs our continued pretraining (accelerate, bf16, SDPA) and our fine-tuning (bf16 autocast,
and fp32 for comparison) on CUDA, on the stand-ins of tests/paper_world.py: a tiny RoBERTa and
the 9 tasks in the paper's format. It checks the GPU code paths work end to end (not their
speed: bench/gpu_paper.py measures that at roberta-base scale) and writes what it saw to
DIR/gpu_rehearsal.json. Needs no network; run it from the repository root with PYTHONPATH
holding src/ and tests/ when the package is not installed.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]


def pretrain_on_gpu(world, out: Path) -> dict:
    from dontstop.pretrain.trainer import run_pretraining
    from dontstop.recipes import PretrainRecipe

    recipe = PretrainRecipe(str(world.model_dir), [str(world.corpora["biomed"])], str(out / "dapt-biomed"),
                            max_steps=20, batch_size=32, per_device_batch_size=16, max_length=128,
                            heldout_documents=20, checkpoint_every=10)
    started = time.time()
    record = run_pretraining(recipe)
    return {"steps": record.steps, "tokens_per_s": round(record.tokens_per_s),
            "heldout_loss_before": record.heldout_loss_before, "heldout_loss_after": record.heldout_loss_after,
            "seconds": round(time.time() - started, 1)}


def finetune_on_gpu(world, data_dir: Path, out: Path, precision: str) -> dict:
    from dontstop.finetune.trainer import run_finetune
    from dontstop.recipes import FinetuneRecipe

    # HyperPartisan: documents longer than 512 tokens, truncated as in the paper; 2 labels.
    recipe = FinetuneRecipe(str(world.model_dir), "hyperpartisan_news", "paper", data_dir=str(data_dir),
                            epochs=5, patience=5, lr=1e-3, max_length=512, precision=precision)
    record = run_finetune(recipe, out / f"finetune-{precision}")
    return {"precision": record.config["precision"], "device": record.config["device"],
            "dev_curve": record.dev_curve, "test_metric": record.test_metric,
            "seconds": record.wall_time_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device; this script checks the GPU paths (the CPU ones are tested in CI)")
        return 2
    from paper_world import build_paper_world

    world = build_paper_world(args.out / "world")
    data_dir = args.out / "data"
    (data_dir / "paper").mkdir(parents=True, exist_ok=True)
    (data_dir / "paper" / "tasks").symlink_to(world.s3_root)
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "python": platform.python_version(), "pretrain": pretrain_on_gpu(world, args.out),
              "finetune": [finetune_on_gpu(world, data_dir, args.out, p) for p in ("auto", "fp32")]}
    (args.out / "gpu_rehearsal.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
