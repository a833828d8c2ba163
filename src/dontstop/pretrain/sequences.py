"""The training text as sequences: the corpus tokenized once into a token file on disk, read
back memory-mapped as packed full-length sequences (DAPT) or one document a sequence (the
paper's TAPT), as a recipe's `pack_documents` says.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from ..fileio import UserError, read_json
from .relocation import relocation, same_place, without_place

TOKENIZE_CHUNK = 1000               # documents per call of the (Rust, batched) tokenizer
GPU_PAD_MULTIPLE = 32               # one-document sequences on a GPU: at most 512 / 32 = 16 batch widths


def training_sequences(tokenizer, path: Path, recipe, on_gpu: bool) -> "PackedSequences":
    """The sequences a PretrainRecipe trains on, from the token file at `path`: packed, or one
    document each, padded per batch to a multiple of GPU_PAD_MULTIPLE on a GPU (few shapes to
    compile; padding is masked, so the loss is the same)."""
    if recipe.pack_documents:
        return PackedSequences(tokenizer, path, recipe.max_length)
    return DocumentSequences(tokenizer, path, recipe.max_length, GPU_PAD_MULTIPLE if on_gpu else 1)


def write_token_stream(tokenizer, documents: Iterable[str], path: Path, total: int | None = None,
                       show_progress: bool = True) -> dict[str, int]:
    """Tokenize `documents` (any iterable, streamed) into one flat token file on disk, each
    document followed by the separator token; returns {"tokens", "documents", "bytes"}.

    Memory stays at one chunk of TOKENIZE_CHUNK documents whatever the corpus size; the file
    (2 bytes a token for vocabularies under 65,536, else 4) is written under a temporary name
    and renamed, so a killed run never leaves a partial stream that looks whole.
    """
    dtype = token_dtype(tokenizer)
    counts = {"tokens": 0, "documents": 0, "bytes": 0}
    temporary = path.with_name(f".tmp-{path.name}")
    bar = tqdm(total=total, desc="tokenize", unit="docs", disable=not show_progress)
    with open(temporary, "wb") as out:
        for chunk in _chunks(documents, TOKENIZE_CHUNK):
            # verbose=False: a document longer than the model's positions goes on in the next
            # sequence(s); the tokenizer's "will result in indexing errors" warning is not ours
            encoded = tokenizer(chunk, add_special_tokens=False, verbose=False)["input_ids"]
            ids = np.concatenate([np.asarray(doc + [tokenizer.sep_token_id], dtype=dtype) for doc in encoded])
            out.write(ids.tobytes())
            counts["tokens"] += len(ids)
            counts["documents"] += len(chunk)
            counts["bytes"] += sum(len(text.encode("utf-8")) for text in chunk)
            bar.update(len(chunk))
    bar.close()
    if not counts["tokens"]:
        temporary.unlink()
        raise UserError(f"{path}: no training documents to tokenize")
    temporary.replace(path)
    return counts


def token_description_file(path: Path) -> Path:
    """Where the description of the token file at `path` is kept: {"description", "counts"}."""
    return path.with_name(f"{path.name}.json")


def saved_token_counts(path: Path, tokenizer, description: dict, folder: Path) -> dict[str, int] | None:
    """The counts of the token file at `path` if its description file says it was written for
    `description` (its paths where they lie now if they moved with the run's `folder`:
    pretrain/relocation.py) and it holds every token counted; None: it is tokenized again. A token
    file cut short was trained on as it was (other batches, other weights than the run it resumes);
    a description cut short was a line without advice, one edited (a list, a count gone) a traceback."""
    try:
        meta = read_json(token_description_file(path)) if token_description_file(path).is_file() else None
    except UserError:   # not JSON, not UTF-8: written again, with the token file
        return None
    saved = meta.get("description") if isinstance(meta, dict) else None
    recipe = saved.get("recipe") if isinstance(saved, dict) else None
    where_now = relocation(meta, folder, recipe.get("output_dir")) if isinstance(recipe, dict) else None
    written_for = where_now is not None and same_place(_what_it_holds(saved), _what_it_holds(description), where_now)
    counts = meta.get("counts") if written_for else None
    if not (isinstance(counts, dict) and all(type(counts.get(key)) is int and counts[key] >= 0
                                             for key in ("tokens", "documents", "bytes"))):
        return None
    whole = path.is_file() and path.stat().st_size == counts["tokens"] * np.dtype(token_dtype(tokenizer)).itemsize
    return counts if whole else None


def _what_it_holds(description: Any) -> Any:
    """A token file's description less where its folder is (relocation.without_place)."""
    if isinstance(description, dict) and isinstance(description.get("recipe"), dict):
        return {**description, "recipe": without_place(description["recipe"])}
    return description


def token_dtype(tokenizer) -> type:
    return np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max + 1 else np.int32


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class PackedSequences:
    """Sequences of `max_length` tokens cut from a token stream file (memory-mapped, so a
    corpus of billions of tokens costs disk, not RAM).

    Like RoBERTa's FULL-SENTENCES input: consecutive documents are joined by the separator token
    and cut into equal pieces, each wrapped as [CLS] piece [SEP], so no compute goes to padding
    (only the last sequence is short) and a long document simply continues in the next one.
    """

    def __init__(self, tokenizer, path: Path, max_length: int):
        self.stream = np.memmap(path, dtype=token_dtype(tokenizer), mode="r")
        self.body = max_length - 2                          # room for [CLS] and [SEP]
        self.special = (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id)
        self.pad_multiple = 1                               # batches are as wide as their longest sequence

    def __len__(self) -> int:
        return -(-len(self.stream) // self.body)

    def spans(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first token in the stream, body tokens) of the sequences at `indices`."""
        starts = indices * self.body
        return starts, np.minimum(self.body, len(self.stream) - starts)

    def sequence(self, index: int) -> list[int]:
        cls, sep, _ = self.special
        (start,), (length,) = self.spans(np.array([index]))
        return [cls, *self.stream[start:start + length].tolist(), sep]

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask), both int64 [len(indices), longest], padded on the right
        (the width rounded up to a multiple of `pad_multiple`)."""
        cls, sep, pad = self.special
        starts, bodies_lengths = self.spans(np.asarray(indices, dtype=np.int64))
        positions = starts[:, None] + np.arange(self.body)  # into the stream
        inside = np.arange(self.body) < bodies_lengths[:, None]
        bodies = np.where(inside, self.stream[np.minimum(positions, len(self.stream) - 1)], pad)
        lengths = bodies_lengths + 2
        input_ids = np.concatenate([np.full((len(bodies), 1), cls), bodies, np.full((len(bodies), 1), pad)], 1)
        input_ids[np.arange(len(bodies)), lengths - 1] = sep
        width = min(-(-int(lengths.max()) // self.pad_multiple) * self.pad_multiple, input_ids.shape[1])
        attention_mask = (np.arange(width) < lengths[:, None]).astype(np.int64)
        return torch.from_numpy(input_ids[:, :width].astype(np.int64)), torch.from_numpy(attention_mask)


class DocumentSequences(PackedSequences):
    """One document a sequence, never two: [CLS] document [SEP], a document longer than
    max_length going on in the next sequence(s), so no text is lost. This is how the paper
    counted TAPT's epochs (Table 9: 500 RCT sentences, 100 epochs at batch 256 = 0.2K steps;
    packed, those sentences fill ~40 sequences and one step an epoch). Batches pad to their
    longest sequence, rounded up to `pad_multiple` tokens (a GPU: few shapes to compile).

    The document boundaries are the separators write_token_stream puts after each document,
    found chunk by chunk (memory: 16 bytes a sequence, never the whole stream).
    """

    SCAN_CHUNK = 1 << 24               # tokens per pass of the separator scan

    def __init__(self, tokenizer, path: Path, max_length: int, pad_multiple: int = 1):
        super().__init__(tokenizer, path, max_length)
        self.pad_multiple = pad_multiple
        separator = self.special[1]
        ends = np.concatenate([np.flatnonzero(self.stream[at:at + self.SCAN_CHUNK] == separator) + at
                               for at in range(0, len(self.stream), self.SCAN_CHUNK)])
        firsts = np.concatenate([[0], ends[:-1] + 1])
        pieces = -(-(ends - firsts) // self.body)           # 0 for an empty document
        document = np.repeat(np.arange(len(ends)), pieces)
        piece = np.arange(len(document)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        self.starts = firsts[document] + piece * self.body
        self.lengths = np.minimum(self.body, ends[document] - self.starts)

    def __len__(self) -> int:
        return len(self.starts)

    def spans(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.starts[indices], self.lengths[indices]
