"""The input pipeline of pretraining: each micro-batch packed, masked and handed to the device
ahead of time, so that the accelerator never waits for the CPU.

What a micro-batch holds is a pure function of (seed, epoch, step, its place in the global batch)
(mlm.BatchSchedule), so it can be built before it is needed without changing a single number:
on a GPU one background thread builds the next micro-batches in pinned memory and the training
loop copies each with `non_blocking=True` (the copy overlaps the previous micro-batch's
compute; a pageable copy would wait for it). On a CPU there is nothing to overlap with: the
micro-batches are built in the caller's thread when asked (`depth` 0), as before.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Iterator

import torch

from .mlm import derived_seed, mask_tokens

PREFETCH_MICRO_BATCHES = 8   # built ahead on a GPU: 8 x 32 x 512 ids x 3 tensors ~ 3 MB pinned


@dataclass
class MicroBatch:
    input_ids: torch.Tensor        # int64 [sequences, length], masked (80/10/10)
    attention_mask: torch.Tensor   # int64 [sequences, length]
    labels: torch.Tensor           # int64 [sequences, length], -100 where no loss
    dropout_seed: int              # reseeds torch's global stream before this micro-batch's forward
    tokens: int                    # real (unpadded) tokens

    def to(self, device: torch.device | str) -> "MicroBatch":
        """On `device`; from pinned memory the copy is asynchronous (stream-ordered, so safe)."""
        move = {name: getattr(self, name).to(device, non_blocking=True)
                for name in ("input_ids", "attention_mask", "labels")}
        return MicroBatch(**move, dropout_seed=self.dropout_seed, tokens=self.tokens)


def build_micro_batch(sequences, tokenizer, indices: torch.Tensor, generator: torch.Generator,
                      mask_prob: float, pin: bool = False) -> MicroBatch:
    """The packed sequences at `indices`, masked with draws from `generator` only."""
    input_ids, attention_mask = sequences.batch(indices)
    input_ids, labels = mask_tokens(tokenizer, input_ids, generator, mask_prob)
    # Dropout draws from torch's global stream: reseeded per global micro-batch, so that N
    # processes draw what 1 process with accumulation draws (and a resumed run too).
    batch = MicroBatch(input_ids, attention_mask, labels, derived_seed(generator.initial_seed(), 1),
                       int(attention_mask.sum()))
    if pin:
        batch.input_ids, batch.attention_mask, batch.labels = (
            t.pin_memory() for t in (batch.input_ids, batch.attention_mask, batch.labels))
    return batch


class MicroBatchStream:
    """The micro-batches of optimizer steps `start` ... `end - 1` of `schedule`, one list per step;
    with `depth` > 0 built that many micro-batches ahead by a thread that ends after step `end - 1`."""

    def __init__(self, schedule, sequences, tokenizer, mask_prob: float, start: int, end: int,
                 depth: int = 0, pin: bool = False):
        self.schedule, self.sequences, self.tokenizer = schedule, sequences, tokenizer
        self.mask_prob, self.step, self.end, self.pin = mask_prob, start, end, pin
        self.queue: queue.Queue | None = None
        self.failure: BaseException | None = None
        if depth > 0:
            self.queue = queue.Queue(maxsize=depth)
            threading.Thread(target=self._produce, daemon=True, name="micro-batches").start()

    def _build(self, step: int) -> list[MicroBatch]:
        return [build_micro_batch(self.sequences, self.tokenizer, indices, generator, self.mask_prob, self.pin)
                for indices, generator in self.schedule.micro_batches(step)]

    def _produce(self) -> None:
        try:
            for step in range(self.step, self.end):
                for batch in self._build(step):
                    self.queue.put(batch)
        except BaseException as e:   # surfaced in the training loop, never lost in the thread
            self.failure = e
            self.queue.put(None)

    def next_step(self) -> list[MicroBatch]:
        """The micro-batches of the next optimizer step, in order."""
        if self.step >= self.end:
            raise IndexError(f"step {self.step}: past the last step {self.end - 1}")
        self.step += 1
        if self.queue is None:
            return self._build(self.step - 1)
        batches = [self.queue.get() for _ in range(self.schedule.micro_batches_per_step)]
        if any(batch is None for batch in batches):
            raise self.failure
        return batches

    def __iter__(self) -> Iterator[list[MicroBatch]]:
        while self.step < self.end:
            yield self.next_step()
