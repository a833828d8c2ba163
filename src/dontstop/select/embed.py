"""Sentence embedders for kNN-TAPT selection, behind one small interface.

    embedder = make_embedder("bow", dim=128, seed=0)
    embedder.fit(sample_of_pool + task_texts)
    vectors = embedder.transform(texts)      # float32 [n, d], rows L2-normalised
    embedder.save(folder); same = load_embedder(folder)

Two kinds stand in for the paper's VAMPIRE (a bag-of-words VAE, 81-dim vectors):
- `bow`      TF-IDF reduced by TruncatedSVD (latent semantic analysis): VAMPIRE's role, fast
             on CPU; fitted on a sample of the pool plus the task text and saved with joblib,
             so every later batch lands in the same space;
- `encoder`  mean-pooled last hidden states of any resolvable model (`bundled:minilm`, the
             base LM, a checkpoint); nothing to fit, the saved folder names the model.
Vectors are L2-normalised so inner product = cosine similarity (faiss IndexFlatIP).
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import joblib
import numpy as np

from ..data.scripts import bow_token_pattern, word_form
from ..fileio import UserError, atomic_output, atomic_write_json, read_json
from ..models import resolve_model

EMBEDDERS = ("bow", "encoder")
# How the bow embedder finds words: `sklearn`, scikit-learn's default (a run of 2+ letters, digits
# or underscores: right for scripts that put spaces between words; the mini and paper suites),
# or `scripts` (data/scripts.py: also Chinese, Japanese, Thai, Hindi...; a study's own tasks).
BOW_TOKENS = ("sklearn", "scripts")
SPEC_FILE = "embedder.json"


class Embedder(Protocol):
    kind: str
    dim: int

    def fit(self, texts: list[str]) -> "Embedder": ...
    def transform(self, texts: list[str]) -> np.ndarray: ...
    def save(self, folder: str | Path) -> None: ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """float32 rows of unit length; an all-zero row (no known word) stays zero."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class BowEmbedder:
    """TF-IDF over words, then TruncatedSVD down to `dim` dense dimensions. With `tokens`
    "scripts" words are found the same way in every script (data/scripts.py); with scikit-learn's
    default pattern ("sklearn") a Chinese or Japanese sentence is one "word" and a Thai or Hindi
    word falls apart at its vowel signs, so documents share no words and kNN selection is
    arbitrary. Both find the same tokens in English text."""

    kind = "bow"

    def __init__(self, dim: int = 128, seed: int = 0, max_features: int = 100_000, tokens: str = "sklearn"):
        if tokens not in BOW_TOKENS:
            raise UserError(f"bow embedder: tokens {tokens!r}; must be one of {', '.join(BOW_TOKENS)}")
        self.dim, self.seed, self.max_features, self.tokens = dim, seed, max_features, tokens
        self.pipeline = None

    def fit(self, texts: list[str]) -> "BowEmbedder":
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline

        # scripts: words in the vocabulary overlap's form too (NFC, full-width as ASCII, lowercased); an
        # NFD pool and an NFC task shared no accented word (one text in the two forms: cosine 0.27)
        pattern = {"token_pattern": bow_token_pattern(), "preprocessor": word_form} if self.tokens == "scripts" else {}
        tfidf = TfidfVectorizer(sublinear_tf=True, stop_words="english", **pattern,
                                max_features=self.max_features, dtype=np.float32)
        weights = tfidf.fit_transform(texts)   # once: the SVD is fitted on these very rows
        vocabulary_size = len(tfidf.vocabulary_)
        if vocabulary_size < 2:
            raise UserError(f"bow embedder: only {vocabulary_size} distinct word(s) in "
                            f"{len(texts)} fitting texts; give more text")
        # SVD gives at most min(texts, words - 1) components: tiny corpora get a smaller space.
        self.dim = min(self.dim, len(texts), vocabulary_size - 1)
        svd = TruncatedSVD(n_components=self.dim, random_state=self.seed).fit(weights)
        self.pipeline = make_pipeline(tfidf, svd)   # both fitted: transform() runs them in turn
        return self

    def transform(self, texts: list[str]) -> np.ndarray:
        if self.pipeline is None:
            raise UserError("bow embedder: transform() before fit()")
        return l2_normalise(self.pipeline.transform(texts))

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        with atomic_output(folder / "bow.joblib", "wb") as f:
            joblib.dump(self.pipeline, f)
        atomic_write_json(folder / SPEC_FILE, {"kind": self.kind, "dim": self.dim,
                                               "seed": self.seed,
                                               "max_features": self.max_features,
                                               "tokens": self.tokens})

    @classmethod
    def load(cls, folder: Path, spec: dict) -> "BowEmbedder":
        embedder = cls(spec["dim"], spec["seed"], spec["max_features"], spec.get("tokens", "sklearn"))
        embedder.pipeline = joblib.load(folder / "bow.joblib")
        return embedder


class EncoderEmbedder:
    """Mean of a transformer's last hidden states over the real (unpadded) tokens."""

    kind = "encoder"

    def __init__(self, model_name: str = "bundled:minilm", batch_size: int = 64,
                 max_length: int = 128):
        from transformers import AutoModel, AutoTokenizer

        self.model_name, self.batch_size, self.max_length = model_name, batch_size, max_length
        path = resolve_model(model_name)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.dim = self.model.config.hidden_size

    def fit(self, texts: list[str]) -> "EncoderEmbedder":
        return self  # a pretrained encoder has nothing to fit

    def transform(self, texts: list[str]) -> np.ndarray:
        import torch

        batches = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(texts[start:start + self.batch_size], padding=True,
                                       truncation=True, max_length=self.max_length,
                                       return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state        # [b, tokens, d]
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                batches.append((hidden * mask).sum(1) / mask.sum(1).clamp(min=1))
        if not batches:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(torch.cat(batches).numpy())

    def save(self, folder: str | Path) -> None:
        atomic_write_json(Path(folder) / SPEC_FILE, {
            "kind": self.kind, "dim": self.dim, "model_name": self.model_name,
            "batch_size": self.batch_size, "max_length": self.max_length})

    @classmethod
    def load(cls, folder: Path, spec: dict) -> "EncoderEmbedder":
        return cls(spec["model_name"], spec["batch_size"], spec["max_length"])


def make_embedder(kind: str, *, dim: int = 128, seed: int = 0,
                  encoder_model: str = "bundled:minilm", bow_tokens: str = "sklearn") -> Embedder:
    if kind == "bow":
        return BowEmbedder(dim=dim, seed=seed, tokens=bow_tokens)
    if kind == "encoder":
        return EncoderEmbedder(encoder_model)
    raise UserError(f"unknown embedder {kind!r}; known: {', '.join(EMBEDDERS)}")


def load_embedder(folder: str | Path) -> Embedder:
    folder = Path(folder)
    if not (folder / SPEC_FILE).is_file():
        raise UserError(f"{folder}: no saved embedder ({SPEC_FILE} missing)")
    spec = read_json(folder / SPEC_FILE)
    classes = {"bow": BowEmbedder, "encoder": EncoderEmbedder}
    if spec.get("kind") not in classes:
        raise UserError(f"{folder / SPEC_FILE}: field 'kind': {spec.get('kind')!r} is not "
                        f"one of {', '.join(EMBEDDERS)}")
    return classes[spec["kind"]].load(folder, spec)
