"""Continued MLM pretraining: the masked-only loss, checkpoints, resume after SIGKILL, errors."""
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from dontstop.cli import build_parser, main
from dontstop.data.formats import text_key
from dontstop.data.leakage import LeakageGuard
from dontstop.fileio import UserError, sha256_file
from dontstop.pretrain.mlm import BatchSchedule, heldout_mlm_loss, mask_tokens, masked_only_mlm_loss
from dontstop.pretrain.sequences import DocumentSequences, PackedSequences, write_token_stream
from dontstop.models import resolve_model
from dontstop.pretrain.cli import LORA_LR, recipe_from_args
from dontstop.pretrain.outcome import load_saved_state
from dontstop.pretrain.trainer import PretrainRun, run_pretraining
from dontstop.recipes import AdapterRecipe, PretrainRecipe
from dontstop.records import PretrainRecord
from dontstop.suites import load_suite

SMALL = {"batch_size": 8, "per_device_batch_size": 4, "max_length": 32, "heldout_documents": 20,
         "lr": 1e-3}


@pytest.fixture(params=["roberta", "bert"])
def model_name(request):
    return str(request.getfixturevalue("tiny_roberta_dir")) if request.param == "roberta" else "bundled:bert-tiny"


def recipe(model, corpus, out, **overrides):
    return PretrainRecipe(**{"base_model": model, "corpora": [str(corpus)], "output_dir": str(out),
                             "max_steps": 4, **SMALL, **overrides})


def test_a_max_length_past_the_models_positions_is_refused_before_the_corpus_is_read(model_name, tiny_corpus,
                                                                                     tmp_path):
    """Sequences longer than the position embeddings crashed in the embedding (a traceback, after
    the corpus was tokenized). The limit is the model's: a RoBERTa's positions start after its
    padding id (this one: 130 embeddings, 128 tokens), a BERT's at 0 (bert-tiny: 512)."""
    limit = {"bundled:bert-tiny": 512}.get(model_name, 128)
    at_limit = run_pretraining(recipe(model_name, tiny_corpus, tmp_path / "at", max_length=limit, max_steps=1,
                                      heldout_documents=0))
    assert at_limit.steps == 1 and at_limit.tokens > 7 * limit   # 8 sequences, all but the corpus's last one full
    with pytest.raises(UserError, match=rf"^pretrain recipe: key 'max_length': {limit + 1}; .* takes at most "
                                        rf"{limit} tokens a sequence$"):
        run_pretraining(recipe(model_name, tiny_corpus, tmp_path / "past", max_length=limit + 1, max_steps=1))
    assert not (tmp_path / "past").exists()


def test_a_model_folder_without_its_tokenizer_files_is_refused(tiny_roberta_dir, tiny_corpus, tmp_path):
    """transformers builds a tokenizer of the special tokens alone from a folder whose vocabulary
    files are gone: pretraining went on with every word an unknown token."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_roberta_dir, model)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        (model / name).unlink(missing_ok=True)
    with pytest.raises(UserError, match=rf"^{model}: cannot load "):
        run_pretraining(recipe(str(model), tiny_corpus, tmp_path / "out", max_steps=1))
    assert not (tmp_path / "out").exists()


def test_a_model_without_an_mlm_head_is_refused_before_any_work(tiny_roberta_dir, tiny_corpus, tmp_path,
                                                                 monkeypatch):
    """A sentence encoder (bundled:minilm, or an `*Model` saved without its head) loaded as
    `*ForMaskedLM` got a random head: transformers printed its table of missing weights, and the
    stage trained on, exit 0, its held-out MLM losses meaningless. The names of its saved weights
    tell, for a folder and for a hub id in the Hugging Face cache alike."""
    import shutil

    from huggingface_hub import constants
    from paper_world import add_repo
    from transformers import AutoModel

    from dontstop.pretrain.start_model import check_mlm_head

    encoder = tmp_path / "encoder"
    shutil.copytree(tiny_roberta_dir, encoder)
    AutoModel.from_pretrained(tiny_roberta_dir).save_pretrained(encoder)   # the encoder alone, over the MLM
    for name, weights in (("bundled:minilm", "model.safetensors"), (str(encoder), "model.safetensors")):
        with pytest.raises(UserError, match=rf"^{name}: no MLM head among its weights \({weights} holds no "
                                            r"lm_head\.\* or cls\.\*: a sentence encoder\?\); continued pretraining"):
            run_pretraining(recipe(name, tiny_corpus, tmp_path / "out", max_steps=1))
        assert not (tmp_path / "out").exists()
    add_repo(tmp_path / "hub", "someone/encoder", {path.name: path.read_bytes() for path in encoder.iterdir()})
    add_repo(tmp_path / "hub", "someone/mlm", {path.name: path.read_bytes() for path in tiny_roberta_dir.iterdir()})
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(UserError, match="^someone/encoder: no MLM head among its weights"):
        check_mlm_head("someone/encoder")
    for name in ("someone/mlm", str(tiny_roberta_dir), "bundled:bert-tiny", "someone/not-downloaded"):
        check_mlm_head(name)


def test_masked_only_loss_equals_the_stock_loss(model_name, tiny_corpus):
    path = resolve_model(model_name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForMaskedLM.from_pretrained(path, attn_implementation="sdpa").eval()
    texts = tiny_corpus.read_text().splitlines()[:8]
    batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    input_ids, labels = mask_tokens(tokenizer, batch["input_ids"], torch.Generator().manual_seed(0))
    assert (labels != -100).sum() > 10 and not (labels[batch["attention_mask"] == 0] != -100).any()
    with torch.no_grad():
        stock = model(input_ids=input_ids, attention_mask=batch["attention_mask"], labels=labels).loss
        ours = masked_only_mlm_loss(model, input_ids, batch["attention_mask"], labels)
    assert abs(float(ours) - float(stock)) < 1e-5


def test_packing_keeps_every_token_in_order(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("bundled:bert-tiny"))
    documents = [f"document number {i} says hello" for i in range(30)]
    consumed = []

    def streamed():  # a generator: the writer must not need the corpus as a list
        for document in documents:
            consumed.append(document)
            yield document

    counts = write_token_stream(tokenizer, streamed(), tmp_path / "tokens.bin", show_progress=False)
    assert consumed == documents and not list(tmp_path.glob(".tmp-*"))
    expected = sum((tokenizer(d, add_special_tokens=False)["input_ids"] + [tokenizer.sep_token_id]
                    for d in documents), [])
    assert counts == {"tokens": len(expected), "documents": 30, "bytes": sum(len(d) for d in documents)}
    sequences = PackedSequences(tokenizer, tmp_path / "tokens.bin", 16)
    input_ids, attention_mask = sequences.batch(torch.arange(len(sequences)))
    lengths = attention_mask.sum(1)
    assert (input_ids[:, 0] == tokenizer.cls_token_id).all() and (lengths[:-1] == 16).all()
    assert (input_ids[attention_mask == 0] == tokenizer.pad_token_id).all()
    body = torch.cat([row[1:length - 1] for row, length in zip(input_ids, lengths)]).tolist()
    assert body == expected
    assert (input_ids[torch.arange(len(lengths)), lengths - 1] == tokenizer.sep_token_id).all()


def test_one_document_sequences_never_join_documents_and_lose_no_token(tmp_path):
    """`pack_documents: false`: each document starts its own [CLS] ... [SEP] sequence; one longer
    than max_length goes on in the next; batches pad to their longest (rounded up on a GPU)."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("bundled:bert-tiny"))
    documents = ["short one", "a document " * 20, "x", "three words here"]
    write_token_stream(tokenizer, documents, tmp_path / "tokens.bin", show_progress=False)
    encoded = [tokenizer(d, add_special_tokens=False)["input_ids"] for d in documents]
    sequences = DocumentSequences(tokenizer, tmp_path / "tokens.bin", 16)
    expected = []                    # (document, its piece) per sequence
    for doc, ids in enumerate(encoded):
        expected += [(doc, ids[at:at + 14]) for at in range(0, len(ids), 14)]
    assert len(sequences) == len(expected) > len(documents)
    for index, (_, body) in enumerate(expected):
        assert sequences.sequence(index) == [tokenizer.cls_token_id, *body, tokenizer.sep_token_id]
    short = torch.tensor([0, [doc for doc, _ in expected].index(2)])   # "short one" and "x"
    input_ids, attention_mask = sequences.batch(short)
    assert input_ids.shape[1] == max(len(encoded[0]), len(encoded[2])) + 2
    assert (input_ids[attention_mask == 0] == tokenizer.pad_token_id).all()
    sequences.pad_multiple = 8
    assert sequences.batch(short)[0].shape[1] == 8
    assert sequences.batch(torch.tensor([1]))[0].shape[1] == 16          # never past max_length


def test_tapt_as_the_paper_counts_it_takes_two_hundred_steps_on_rct_500(tmp_path):
    """Table 9: TAPT on RCT-500's 500 sentences, 100 epochs at batch 256, is 0.2K steps. Packed
    into 512-token sequences the same sentences fill ~one batch: 100 steps, each sentence ~8 times
    in a step; as one document a sequence it is the paper's 200 steps of 256 documents."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("bundled:bert-tiny"))
    sentences = [f"patients in group {i} were given the drug for twelve weeks" for i in range(500)]
    write_token_stream(tokenizer, sentences, tmp_path / "tokens.bin", show_progress=False)
    tapt = PretrainRecipe("m", [], "o", epochs=100, batch_size=256, per_device_batch_size=32)
    steps = {kind.__name__: BatchSchedule(tapt, len(kind(tokenizer, tmp_path / "tokens.bin", 512)), 0, 1).total_steps
             for kind in (PackedSequences, DocumentSequences)}
    assert steps == {"PackedSequences": 100, "DocumentSequences": 200}


def test_pretraining_on_one_document_sequences_counts_epochs_in_documents(tiny_corpus, tmp_path):
    lines = len(set(tiny_corpus.read_text().splitlines()))   # 398 documents, 20 held out, none past 126 tokens
    record = run_pretraining(recipe("bundled:bert-tiny", tiny_corpus, tmp_path / "docs", max_steps=None, epochs=2,
                                    batch_size=64, per_device_batch_size=32, max_length=128, pack_documents=False))
    assert record.steps == 2 * -(-(lines - 20) // 64) and record.heldout_loss_after < record.heldout_loss_before
    assert record.recipe["pack_documents"] is False
    args = build_parser().parse_args(["pretrain", "--model", "m", "--corpus", "a.txt", "--out", "o", "--recipe", "tapt"])
    assert recipe_from_args(args).pack_documents is False          # the paper's TAPT preset
    args = build_parser().parse_args(["pretrain", "--model", "m", "--corpus", "a.txt", "--out", "o", "--recipe", "tapt",
                                      "--pack-documents"])
    assert recipe_from_args(args).pack_documents is True


def test_a_document_longer_than_the_models_positions_is_tokenized_without_the_tokenizers_warning(tmp_path, caplog):
    """Every DAPT corpus has one: the tokenizer warned that it "will result in indexing errors",
    while the document goes on in the next sequence(s)."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("bundled:bert-tiny"))
    counts = write_token_stream(tokenizer, ["word " * 700], tmp_path / "tokens.bin", show_progress=False)
    assert counts["tokens"] > tokenizer.model_max_length
    assert not [record for record in caplog.records if "indexing errors" in record.getMessage()]


def test_heldout_masks_do_not_depend_on_the_model(tiny_corpus):
    path = resolve_model("bundled:bert-tiny")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForMaskedLM.from_pretrained(path)
    texts = tiny_corpus.read_text().splitlines()[:40]
    first = heldout_mlm_loss(model, tokenizer, texts, 64, seed=3, batch_size=16)
    assert first == heldout_mlm_loss(model, tokenizer, texts, 64, seed=3, batch_size=16)
    assert first != heldout_mlm_loss(model, tokenizer, texts, 64, seed=4, batch_size=16)


def test_pretrain_saves_a_checkpoint_that_reloads_and_learned(model_name, tiny_corpus, tmp_path):
    excluded_text = tiny_corpus.read_text().splitlines()[5]
    out = tmp_path / "ckpt"
    record = run_pretraining(recipe(model_name, tiny_corpus, out, max_steps=8),
                             guard=LeakageGuard(frozenset({text_key(excluded_text)}), {"dev.jsonl": "ab12"}))
    assert PretrainRecord.read(out / "pretrain_record.json") == record
    assert not (out / "resume").exists()
    assert record.steps == 8 and record.sequences == 64 and record.excluded_documents == 1
    assert record.excluded_keys == [text_key(excluded_text).hex()] and record.guarded_sha256 == {"dev.jsonl": "ab12"}
    assert 0 < record.tokens <= 64 * 32 and record.tokens_per_s > 0
    assert record.heldout_loss_after < record.heldout_loss_before
    # what loading checks the weights against, and what trained them (a 1-CPU run here)
    assert record.weights_sha256 == {name: sha256_file(out / name) for name in ("config.json", "model.safetensors")}
    assert (record.processes, record.device) == (1, "cpu")
    reloaded = AutoModelForMaskedLM.from_pretrained(out)
    original = AutoModelForMaskedLM.from_pretrained(resolve_model(model_name))
    assert not torch.equal(reloaded.base_model.embeddings.word_embeddings.weight,
                           original.base_model.embeddings.word_embeddings.weight)
    assert AutoTokenizer.from_pretrained(out).mask_token is not None


def test_a_stage_of_one_optimizer_step_trains_at_its_lr_not_at_the_warmups_zero(tiny_corpus, tmp_path):
    """transformers' warmup starts at lr 0: a stage of one step (a small study's kNN-TAPT or TAPT at
    one epoch of batch 32) ran that step at lr 0, and its model was its parent's bit for bit (its
    held-out loss the same before and after), tabled as adapted. With two steps or more the warmup
    is ceil(warmup_ratio x steps), as before."""
    from dontstop.pretrain.mlm import warmup_steps

    assert [warmup_steps(0.06, total) for total in (1, 2, 16, 17, 500)] == [0, 1, 1, 2, 30]
    assert warmup_steps(0.5, 2) == 1 and warmup_steps(0.0, 1) == 0
    record = run_pretraining(recipe("bundled:bert-tiny", tiny_corpus, tmp_path / "one", max_steps=1))
    assert (record.steps, record.warmup_steps) == (1, 0)
    assert record.heldout_loss_after != record.heldout_loss_before
    trained = AutoModelForMaskedLM.from_pretrained(tmp_path / "one")
    original = AutoModelForMaskedLM.from_pretrained(resolve_model("bundled:bert-tiny"))
    assert not torch.equal(trained.base_model.embeddings.word_embeddings.weight,
                           original.base_model.embeddings.word_embeddings.weight)


def test_same_seed_same_numbers(tiny_corpus, tmp_path):
    runs = [run_pretraining(recipe("bundled:bert-tiny", tiny_corpus, tmp_path / f"run{i}", seed=seed, max_steps=2))
            for i, seed in enumerate([0, 0, 1])]
    assert runs[0].final_train_loss == runs[1].final_train_loss
    assert runs[0].heldout_loss_after == runs[1].heldout_loss_after
    assert runs[0].final_train_loss != runs[2].final_train_loss


def test_resume_after_sigkill_matches_an_uninterrupted_run(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "killed"
    argv = ["pretrain", "--model", "bundled:bert-tiny", "--corpus", str(tiny_corpus), "--out", str(out),
            "--steps", "16", "--batch-size", "4", "--per-device-batch-size", "2", "--max-length", "32",
            "--heldout-documents", "10", "--checkpoint-every", "2", "--no-wandb"]
    # The steps before the kill run there, the rest and the reference here: with as many CPU threads
    # (1 or 2 threads sum in another order: the same losses, weights a few ulps apart), whichever
    # earlier test set this process's count.
    threads = str(torch.get_num_threads())
    process = subprocess.Popen([sys.executable, "-m", "dontstop", *argv], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL,
                               env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": threads})
    deadline = time.time() + 120  # generous: imports alone take 20 s on a loaded 2-core box
    while not list(out.glob("resume/step-*")) and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = sorted(out.glob("resume/step-*"))
    assert saved and not (out / "pretrain_record.json").exists(), "the run was not killed mid-way"
    saved_step = int(saved[-1].name.removeprefix("step-"))

    # another recipe is refused before the corpus is read: its tokens were written over the run's first
    tokens = (out / "resume" / "tokens.bin").read_bytes()
    assert main([*argv, "--lr", "3e-4"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"dontstop: error: {saved[-1]}: an unfinished run with another recipe (lr: 0.0001 there, 0.0003 asked); "
        "choose another --out")
    assert (out / "resume" / "tokens.bin").read_bytes() == tokens
    # a saved state damaged is one line naming it (a 36-line SafetensorError, an EOFError, exit 1)
    state = saved[-1]
    (state / "progress.json").rename(state / "progress.kept")
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"dontstop: error: {state}: a saved state without its progress.json (cut short?); remove that folder to "
        "resume from the state before it (or from the start)")
    (state / "progress.kept").rename(state / "progress.json")
    weights = (state / "model.safetensors").read_bytes()
    (state / "model.safetensors").write_bytes(weights[:1000])
    assert main(argv) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"dontstop: error: {state}: a saved state that cannot be loaded (") and line.endswith(
        "); remove that folder to resume from the state before it (or from the start)"), line
    (state / "model.safetensors").write_bytes(weights)
    # a token file cut short is written again: it was trained on as it was (other weights)
    (out / "resume" / "tokens.bin").write_bytes(tokens[:len(tokens) // 2])
    assert main(argv) == 0                     # the same command again resumes
    resumed = PretrainRecord.read(out / "pretrain_record.json")
    assert 0 < resumed.resumed_from_step == saved_step < 16

    reference = run_pretraining(PretrainRecipe(
        "bundled:bert-tiny", [str(tiny_corpus)], str(tmp_path / "whole"), max_steps=16, batch_size=4,
        per_device_batch_size=2, max_length=32, heldout_documents=10, checkpoint_every=2))
    assert reference.resumed_from_step == 0
    assert resumed.final_train_loss == reference.final_train_loss
    assert resumed.heldout_loss_before == reference.heldout_loss_before
    weights = [AutoModelForMaskedLM.from_pretrained(d).state_dict() for d in (out, tmp_path / "whole")]
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]), key


UNFINISHED_ARGV = ["pretrain", "--model", "bundled:bert-tiny", "--steps", "4", "--batch-size", "4",
                   "--per-device-batch-size", "2", "--max-length", "32", "--heldout-documents", "10",
                   "--checkpoint-every", "2", "--no-wandb"]


@pytest.fixture(scope="module")
def unfinished_run(tiny_corpus, tmp_path_factory):
    """A run of 4 steps stopped after its state at step 2 was saved (trained, never finished), as
    a SIGKILL leaves it: (a copy of its folder, the command that resumes it). Its recipe names its
    folder, so each test gets a fresh copy at the same place (unfinished_copy)."""
    out = tmp_path_factory.mktemp("unfinished") / "run"
    argv = [*UNFINISHED_ARGV, "--corpus", str(tiny_corpus), "--out", str(out)]
    PretrainRun(recipe_from_args(build_parser().parse_args(argv)), LeakageGuard(), "run").train(None)
    assert [state.name for state in out.glob("resume/step-*")] == ["step-000000002"]
    shutil.copytree(out, out.with_name("pristine"))
    return out, argv


def unfinished_copy(unfinished_run):
    out, argv = unfinished_run
    shutil.rmtree(out)
    shutil.copytree(out.with_name("pristine"), out)
    return out, argv


def files_of(folder):
    return {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def _edited(field, value):
    return lambda progress: {**progress, field: value}


PROGRESS_EDITS = {   # id -> (edit of the saved progress (a dict), what the line says after "(edited by hand?): ")
    "past_the_end": (_edited("step", 5000), "step 5000: must be below the recipe's 4 steps"),
    "the_last_step": (_edited("step", 4), "step 4: must be below the recipe's 4 steps"),
    "another_folders": (_edited("step", 3), "step 3: not the step of its folder step-000000002"),
    "negative": (_edited("step", -5), "step -5: must be a whole number >= 1"),
    "zero": (_edited("step", 0), "step 0: must be a whole number >= 1"),
    "a_string": (_edited("step", "2"), 'step "2": must be a whole number >= 1'),
    "a_float": (_edited("step", 2.0), "step 2.0: must be a whole number >= 1"),
    "a_bool": (_edited("step", True), "step true: must be a whole number >= 1"),
    "nan": (_edited("step", float("nan")), "step NaN: must be a whole number >= 1"),
    "missing": (lambda progress: {k: v for k, v in progress.items() if k != "step"}, "step missing"),
    "a_list": (lambda progress: [], "it holds [], not an object"),
    "loss_nan": (_edited("loss", float("nan")), "loss NaN: must be a finite number >= 0"),
    "tokens_negative": (_edited("tokens", -1), "tokens -1: must be a whole number >= 0"),
    "time_a_string": (_edited("wall_time_s", "1s"), 'wall_time_s "1s": must be a finite number >= 0'),
    "heldout_inf": (_edited("heldout_loss_before", float("inf")),
                    "heldout_loss_before Infinity: must be a finite number >= 0 or null"),
    "recipe_a_list": (_edited("recipe", []), "recipe []: must be an object"),
    "resumed_from_later": (_edited("resumed_from_step", 2), "resumed_from_step 2: must be below step 2"),
}


@pytest.mark.parametrize("edit", PROGRESS_EDITS)
def test_a_saved_states_progress_edited_is_refused_before_any_work(edit, unfinished_run, capsys):
    """A step past the recipe's end was resumed from: exit 0 and a record of 5000 steps, 115
    trained; a negative step, a string, a list were tracebacks (exit 1). Now one line naming the
    state, its progress.json and the field, before the corpus is read; nothing written or removed."""
    out, argv = unfinished_copy(unfinished_run)
    state = out / "resume" / "step-000000002"
    spoil, says = PROGRESS_EDITS[edit]
    (state / "progress.json").write_text(json.dumps(spoil(json.loads((state / "progress.json").read_text()))))
    before = files_of(out)
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"dontstop: error: {state}: a saved state whose progress.json is not as it was saved (edited by hand?): "
        f"{says}; remove that folder to resume from the state before it (or from the start)"]
    assert files_of(out) == before


def test_a_step_past_an_epochs_recipes_end_is_refused_before_the_state_is_loaded(unfinished_run):
    """An epochs recipe's total steps are known once its corpus is counted: checked as it is loaded."""
    out, _ = unfinished_copy(unfinished_run)
    with pytest.raises(UserError, match=r"step-000000002: .*: step 2: must be below the recipe's 2 steps; remove"):
        load_saved_state(None, out / "resume" / "step-000000002", total_steps=2)


TOKEN_DESCRIPTION_DAMAGES = {   # id -> what becomes of resume/tokens.bin.json ({"description", "counts"})
    "cut_short": lambda whole: json.dumps(whole)[:20],
    "a_list": lambda whole: "[]",
    "no_counts": lambda whole: json.dumps({"description": whole["description"]}),
    "a_count_missing": lambda whole: json.dumps({**whole, "counts": {"tokens": whole["counts"]["tokens"]}}),
}


@pytest.mark.parametrize("damage", TOKEN_DESCRIPTION_DAMAGES)
def test_a_damaged_token_file_description_is_written_again_and_the_run_resumes(damage, unfinished_run):
    """resume/tokens.bin.json cut short was a line saying nothing to do (exit 2), one edited a
    traceback (once trained, for a count missing): it is tokenized again, as a token file cut
    short is, and the run resumes."""
    out, argv = unfinished_copy(unfinished_run)
    description = out / "resume" / "tokens.bin.json"
    whole = json.loads(description.read_text())
    description.write_text(TOKEN_DESCRIPTION_DAMAGES[damage](whole))
    assert main(argv) == 0
    record = PretrainRecord.read(out / "pretrain_record.json")
    assert (record.resumed_from_step, record.steps, record.documents) == (2, 4, whole["counts"]["documents"])


def test_an_unfinished_run_moved_whole_resumes_where_it_is_now(unfinished_run, tmp_path):
    """A folder moved to another disk was "an unfinished run with another recipe (output_dir: ...)":
    its trained steps were lost unless it went back."""
    out, argv = unfinished_copy(unfinished_run)
    moved = shutil.move(out, tmp_path / "moved")
    assert main([*argv[:argv.index("--out")], "--out", str(moved)]) == 0
    record = PretrainRecord.read(Path(moved) / "pretrain_record.json")
    assert (record.resumed_from_step, record.steps, record.recipe["output_dir"]) == (2, 4, str(moved))


def test_an_unfinished_stage_in_a_cache_moved_whole_resumes(tiny_corpus, tmp_path, capsys):
    """A stage starts from its parent beside it in the cache's checkpoints folder; its saved recipe
    names the parent by path. The whole cache moved (another disk, another --cache-dir), the same
    command with the new paths read as "an unfinished run with another recipe (base_model: ...)".
    It resumes now; a parent of another name beside it is still another recipe."""
    old = tmp_path / "cache" / "checkpoints"
    shutil.copytree(resolve_model("bundled:bert-tiny"), old / "dapt-1a2b3c4d")

    def argv(checkpoints, parent="dapt-1a2b3c4d"):
        return ["pretrain", "--model", str(checkpoints / parent), *UNFINISHED_ARGV[3:], "--corpus", str(tiny_corpus),
                "--out", str(checkpoints / "dapt+tapt-5e6f7a8b")]
    PretrainRun(recipe_from_args(build_parser().parse_args(argv(old))), LeakageGuard(), "stage").train(None)
    new = tmp_path / "moved" / "checkpoints"
    shutil.move(tmp_path / "cache", tmp_path / "moved")
    shutil.copytree(new / "dapt-1a2b3c4d", new / "dapt-99999999")
    assert main(argv(new, "dapt-99999999")) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"dontstop: error: {new}/dapt+tapt-5e6f7a8b/resume/step-000000002: an unfinished run with another recipe "
        f"(base_model: '{old}/dapt-1a2b3c4d' there, '{new}/dapt-99999999' asked); choose another --out")
    assert main(argv(new)) == 0
    assert PretrainRecord.read(new / "dapt+tapt-5e6f7a8b" / "pretrain_record.json").resumed_from_step == 2


def test_an_unfinished_run_moved_with_its_corpus_resumes_without_tokenizing_again(tiny_corpus, tmp_path,
                                                                                 monkeypatch, capsys):
    """A study folder holds its corpora and its cache: moved whole (renamed, copied to a cluster),
    its unfinished stage was "an unfinished run with another recipe (corpora: ...)", its trained
    steps lost unless it went back, and its corpus would have been tokenized again (hours for a
    paper-size domain). A corpus that did not move with the folder is still another recipe."""
    def argv(study):
        return [*UNFINISHED_ARGV, "--corpus", str(study / "corpora" / "acl.txt"),
                "--out", str(study / "cache" / "checkpoints" / "dapt-1a2b3c4d")]
    (tmp_path / "study" / "corpora").mkdir(parents=True)
    shutil.copy(tiny_corpus, tmp_path / "study" / "corpora" / "acl.txt")
    PretrainRun(recipe_from_args(build_parser().parse_args(argv(tmp_path / "study"))), LeakageGuard(), "run").train(None)
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.move(tmp_path / "study", moved)
    shutil.copytree(moved / "corpora", tmp_path / "other" / "corpora")   # the same text, not the folder's
    out = moved / "cache" / "checkpoints" / "dapt-1a2b3c4d"
    assert main([*argv(tmp_path / "other")[:-1], str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"dontstop: error: {out}/resume/step-000000002: an unfinished run with another recipe (corpora: "
        f"['{tmp_path}/study/corpora/acl.txt'] there, ['{tmp_path}/other/corpora/acl.txt'] asked); choose another --out")

    def tokenized_again(*args, **kwargs):
        raise AssertionError("the moved run's token file was written again")
    monkeypatch.setattr("dontstop.pretrain.trainer.write_token_stream", tokenized_again)
    assert main(argv(moved)) == 0
    record = PretrainRecord.read(out / "pretrain_record.json")
    assert (record.resumed_from_step, record.steps, record.corpus_files) == (2, 4, [str(moved / "corpora" / "acl.txt")])


@pytest.mark.parametrize("cache_then, saved_before_saved_in", [("cache", False), ("cache", True),
                                                                ("../scratch/cache", False)],
                         ids=["relative", "saved_before_saved_in", "parent_folder"])
def test_an_unfinished_stage_of_relative_paths_resumes_in_a_cache_given_elsewhere(
        cache_then, saved_before_saved_in, tiny_corpus, tmp_path, monkeypatch):
    """The runner names a stage's folder, its parent and a mini corpus relative to where it runs
    (`cache/mini/checkpoints/...`, `data/mini/corpora/cs.txt`). The cache moved and given by another
    `--cache-dir`: its parent lies beside it there, the corpus where it was. A state saved before
    `saved_in` was recorded reads its relative folder from the working folder, as the runner runs;
    one in `../scratch/cache` needs the working folder it was saved from (`started_in`)."""
    (tmp_path / "proj").mkdir()
    monkeypatch.chdir(tmp_path / "proj")
    shutil.copytree(resolve_model("bundled:bert-tiny"), Path(cache_then) / "checkpoints" / "dapt-1a2b3c4d")
    shutil.copy(tiny_corpus, "acl.txt")

    def argv(checkpoints):
        return ["pretrain", "--model", f"{checkpoints}/dapt-1a2b3c4d", *UNFINISHED_ARGV[3:], "--corpus", "acl.txt",
                "--out", f"{checkpoints}/dapt+tapt-5e6f7a8b"]
    PretrainRun(recipe_from_args(build_parser().parse_args(argv(f"{cache_then}/checkpoints"))), LeakageGuard(),
                "stage").train(None)
    resume = Path(cache_then) / "checkpoints" / "dapt+tapt-5e6f7a8b" / "resume"
    for saved in (resume / "step-000000002" / "progress.json", resume / "tokens.bin.json"):
        places = {key: json.loads(saved.read_text())[key] for key in ("saved_in", "started_in")}
        assert places == {"saved_in": os.path.abspath(resume.parent), "started_in": str(tmp_path / "proj")}
        if saved_before_saved_in:
            saved.write_text(json.dumps({k: v for k, v in json.loads(saved.read_text()).items() if k not in places}))
    shutil.move(Path(cache_then), tmp_path / "big" / "cache")
    assert main(argv(tmp_path / "big" / "cache" / "checkpoints")) == 0
    record = PretrainRecord.read(tmp_path / "big" / "cache" / "checkpoints" / "dapt+tapt-5e6f7a8b" / "pretrain_record.json")
    assert record.resumed_from_step == 2


@pytest.mark.parametrize("overrides, message", [
    ({"max_steps": None}, "exactly one of max_steps"),
    ({"epochs": 2}, "exactly one of max_steps"),
    ({"batch_size": 6}, "must be a multiple of per_device_batch_size 4"),
    ({"corpora": ["missing.txt"]}, "missing.txt: corpus file not found"),
    ({"base_model": "/no/such/model"}, "/no/such/model: model path does not exist"),
])
def test_bad_recipes_fail_with_one_clear_line(overrides, message, tiny_corpus, tmp_path):
    with pytest.raises(UserError, match=message):
        run_pretraining(recipe("bundled:bert-tiny", tiny_corpus, tmp_path / "out", **overrides))


def test_cli_flags_override_the_papers_preset():
    args = build_parser().parse_args(["pretrain", "--model", "m", "--corpus", "a.txt", "b.jsonl", "--out", "o",
                                      "--recipe", "dapt", "--epochs", "3", "--lr", "1e-3"])
    recipe = recipe_from_args(args)
    assert (recipe.max_steps, recipe.epochs, recipe.batch_size, recipe.lr) == (None, 3, 2048, 1e-3)
    assert recipe.corpora == ["a.txt", "b.jsonl"] and recipe.betas == (0.9, 0.98) and recipe.eps == 1e-6


@pytest.mark.parametrize("preset, lr", [("dapt", 2e-3), ("tapt", 1e-3), (None, 1e-4)])
def test_lora_flags_give_the_lora_lr_and_a_resolved_adapter(preset, lr):
    """`--recipe dapt --lora` trained at DAPT's full-training lr (0.10 nats worse for LoRA, docs/lora.md)
    and recorded the adapter as typed ({'rank': 16}), where a runner stage records every default."""
    argv = ["pretrain", "--model", "m", "--corpus", "a.txt", "--out", "o", "--lora", "rank=16"]
    recipe = recipe_from_args(build_parser().parse_args(argv + (["--recipe", preset] if preset else [])))
    assert recipe.lr == lr and recipe.adapter == {**dataclasses.asdict(AdapterRecipe()), "rank": 16}
    given = recipe_from_args(build_parser().parse_args(argv + ["--recipe", "dapt", "--lr", "1e-4"]))
    assert given.lr == 1e-4   # a flag still replaces the preset's
    # the paper suite's LoRA recipes, spelled in pretrain/cli.py too
    assert {kind: load_suite("paper").recipes[f"{kind}_lora"]["lr"] for kind in LORA_LR} == LORA_LR


def test_cli_reports_an_empty_corpus_as_one_line(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code = main(["pretrain", "--model", "bundled:bert-tiny", "--corpus", str(empty), "--out",
                 str(tmp_path / "out"), "--recipe", "tapt", "--no-wandb"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error == f"dontstop: error: {empty}: corpus file is empty"


@pytest.mark.parametrize("name, content, message", [
    ("corpus.csv", 'id,text\n1,"one document"\n', "corpus.csv:1: a CSV file, but a corpus is text"),
    ("corpus.jsonl", "".join(json.dumps({"txt" if i == 36 else "text": f"document {i}"}) + "\n" for i in range(40)),
     "corpus.jsonl:37: field 'text': missing"),
])
def test_a_corpus_in_the_wrong_format_is_one_line_before_any_model_loads(tmp_path, capsys, monkeypatch,
                                                                          name, content, message):
    """Both were found only once the tokenizer and the weights had loaded (seconds to minutes for
    roberta-large on a GPU node), the weights' loading bar above the error."""
    import dontstop.models

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded before the corpus was read")

    monkeypatch.setattr(dontstop.models, "load_pretrained", no_loading)
    corpus = tmp_path / name
    corpus.write_text(content)
    out = tmp_path / "out"
    code = main(["pretrain", "--model", "bundled:bert-tiny", "--corpus", str(corpus), "--out", str(out),
                 "--steps", "2", "--batch-size", "4", "--per-device-batch-size", "4", "--no-wandb"])
    [error] = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and error.startswith(f"dontstop: error: {tmp_path / message}"), error
    assert not out.exists()


def test_a_full_disk_while_tokenizing_is_one_line_and_nothing_finished(tiny_corpus, tmp_path, capsys,
                                                                       monkeypatch):
    import errno

    import dontstop.pretrain.trainer

    def disk_full(tokenizer, documents, path, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(dontstop.pretrain.trainer, "write_token_stream", disk_full)
    out = tmp_path / "out"
    code = main(["pretrain", "--model", "bundled:bert-tiny", "--corpus", str(tiny_corpus), "--out", str(out),
                 "--steps", "2", "--batch-size", "4", "--per-device-batch-size", "4", "--no-wandb"])
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the weight-loading bar
    assert code == 1 and error == f"dontstop: error: {out / 'resume' / 'tokens.bin'}: No space left on device"
    assert not (out / "pretrain_record.json").exists()


@pytest.mark.parametrize("saving", ["a_state", "the_weights"])
def test_a_full_disk_while_saving_a_state_or_the_weights_is_one_line_naming_the_folder(saving, tiny_corpus, tmp_path,
                                                                                     capsys, monkeypatch):
    """A full disk while accelerate saved a resume state (torch.save: `RuntimeError: [enforce fail at
    inline_container.cc:672] . unexpected pos 9792 vs 9684`) or while the weights were saved
    (safetensors: `SafetensorError: ... No space left on device (os error 28)`) was a traceback of 30
    lines naming no file, and the half-written state stayed, holding the room a rerun needs."""
    import accelerate
    import transformers.modeling_utils
    from safetensors import SafetensorError

    import dontstop.save_errors

    def torch_save_on_a_full_disk(self, output_dir, **kwargs):
        Path(output_dir).mkdir(parents=True)
        (Path(output_dir) / "optimizer.bin").write_bytes(b"PK\x03\x04 half a zip")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 9792 vs 9684")

    def safetensors_on_a_full_disk(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    out = tmp_path / "out"
    if saving == "a_state":
        monkeypatch.setattr(accelerate.Accelerator, "save_state", torch_save_on_a_full_disk)
        # the half-written state fills the disk: once it is removed, there is room again
        monkeypatch.setattr(dontstop.save_errors, "free_bytes",
                            lambda folder: 4096 if list((out / "resume").glob(".tmp-*/optimizer.bin")) else 1 << 30)
    else:
        monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", safetensors_on_a_full_disk)
    code = main(["pretrain", "--model", "bundled:bert-tiny", "--corpus", str(tiny_corpus), "--out", str(out),
                 "--steps", "2", "--checkpoint-every", "1", "--batch-size", "4", "--per-device-batch-size", "4",
                 "--no-wandb"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    where = out / "resume" / "step-000000001" if saving == "a_state" else out
    assert code == 1 and error == f"dontstop: error: {where}: No space left on device"
    assert not (out / "pretrain_record.json").exists() and not list((out / "resume").glob(".tmp-*"))


def test_a_library_error_while_saving_with_room_to_spare_is_not_called_a_full_disk(tmp_path):
    """Only the system's error, or a failure on a full file system, is said as one; another error
    of the library stays itself (a traceback: a defect to see whole)."""
    from dontstop.save_errors import written_or_os_error

    partial = tmp_path / ".tmp-step-000000001"
    partial.mkdir()
    with pytest.raises(RuntimeError, match="unexpected pos"), written_or_os_error(tmp_path, partial=partial):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 9792 vs 9684")
    assert not partial.exists()


def test_wandb_offline_writes_a_run_directory(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    out = tmp_path / "ckpt"
    run_pretraining(recipe("bundled:bert-tiny", tiny_corpus, out, max_steps=2), wandb=True,
                    name="tapt-acl", group="acl")
    assert list((tmp_path / "wandb_dir" / "wandb").glob("offline-run-*"))
    assert not (out / "wandb").exists()  # the checkpoint folder is the model artifact's contents


def test_the_compiled_step_gives_the_eager_losses(tiny_corpus, tmp_path):
    """recipe.compile (torch.compile of the encoder and the masked head + loss; on by default on a
    GPU) changes kernels, not the arithmetic: the same losses and held-out loss up to float rounding."""
    # No held-out documents: compiling the evaluation graphs too would double the test's time.
    runs = {compiled: run_pretraining(recipe("bundled:bert-tiny", tiny_corpus, tmp_path / f"c{compiled}",
                                             max_steps=3, heldout_documents=0, compile=compiled))
            for compiled in (False, True)}
    eager, compiled = runs[False], runs[True]
    assert compiled.recipe["compile"] is True and eager.recipe["compile"] is False
    assert compiled.final_train_loss == pytest.approx(eager.final_train_loss, abs=1e-4)
    untrained = run_pretraining(recipe("bundled:bert-tiny", tiny_corpus, tmp_path / "lr", max_steps=3,
                                       heldout_documents=0, lr=1e-9))
    assert abs(untrained.final_train_loss - eager.final_train_loss) > 1e-2   # the comparison can fail


def test_micro_batches_built_ahead_by_a_thread_equal_those_built_in_line(tmp_path):
    """The GPU's input pipeline (a producer thread, depth > 0) hands out exactly the micro-batches
    the CPU path builds when asked: masks and dropout seeds depend on (seed, step, place) only."""
    from dontstop.pretrain.mlm import BatchSchedule
    from dontstop.pretrain.pipeline import MicroBatchStream

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("bundled:bert-tiny"))
    path = tmp_path / "tokens.bin"
    write_token_stream(tokenizer, [f"sentence {i} of a small corpus for packing" for i in range(200)], path,
                       show_progress=False)
    sequences = PackedSequences(tokenizer, path, 16)
    schedule = BatchSchedule(PretrainRecipe("m", [], "o", epochs=3, batch_size=8, per_device_batch_size=4),
                             len(sequences), process=0, processes=1)
    end = schedule.total_steps
    inline = list(MicroBatchStream(schedule, sequences, tokenizer, 0.15, start=2, end=end))
    ahead = list(MicroBatchStream(schedule, sequences, tokenizer, 0.15, start=2, end=end, depth=3))
    assert len(inline) == len(ahead) == end - 2 and all(len(step) == 2 for step in ahead)
    for step_inline, step_ahead in zip(inline, ahead):
        for a, b in zip(step_inline, step_ahead):
            assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.labels, b.labels)
            assert torch.equal(a.attention_mask, b.attention_mask)
            assert (a.dropout_seed, a.tokens) == (b.dropout_seed, b.tokens)
    assert len({batch.dropout_seed for step in ahead for batch in step}) == 2 * (end - 2)
