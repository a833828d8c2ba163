"""A researcher's own condition folders, and where a study starts from: the mistakes made when
copying and editing a folder of experiments/, naming folders to `dontstop run`, or asking for
the released checkpoints, each refused when the folders (or the suite) are loaded, in one line
naming the file, line and key, before any work."""
import shutil

import pytest

from dontstop.condition_folders import load_condition_folders
from dontstop.conditions import EXPERIMENTS_DIR, load_condition, load_conditions
from dontstop.fileio import UserError
from dontstop.overrides import Override
from dontstop.suites import load_suite

from conftest import refused

KEYS = {"condition": "mine", "display": "Mine", "description": "x", "order": "3"}   # lines 1 to 4


@pytest.fixture
def experiments(tmp_path):
    """A copy of the shipped experiments/ (suites/ included: it is no condition)."""
    shutil.copytree(EXPERIMENTS_DIR, tmp_path / "experiments")
    return tmp_path / "experiments"


def condition_folder(root, key, text):
    (root / key).mkdir(parents=True, exist_ok=True)
    (root / key / "config.yaml").write_text(text)
    return root / key


@pytest.mark.parametrize("keys, message", [
    ({"display": "''"}, r"config.yaml:2: key 'display': empty; it is the condition's table row"),
    # a Markdown row split in two in table6.md, findings.md and significance.md
    ({"display": '"Mi\\nne"'}, r"config.yaml:2: key 'display': holds '\\n'; it is the condition's table row, one line"),
    ({"order": ".nan"}, r"config.yaml:4: key 'order': nan; must be a finite number"),      # sorted nowhere
    ({"stages": "[tapt]", "significance_against": "[mine]"},
     r"config.yaml:6: key 'significance_against': 'mine' is this condition \(a test against itself\)"),
    ({"stages": "[tapt]", "significance_against": "[tapt, tapt]"},
     r"config.yaml:6: key 'significance_against': 'tapt' given twice"),
    # they failed while planning: "unknown task None in suite 'mini'" / "task aclsum-sections: no curated pool"
    ({"stages": "['tapt:transfer']"}, r"config.yaml: key 'applies_to': 'all', but stage 'tapt:transfer' runs only "
     r"on tasks with a partner task in the same domain; set applies_to: transfer"),
    ({"stages": "[dapt, curated]", "applies_to": "knn"}, r"config.yaml:6: key 'applies_to': 'knn', but stage "
     r"'curated' runs only on tasks with a curated unlabeled pool; set applies_to: curated"),
])
def test_a_config_its_tables_or_plans_cannot_use_is_refused_at_load(tmp_path, keys, message):
    config = {**KEYS, **keys}
    text = "".join(f"{key}: {value}\n" for key, value in config.items())
    with pytest.raises(UserError, match=message):
        load_condition(condition_folder(tmp_path, "mine", text))


def test_a_key_and_folder_name_in_two_unicode_forms_say_so(tmp_path):
    """'tapt_é' must equal 'tapt_é' said nothing: the folder's é is e + a combining accent (NFD)."""
    text = "".join(f"{key}: {value}\n" for key, value in {**KEYS, "condition": "tapt_\u00e9"}.items())
    with pytest.raises(UserError, match="the same letters in another Unicode form, NFC and NFD"):
        load_condition(condition_folder(tmp_path, "tapt_e\u0301", text))


@pytest.mark.parametrize("make, found", [
    (lambda d: (d / "mine").mkdir(), r"\(empty\)"),
    (lambda d: shutil.copytree(d / "tapt", d / "mine", ignore=shutil.ignore_patterns("config.yaml")) and
     (d / "mine" / "config.yml").write_text("condition: mine\n"), r"\(it holds README.md, config.yml\)"),   # the typo
    (lambda d: (d / "mine").symlink_to(d / "nowhere"), r"\(a link to nothing\)"),
])
def test_a_folder_of_the_experiments_dir_without_config_yaml_is_refused(experiments, make, found):
    """It was skipped without a word: a condition that no command ran or reported."""
    (experiments / ".ipynb_checkpoints").mkdir()   # hidden, and suites/: no conditions, no problem
    load_conditions(experiments)
    make(experiments)
    with pytest.raises(UserError, match=rf"experiments/mine: a folder of .*experiments without config.yaml {found}; "
                       "every folder there but suites/ is a condition"):
        load_conditions(experiments)


def copy_of_tapt(experiments, key, display):
    """The shipped tapt folder copied as condition `key`, shown as `display`."""
    text = (experiments / "tapt" / "config.yaml").read_text()
    return condition_folder(experiments, key, text.replace("condition: tapt", f"condition: {key}")
                            .replace('display: "TAPT"', f'display: "{display}"'))


def test_two_conditions_whose_names_read_the_same_are_refused(experiments):
    """`display: "TAPT "` (a trailing space) made a second column that reads TAPT."""
    copy_of_tapt(experiments, "mine", "TAPT ")
    with pytest.raises(UserError, match=r"tapt/config.yaml: key 'display': 'TAPT' names condition 'mine' too"):
        load_conditions(experiments)


def test_two_conditions_differing_only_in_case_are_refused(experiments):
    """results/<suite>/<task>/Tapt and .../tapt are one folder on macOS and Windows."""
    copy_of_tapt(experiments, "Tapt", "Tapt")
    with pytest.raises(UserError, match=r"tapt/config.yaml: condition 'tapt' differs from condition 'Tapt' only in case"):
        load_conditions(experiments)
    with pytest.raises(UserError, match=r"Tapt/config.yaml: condition 'Tapt' differs from 'tapt' of .* only in case"):
        load_condition_folders([experiments / "tapt", experiments / "Tapt"], experiments)


def test_the_folders_given_to_run_are_checked_as_one(experiments, tmp_path, monkeypatch):
    tapt = experiments / "tapt"
    with pytest.raises(UserError, match=r"tapt/config.yaml: a file; give the condition's folder \(.*experiments/tapt\)"):
        load_condition_folders([str(tapt / "config.yaml")], experiments)   # it said ".../config.yaml/config.yaml: not found"
    monkeypatch.chdir(tapt)   # `dontstop run .` said: key 'condition': 'tapt' must equal the directory name ''
    assert [c.condition for c in load_condition_folders([".", str(tapt) + "/"], experiments)] == ["tapt"]   # once
    elsewhere = shutil.copytree(experiments / "dapt", tmp_path / "mine" / "tapt")
    config = elsewhere / "config.yaml"
    config.write_text(config.read_text().replace("condition: dapt", "condition: tapt"))   # other stages: [dapt]
    with pytest.raises(UserError, match=r"mine/tapt/config.yaml: condition 'tapt' is given twice \(also .*experiments/tapt\)"):
        load_condition_folders([tapt, elsewhere], experiments)
    # alone, its runs would land in results/<suite>/<task>/tapt/, read by the tables as TAPT
    with pytest.raises(UserError, match=r"mine/tapt/config.yaml: condition 'tapt' is also .*experiments/tapt, with "
                       r"stages \['tapt'\] there and \['dapt'\] here; both would write results/<suite>/<task>/tapt/"):
        load_condition_folders([elsewhere], experiments)
    shutil.copy(tapt / "config.yaml", config)   # a copy of the same stages: the same condition
    assert [c.stages for c in load_condition_folders([elsewhere], experiments)] == [["tapt"]]
    monkeypatch.chdir(tmp_path)   # `run tapt` for `run experiments/tapt`: "tapt/config.yaml: config file not found"
    with pytest.raises(UserError, match=rf"^tapt: no such condition folder; did you mean {experiments / 'tapt'}\?$"):
        load_condition_folders(["tapt"], experiments)
    with pytest.raises(UserError, match=r"^experiments/tpat: no such condition folder; the condition folders of "
                       rf"{experiments}: baseline, .*, tapt, tapt_lora, transfer_tapt$"):
        load_condition_folders(["experiments/tpat"], experiments)
    # a claim (or a significance test) naming a typo of a condition: accepted outside --experiments-dir
    own = shutil.copytree(experiments / "dapt_lora", tmp_path / "mine" / "lora_dapt")
    (own / "config.yaml").write_text((own / "config.yaml").read_text().replace("condition: dapt_lora", "condition: "
                                     "lora_dapt").replace("worse: dapt\n", "worse: dapt_lroa\n").replace(
                                     'display: "DAPT (LoRA)"', 'display: "LoRA DAPT"'))
    with pytest.raises(UserError, match=rf"^{own}/config.yaml: condition 'dapt_lroa' is not a folder of "
                                        rf"{experiments} nor one given$"):
        load_condition_folders([own], experiments)


def test_a_claim_on_a_table_that_does_not_show_its_conditions_is_refused(experiments, tmp_path):
    """Transfer-TAPT's `tables: ["6"]` edited to `["lora"]`: its claim was still tested on Table 6's
    tasks, a finding whose scores no table had; Table 3's ¬DAPT is tested on Table 5, one file."""
    config = experiments / "transfer_tapt" / "config.yaml"
    config.write_text(config.read_text().replace('tables: ["6"]', 'tables: ["lora"]'))
    message = (r"transfer_tapt/config.yaml: key 'claims': 'Transfer-TAPT is worse than TAPT' is tested on table '6', "
               r"which does not show condition 'transfer_tapt' \(its tables: lora\); add '6' to its tables, or test "
               r"the claim on a table that shows it$")
    with pytest.raises(UserError, match=message):
        load_conditions(experiments)
    own = shutil.copytree(experiments / "transfer_tapt", tmp_path / "mine" / "transfer_tapt")
    shutil.copy(EXPERIMENTS_DIR / "transfer_tapt" / "config.yaml", experiments / "transfer_tapt" / "config.yaml")
    with pytest.raises(UserError, match=message):   # a folder given to `dontstop run`
        load_condition_folders([own], experiments)
    tapt = experiments / "tapt" / "config.yaml"   # the claim's other condition, of the experiments folder
    tapt.write_text(tapt.read_text().replace('tables: ["5", "6",', 'tables: ["5",'))
    with pytest.raises(UserError, match=r"which does not show condition 'tapt' \(its tables: 5, 7, 8, 9, lora\)"):
        load_condition_folders([experiments / "transfer_tapt"], experiments)
    assert load_conditions(EXPERIMENTS_DIR)   # the shipped claims: ¬DAPT (Table 3) on Table 5 among them


def test_run_refuses_them_before_any_work(experiments, tmp_path, capsys):
    flags = ["--dry-run", "--results-dir", tmp_path / "results", "--cache-dir", tmp_path / "cache",
             "--experiments-dir", experiments]
    assert "a file; give the condition's folder" in refused(capsys, "run", experiments / "tapt" / "config.yaml", *flags)
    config = experiments / "tapt" / "config.yaml"
    config.write_text(config.read_text().replace("stages: [tapt]", "stages: [dapt]"))
    assert "is also" in refused(capsys, "run", EXPERIMENTS_DIR / "tapt", *flags)
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("flag, key, what", [
    ("--from-released", "from_released", "checkpoint"),
    ("--from-released-dapt", "from_released_dapt", "DAPT model"),
])
def test_starting_from_released_checkpoints_a_suite_has_none_of_is_refused(flag, key, what, tmp_path, capsys):
    """The mini suite's tasks (and a study's own) have no released checkpoint: the flag changed
    nothing, and every stage was pretrained here while the user believed otherwise."""
    with pytest.raises(UserError, match=rf"^{flag}: key '{key}': no task of suite 'mini' has a released {what} "
                       r"\(the paper suite's tasks have them\)"):
        load_suite("mini", overrides=[Override((key,), True, flag)])
    study = tmp_path / "study.yaml"
    study.write_text(f"name: mine\nextends: mini\n{key}: true\n")
    with pytest.raises(UserError, match=rf"study.yaml:3: key '{key}': no task of suite 'mine'"):
        load_suite(str(study))
    assert getattr(load_suite("paper", overrides=[Override((key,), True, flag)]), key)   # the paper's have
    assert flag in refused(capsys, "reproduce", flag, "--dry-run", "--results-dir", tmp_path / "results",
                           "--cache-dir", tmp_path / "cache", "--tables-dir", tmp_path / "tables")
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("flag, folder, top", [("--results-dir", "res", "res"), ("--cache-dir", "cache", "cache"),
                                               ("--tables-dir", ".", "mini")])
def test_an_output_folder_among_the_condition_folders_is_refused_before_any_work(flag, folder, top, experiments,
                                                                                tmp_path, capsys):
    """`--results-dir experiments/res` wrote its runs, then every command refused experiments/res
    (a folder without config.yaml); so did `--tables-dir experiments` (experiments/mini)."""
    given = (experiments / folder).resolve()
    line = refused(capsys, "reproduce", "--dry-run", "--experiments-dir", experiments, flag, given,
                   *(["--results-dir", tmp_path / "r"] if flag != "--results-dir" else []),
                   *(["--cache-dir", tmp_path / "c"] if flag != "--cache-dir" else []))
    written = given / "mini" if flag == "--tables-dir" else given
    assert line == (f"{flag} {written}: among the condition folders of {experiments.resolve()}, where "
                    f"{experiments.resolve() / top} would be a folder without config.yaml, which every command "
                    "refuses; give it a folder of its own")
    assert sorted(p.name for p in experiments.iterdir()) == sorted(p.name for p in EXPERIMENTS_DIR.iterdir())


def test_a_study_file_in_suites_keeps_its_tables_there(experiments, tmp_path):
    """A study kept in experiments/suites/ (found by `--suite <name>`) has its tables/ beside it:
    suites/ is no condition folder, so that is no place among them (it was refused as one)."""
    from dontstop.conditions import check_outside_conditions

    check_outside_conditions(experiments / "suites" / "tables" / "quick" / "study", experiments, "--tables-dir")
    check_outside_conditions(experiments / "tapt" / "results", experiments, "--results-dir")   # in a condition's own


@pytest.mark.parametrize("spelling", ["--experiments-dir", "--experiments"])
@pytest.mark.parametrize("command", ["run", "status", "aggregate"])
def test_an_experiments_dir_that_is_no_folder_is_one_line_naming_the_flag(command, spelling, tmp_path, capsys):
    """A file (or a folder not there) given as --experiments-dir said "experiments/tapt/config.yaml:
    condition 'baseline' is not a folder of <file>" (run) or "no condition folders" (status, aggregate)."""
    from dontstop.cli import main

    (tmp_path / "afile").write_text("")
    for given, what in ((tmp_path / "afile", "a file"), (tmp_path / "nope", "no such folder")):
        with pytest.raises(SystemExit) as stopped:   # argparse's own exit, as for every flag it refuses
            main([command, *(["experiments/tapt"] if command == "run" else []), spelling, str(given),
                  "--results-dir", str(tmp_path / "results"), *(["--dry-run"] if command == "run" else [])])
        assert stopped.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"dontstop: error: {command}: argument {spelling}: {given}: {what}; give the folder that holds the "
            f"condition folders ('dontstop {command} --help' lists the flags)")
    assert not (tmp_path / "results").exists()
