"""dontstop analyze vocab | mlm-loss: how far apart the domains are (Figure 2, Tables 1 and 12).

    dontstop analyze vocab --suite mini
    dontstop analyze vocab pt.txt news.txt --names PT News --top 10000 --sample-docs 50000
    dontstop analyze mlm-loss --suite mini
    dontstop analyze mlm-loss --models base=roberta-base dapt-cs=allenai/cs_roberta_base \\
        --corpora cs=cs.txt news=news.txt --documents 500 --max-length 128

With no paths, both compare the suite's domain corpora and general.txt (Wikipedia, standing
in for RoBERTa's pretraining data, the paper's "PT"); mlm-loss evaluates the suite's base
model and the suite's own DAPT checkpoints (those of its recipes and corpora, by stage key) that
the runner built under <cache>/<suite>/checkpoints/.
Outputs go to paper_tables/<suite>/analysis/ (a study file's: tables/<name>/analysis/ beside it)
and are never replaced without --overwrite.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import parse_pairs
from ..fileio import UserError, check_writable_dir
from ..flags import add_pair_flags, add_suite_flags, seed_flag, suite_overrides
from ..recipes import PretrainRecipe, check_flags
from ..study_file import tables_dir
from ..suites import Suite, analysis_dir, load_suite
from . import vocab
from .domains import check_two_corpora, suite_corpora, suite_models, suite_samples
from .mlm_loss import MLM_OUTPUT_FILES, measure_mlm_loss

def register(subparsers: argparse._SubParsersAction) -> None:
    analyze = subparsers.add_parser("analyze", help="vocabulary overlap and MLM loss across domains")
    commands = analyze.add_subparsers(dest="analyze_command", required=True)

    overlap = commands.add_parser("vocab", help="top-K unigram overlap between corpora (Figure 2)")
    overlap.add_argument("corpora", nargs="*", help="corpus files (default: the suite's)")
    overlap.add_argument("--names", nargs="+", action="extend", help="one name per corpus (default: file names)")
    overlap.add_argument("--top", type=positive_int, default=10000, help="words per vocabulary")
    overlap.add_argument("--sample-docs", type=positive_int, default=10000,
                         help="documents sampled from each corpus")
    _common_arguments(overlap)
    overlap.set_defaults(func=_vocab)

    loss = commands.add_parser("mlm-loss", help="held-out MLM loss of each model on each corpus "
                               "(Tables 1 and 12)")
    loss.add_argument("--models", nargs="+", action="extend", metavar="NAME=PATH", help="the first is the base "
                      "model (default: base=<suite base model> and the suite's DAPT checkpoints)")
    loss.add_argument("--corpora", nargs="+", action="extend", metavar="NAME=PATH", help="default: the suite's")
    loss.add_argument("--documents", type=positive_int, default=500, help="documents per corpus")
    loss.add_argument("--max-length", type=positive_int, default=128, help="tokens per document")
    _common_arguments(loss)
    loss.set_defaults(func=_mlm_loss)


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    add_suite_flags(parser, folders=("--data-dir", "--cache-dir"))   # --suite, --set and the data and cache roots
    parser.add_argument("--seed", type=seed_flag, default=0, help="document sample (and mask) seed")
    parser.add_argument("--out", help="this analysis's folder (default: paper_tables/<suite>/analysis)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_pair_flags(parser, ("--domain-corpus",))


def _suite(args: argparse.Namespace) -> Suite:
    return load_suite(args.suite, overrides=suite_overrides(args))


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


def _vocab(args: argparse.Namespace) -> int:
    if args.corpora:
        _check_no_suite_inputs(args, "analyze vocab reads the corpus files given")
        if not args.names:   # named by their file names, the rows of the matrix: "--names: need 2 ..." unasked
            _check_stems(args.corpora)
        names = args.names or [Path(path).stem for path in args.corpora]
        if len(names) != len(args.corpora) or len(set(names)) != len(names) or not all(n.strip() for n in names):
            raise UserError(f"--names: need {len(args.corpora)} distinct name(s), one per corpus file, none "
                            "blank")   # a blank one was a nameless row and column of the matrix
        corpora = dict(zip(names, args.corpora))
        if len(args.corpora) < 2:   # a 1 x 1 matrix of 100%, exit 0: no suite corpus is added to a file given
            raise UserError(f"{args.corpora[0]}: one corpus; the overlap compares two or more (give the general "
                            "text too, as the suite's general.txt)")
    elif args.names:
        raise UserError("--names needs corpus paths, one name per path")
    else:
        suite = _suite(args)
        corpora = suite_corpora(suite)
        check_two_corpora(suite, corpora)   # a study of one corpus: a 1 x 1 matrix of 100%, exit 0
    out_dir = _writable_out_dir(args, vocab.OUTPUT_FILES)
    vocab.check_corpora_open(corpora)
    vocab.run(corpora, args.top, args.sample_docs, args.seed, out_dir)
    return 0


def _check_stems(paths: list[str]) -> None:
    """Corpus files given without --names name their rows by file name: one file given twice, or
    two files of one name in other folders (cs/train.txt, news/train.txt), is said so."""
    first: dict[str, str] = {}
    for path in paths:
        stem = Path(path).stem
        if stem in first:
            same = Path(path).resolve() == Path(first[stem]).resolve()
            raise UserError(f"{path}: given twice" if same else
                            f"{first[stem]} and {path}: both named {stem!r} by their file names (the rows of the "
                            "matrix); give --names, one per corpus file")
        first[stem] = path


def _check_no_suite_inputs(args: argparse.Namespace, reads: str) -> None:
    """The flags that choose the suite's inputs, given where every input is given instead: they were
    ignored without a word, a bad `--set` value or a missing --data-dir accepted."""
    given = [f"--set {value}" for value in args.set_values] + [f"--domain-corpus {pair}" for pair in args.domain_corpus]
    given += [f"{flag} {getattr(args, key)}" for flag, key in (("--data-dir", "data_dir"), ("--cache-dir", "cache_dir"))
              if getattr(args, key, None) is not None]
    if given:
        raise UserError(f"{given[0]}: {reads}, not the suite's; leave it out")


def _mlm_loss(args: argparse.Namespace) -> int:
    if args.corpora and args.models:
        _check_no_suite_inputs(args, "analyze mlm-loss reads the --models and --corpora given")
    suite = None if args.corpora and args.models else _suite(args)
    # the models, the folder and the length first: they were checked after every corpus was read
    models = parse_pairs(args.models, "--models") if args.models else suite_models(suite)
    corpora = parse_pairs(args.corpora, "--corpora") if args.corpora else suite_corpora(suite)
    out_dir = _writable_out_dir(args, MLM_OUTPUT_FILES)
    _check_max_length(args.max_length, models)
    vocab.check_corpora_open(corpora)
    if args.corpora:
        samples = {name: vocab.sample_corpus(path, args.documents, args.seed, name)
                   for name, path in corpora.items()}
    else:
        samples = suite_samples(suite, corpora, args.documents, args.seed)
    measure_mlm_loss(models, corpora, samples, out_dir, documents=args.documents,
                     max_length=args.max_length, seed=args.seed)
    return 0


def _check_max_length(max_length: int, models: dict[str, str]) -> None:
    """Room for text beside the special tokens (under 8, nothing was masked and the loss written was
    0.0; a length of 1 was not applied at all), and within each model's positions (a traceback)."""
    from ..models import check_available, check_sequence_length, model_sequence_limit

    check_flags(PretrainRecipe, {"max_length": max_length})
    for name, model in models.items():
        check_available(model)
        check_sequence_length(max_length, model_sequence_limit(model), model, f"--max-length (model {name})")


def _writable_out_dir(args: argparse.Namespace, files: tuple[str, ...]) -> Path:
    """Fail before any work if a finished output would be replaced without --overwrite."""
    suite = load_suite(args.suite)   # a study's analysis goes beside its own tables
    out_dir = Path(args.out) if args.out else analysis_dir(tables_dir(suite, None), suite.name)
    check_writable_dir(out_dir)
    existing = [str(out_dir / name) for name in files if (out_dir / name).exists()]
    if existing and not args.overwrite:
        raise UserError(f"{existing[0]}: already exists; pass --overwrite to replace it")
    return out_dir
