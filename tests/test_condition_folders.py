"""A researcher's own condition folders, and where a study starts from: the mistakes made when
copying and editing a folder of experiments/, naming folders to `dontstop run`, or asking for
the released checkpoints, each refused when the folders (or the suite) are loaded, in one line
naming the file, line and key, before any work."""
import pytest

from dontstop.conditions import load_condition
from dontstop.fileio import UserError

KEYS = {"condition": "mine", "display": "Mine", "description": "x", "order": "3"}   # lines 1 to 4


def condition_folder(root, key, text):
    (root / key).mkdir(parents=True, exist_ok=True)
    (root / key / "config.yaml").write_text(text)
    return root / key


@pytest.mark.parametrize("keys, message", [
    ({"display": "''"}, r"config.yaml:2: key 'display': empty; it is the condition's table row"),
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
