"""`--set KEY=VALUE` and the flags that stand for suite keys: the same checks as the suite file,
recorded where a file's value is (the stage key, the run's resolved recipe), never mixed into
tables with results made without them; and the spellings this release renamed, still read."""
import dataclasses
import shutil
from pathlib import Path

import pytest

from conftest import metrics_record
from dontstop.cli import build_parser, expand_home, main
from dontstop.conditions import EXPERIMENTS_DIR, load_condition, load_conditions
from dontstop.fileio import UserError
from dontstop.config import parse_pairs
from dontstop.overrides import Override, folder, from_pairs, parse_set
from dontstop.report.write import aggregate
from dontstop.runner.finished import stale_results
from dontstop.runner.plan import plan_runs
from dontstop.suites import load_suite
from dontstop.unused_settings import unused_settings


def mini_with(mini_suite, *sets):
    """The mini suite on the fixture's data tree (its files sit at mini.yaml's relative paths),
    with `--set` values."""
    root = Path(mini_suite.data_dir).parent
    folders = [*folder("--data-dir", "data_dir", mini_suite.data_dir), *folder("--cache-dir", "cache_dir",
               str(root / "cache")), *folder("--results-dir", "results_dir", str(root / "results"))]
    return load_suite("mini", overrides=[*folders, *parse_set(list(sets))])


def test_a_set_value_is_read_as_yaml_into_its_section_keeping_the_others(mini_suite):
    suite = mini_with(mini_suite, "finetune.lr=1e-4", "recipes.dapt.max_steps=200", "seeds=[0, 1]",
                      "selection.k_scale=0.5", "recipes.dapt_lora.adapter.rank=4")
    mini = load_suite("mini")
    assert suite.finetune == {**mini.finetune, "lr": 1e-4}   # 1e-4 is a number, as YAML 1.2 says
    assert suite.recipes["dapt"] == {**mini.recipes["dapt"], "max_steps": 200}
    assert suite.recipes["dapt_lora"]["adapter"] == {"rank": 4} and suite.seeds == [0, 1]
    assert suite.selection == {**mini.selection, "k_scale": 0.5} and suite.tasks == mini.tasks


def test_a_study_merges_a_set_value_over_the_suite_it_extends(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text("name: lr-study\nextends: mini\nfinetune: {patience: 5}\n")
    suite = load_suite(str(study), overrides=parse_set(["finetune.lr=1e-4"]))
    assert suite.finetune == {**load_suite("mini").finetune, "patience": 5, "lr": 1e-4}



def test_a_mapping_set_to_a_merged_section_is_merged_as_a_study_files_is(mini_suite, tmp_path):
    """`--set 'finetune={epochs: 3}'` replaced mini's fine-tuning recipe with the code's defaults
    (lr 2e-5, 512 tokens, every example) and `--set 'recipes.tapt={epochs: 2}'` dropped mini's
    TAPT batch and length, without a word; a study file's sections were merged key by key."""
    mini = load_suite("mini")
    assert mini_with(mini_suite, "finetune={epochs: 3}").finetune == {**mini.finetune, "epochs": 3}
    assert mini_with(mini_suite, "recipes.tapt={epochs: 2}").recipes == {**mini.recipes, "tapt": {
        **mini.recipes["tapt"], "epochs": 2}}
    assert mini_with(mini_suite, "selection={k_scale: 0.5}").selection == {**mini.selection, "k_scale": 0.5}
    study = tmp_path / "study.yaml"
    study.write_text("name: lr-study\nextends: mini\nfinetune: {patience: 5}\n")
    suite = load_suite(str(study), overrides=parse_set(["finetune={lr: 1.0e-4}"]))
    assert suite.finetune == {**mini.finetune, "patience": 5, "lr": 1e-4}
    assert mini_with(mini_suite, "seeds=[3]").seeds == [3]   # a value of another key still replaces


@pytest.mark.parametrize("given, message", [
    ("finetune.learning_rate=1", "--set finetune.learning_rate=1: finetune: key 'learning_rate': unknown; known keys:"),
    ("finetune.lr=abc", "--set finetune.lr=abc: finetune: key 'lr': 'abc'; expected float"),
    ("finetune.lr=-1", "--set finetune.lr=-1: finetune: key 'lr': -1; must be > 0"),
    ("recipes.dapt.max_steps=0", "--set recipes.dapt.max_steps=0: recipes.dapt: key 'max_steps': 0; must be >= 1"),
    ("recipes.dapt.batch_size=7", "--set recipes.dapt.batch_size=7: recipes.dapt: key 'batch_size': 7; must be a "
                                  "multiple of per_device_batch_size 32"),
    ("recipes.dapt_lora.adapter.rank=0", "--set recipes.dapt_lora.adapter.rank=0: recipes.dapt_lora: adapter: "
                                         "key 'rank': 0; must be >= 1"),
    ("recipes.dpat.lr=1", "--set recipes.dpat.lr=1: key 'recipes': unknown recipe 'dpat'; known: base, dapt"),
    ("selection.dim=0", "--set selection.dim=0: selection: key 'dim': 0; must be in [1, 1024)"),
    ("selection.embeder=bow", "--set selection.embeder=bow: selection: key 'embeder': unknown; known keys: embedder"),
    ("seeds=[0, 0]", "--set seeds=[0, 0]: key 'seeds': seed 0 given twice"),
    ("seeds=zero", "--set seeds=zero: key 'seeds': expected list[int], got str 'zero'"),
    ("seeds.first=1", "--set seeds.first=1: key 'seeds' is not a mapping"),
    ("quick.seeds=[0]", "--set quick.seeds=[0]: key 'quick.seeds': expected dict[str, Any], got list [0]"),
    ("domain_corpora.cs=[1]", "--set domain_corpora.cs=[1]: key 'domain_corpora.cs': expected str, got list [1]"),
    ("seeds=[]", "--set seeds=[]: key 'seeds': empty; give at least one"),
    ("tasks=[]", "--set tasks=[]: key 'tasks': empty; give at least one"),
    ("tasks=[aclsum-rolse]", "--set tasks=[aclsum-rolse]: key 'tasks': unknown task 'aclsum-rolse' in suite 'mini'"),
    ("base_corpus=corpora/news.txt", "--set base_corpus=corpora/news.txt: key 'base_corpus': "),   # a domain's
    ('base_model=""', "--set base_model=\"\": key 'base_model': empty; give a hub id, bundled:<name> or a model "
                      "folder"),   # it was ".: not a model directory", naming no flag
    # "" was the data folder, "data/mini: a folder, not a file"; a folder or a device named no flag either
    # (nothing after '=' is YAML's null: no base stage, as `base_corpus:` in the file)
    ('base_corpus=""', "--set base_corpus=\"\": key 'base_corpus': empty; give a corpus file, or null for no base "
                       "stage"),
    ('domain_corpora.cs=""', "--set domain_corpora.cs=\"\": key 'domain_corpora.cs': empty; give the domain's "
                             "corpus file"),
    ("pools.cs=/", "--set pools.cs=/: key 'pools.cs': /: a folder, not a file"),
    ("curated.rt-polarity=/dev/null", "--set curated.rt-polarity=/dev/null: key 'curated.rt-polarity': /dev/null: a "
                                      "character device, not a regular file; give a file"),
    ("domain_corpora.cz=x.txt", "--set domain_corpora.cz=x.txt: key 'domain_corpora': unknown domain 'cz'"),
    ("learning_rate=1", "--set learning_rate=1: key 'learning_rate': unknown; known keys: name, base_model"),
    ("name=other", "--set name=other: key 'name' cannot be set here"),
    ("finetune.lr", "--set finetune.lr: expected KEY=VALUE"),
    ("finetune.lr=[1", "--set finetune.lr=[1: the value is not YAML"),
    # YAML 1.1's octal: seeds 0, 1, 8 ran, and 64 training examples, without a word
    ("seeds=[000, 001, 010]", "--set seeds=[000, 001, 010]: 000 is an octal number to YAML (0); write the number "
                              "without leading zeros, or quote it"),
    ("finetune.max_train_examples=0100", "--set finetune.max_train_examples=0100: 0100 is an octal number to YAML (64)"),
    # YAML 1.1's base 60: seed 65 alone ran, and an lr of 90, without a word
    ("seeds=[1:5]", "--set seeds=[1:5]: 1:5 is a number in base 60 to YAML (65); write one number, a list of them"),
    ("finetune.lr=1:30.5", "--set finetune.lr=1:30.5: 1:30.5 is a number in base 60 to YAML (90.5)"),
])
@pytest.mark.parametrize("command", ["reproduce", "run", "status", "aggregate"])
def test_a_bad_set_value_is_one_line_naming_the_flag(command, given, message, tmp_path, capsys):
    argv = [command, *(["experiments/tapt"] if command == "run" else []), "--set", given,
            "--results-dir", str(tmp_path / "results"), *(["--dry-run"] if command != "aggregate" else [])]
    assert main(argv) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"dontstop: error: {message}"), line
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("argv, message", [
    (["--set", "finetune.lr=1e-4", "--set", "finetune={epochs: 3}"],
     "--set finetune={epochs: 3}: sets key 'finetune', which --set finetune.lr=1e-4 sets a part of, or is part of; "
     "give each setting once"),
    (["--set", "domain_corpora.cs=/x.txt", "--domain-corpus", "cs=/y.txt"],
     "--domain-corpus cs=/y.txt: sets key 'domain_corpora.cs', which --set domain_corpora.cs=/x.txt sets too"),
    (["--set", "seeds=[0,1]", "--seeds", "2", "3"],
     "--seeds 2 3: runs in place of the suite's seeds, which --set seeds=[0,1] sets; give one of them"),
])
def test_two_flags_setting_one_value_are_one_line_naming_both(argv, message, tmp_path, capsys):
    """The later one replaced the earlier (the lr was lost; status showed seeds 2 and 3 alone)."""
    assert main(["reproduce", "--dry-run", "--results-dir", str(tmp_path / "results"), *argv]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"dontstop: error: {message}"), line
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("given, message", [
    ("seeds=[0,1,2]", "--quick runs quick_seeds ([0]) instead; set quick_seeds for a quick run"),
    ("finetune.epochs=3", "--quick runs quick.finetune.epochs (1) instead; set quick.finetune.epochs for a quick run"),
    ("recipes.tapt.epochs=2", "--quick runs quick.tapt.epochs (1) instead; set quick.tapt.epochs for a quick run"),
    ("finetune={lr: 1.0e-4, epochs: 3}", "--quick runs quick.finetune.epochs (1) instead; set quick.finetune.epochs"),
    ("probe=true", "--quick runs quick_probe (False) instead; set quick_probe for a quick run"),
])
@pytest.mark.parametrize("command", ["run", "status", "aggregate"])
def test_a_set_value_that_quick_replaces_is_refused_under_quick(command, given, message, tmp_path, capsys):
    """`--set seeds=[0,1,2] --quick` ran seed 0 alone, without a word: the suite's quick keys
    replace their full-run counterparts. A value --quick would ignore is one line naming its key."""
    argv = [command, *(["experiments/tapt", "--dry-run"] if command == "run" else []), "--quick", "--set", given,
            "--results-dir", str(tmp_path / "results")]
    assert main(argv) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"dontstop: error: --set {given}: {message}"), line
    assert not (tmp_path / "results").exists()


def test_a_set_value_that_quick_keeps_or_its_quick_key_passes_under_quick(tmp_path, capsys):
    for given in ("quick_seeds=[0,1]", "quick.tapt.epochs=2", "seeds=[0]", "finetune.epochs=1", "finetune.lr=1e-4",
                  "recipes.tapt.lr=1e-4"):
        assert main(["run", "experiments/tapt", "--tasks", "rt-polarity", "--dry-run", "--quick", "--set", given,
                     "--results-dir", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")]) == 0, given
    assert "fine-tuning: 2 run(s) to do" in capsys.readouterr().out   # quick_seeds=[0,1]


@pytest.mark.parametrize("given, message", [
    ("quick.tapt.epochs=2", "a run without --quick runs recipes.tapt.epochs (8) instead; set recipes.tapt.epochs, "
                            "or add --quick"),
    ("quick_seeds=[0,1,2]", "a run without --quick runs seeds ([0, 1, 2, 3, 4]) instead; set seeds, or add --quick"),
    ("quick.finetune={epochs: 3}", "a run without --quick runs finetune.epochs (15) instead; set finetune.epochs"),
    ("quick.selection.k_scale=0.5", "a run without --quick runs selection.k_scale (0.1) instead"),
    ("quick_probe=true", "a run without --quick runs probe (True) instead; set probe, or add --quick"),
])
@pytest.mark.parametrize("command", ["reproduce", "run", "status", "aggregate"])
def test_a_quick_key_set_without_quick_is_refused(command, given, message, tmp_path, capsys):
    """`reproduce --set quick.tapt.epochs=2` ran TAPT for mini's 8 epochs, without a word: a full
    run reads the full keys. The opposite of test_a_set_value_that_quick_replaces_is_refused_under_quick
    (aggregate refuses quick_seeds and quick_probe as keys that only choose runs, first)."""
    argv = [command, *(["experiments/tapt"] if command == "run" else []), "--set", given,
            "--results-dir", str(tmp_path / "results"), *(["--dry-run"] if command != "aggregate" else [])]
    assert main(argv) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    if command == "aggregate" and given.startswith(("quick_seeds", "quick_probe")):
        message = "aggregate tables every run it finds"
    assert line.startswith(f"dontstop: error: --set {given}: {message}"), line
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("argv, message", [
    # the bow embedder loads no model: the kNN stages were built again under a new key, to the same
    # selection, and every finished kNN run called stale
    (["--set", "selection.encoder_model=bundled:minilm"],
     "--set selection.encoder_model=bundled:minilm: only the encoder embedder reads it, and selection.embedder is "
     "bow; set selection.embedder=encoder too, or leave it out"),
    (["--set", "selection={embedder: encoder, dim: 64}"],
     "--set selection={embedder: encoder, dim: 64}: only the bow embedder reads it (the encoder's vectors are its "
     "model's hidden size), and selection.embedder is encoder; set selection.embedder=bow too, or leave it out"),
    (["--set", "selection.nprobe=4"], "--set selection.nprobe=4: only the ivf index reads it (a flat index compares "
                                      "every vector), and selection.index is flat; set selection.index=ivf too"),
    (["--quick", "--set", "quick.selection.bow_tokens=scripts", "--set", "selection.embedder=encoder"],
     "--set quick.selection.bow_tokens=scripts: only the bow embedder reads it, and selection.embedder is encoder"),
    # mini's tasks are low-resource, fine-tuned at a constant rate: every run was redone, to the same numbers
    (["--set", "finetune.warmup_ratio=0.2"],
     "--set finetune.warmup_ratio=0.2: only the linear schedule reads it, and every task of suite mini fine-tunes on "
     "the constant one (finetune.schedule is not set: each task's profile chooses it); set finetune.schedule=linear "
     "too, or leave it out"),
    (["--set", "finetune={schedule: constant, warmup_ratio: 0.2}"],
     "--set finetune={schedule: constant, warmup_ratio: 0.2}: only the linear schedule reads it, and every task of "
     "suite mini fine-tunes on the constant one (finetune.schedule is constant)"),
    (["--set", "base_corpus=", "--set", "recipes.base.lr=1e-3"],
     "--set recipes.base.lr=1e-3: the base stage's recipe, and suite mini has no base stage (base_corpus is null); "
     "give base_corpus a corpus file to add one, or leave it out"),
    (["--suite", "paper", "--quick", "--set", "quick.base={max_steps: 5}"],
     "--set quick.base={max_steps: 5}: the base stage's recipe, and suite paper has no base stage"),
    # mini's TAPT (LoRA) stages run tapt_lora: tapt_large_lora is the paper's large tasks'
    (["--set", "recipes.tapt_large_lora.lr=1e-3"],
     "--set recipes.tapt_large_lora.lr=1e-3: no stage of suite mini reads it: the TAPT of each of its tasks runs "
     "recipes.tapt, not recipes.tapt_large; set recipes.tapt_lora, or leave it out"),
    (["--suite", "paper", "--set", "tasks=[ag, imdb]", "--set", "recipes.tapt_lora.lr=1e-3"],
     "--set recipes.tapt_lora.lr=1e-3: no stage of suite paper reads it: the TAPT of each of its tasks runs "
     "recipes.tapt_large, not recipes.tapt; set recipes.tapt_large_lora, or leave it out"),
    # mini's kNN- and RAND-TAPT run on ACL-Roles (Table 8's tasks): a reviews pool changed nothing
    (["--pool", "reviews=/x/reviews.jsonl"],
     "--pool reviews=/x/reviews.jsonl: no task of suite mini selects from a pool of domain reviews: kNN- and "
     "RAND-TAPT run on the tasks of its selection study alone (aclsum-roles); leave it out"),
    (["--set", "tasks=[rt-polarity]", "--set", "pools.cs=/x/cs.jsonl"],
     "--set pools.cs=/x/cs.jsonl: no task of suite mini is of domain cs, so none selects from its pool"),
    (["--suite", "paper", "--set", "tasks=[ag, imdb]", "--set", "selection.k_scale=0.5"],
     "--set selection.k_scale=0.5: no task of suite paper selects: kNN- and RAND-TAPT run on the tasks of its "
     "selection study (chemprot, rct-sample, citation_intent), and none of them is among its tasks; leave it out"),
    # every DAPT model of the paper's domains is released: the dapt recipe reaches DAPT (LoRA) alone
    (["--suite", "paper", "--set", "from_released_dapt=true", "--set", "recipes.dapt.lr=1e-4"],
     "--set recipes.dapt.lr=1e-4: no stage of suite paper reads it: DAPT starts from the released models "
     "(from_released_dapt), and DAPT (LoRA) runs recipes.dapt_lora.lr (0.002) in its place; set "
     "recipes.dapt_lora.lr, or leave it out"),
    (["--suite", "paper", "--quick", "--set", "quick_probe=true"],
     "--set quick_probe=true: a quick run probes where probe and quick_probe both say so, and probe is false; "
     "set probe=true too, or leave it out"),
])
def test_a_set_value_no_run_of_the_suite_reads_is_refused(argv, message, tmp_path, capsys):
    """A setting the suite's runs never read was accepted without a word, exit 0; where it is part of a
    stage's key or a run's recipe, the runs made before it were redone to the same numbers, as stale.
    aggregate refuses it too (it has no --pool; quick_probe it refuses as a key that only chooses runs)."""
    for command in ["reproduce", *(["aggregate"] if "--pool" not in argv and "quick_probe=true" not in argv else [])]:
        assert main([command, *argv, "--results-dir", str(tmp_path / "results"),
                     *(["--dry-run"] if command != "aggregate" else [])]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"dontstop: error: {message}"), (command, line)
        assert not (tmp_path / "results").exists()


def test_a_set_value_read_once_its_deciding_key_is_set_too_passes(tmp_path, capsys):
    """What each refusal above asks for runs: the key that decides it, set beside it."""
    for given in (["selection.embedder=encoder", "selection.encoder_model=bundled:minilm"],
                  ["selection.index=ivf", "selection.nprobe=4"], ["finetune.schedule=linear", "finetune.warmup_ratio=0.2"],
                  ["recipes.base.lr=1e-3"], ["quick.selection.dim=64"], ["recipes.tapt_lora.lr=1e-3"]):
        flags = [flag for setting in given for flag in ("--set", setting)]
        assert main(["run", "experiments/knn_tapt_50", "--tasks", "aclsum-roles", "--dry-run", "--quick", *flags,
                     "--results-dir", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")]) == 0, given
    capsys.readouterr()
    # DAPT (LoRA) takes the dapt recipe's steps (its own section gives the lr alone)
    overrides = [Override(("from_released_dapt",), True, "--from-released-dapt"),
                 *parse_set(["recipes.dapt.max_steps=100"])]
    assert unused_settings(load_suite("paper", overrides=overrides), overrides, quick=False) == []



def test_a_setting_read_by_a_condition_folder_of_ones_own_passes(tmp_path, capsys):
    """A condition folder of one's own is a run of the suite too: one that selects on every task
    (`applies_to: all`) reads every domain's pool and the selection settings, one that pretrains
    DAPT after TAPT builds DAPT from recipes.dapt under from_released_dapt. Both were refused as
    read by no run (only experiments/'s conditions were looked at), so those runs could not be made."""
    experiments = tmp_path / "experiments"
    shutil.copytree(EXPERIMENTS_DIR, experiments, ignore=shutil.ignore_patterns("suites"))
    for key, stages in (("knn_all", "[knn:50]"), ("tapt_dapt", "[tapt, dapt]")):
        (experiments / key).mkdir()
        (experiments / key / "config.yaml").write_text(f"condition: {key}\ndisplay: {key}\ndescription: mine\n"
                                                       f"order: 20\nstages: {stages}\napplies_to: all\n")
    pool = tmp_path / "reviews.jsonl"
    pool.write_text('{"text": "a review"}\n')
    common = ["--dry-run", "--results-dir", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")]
    for argv in (["run", str(experiments / "knn_all"), "--tasks", "rt-polarity", "--pool", f"reviews={pool}"],
                 ["reproduce", "--experiments-dir", str(experiments), "--conditions", "knn_all",
                  "--tasks", "rt-polarity", "--set", "tasks=[rt-polarity]", "--set", "selection.k_scale=0.5",
                  "--tables-dir", str(tmp_path / "tables")]):
        assert main([*argv, *common]) == 0, (argv, capsys.readouterr().err)
    capsys.readouterr()
    overrides = [Override(("from_released_dapt",), True, "--from-released-dapt"), *parse_set(["recipes.dapt.lr=1e-4"])]
    paper = load_suite("paper", overrides=overrides)
    assert unused_settings(paper, overrides, False, load_conditions(experiments)) == []
    [line] = unused_settings(paper, overrides, False, load_conditions(EXPERIMENTS_DIR))   # the shipped ones
    assert line.startswith("--set recipes.dapt.lr=1e-4: no stage of suite paper reads it"), line

def test_the_same_key_set_twice_is_refused():
    with pytest.raises(UserError, match="--set finetune.lr=2: key 'finetune.lr' given twice"):
        parse_set(["finetune.lr=1", "finetune.lr=2"])


def test_a_folder_or_path_flag_starting_with_a_tilde_is_under_the_home_folder(tmp_path, monkeypatch, capsys):
    """`--results-dir=~/runs`, `--out=~/ck`, `--set results_dir=~/r` (and `--domain-corpus
    'cs=~/cs.txt'`, quoted) reach the program with the ~ the shell left: a folder named ~ was made
    in the working folder, and `status` said "results in ~/runs/mini", which reads as the home
    folder; a study file's ~ was the home folder."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    assert main(["status", "--results-dir=~/runs", "--cache-dir=~/cache"]) == 0
    assert f"suite mini: results in {home / 'runs' / 'mini'}" in capsys.readouterr().out
    assert not list(work.iterdir())
    [corpus] = from_pairs("--domain-corpus", "domain_corpora", parse_pairs(["cs=~/cs.txt"], "--domain-corpus"),
                          ["cs=~/cs.txt"])
    assert corpus.value == str(home / "cs.txt") and corpus.given == "--domain-corpus cs=~/cs.txt"
    # --set of a built-in suite: its paths were ./~/r, or data/mini/~/x.txt (a study file's were expanded)
    assert main(["status", "--set", "results_dir=~/r"]) == 0
    assert f"suite mini: results in {home / 'r' / 'mini'}" in capsys.readouterr().out
    assert parse_set(["domain_corpora={cs: ~/x.txt}"])[0].value == {"cs": str(home / "x.txt")}
    args = expand_home(build_parser().parse_args(["pretrain", "--model", "m", "--out=~/ck", "--corpus", "~/a.txt", "b.txt"]))
    assert (args.out, args.corpus) == (str(home / "ck"), [str(home / "a.txt"), "b.txt"])
    assert expand_home(build_parser().parse_args(["analyze", "vocab", "--out=~/an"])).out == str(home / "an")
    (home / "exps").mkdir()   # its check ran before the ~ was expanded: "~/exps: no such folder"
    assert expand_home(build_parser().parse_args(["status", "--experiments-dir=~/exps"])).experiments_dir == \
        str(home / "exps")


def test_an_override_is_a_new_stage_key_and_makes_finished_runs_stale(mini_suite):
    """The stage key covers the resolved recipe (a --set recipe value builds a new checkpoint), and
    a finished run made without a --set fine-tuning value is stale under it (runner/finished.py),
    so neither is reused for the other."""
    from dontstop.finetune.trainer import resolve_recipe
    from dontstop.runner.job_actions import finetune_recipe

    tapt = load_condition(EXPERIMENTS_DIR / "tapt")
    plain = mini_with(mini_suite)
    [before] = plan_runs(plain, tapt, ["rt-polarity"], [0])
    [after] = plan_runs(mini_with(mini_suite, "recipes.tapt.lr=1e-3"), tapt, ["rt-polarity"], [0])
    assert after.stages[0].key == before.stages[0].key            # the base stage: its recipe did not change
    assert after.stages[1].key != before.stages[1].key and after.model != before.model
    recipe = resolve_recipe(finetune_recipe(before, plain, 0), before.task)
    metrics_record(task="rt-polarity", condition="tapt", model=before.model, lineage=before.lineage,
                   config=dataclasses.asdict(recipe)).write(before.run_dir(0))
    assert stale_results([before], plain, allow_mixed=True) == []
    changed = mini_with(mini_suite, "finetune.lr=1e-3")
    [stale] = stale_results(plan_runs(changed, tapt, ["rt-polarity"], [0]), changed, allow_mixed=True)
    assert stale.path == before.run_dir(0) / "metrics.json" and stale.reason.startswith("lr: finished with 0.0002")
    [stale] = stale_results([after], plain, allow_mixed=True)      # a --set recipe: another starting checkpoint
    assert stale.reason.startswith("starting checkpoint")


def test_tables_never_mix_runs_of_two_settings(tmp_path):
    results = tmp_path / "results"
    for condition, lr in (("baseline", 2e-4), ("tapt", 1e-4)):   # the second made under --set finetune.lr=1e-4
        metrics_record(condition=condition, config={"lr": lr, "seed": 0}).write(
            results / "mini" / "aclsum-roles" / condition / "seed_0")
    with pytest.raises(UserError, match=r"tapt/seed_0/metrics.json: finetune.lr of aclsum-roles is 0.0001 here "
                                        r"and 0.0002 in .*baseline/seed_0/metrics.json: runs made from other"):
        aggregate("mini", results, tmp_path / "tables")


@pytest.mark.parametrize("old, new, value", [
    (["--results", "R"], "--results-dir", ("results_dir", "R")),
    (["--out", "T"], "--tables-dir", ("tables_dir", "T")),
    (["--experiments", str(EXPERIMENTS_DIR)], "--experiments-dir", ("experiments_dir", str(EXPERIMENTS_DIR))),
    (["--allow-mixed"], "--no-mixed-warning", ("no_mixed_warning", True)),
])
def test_aggregates_old_spellings_still_work_with_a_note(old, new, value, capsys):
    args = build_parser(["aggregate"]).parse_args(["aggregate", *old])
    assert getattr(args, value[0]) == value[1]
    assert capsys.readouterr().err == (f"dontstop: note: {old[0]} is deprecated and will be removed in the next "
                                       f"release; use {new}\n")


@pytest.mark.parametrize("command, old, new, value", [
    ("run", ["--task", "rt-polarity"], "--tasks", ("tasks", ["rt-polarity"])),
    ("reproduce", ["--published"], "--from-released", ("from_released", True)),
    ("status", ["--published-dapt"], "--from-released-dapt", ("from_released_dapt", True)),
    ("reproduce", ["--experiments", str(EXPERIMENTS_DIR)], "--experiments-dir",
     ("experiments_dir", str(EXPERIMENTS_DIR))),
    ("pretrain", ["--exclude-heldout-of", "T"], "--exclude-dev-test-of", ("exclude_dev_test_of", ["T"])),
    ("select", ["--exclude-from", "T"], "--exclude-dev-test-of", ("exclude_dev_test_of", ["T"])),
])
def test_the_runners_old_spellings_still_work_with_a_note(command, old, new, value, capsys):
    argv = [command, *(["experiments/tapt"] if command == "run" else []), *old]
    required = {"pretrain": ["--model", "m", "--corpus", "c", "--out", "o"],
                "select": ["--task-text", "t", "--pool", "p", "--out", "o"]}
    args = build_parser([command]).parse_args(argv + required.get(command, []))
    assert getattr(args, value[0]) == value[1]
    assert (f"dontstop: note: {old[0]} is deprecated and will be removed in the next release; use {new}\n"
            in capsys.readouterr().err)


def test_a_suite_files_renamed_keys_still_read_with_a_note(tmp_path, capsys):
    study = tmp_path / "study.yaml"
    study.write_text("name: old-keys\nextends: paper\npublished: true\n")
    suite = load_suite(str(study))
    assert suite.from_released and suite.dapt_from_released
    assert f"{study}:3: key 'published' is deprecated" in capsys.readouterr().err


def test_the_shipped_conditions_plan_under_a_set_value(mini_suite):
    suite = mini_with(mini_suite, "seeds=[3]")
    plans = [plan for condition in load_conditions() for plan in plan_runs(suite, condition)]
    assert plans and {tuple(plan.seeds) for plan in plans} == {(3,)}
