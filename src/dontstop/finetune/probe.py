"""A representation probe: did pretraining change what the frozen encoder represents?

For one (checkpoint, task): mean-pool the encoder's last hidden states over each text's tokens
(no training of the encoder, no dropout), standardise the features on train, fit a logistic
regression (scikit-learn, lbfgs: deterministic) on train and score it on dev and test with the
task's metric. It takes seconds and has no seed noise, so a small change in the representation
shows where fine-tuning over a few seeds cannot (beyond the paper; report/probe.py tabulates it).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from transformers import AutoModel, AutoTokenizer

from ..data.formats import Example
from ..models import load_pretrained
from ..provenance import git_commit, software_versions
from ..records import ProbeRecord
from ..recipes import FinetuneRecipe
from ..tasks import Task
from .classifier import quiet_transformers
from .metrics import classification_scores
from .trainer import load_task_data

PROBE_C = 1.0          # inverse L2 strength of the logistic regression (sklearn's default)
PROBE_MAX_ITER = 2000  # lbfgs iterations: enough to converge on standardised features
BATCH = 64             # texts per forward pass


@torch.inference_mode()
def mean_pooled(encoder, tokenizer, examples: list[Example], max_length: int) -> np.ndarray:
    """(texts, hidden) features: the mean of the last hidden states over each text's tokens."""
    encoder.eval()
    features = []
    for start in range(0, len(examples), BATCH):
        batch = tokenizer([e.text for e in examples[start:start + BATCH]], truncation=True,
                          max_length=min(max_length, tokenizer.model_max_length), padding=True,
                          return_tensors="pt")
        states = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        features.append(((states * mask).sum(1) / mask.sum(1)).float().numpy())
    return np.concatenate(features)


def run_probe(recipe: FinetuneRecipe, out_dir: str | Path, task: Task, *, condition: str,
              lineage: str) -> ProbeRecord:
    """Probe `recipe.model` on `task` (the recipe's data and max_length); write probe.json."""
    started = time.time()
    torch.manual_seed(0)   # nothing here is random, but tokenizers and pooling stay reproducible
    data = load_task_data(recipe, task)
    with quiet_transformers():   # AutoModel on an MLM checkpoint reports the unused head
        encoder = load_pretrained(AutoModel, recipe.model)
        tokenizer = load_pretrained(AutoTokenizer, recipe.model)
    label_index = {label: i for i, label in enumerate(data.labels)}
    features = {split: mean_pooled(encoder, tokenizer, examples, recipe.max_length)
                for split, examples in data.splits.items()}
    labels = {split: [label_index[e.label] for e in examples] for split, examples in data.splits.items()}
    scaler = StandardScaler().fit(features["train"])
    classifier = LogisticRegression(C=PROBE_C, max_iter=PROBE_MAX_ITER)
    classifier.fit(scaler.transform(features["train"]), labels["train"])
    scores = {split: classification_scores(labels[split], classifier.predict(scaler.transform(features[split])))
              for split in ("dev", "test")}
    record = ProbeRecord(suite=recipe.suite, task=task.key, condition=condition, model=recipe.model,
                         lineage=lineage, metric=task.metric, dev=scores["dev"], test=scores["test"],
                         test_metric=scores["test"][task.metric], train_examples=len(labels["train"]),
                         features=int(features["train"].shape[1]), max_length=recipe.max_length,
                         wall_time_s=round(time.time() - started, 3), versions=software_versions(),
                         git_commit=git_commit())
    record.write(out_dir)
    return record
