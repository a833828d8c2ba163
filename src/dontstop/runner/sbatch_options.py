"""`--sbatch KEY=VALUE`: any other sbatch option, written `#SBATCH --KEY=VALUE` into every job's
script (runner/slurm.py). The options the launcher sets itself, and sbatch's one-letter names,
are refused here, before any work: sbatch refused them only when the study was submitted."""
from __future__ import annotations

from ..fileio import UserError

# sbatch options the launcher sets per job, and how (a flag to give instead of --sbatch KEY=...): one
# given twice was a second #SBATCH line that overrode the launcher's (a dependency=, the order of
# the stages; a job-name=, the name squeue shows; an output=, where status looks for the log).
OWN_SBATCH = {"time": "give --time, --pretrain-time or --finetune-time", "partition": "give --partition",
              "account": "give --account", "nodes": "give --nodes",
              "gpus-per-node": "give --pretrain-gpus or --finetune-gpus",
              "cpus-per-task": "give --pretrain-cpus or --finetune-cpus",
              "ntasks-per-node": "one task a node",
              "dependency": "each job waits on its parent stages' jobs",
              "job-name": "dontstop-<job>", "output": "logs go to slurm-logs/<job>/",
              "error": "logs go to slurm-logs/<job>/", "signal": "submitit's USR2 before the time limit",
              "requeue": "submitit requeues a timed-out job", "array": "one job per stage and run",
              "ntasks": "one task a node", "gpus": "give --pretrain-gpus or --finetune-gpus",
              "open-mode": "each attempt of a requeued job appends to its log"}
# sbatch's one-letter options: the launcher writes `--<key>`, so `--sbatch t=10` was `#SBATCH --t=10`,
# an option sbatch calls ambiguous only when the study is submitted. sbatch has no long option of one
# letter, so every one-letter key is refused; these are named by their long names (the bare flags
# `--sbatch H`, `--sbatch s` too: they were written #SBATCH --H and #SBATCH --s).
SHORT_SBATCH = {"t": "time", "p": "partition", "A": "account", "N": "nodes", "c": "cpus-per-task", "n": "ntasks",
                "G": "gpus", "d": "dependency", "J": "job-name", "o": "output", "e": "error", "a": "array",
                "q": "qos", "C": "constraint", "w": "nodelist", "x": "exclude", "D": "chdir", "m": "distribution",
                "b": "begin", "B": "extra-node-info", "F": "nodefile", "H": "hold", "i": "input", "k": "no-kill",
                "L": "licenses", "M": "clusters", "O": "overcommit", "Q": "quiet", "s": "oversubscribe",
                "S": "core-spec", "W": "wait"}


def sbatch_options(values: list[str]) -> dict[str, str | bool]:
    """--sbatch qos=high --sbatch exclusive -> {"qos": "high", "exclusive": True} (#SBATCH --exclusive)."""
    options: dict[str, str | bool] = {}
    given: dict[str, str] = {}   # option name -> the --sbatch value that gave it
    for value in values:
        key, sep, setting = value.partition("=")
        key = key.strip().lstrip("-")
        if not key or (sep and not setting):
            raise UserError(f"--sbatch {value}: expected KEY=VALUE (e.g. qos=high) or a bare flag (exclusive)")
        if len(key) == 1:   # `#SBATCH --t=10`: sbatch refused it only when the study was submitted
            raise UserError(_short_option(value, key, sep))
        name = key.replace("_", "-")
        if name in given:   # the last one was kept, without a word
            raise UserError(f"--sbatch {value}: option {name!r} given twice (first as --sbatch {given[name]})")
        given[name] = value
        options[key] = setting if sep else True
    return options


def _short_option(value: str, key: str, sep: str) -> str:
    """What to give for sbatch's one-letter option `key`: its long name, or the launcher's own flag
    where the launcher sets it (`t=10` was told `time=`, which was refused next, as the launcher's)."""
    long = SHORT_SBATCH.get(key)
    if long in OWN_SBATCH:
        return f"--sbatch {value}: sbatch's -{key}, --{long}, which the launcher sets for each job ({OWN_SBATCH[long]})"
    named = f"sbatch's long name, {long}{sep and '='}" if long else "sbatch's long option name"
    return f"--sbatch {value}: give {named} (the launcher writes #SBATCH --<KEY>, and sbatch has no --{key})"
