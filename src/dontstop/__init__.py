"""dontstop: rerun, inspect and extend "Don't Stop Pretraining" (Gururangan et al., ACL 2020)."""
import os

__version__ = "0.1.0"

# Fine-tuning asks torch for deterministic kernels; on a GPU, cuBLAS is deterministic only with a
# fixed workspace, which it reads once, when the process makes its first handle: set it before any.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

# One OpenBLAS thread in every dontstop process, set before numpy loads OpenBLAS: a kNN selection's
# vectors and neighbours follow how OpenBLAS started (on one thread, or on one a core and limited to
# one later: `dontstop select --k 500` gave ACL-Roles 44,149 or 44,148 candidates), so every
# launcher's process starts it so, whatever the shell says. Torch's threads are set apart
# (runner/jobs.py); select/selection.py limits OpenMP's (faiss's) too. A process that loaded numpy
# before dontstop keeps its own start (a Slurm job's sbatch script exports it: runner/slurm.py).
os.environ["OPENBLAS_NUM_THREADS"] = "1"
