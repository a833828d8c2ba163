"""What the domain analysis of a suite compares: its corpora, its models, its samples.

The corpora are the suite's general text ("PT": stands in for the base model's pretraining
data: its base stage's corpus, else a built-in suite's corpora/general.txt) and its domain
corpora, including those given on the command line (`--domain-corpus`); the models are the
base model and a DAPT model per domain: the suite's own stage the runner built (found by its
stage key, stage_identity.py), or the released `allenai/<domain>_roberta_base` when the suite
starts from the released ones; and a DAPT (LoRA) model per domain the runner built (its base
with the adapter merged), found the same way. `reproduce` scores those its results' runs were
fine-tuned after (studied_stages), which the runner builds for it if need be: its analysis
follows from the results, not from the cache.
`analyze_suite` runs both analyses for `dontstop reproduce` and skips, with a note, what the
suite's data does not allow (the paper suite has no "PT" corpus, and often no domain corpus).
"""
from __future__ import annotations

import random
from pathlib import Path

from ..config import from_dict
from ..data.leakage import leakage_keys
from ..suites import Suite, checkpoints_dir
from ..fileio import UserError, file_sha256
from ..recipes import PretrainRecipe
from ..records import PRETRAIN_RECORD_FILE, PretrainRecord
from ..results_tree import finished_runs
from ..stage_identity import domain_checkpoints
from ..tasks import GENERAL_TEXT as GENERAL
from . import vocab


def find_corpora(suite: Suite) -> tuple[dict[str, str], list[str]]:
    """The general text ("PT") first, then each domain corpus of the suite, as in Figure 2: those
    that exist, and a note for each that does not. A study without a base corpus has no "PT"."""
    general = suite.base_corpus or (not suite.own_tasks and f"corpora/{GENERAL}.txt")
    wanted = {GENERAL: Path(suite.data_path(general))} if general else {}
    wanted |= {domain: Path(suite.data_path(path)) for domain, path in suite.domain_corpora.items()}
    found = {name: str(path) for name, path in wanted.items() if path.is_file()}
    missing = [f"corpus {name!r}: {path} not found" for name, path in wanted.items() if not path.is_file()]
    return found, missing


def suite_corpora(suite: Suite) -> dict[str, str]:
    """The corpora to compare; every configured domain corpus must exist ("PT" may be absent:
    the paper's RoBERTa data is not public)."""
    corpora, missing = find_corpora(suite)
    if not suite.domain_corpora:
        raise UserError(f"suite {suite.name}: no domain corpora configured; give corpus paths "
                        "or --domain-corpus DOMAIN=PATH")
    for note in missing:
        if not note.startswith(f"corpus {GENERAL!r}"):
            raise UserError(f"{note} (run `dontstop data build-mini` or give corpus paths)")
        print(f"note: {note}; comparing the domain corpora only")
    return corpora


def check_two_corpora(suite: Suite, corpora: dict[str, str]) -> None:
    """The vocabulary overlap compares two corpora or more. A study with no base_corpus and one
    domain corpus (init-study's shape) had its one corpus compared with itself: a 1 x 1 matrix of
    100%, written as Figure 2, exit 0 (`analyze vocab` of one corpus file was refused already)."""
    if len(corpora) >= 2:
        return
    where = suite.source if suite.is_study else f"suite {suite.name}"
    path = next(iter(corpora.values()), "CORPUS")
    found = f"one corpus, {next(iter(corpora))} ({path})" if corpora else "no corpus found"
    # not "give a base_corpus": that adds a base stage to every run of the study
    another = ("a domain to the study file's domain_corpora" if suite.is_study
               else "another domain's corpus (--domain-corpus DOMAIN=PATH)")
    raise UserError(f"{where}: {found}, and no other to compare it with (the overlap of two or more); compare "
                    f"files, the general text too (`dontstop analyze vocab {path} general.txt`), or add {another}")


def suite_models(suite: Suite, scored: set[str] | None = None) -> dict[str, str]:
    """The suite's base model (its base stage, if it has one), then a DAPT model per domain: the
    released one when the suite starts DAPT from the released checkpoints, else the suite's own
    DAPT (and DAPT (LoRA)) stage of each domain, if the runner has built it; with `scored` (stage
    names: `reproduce` gives studied_stages), only those."""
    models = {"base": suite.base_model}
    if suite.dapt_from_released:
        for key in dict.fromkeys(task.domain for task in suite.tasks_by_key.values()):
            if suite.domain(key).dapt_checkpoint:
                models[f"dapt-{key}"] = suite.domain(key).dapt_checkpoint
        # DAPT (LoRA) is never released: built here beside the released DAPT model, and scored
        # beside it (it was built for the analysis, then left out of Table 1 and Table 12)
        for lineage, directory in sorted(finished_checkpoints(suite).items()):
            if lineage.startswith("dapt_lora-") and (scored is None or lineage in scored):
                models[lineage] = str(directory)
        return models
    built = finished_checkpoints(suite)
    if suite.base_corpus:  # the suite's "RoBERTa" is its base stage, built by the runner
        if "base" not in built:
            raise UserError(f"{domain_checkpoints(suite)['base']}: the suite's base stage is not built "
                            "(run `dontstop reproduce` first)")
        models["base"] = str(built.pop("base"))
    for lineage, directory in sorted(built.items()):
        if scored is None or lineage in scored:
            models[lineage] = str(directory)
    if len(models) == 1:
        print(f"note: no finished DAPT checkpoint of this suite under {checkpoints_dir(suite)}; "
              "only the base model is scored")
    return models


def studied_stages(suite: Suite) -> set[str]:
    """The names of the stages ("base", "dapt-cs", "dapt_lora-news", ...) that the suite's finished
    runs were fine-tuned after (their lineages): of the models the domain analysis can score, those
    `reproduce` scores, built for it if need be (runner/jobs.analysis_stages), so that its tables
    follow from the results, never from what else the cache holds."""
    runs, _ = finished_runs(Path(suite.results_dir) / suite.name)
    return {name for record in runs.values() for name in record.lineage.split("+")}


def finished_checkpoints(suite: Suite) -> dict[str, Path]:
    """"base", "dapt-<domain>" and "dapt_lora-<domain>" -> the suite's own checkpoint of that stage,
    if finished: found by its stage key (stage_identity.domain_checkpoints: the suite's recipe,
    corpus and base), never by what else lies in the cache (another recipe, another data folder)."""
    return {name: directory for name, directory in domain_checkpoints(suite).items()
            if (directory / PRETRAIN_RECORD_FILE).is_file()}


def suite_samples(suite: Suite, corpora: dict[str, str], documents: int,
                  seed: int) -> dict[str, list[str]]:
    """A seeded sample of each corpus. From a corpus that a stage was trained on (a DAPT corpus,
    or the general text of the base stage), only the documents its pretraining held out: no
    model is scored on its training text (DAPT and DAPT (LoRA) of a domain hold out the same
    documents: same corpus, seed and count)."""
    checkpoints = finished_checkpoints(suite)
    samples = {}
    for name, path in corpora.items():
        checkpoint = checkpoints.get("base" if name == GENERAL else f"dapt-{name}",
                                     checkpoints.get(f"dapt_lora-{name}"))
        held_out = pretraining_heldout(checkpoint, path, suite) if checkpoint else []
        if held_out:
            samples[name] = random.Random(seed).sample(held_out, min(documents, len(held_out)))
            print(f"note: {name}: scoring {len(samples[name])} of the {len(held_out)} documents "
                  f"that {checkpoint.name} held out of its training")
        else:
            samples[name] = vocab.sample_corpus(path, documents, seed, name)
    return samples


def pretraining_heldout(checkpoint: Path, corpus: str, suite: Suite) -> list[str]:
    """The documents a stage trained on `corpus` held out, re-derived the way pretraining split them
    (same corpus, the documents its record says it dropped as dev/test text, same seed: a task
    added to the suite since would shift every position); [] if the checkpoint was trained on other files.
    The checkpoint is the suite's own stage on `corpus` as it is now (its key covers the corpus's
    content), so the split is the one pretraining made."""
    from ..pretrain.corpus import scan_corpus

    record_path = checkpoint / PRETRAIN_RECORD_FILE
    record = PretrainRecord.read(record_path)
    if not _trained_on(record, corpus, suite):
        return []
    # the corpus where it lies now: the record names it as its run was given it
    recipe = from_dict(PretrainRecipe, {**record.recipe, "corpora": [corpus]}, str(record_path))
    dropped = (leakage_keys(suite.leakage_task_dirs()) if record.excluded_keys is None   # an older record
               else {bytes.fromhex(key) for key in record.excluded_keys})
    return scan_corpus(recipe, dropped).heldout_documents()


def _trained_on(record: PretrainRecord, corpus: str, suite: Suite) -> bool:
    """Whether a stage was pretrained on `corpus` alone: by that path, or by another that held the
    same bytes (its record names the corpus as its run was given it: `data/mini/corpora/cs.txt` from
    the folder it ran in, or in a study folder moved since). By the path alone, a study resumed from
    another working folder, moved, or given its --data-dir another way scored each model on its whole
    corpus, its training text too (on the quick mini study the base model's loss on general text was
    6.41, not 6.54), without a word."""
    if len(record.corpus_files) != 1:
        return False
    return record.corpus_files == [corpus] or list(record.corpus_sha256.values()) == [
        file_sha256(corpus, suite.cache_dir)]


def analyze_suite(suite: Suite, out_dir: Path, *, seed: int = 0, top: int = 10000,
                  sample_docs: int = 10000, documents: int = 500, max_length: int = 128) -> list[str]:
    """Both analyses on what the suite has, for `dontstop reproduce`; returns one note per
    thing skipped (the tables' README lists them). Replaces earlier outputs in `out_dir`."""
    from .mlm_loss import measure_mlm_loss

    corpora, notes = find_corpora(suite)
    steps = {"vocabulary overlap (Figure 2)": lambda: _vocab(suite, corpora, top, sample_docs, seed, out_dir),
             "held-out MLM loss (Tables 1 and 12)": lambda: measure_mlm_loss(
                 suite_models(suite, scored=studied_stages(suite)), corpora,
                 suite_samples(suite, corpora, documents, seed), out_dir,
                 documents=documents, max_length=max_length, seed=seed)}
    for what, step in steps.items():
        if not suite.domain_corpora:
            notes.append(f"{what}: skipped: no domain corpus (give --domain-corpus DOMAIN=PATH)")
            continue
        try:
            step()
        except UserError as e:
            notes.append(f"{what}: skipped: {e}")
    for note in notes:
        print(f"note: {note}")
    return notes


def _vocab(suite: Suite, corpora: dict[str, str], top: int, sample_docs: int, seed: int, out_dir: Path) -> None:
    check_two_corpora(suite, corpora)
    vocab.run(corpora, top, sample_docs, seed, out_dir)
