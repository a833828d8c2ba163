"""The paper's classifier: a pretrained encoder, its head, what it reads and what it predicts.

Head (Table 14, the repo's config):
    final-layer first-token vector (<s> for RoBERTa, [CLS] for BERT)
      -> dropout 0.1 -> dense hidden->hidden -> tanh -> linear to the labels

The encoder is loaded with `AutoModel`, so any masked-LM checkpoint works (its MLM head
is simply not loaded); cross-entropy on the logits is the training loss.

What a fine-tuning seed fixes, whatever the checkpoint: the head's initial weights come from a
generator seeded by the seed alone (not from torch's global stream, which loading a checkpoint
may or may not have drawn from: transformers initialises whatever the checkpoint lacks, such as
the pooler that `AutoModel` adds to an MLM checkpoint; we drop the pooler, which the head never
reads). So two conditions fine-tuned with the same seed start from the same head, take the same
batches and draw the same dropout masks (finetune/trainer.py): their runs are matched pairs.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from ..data.formats import Example
from ..models import load_pretrained


class SequenceClassifier(nn.Module):
    def __init__(self, encoder: PreTrainedModel, num_labels: int, dropout: float, seed: int = 0):
        super().__init__()
        hidden = encoder.config.hidden_size
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        with torch.random.fork_rng(devices=[]):   # the head's weights: a function of `seed` only
            torch.manual_seed(seed)
            self.dense = nn.Linear(hidden, hidden)
            self.out_proj = nn.Linear(hidden, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits of shape (batch, num_labels)."""
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        first_token = states[:, 0]
        return self.out_proj(torch.tanh(self.dense(self.dropout(first_token))))


def load_classifier(model_name: str, num_labels: int, dropout: float, seed: int = 0
                    ) -> tuple[SequenceClassifier, PreTrainedTokenizerBase]:
    """Encoder and tokenizer of a checkpoint (bundled:, directory or hub id) plus a fresh head
    whose initial weights depend on `seed` only."""
    with quiet_transformers():
        encoder = load_pretrained(AutoModel, model_name)
        tokenizer = load_pretrained(AutoTokenizer, model_name)
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None   # BERT/RoBERTa skip a None pooler; the head reads the first token itself
    tokenizer.padding_side = "right"   # the head reads position 0: it must be the first token
    return SequenceClassifier(encoder, num_labels, dropout, seed), tokenizer


def encode(tokenizer: PreTrainedTokenizerBase, examples: list[Example],
           label_index: dict[str, int], max_length: int) -> list[dict[str, Any]]:
    """Token ids and label id per example, unpadded: batches are padded to their longest member.

    Texts are cut at `max_length` or the model's own limit (tokenizer.model_max_length),
    whichever is shorter, so a small model never sees positions it has no embedding for.
    """
    encoded = tokenizer([e.text for e in examples], truncation=True,
                        max_length=min(max_length, tokenizer.model_max_length),
                        return_token_type_ids=False, return_attention_mask=False)
    return [{"input_ids": ids, "labels": label_index[e.label]}
            for ids, e in zip(encoded["input_ids"], examples)]


@torch.inference_mode()
def predict(model: SequenceClassifier, features: list[dict[str, Any]], collator,
            batch_size: int, device: str) -> tuple[list[int], list[int]]:
    """(gold, predicted) label ids, shortest examples first so each batch pads little."""
    model.eval()
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    gold, predicted = [], []
    for start in range(0, len(order), batch_size):
        batch = collator([features[i] for i in order[start:start + batch_size]])
        logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        gold += batch["labels"].tolist()
        predicted += logits.argmax(dim=-1).tolist()
    return gold, predicted


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide the load report (unused MLM head, new pooler) that every one of hundreds of runs
    would print; restore the caller's settings afterwards."""
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
