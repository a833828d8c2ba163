#!/bin/bash
# bash bench/gpu_device_run.sh OUT_DIR [--smoke]
#
# The one command a session lent a GPU runs (library `device` tool: `bash bench/gpu_device_run.sh "$OUT"`,
# timeout about 9 minutes): the machine's facts, then bench/gpu_paper.py (its three rows; an
# estimated 5 minutes on an H200, not timed there yet) and bench/lora_cost.py --device cuda (the
# "dapt lora vs full" row), every row appended to OUT_DIR/gpu_paper.jsonl and each log kept beside it. Back on the
# development machine the rows go to bench/results/gpu_paper.jsonl unchanged (`cat OUT/gpu_paper.jsonl
# >> bench/results/gpu_paper.jsonl`), and README.md and `--dry-run` read them from there.
#
# --smoke: the same two scripts with their --smoke on the CPU (tiny shape, half a minute): run it before
# spending device time. A failing step stops the script (set -e, pipefail); the rows already written stay
# (each script writes a row as soon as it is measured).
set -euo pipefail
out=${1:?usage: bash bench/gpu_device_run.sh OUT_DIR [--smoke]}
smoke=${2:-}
case "$smoke" in ""|--smoke) ;; *) echo "usage: bash bench/gpu_device_run.sh OUT_DIR [--smoke]" >&2; exit 2 ;; esac
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

{ date -u +%FT%TZ; git rev-parse HEAD 2>/dev/null || echo "no git"; nvidia-smi 2>/dev/null || echo "no nvidia-smi"
  "$python" -c 'import torch, transformers, accelerate; print("torch", torch.__version__, "| transformers",
transformers.__version__, "| accelerate", accelerate.__version__, "| cuda", torch.cuda.is_available())'
} > "$out/machine.txt" 2>&1

# Each script's wall time goes to OUT/seconds.txt: the docs' GPU durations come from there, not from guesses.
timed() {   # timed NAME COMMAND...: run it, its output to OUT/NAME.log too, and note its seconds
  local name=$1 began=$SECONDS; shift
  "$@" 2>&1 | tee "$out/$name.log"
  echo "$name $((SECONDS - began))" >> "$out/seconds.txt"
}
timed gpu_paper "$python" bench/gpu_paper.py $smoke --results "$out/gpu_paper.jsonl"
timed lora_cost "$python" bench/lora_cost.py --device cuda $smoke --results "$out/gpu_paper.jsonl"
echo "rows: $(wc -l < "$out/gpu_paper.jsonl") in $out/gpu_paper.jsonl"
