"""dontstop select: kNN-TAPT and RAND-TAPT corpora from a domain pool (paper section 5).

    dontstop select --task-text data/mini/tasks/aclsum-roles/train.jsonl \\
        --pool data/mini/pools/cs.jsonl --out cache/mini/selections/50nn-aclsum-roles \\
        --method knn --k 50 --exclude-dev-test-of data/mini/tasks/aclsum-roles
"""
from __future__ import annotations

import argparse
import sys
import unicodedata
from pathlib import Path

from ..data.formats import iter_corpus, text_key
from ..data.leakage import exclude_of_texts, guarded_files, held_out_texts
from ..data.scripts import first_unspaced_letter
from ..data.sentences import DEFAULT_POOL_UNIT, DEFAULT_QUERY_UNIT, POOL_UNITS, QUERY_UNITS
from ..fileio import UserError, check_writable_dir, raise_problems
from ..flags import add_flag
from ..models import check_available
from ..records import SELECT_RECORD_FILE, SELECTED_CORPUS_FILE
from ..value_rules import AT_LEAST_1, SEED, range_violations
from ..suite_checks import SELECTION_RANGES
from . import index as knn_index
from .embed import BOW_TOKENS, EMBEDDERS
from .selection import METHODS, select_corpus


# kNN's settings: flags default to None, so that one given where it does nothing is refused (_unused_flags)
KNN_DEFAULTS = {"embedder": "bow", "encoder_model": "bundled:minilm", "dim": 128, "bow_tokens": "sklearn",
                "index": "flat", "nprobe": knn_index.DEFAULT_NPROBE}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("select", help="kNN-TAPT / RAND-TAPT corpus from a pool")
    parser.add_argument("--task-text", required=True, help="task train.jsonl or .txt (its sentences query)")
    parser.add_argument("--pool", required=True, help="pool .jsonl {text, source} or .txt")
    parser.add_argument("--out", required=True, help="new folder for corpus.jsonl + record")
    parser.add_argument("--method", choices=METHODS, default="knn")
    parser.add_argument("--k", type=int, default=50, help="candidates per task sentence")
    parser.add_argument("--unit", choices=POOL_UNITS, default=DEFAULT_POOL_UNIT,
                        help="a candidate: a sentence of a pool line (the paper's) or the whole line")
    parser.add_argument("--query-unit", choices=QUERY_UNITS, default=DEFAULT_QUERY_UNIT,
                        help="a query: a sentence of a task text (the paper's) or the whole text")
    parser.add_argument("--embedder", choices=EMBEDDERS, help="kNN: how texts become vectors (default bow)")
    parser.add_argument("--encoder-model", help="--embedder encoder: its model (default bundled:minilm)")
    parser.add_argument("--dim", type=int, help="--embedder bow: vector size (default 128; VAMPIRE: 81)")
    parser.add_argument("--bow-tokens", choices=BOW_TOKENS,
                        help="--embedder bow: its words: sklearn (space-separated scripts) or scripts (also "
                             "Chinese, Japanese, Thai, Hindi...; the default where the task text holds such letters)")
    parser.add_argument("--index", choices=knn_index.INDEX_TYPES, help="kNN: the faiss index (default flat)")
    parser.add_argument("--nprobe", type=int,
                        help=f"--index ivf: lists scanned per query (default {knn_index.DEFAULT_NPROBE})")
    parser.add_argument("--index-dir", help="folder to save the index in, or reuse it from")
    add_flag(parser, "--exclude-dev-test-of", old=["--exclude-from"], nargs="+", action="extend", default=[],
             metavar="TASK_DIR",
             help="task folders whose dev/test text must never be selected (their leakage keys)")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=_run)


def _unused_flags(args: argparse.Namespace) -> list[str]:
    """One line per flag given where it does nothing: it was ignored without a word (an encoder
    model without --embedder encoder got a bag-of-words selection, exit 0)."""
    knn, encoder, ivf = args.method == "knn", args.embedder == "encoder", args.index == "ivf"
    used_by = {"embedder": (knn, "--method knn"), "index": (knn, "--method knn"), "index_dir": (knn, "--method knn"),
               "encoder_model": (knn and encoder, "--method knn --embedder encoder"),
               "dim": (knn and not encoder, "--method knn with the bow embedder"),
               "bow_tokens": (knn and not encoder, "--method knn with the bow embedder"),
               "nprobe": (knn and ivf, "--method knn --index ivf")}
    return [f"--{key.replace('_', '-')} {getattr(args, key)}: only {what} uses it; leave it out"
            for key, (used, what) in used_by.items() if getattr(args, key) is not None and not used]


def _run(args: argparse.Namespace) -> int:
    raise_problems(_unused_flags(args))
    bow_tokens_unset = args.bow_tokens is None
    for key, value in KNN_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    numbers = {"k": args.k, "dim": args.dim, "nprobe": args.nprobe, "seed": args.seed}
    raise_problems([v.as_flag(f"--{v.field}") for v in range_violations(
        {**SELECTION_RANGES, "k": AT_LEAST_1, "seed": SEED}, numbers)])
    for folder in [args.out, *([args.index_dir] if args.index_dir else [])]:   # written after the embedding
        check_writable_dir(folder)
    corpus = Path(args.out) / SELECTED_CORPUS_FILE   # the pool or task text there: each has its own line below
    if corpus.is_file() and not (Path(args.out) / SELECT_RECORD_FILE).is_file() \
            and corpus.resolve() not in (Path(args.pool).resolve(), Path(args.task_text).resolve()):
        raise UserError(f"--out {args.out}: holds a {SELECTED_CORPUS_FILE} that no selection made (no "
                        f"{SELECT_RECORD_FILE}), which this one would replace; choose another output folder")
    if args.embedder == "encoder":   # before the pool scan, after which a model missing offline failed
        if args.encoder_model.startswith((".", "/", "~")) and not Path(args.encoder_model).expanduser().is_dir():
            raise UserError(f"--encoder-model {args.encoder_model}: no such folder")
        check_available(args.encoder_model)
    if corpus.resolve() == Path(args.task_text).resolve():
        raise UserError(f"{args.task_text}: the task text is the {SELECTED_CORPUS_FILE} this selection "
                        f"would write in {args.out}; choose another output folder")
    task_texts = list(iter_corpus([args.task_text]))
    if not task_texts:
        raise UserError(f"{args.task_text}: no task text to select for (no documents)")
    if bow_tokens_unset:
        args.bow_tokens = _default_bow_tokens(args.task_text, task_texts)
    held_out = held_out_texts(guarded_files(args.exclude_dev_test_of))   # each dev/test file read once
    _check_no_heldout_texts(args.task_text, task_texts, {text_key(text) for text in held_out})
    exclude = exclude_of_texts(held_out)   # their texts and sentences
    select_corpus(task_texts, args.pool, args.out, method=args.method, k=args.k,
                  embedder=args.embedder, encoder_model=args.encoder_model, dim=args.dim,
                  index=args.index, nprobe=args.nprobe, exclude=exclude,
                  seed=args.seed, index_dir=args.index_dir, bow_tokens=args.bow_tokens,
                  unit=args.unit, query_unit=args.query_unit)
    return 0


def _default_bow_tokens(task_text: str, task_texts: list[str]) -> str:
    """sklearn's words, unless the task text holds a letter they cannot read: in Chinese, Japanese
    or Thai they made each sentence one word, and a Japanese review's neighbours were as often news
    as reviews (116 of 239), without a word said; there the words of every script, with a note."""
    letter = first_unspaced_letter(task_texts)
    if letter is None:
        return KNN_DEFAULTS["bow_tokens"]
    print(f"note: {task_text}: its text holds {letter!r} ({unicodedata.name(letter[-1], 'a combining mark')}), "
          f"of a script scikit-learn's words cannot read: the bow embedder finds the words of every "
          f"script (--bow-tokens scripts); give --bow-tokens sklearn to keep scikit-learn's", file=sys.stderr)
    return "scripts"


def _check_no_heldout_texts(task_text: str, task_texts: list[str], exclude: set[bytes]) -> None:
    """The task text opens the selected corpus: dev/test text there (a dev split given as
    --task-text) would be pretrained on, the very leakage --exclude-dev-test-of guards against."""
    held_out = [text for text in task_texts if text_key(text) in exclude]
    if held_out:
        raise UserError(f"{task_text}: {len(held_out)} of its {len(task_texts)} texts are dev/test text of "
                        f"--exclude-dev-test-of (the first: {held_out[0][:60]!r}); give the task's train split")
