"""dontstop: rerun, inspect and extend "Don't Stop Pretraining" (Gururangan et al., ACL 2020)."""
import os

__version__ = "0.1.0"

# Fine-tuning asks torch for deterministic kernels; on a GPU, cuBLAS is deterministic only with a
# fixed workspace, which it reads once, when the process makes its first handle: set it before any.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
