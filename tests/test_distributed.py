"""Pretraining on 2 processes (gloo on the CPU: the code path of several GPUs) gives the numbers and
weights of 1 process at the same global batch, and a SIGKILLed 2-process run resumes to the same
record and weights; both for a full stage and for a LoRA stage (adapters under DDP, adapter-only
checkpoint saved by the main process).

The 2 processes come from `accelerate launch --multi_gpu --num_processes 2` (torchrun underneath)
with ACCELERATE_USE_CPU=true, the command a multi-GPU Slurm job runs (runner/slurm_job.py), on
CPUs. `accelerate launch --cpu --num_processes 2` would not do: accelerate 1.15's --cpu launcher
starts ONE process unless it is given an mpirun hostfile, so such a "2-process" run is a 1-process
run and matches the reference trivially. Hence every test here first checks that the trainer
really saw 2 processes.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM

from dontstop.models import load_pretrained
from dontstop.records import PRETRAIN_RECORD_FILE, PretrainRecord

# 16 optimizer steps of 8 sequences x 32 tokens: 4 micro-batches of 2 in one process, 2 per process
# in two. A resumable state every 2 steps, so that a kill lands after one.
PRETRAIN = ["pretrain", "--model", "bundled:bert-tiny", "--steps", "16", "--batch-size", "8",
            "--per-device-batch-size", "2", "--max-length", "32", "--heldout-documents", "10",
            "--checkpoint-every", "2", "--no-wandb"]
# One process and two sum the gradients of the 4 micro-batches in a different order (accumulation
# in one process vs gloo's all-reduce of two halves), so float32 rounding differs in the last bits
# (~1e-7 relative per step), which 16 Adam steps carry to ~1e-6 nats; measured: 2e-6 (train) and
# 1e-6 (held-out). A real difference (a micro-batch masked differently, seen twice or not at all)
# moves the loss by > 1e-2 nats: seeding the masks per process instead of per global micro-batch
# gave 7.600 vs 7.561.
LOSS_TOLERANCE = 1e-4
# The same rounding in the saved weights (full: every weight; LoRA: the adapters and the head's
# transform). Adam's steps are ~lr each, so a run that saw other data or other gradients moves a
# weight by ~lr (2e-3 for LoRA, 1e-4 for full) or more.
WEIGHT_TOLERANCE = 1e-5
# A LoRA stage (pretrain/adapter.py: adapters on every Linear layer and the MLM head's transform
# train, the rest is frozen) at the mini suite's LoRA lr, so that they move.
LORA = ["--lora", "rank=8", "--lr", "2e-3"]
# The stages run on 2 processes: a full one, a LoRA one, and a LoRA one whose base is itself a LoRA
# checkpoint (TAPT (LoRA) after DAPT (LoRA): each process loads its base merged, models.load_pretrained).
KINDS = ("full", "lora", "lora_after_lora")


def env() -> dict[str, str]:
    # One thread per process: 2 processes on 2 cores, and the 1-process reference alike.
    return {**os.environ, "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_processes(*args: str) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(free_port()), "-m", "dontstop", *args]


def run(command: list[str], **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    if popen:
        return subprocess.Popen(command, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                **popen)
    return subprocess.run(command, env=env(), capture_output=True, text=True, timeout=300)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant, found through /proc before any of them dies."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    family, todo = [], [pid]
    while todo:
        family.append(todo.pop())
        todo += children.get(family[-1], [])
    for member in family:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def numbers(record: PretrainRecord) -> dict:
    return {"steps": record.steps, "sequences": record.sequences, "tokens": record.tokens,
            "final_train_loss": record.final_train_loss, "heldout_loss_before": record.heldout_loss_before,
            "heldout_loss_after": record.heldout_loss_after}


def saved_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint's weights files (model.safetensors, adapter_model.safetensors)."""
    return {name: tensor for path in sorted(checkpoint.glob("*.safetensors"))
            for name, tensor in load_file(path).items()}


@pytest.fixture(scope="module")
def lora_base(tiny_corpus, tmp_path_factory) -> Path:
    """A LoRA checkpoint (DAPT (LoRA)), made by 1 process."""
    out = tmp_path_factory.mktemp("lora_base") / "ckpt"
    ok(run([sys.executable, "-m", "dontstop", *PRETRAIN, *LORA, "--corpus", str(tiny_corpus), "--out", str(out)]))
    return out


@pytest.fixture(scope="module", params=KINDS)
def two_process_run(request, tiny_corpus, tmp_path_factory) -> tuple[list[str], Path]:
    """An uninterrupted 2-process run of a stage of each kind, checked to have trained on 2
    processes: (the arguments of its `dontstop` command but --out, its output folder)."""
    args = [*PRETRAIN, *(LORA if "lora" in request.param else []), "--corpus", str(tiny_corpus)]
    if request.param == "lora_after_lora":   # the last --model is the one argparse keeps
        args += ["--model", str(request.getfixturevalue("lora_base"))]
    out = tmp_path_factory.mktemp(f"two-{request.param}") / "ckpt"
    ok(run(two_processes(*args, "--out", str(out))))
    # The record's process count is accelerate's, as the trainer saw it: 1 where each worker trained
    # alone (both writing the same folder).
    assert PretrainRecord.read(out / PRETRAIN_RECORD_FILE).processes == 2, "the trainer did not see 2 processes"
    return args, out


def test_two_processes_give_the_losses_and_weights_of_one_at_the_same_global_batch(two_process_run, tmp_path):
    args, two_out = two_process_run
    ok(run([sys.executable, "-m", "dontstop", *args, "--out", str(tmp_path / "one")]))
    one_record, two_record = (PretrainRecord.read(out / PRETRAIN_RECORD_FILE) for out in (tmp_path / "one", two_out))
    one, two = numbers(one_record), numbers(two_record)
    assert (one_record.processes, two_record.processes) == (1, 2)   # the record tells the runs apart
    for key in ("steps", "sequences", "tokens"):
        assert one[key] == two[key], key
    assert one["heldout_loss_before"] == two["heldout_loss_before"]  # the same model, the same masks
    assert abs(two["heldout_loss_after"] - two["heldout_loss_before"]) > 0.01   # it trained: weights moved
    for key in ("final_train_loss", "heldout_loss_after"):
        assert abs(one[key] - two[key]) < LOSS_TOLERANCE, (key, one[key], two[key])
    # The same files (a LoRA stage: adapter only, saved once), the same tensor names (no DDP
    # `module.` prefix), the same values up to rounding.
    assert sorted(p.name for p in two_out.iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    one_weights, two_weights = saved_weights(tmp_path / "one"), saved_weights(two_out)
    assert one_weights.keys() == two_weights.keys() and one_weights
    for name, weight in one_weights.items():
        torch.testing.assert_close(two_weights[name], weight, rtol=0, atol=WEIGHT_TOLERANCE, msg=name)
    load_pretrained(AutoModelForMaskedLM, str(two_out))   # loads (LoRA: merged on its base), else UserError


def test_a_sigkilled_two_process_run_resumes_to_the_uninterrupted_record(two_process_run, tmp_path):
    args, two_out = two_process_run
    out = tmp_path / "killed"
    command = two_processes(*args, "--out", str(out))
    launcher = run(command, start_new_session=True)
    deadline = time.time() + 180
    while not list(out.glob("resume/step-*")) and launcher.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    kill_tree(launcher.pid)   # torchrun starts its workers in sessions of their own: killpg misses them
    launcher.wait()
    saved = sorted(out.glob("resume/step-*"))
    assert saved and not (out / "pretrain_record.json").exists(), "the run was not killed mid-way"
    assert (saved[-1] / "random_states_1.pkl").exists(), "the second process saved no state"

    ok(run(command))                                   # the same command again resumes
    resumed = PretrainRecord.read(out / "pretrain_record.json")
    assert 0 < resumed.resumed_from_step < 16 and resumed.processes == 2
    assert numbers(resumed) == numbers(PretrainRecord.read(two_out / PRETRAIN_RECORD_FILE))
    resumed_weights, whole_weights = saved_weights(out), saved_weights(two_out)
    assert resumed_weights.keys() == whole_weights.keys()
    assert all(torch.equal(weight, whole_weights[name]) for name, weight in resumed_weights.items())


def test_the_slurm_multi_gpu_command_builds_a_stage_on_two_processes(tiny_corpus, tmp_path):
    """The command a multi-GPU Slurm pretraining job runs on each node (runner/slurm_job.py), on 2 CPU
    processes: both join one process group and the stage is built once, with its record."""
    from dontstop.suites import Suite
    from dontstop.runner.jobs import Job
    from dontstop.runner.plan import Stage
    from dontstop.runner.slurm_job import Launch, launch_command, write_spec

    recipe = {"max_steps": 4, "batch_size": 8, "per_device_batch_size": 2, "max_length": 32,
              "heldout_documents": 10}
    stage = Stage("tapt-acl", "tapt", "bundled:bert-tiny", (str(tiny_corpus),), recipe, "0" * 64, "tapt-acl",
                  str(tmp_path / "ckpt"))
    suite = Suite("mini", "bundled:bert-tiny", tasks=[], seeds=[0], data_dir=str(tmp_path / "data"),
                  results_dir=str(tmp_path / "results"), cache_dir=str(tmp_path / "cache"))
    spec = write_spec(tmp_path / "stage.pkl", Job("pretrain", "tapt-acl", stage.record_path, (), stage=stage),
                      suite, wandb=False)
    command = launch_command(Launch(gpus_per_node=2, nodes=1, spec=spec), node=0, head="127.0.0.1",
                             port=free_port(), cpu=True)
    result = ok(run(command))
    assert {"tapt-acl: process 0 of 2", "tapt-acl: process 1 of 2"} <= set(result.stdout.splitlines())
    record = PretrainRecord.read(stage.record_path)
    assert record.steps == 4 and record.sequences == 32 and record.name == "tapt-acl"


class SlowSecondProcess:
    """What PretrainRun._save_resume_state asks of accelerate, for the main process of two whose
    second process writes its random state as late as it may: just before the next barrier."""

    is_main_process = True

    def __init__(self):
        self.second_process_writes = None   # where the second process will write, until it has

    def save_state(self, folder: str) -> None:
        Path(folder).mkdir(parents=True)
        (Path(folder) / "random_states_0.pkl").write_bytes(b"0")
        self.second_process_writes = Path(folder) / "random_states_1.pkl"

    def wait_for_everyone(self) -> None:
        if self.second_process_writes:   # fails if the folder was renamed meanwhile
            self.second_process_writes.write_bytes(b"1")
            self.second_process_writes = None


def test_a_resumable_state_is_made_final_only_once_every_process_wrote_its_part(tmp_path):
    """accelerate's save_state has no barrier at its end: renaming the state's folder before the
    slowest process has written into it lost that process's random state (or crashed it)."""
    from dontstop.pretrain.trainer import PretrainRun

    run = PretrainRun.__new__(PretrainRun)   # only what _save_resume_state reads
    run.resume_dir, run.progress, run.accelerator = tmp_path / "resume", {"step": 4}, SlowSecondProcess()
    run._save_resume_state()
    [state] = (tmp_path / "resume").iterdir()
    assert state.name == "step-000000004"
    assert sorted(path.name for path in state.iterdir()) == ["progress.json", "random_states_0.pkl",
                                                             "random_states_1.pkl"]
