"""Whether a model folder holds the weights transformers will load from it, all of them, found
without reading a byte of weights: the runner's check before any work (runner/job_checks.py).

A folder of config.json alone, a sharded model missing a shard (its index, model.safetensors.index.json
or pytorch_model.bin.index.json, names each shard in its `weight_map`), or a hub cache's snapshot
whose file is a link to a blob that is gone each passed every check and the dry run, then failed
the first job to load it, once the runner had started.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .models import WEIGHT_SUFFIXES

# The files transformers (modeling_utils._get_resolved_checkpoint_files) loads a folder's weights
# from: the first of these that is a file (a link to a missing file is none), in this order.
LOAD_ORDER = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
              "pytorch_model.bin.index.json")
TF_OR_FLAX = (".h5", ".msgpack")


def weights_problem(folder: Path) -> str | None:
    """Why `folder` holds no whole weights, as the tail of a line naming it; None where it does."""
    loaded = next((folder / name for name in LOAD_ORDER if (folder / name).is_file()), None)
    if loaded is not None:
        return _missing_shard(loaded) if loaded.name.endswith(".index.json") else None
    for name in LOAD_ORDER:   # a hub snapshot's link whose blob is gone (a cache cleaned by hand, a copy cut short)
        if (folder / name).is_symlink():
            return _broken_link(folder / name)
    files = sorted(folder.iterdir())
    if any(file.suffix in WEIGHT_SUFFIXES and file.is_file() for file in files):   # weights of a name of their own
        return None
    broken = next((file for file in files if file.suffix in WEIGHT_SUFFIXES and file.is_symlink()), None)
    if broken is not None:
        return _broken_link(broken)
    # TensorFlow's or Flax's weights alone: transformers 5 loads neither (it was "a copy cut short?")
    other = next((file.name for file in files if file.suffix in TF_OR_FLAX), None)
    why = f"{other} is TensorFlow or Flax weights, which transformers 5 does not load" if other else \
        "a copy cut short?"
    return f"a model folder without weights (no *.safetensors or *.bin beside its config.json: {why})"


def _missing_shard(index: Path) -> str | None:
    """The first shard a sharded model's index names that is not a file (read: the index alone)."""
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        shards = sorted(set(weight_map.values()))
        if not shards or not all(isinstance(shard, str) for shard in shards):
            raise ValueError("no shard file named")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
        reason = f"key {e}" if isinstance(e, KeyError) else str(e).splitlines()[0][:100] if str(e) else type(e).__name__
        return f"{index.name} is not a weights index (its weight_map of tensor -> shard file: {reason})"
    for shard in shards:
        path = index.parent / shard
        if not path.is_file():
            how = "a link to a missing file" if path.is_symlink() else "missing"
            return (f"a sharded model whose shard {shard} is {how} ({index.name} names {len(shards)} shard "
                    "files; a copy cut short?)")
    return None


def _broken_link(path: Path) -> str:
    return (f"{path.name} is a link to a missing file ({os.readlink(path)}: a hub cache's snapshot whose blob "
            "is gone?)")
