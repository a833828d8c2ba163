"""python bench/common.py

Helpers shared by the benchmarks: each row runs in a fresh process (so its peak memory is
its own), is stamped with command, machine, date and versions, printed, and appended as
one JSON line to bench/results/<name>.jsonl. Run as a script, it prints the markdown tables
of docs/benchmarks.md from those files.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "bench" / "results"
DATA_DIR = REPO / "data"


def run_isolated(function, *args) -> dict:
    """`function(*args)` in a fresh (spawned) process: its peak memory is that row's alone."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as executor:
        return executor.submit(function, *args).result()


def peak_memory_mb(device: str) -> float:
    """Peak GPU memory allocated by torch on cuda, else the process's peak resident set, in MiB
    (2**20 bytes: every `*_mb` field of bench/results/ is MiB, the key kept for the rows recorded)."""
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def step_figures(step_seconds: list[float], tokens: int, unit: str = "tokens") -> dict:
    """Throughput over the whole run and from the median step, which shrugs off the load
    spikes of a shared machine."""
    per_step = tokens / len(step_seconds)
    return {"steps": len(step_seconds), unit: tokens, "seconds": round(sum(step_seconds), 3),
            f"{unit}_per_s": round(tokens / sum(step_seconds), 1),
            "median_step_s": round(statistics.median(step_seconds), 4),
            f"{unit}_per_s_median": round(per_step / statistics.median(step_seconds), 1)}


def interpreter() -> str:
    """The python that ran this, as a reader would type it: relative to the working directory when
    inside it (.venv/bin/python), else its bare name (a GPU image's python3)."""
    executable = Path(sys.executable)
    try:
        return str(executable.relative_to(Path.cwd()))
    except ValueError:
        return executable.name


def stamp(run: str, config: dict) -> dict:
    """What a reader needs to trust a row: command, machine, date, versions, configuration.
    `run` names one invocation: ratios compare rows of the same run only."""
    import torch
    import transformers

    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    machine = f"{os.cpu_count()} cores, {memory_gib:.0f} GiB, {platform.machine()}"
    if torch.cuda.is_available():
        machine += f", {torch.cuda.get_device_name()}"
    return {"run": run, "command": " ".join([interpreter(), *sys.argv]), "machine": machine,
            "load_average_1min": round(os.getloadavg()[0], 2),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "transformers": transformers.__version__},
            "config": config}


def record(path: Path, row: dict) -> None:
    """Print one row and append it to the results file."""
    shown = {key: f"{value:.4g}" if isinstance(value, float) else value for key, value in row.items()
             if key not in ("run", "command", "machine", "versions", "config", "date")}
    print("  ".join(f"{key}={value}" for key, value in shown.items()), flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def parse_with_data_and_smoke(parser, argv: list[str] | None, data_help: str):
    """argv parsed with --data-dir (the mini data, built if it is the default and missing),
    --smoke and --results added, as checked_smoke checks them."""
    parser.add_argument("--data-dir", default=str(DATA_DIR), help=data_help)
    parser.add_argument("--smoke", action="store_true", help="seconds: a plumbing check")
    parser.add_argument("--results", help="JSON lines file to append to (required with --smoke)")
    args = checked_smoke(parser, parser.parse_args(argv))
    if args.data_dir == str(DATA_DIR):
        ensure_mini_data()
    return args


def checked_smoke(parser, args):
    """The parsed args, a --smoke run refused without --results: smoke rows are plumbing checks,
    never figures, so they never go to bench/results/."""
    if args.smoke and not args.results:
        parser.error("--smoke needs --results PATH: smoke rows never go to bench/results/")
    return args


def ensure_mini_data() -> None:
    """Build data/mini (`dontstop data build-mini`) if a fresh clone lacks it."""
    if not (DATA_DIR / "mini" / "manifest.json").exists():
        from dontstop.data.mini import build_mini

        print("data/mini missing: building it (dontstop data build-mini)", flush=True)
        build_mini(DATA_DIR)


def header(column: str) -> str:
    """A column's name, with the unit of a `*_mb` field: MiB (bytes / 2**20), not the MB it spells."""
    return f"{column} (MiB)" if column.endswith("_mb") else column


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """A markdown table of `columns` (dotted names reach into nested dicts); '' if absent."""
    def cell(row: dict, column: str) -> str:
        value = row
        for part in column.split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header(column) for column in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row, c) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


TABLE_COLUMNS = {
    "mlm_throughput": ["run", "repeat", "row", "steps", "tokens_per_s", "tokens_per_s_median", "speedup",
                       "speedup_median", "peak_memory_mb", "heldout_loss", "torch_threads"],
    "finetune_padding": ["run", "row", "examples_per_s", "examples_per_s_median", "speedup", "speedup_median",
                         "epoch_s", "tokens_per_example", "mean_loss", "peak_memory_mb", "torch_threads"],
    "main_job": ["run", "job", "returncode", "wall_time_s", "jobs_finished", "job_recorded_wall_time_s"],
    "lora_cost": ["run", "row", "model", "trainable_params", "full_trainable_params", "checkpoint_mb",
                  "full_checkpoint_mb", "tokens_per_s", "full_tokens_per_s", "tokens_per_s_ratio",
                  "peak_memory_mb", "full_peak_memory_mb", "peak_memory_ratio"],
    "lora_defaults": ["run", "row", "recipe_lr", "trainable_params", "checkpoint_mb", "heldout_loss_before",
                      "heldout_loss_after", "tokens_per_s", "load_average_1min"],
    "lora_merge": ["run", "row", "load_s_median", "load_s_min", "load_s_max", "merge_s", "load_ratio",
                   "load_average_1min"],
    "base_threads": ["run", "row", "threads", "steps", "tokens_per_s", "speedup", "train_time_s", "peak_memory_mb",
                     "load_average_1min"],
}


def main() -> None:
    for name, columns in TABLE_COLUMNS.items():
        path = RESULTS_DIR / f"{name}.jsonl"
        if path.exists():
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
            print(f"### {name} ({path.relative_to(REPO)})\n\n{markdown_table(rows, columns)}\n")


if __name__ == "__main__":
    main()
