"""`dontstop init-study DIR`: a commented study.yaml and the folders it names, to fill with your
own task and domain text (study_file.py reads the file; README "Your own task").

    DIR/study.yaml             the study: its name, model, task, domain corpora (edit it)
    DIR/README.md              what goes where, and the commands
    DIR/data/my-task/          train.jsonl, dev.jsonl, test.jsonl: {"text": ..., "label": ...} a line
    DIR/corpora/               my-domain.txt: unlabeled text of the task's domain, one document a line
"""
from __future__ import annotations

from pathlib import Path

from ..conditions import EXPERIMENTS_DIR, check_outside_conditions
from ..fileio import UserError, atomic_write_text, check_writable_dir, wrong_kind
from ..study_file import is_folder_name
from ..tasks import QUICK_FOLDER, SUITES

SUBFOLDERS = ("data", "data/my-task", "corpora")   # the folders init-study makes, a parent before its child

STUDY_TEMPLATE = """\
# Does DAPT or TAPT help my task? A study file of dontstop (README: "Your own task").
# Relative paths are relative to this file's folder. From this folder:
#   dontstop reproduce --suite study.yaml --dry-run    # the plan, what is skipped and why, the cost
#   dontstop reproduce --suite study.yaml              # every condition, then tables/{name}/
name: "{name}"               # results/{name}/, tables/{name}/; not a built-in suite's name
extends: mini                # recipes, seeds and every key not given here come from this suite
base_model: bundled:bert-tiny   # tiny and uncased English (it strips accents): for your language a
                             # Hugging Face encoder with an MLM head (e.g. klue/roberta-base), or a local model folder
base_corpus: null            # null: the model above is the baseline ("RoBERTa" in the tables);
                             # a file: first MLM on it (the mini suite's base stage). bert-tiny's own
                             # MLM head was trained for retrieval (~8 nats of MLM loss): with it, give a file
seeds: [0, 1, 2, 3, 4]       # fine-tuning seeds: 5 as the paper; 3 or more are compared seed by seed
tasks:
  my-task:                   # the task key: results/{name}/my-task/<condition>/seed_<n>/
    display: "My task"       # its row in every table
    data: data/my-task       # train.jsonl, dev.jsonl, test.jsonl; labels are read from train
    metric: macro_f1         # macro_f1 | micro_f1 | accuracy
    domain: my-domain        # DAPT trains on this domain's corpus
    # profile: low           # low: 10 fine-tuning epochs, high: 3 (unless finetune.epochs says)
domain_corpora:              # unlabeled text, one document a line (.txt) or {{"text": ...}} (.jsonl)
  my-domain: corpora/my-domain.txt
  # other-domain: corpora/other.txt   # a second domain: ¬DAPT (DAPT on the wrong domain) runs too
# pools: {{my-domain: pools/my-domain.jsonl}}   # kNN-TAPT and RAND-TAPT candidates of the domain
# selection: {{bow_tokens: scripts, unit: sentence, query_unit: sentence}}   # kNN's words: scripts (any language,
#   the default) | sklearn; its candidates: a sentence of a pool line (the default, the paper's) | line (the
#   whole line); its queries: each sentence of a task text (the default, the paper's) | text (the whole text)
# curated: {{my-task: curated/my-task.txt}}     # Curated-TAPT: more unlabeled text like the task's
# A second task of the same domain gets Transfer-TAPT (TAPT on the other task's text).
# recipes: {{dapt: {{max_steps: 1000}}}}        # merged key by key into the extended suite's
# finetune: {{max_train_examples: null, max_length: 256, epochs: null}}   # mini's recipe, which `extends` brings,
#   fine-tunes on the first 200 training examples of a task, cut at 64 tokens, for 15 epochs at most (lr 2e-4);
#   this line: every example, 256 tokens, the profile's epochs. The dry run prints the recipe the runs get.
"""

README_TEMPLATE = """\
# Study `{name}`

Fill these, then run the commands at the top of study.yaml from this folder.

- `data/my-task/train.jsonl`, `dev.jsonl`, `test.jsonl`: one JSON object a line,
  `{{"text": "...", "label": "..."}}` (an `id` is optional). Every dev and test label must occur in train.
- `corpora/my-domain.txt`: unlabeled text of the task's domain, one document a line (DAPT).
- `study.yaml`: the model for your language, the task's display name and metric, more tasks,
  domains, pools or curated text; rename `my-task` and `my-domain` as you like.

`dontstop data check data` validates the task files. Results go to `results/{name}/`, the tables,
findings, plots and an executed results notebook to `tables/{name}/`.
"""


def name_of(folder_name: str) -> str:
    """The study's name from its folder's: each run of characters a name cannot hold becomes one
    '-' (combining marks stay: "हिंदी अध्ययन" -> "हिंदी-अध्ययन")."""
    kept = "".join(c if is_folder_name(f"a{c}") else " " for c in folder_name)
    return "-".join(kept.split()).strip("-.")


def init_study(folder: Path, name: str | None = None) -> Path:
    """Write DIR/study.yaml, DIR/README.md and the data folders; returns the study file. An
    existing study.yaml is never replaced."""
    folder = Path(folder)
    if name is not None and not name.strip():   # taken as no name: the folder's was used, without a word
        raise UserError(f"--name {name!r}: empty; give the study's name, or leave --name out for the folder's")
    flag = name is not None   # else the folder's name: `init-study Mini` said "--name Mini", a flag not given
    name = name or name_of(folder.resolve().name) or "my-study"
    if name.casefold() in (*SUITES, QUICK_FOLDER):   # `Paper` too: the loader refuses a name of another case
        raise UserError(f"{'--name ' if flag else ''}{name}{'' if flag else ' (the folder name)'}: a study needs a "
                        f"name of its own, not a built-in suite's ({', '.join(SUITES)}) nor {QUICK_FOLDER} (`--quick` "
                        f"runs' folder){'' if flag else '; give one with --name'}")
    if not is_folder_name(name):   # "a/b" was told "not paper, mini"
        raise UserError(f"--name {name}: not a folder name (its results and tables go in a folder of that name: "
                        "letters, digits, '-', '_' and '.', no '/')")
    # experiments/my-study: a folder without config.yaml among the conditions', which every later command refused
    check_outside_conditions(folder, EXPERIMENTS_DIR, "init-study")
    check_writable_dir(folder)
    study, readme = folder / "study.yaml", folder / "README.md"
    for path in (study, readme):
        if path.exists():
            raise UserError(f"{path}: already exists; choose another folder")
    # every folder it makes checked before the first is made: a file named `corpora` was "File exists",
    # exit 1, once data/my-task/ had been made (a file `data`: "Not a directory")
    subs = [folder / sub for sub in SUBFOLDERS]
    for sub in subs:
        if what := wrong_kind(sub, folder=True):
            raise UserError(f"{sub}: {what} (init-study makes the folder {sub.relative_to(folder)}/ there); "
                            "move it away, or choose another folder")
        check_writable_dir(sub)
    for sub in subs:
        sub.mkdir(parents=True, exist_ok=True)
    atomic_write_text(readme, README_TEMPLATE.format(name=name))
    atomic_write_text(study, STUDY_TEMPLATE.format(name=name))
    return study
