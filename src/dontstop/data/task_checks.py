"""The rules across a task's three splits: what `dontstop data check` reports of a task folder,
what `dontstop run` checks before any work (runner/inputs.py) and what a download must pass
(download.py), so that all three refuse the same files. Each split's own lines are
formats.parse_split's; here: a train split of one label, a dev or test label that train never
has, a held-out split that is a copy of another, and (warnings) dev/test text also in train, test
text also in dev (leakage), one text given two labels in a split, train labels that differ only in
case or width or are numbers among words, a train label of one example among frequent ones, and a
registry task whose splits do not hold its published numbers of examples.
"""
from __future__ import annotations

import difflib
import json
import unicodedata
from collections import Counter
from pathlib import Path

from ..tasks import SPLITS, Task
from .encoding import ENCODING
from .formats import Example, Problem, normalize, one_label_problem, parse_split
from .scripts import unpointed

# A train label of one example is warned of when every other label has at least this many: a typo
# then, most likely ('fr esh' once among 249 'fresh'), where a label set of rare classes has several.
LONE_LABEL_AMONG = 10


def check_task(directory: str | Path, task: Task | None = None) -> list[Problem]:
    """All problems of a task directory (see check_splits). What `dontstop data check` reports
    and what `dontstop run` checks before any work, so both refuse the same files."""
    directory = Path(directory)
    return check_splits({split: directory / f"{split}.jsonl" for split in SPLITS}, task)


def check_splits(paths: dict[str, Path], task: Task | None = None) -> list[Problem]:
    """All problems of a task's three split files: every line of each (errors), a train split
    of one label, a dev or test label that train never has, a held-out split that is a copy
    (errors: fine-tuning would score nothing real), dev/test text that also appears in train and
    test text in dev, and one text given two labels in a split (warnings: tolerated)."""
    labels = task.labels if task else None
    splits, problems = {}, []
    for split in SPLITS:
        splits[split], split_problems = parse_split(paths[split], labels)
        problems += split_problems
    train_labels = sorted({e.label for e in splits["train"]})
    if len(train_labels) == 1:
        problems.append(one_label_problem(paths["train"], train_labels[0]))
    if labels is None and splits["train"]:
        problems += _labels_unseen_in_train(paths, splits)
    # each text's key once (~14 us a text: RCT's 240K texts were normalized four times over)
    keys = {split: [normalize(e.text) for e in examples] for split, examples in splits.items()}
    problems += _copied_splits(paths, keys)
    problems += _leakage(paths, splits, keys, "train", ("dev", "test"))
    problems += _leakage(paths, splits, keys, "dev", ("test",))   # epochs chosen on test text
    return (problems + _two_labels(paths, splits, keys) + _labels_alike(paths, splits)
            + _numbers_among_words(paths["train"], splits["train"]) + _lone_labels(paths["train"], splits["train"])
            + unlike_published(paths, task))


def one_label_cut(train: list[Example], cut: int | None, path: str | Path) -> Problem | None:
    """The examples fine-tuning trains on, the first `cut` (finetune.max_train_examples) of train,
    hold two labels or more (a whole train split of one label is check_splits' error): a cut of
    one label trained a one-class classifier and wrote its metrics, exit 0."""
    labels = {e.label for e in train[:cut]} if cut and cut < len(train) else set()
    if len(labels) != 1:
        return None
    return Problem(str(path), None, "label", f"the first {cut} example(s), all that finetune.max_train_examples "
                   f"trains on, have the label {labels.pop()!r} alone; a classifier needs two labels or more")


def unlike_published(paths: dict[str, Path], task: Task | None) -> list[Problem]:
    """A warning when a registry task's splits do not hold the published numbers of examples: a
    mirror serving a sample, or a file cut short at a line's end, passes every other check (a
    sample is allowed: a rehearsal's stand-in data is one). Counts the non-blank lines."""
    if task is None or not task.sizes or not all(path.is_file() for path in paths.values()):
        return []
    counts = [sum(1 for line in paths[split].open("rb") if line.strip()) for split in SPLITS]
    if counts == list(task.sizes):
        return []
    where = Path(paths["train"]).parent
    return [Problem(str(where), None, None, f"train/dev/test hold {'/'.join(map(str, counts))} examples, the "
                    f"published {task.name} splits {'/'.join(map(str, task.sizes))} (a sample, or a copy cut "
                    "short?)", "warning")]


def _two_labels(paths: dict[str, Path], splits: dict[str, list[Example]], keys: dict[str, list[str]]
                ) -> list[Problem]:
    """A text given again with another label in the same split (two annotators' files joined): a
    warning, since some datasets label one text twice on purpose (a sentence per entity pair)."""
    problems = []
    for split, examples in splits.items():
        first: dict[str, Example] = {}
        for e, key in zip(examples, keys[split]):
            seen = first.setdefault(key, e)
            if seen.label != e.label:
                problems.append(Problem(str(paths[split]), e.line, "label", f"{e.label!r}, but line {seen.line} "
                                        f"has the same text with label {seen.label!r}", "warning"))
    return problems


def _labels_alike(paths: dict[str, Path], splits: dict[str, list[Example]]) -> list[Problem]:
    """Train labels that differ only in case or width (`Fresh` among `fresh`, a full-width `ｆｒｅｓｈ`),
    or in Arabic or Hebrew vowel marks or tatweel (`سِيَاسَة` among `سياسة`, as a vowelled source spells
    it): each is its own class, trained and scored silently. A warning, since some label sets are case-
    sensitive; NFC and NFD forms of a label are one label already (formats.parse_split)."""
    first: dict[str, Example] = {}
    said, problems = set(), []
    for e in splits["train"]:
        seen = first.setdefault(_case_and_width_folded(unpointed(e.label)), e)
        if seen.label != e.label and e.label not in said:   # each variant once, at its first line
            said.add(e.label)
            how = ("case or width" if _case_and_width_folded(e.label) == _case_and_width_folded(seen.label)
                   else "vowel marks or tatweel")   # Arabic, Hebrew: "سِيَاسَة" or "سياسـة" among "سياسة"
            problems.append(Problem(str(paths["train"]), e.line, "label", f"{e.label!r} differs from {seen.label!r} "
                                    f"(line {seen.line}) only in {how}: two classes (one label meant?)", "warning"))
    return problems


def _numbers_among_words(path: Path, train: list[Example]) -> list[Problem]:
    """Train labels written as JSON numbers among labels written as strings (`1` among "pos" and
    "neg": a cell a spreadsheet read as a number): each a class of its own, trained and scored
    silently. A warning, since a label set may mix them on purpose. The file is read again only
    when some labels read as numbers and some do not."""
    counts = Counter(e.label for e in train)
    numeric = {label for label in counts if _reads_as_number(label)}
    if not numeric or len(numeric) == len(counts):
        return []
    with open(path, encoding=ENCODING, errors="replace") as f:   # its lines as parse_split numbers them
        lines = f.readlines()
    written: dict[str, tuple[Example, object]] = {}   # label -> its first line written as a number, that number
    for e in train:
        if e.label in numeric and e.label not in written:
            value = json.loads(lines[e.line - 1])["label"]
            if not isinstance(value, str):
                written[e.label] = (e, value)
    words = sorted(set(counts) - set(written))
    return [Problem(str(path), e.line, "label", f"{value!r} is a number where the other labels are strings "
                    f"({', '.join(map(repr, words[:3]))}{', ...' if len(words) > 3 else ''}): a class of its own of "
                    f"{counts[label]} example(s) (a word meant?)", "warning")
            for label, (e, value) in written.items()]


def _lone_labels(path: Path, train: list[Example]) -> list[Problem]:
    """A train label of one example where every other label has LONE_LABEL_AMONG or more (a typo:
    `fr esh` once among 249 `fresh`): a class of its own, trained and scored silently. A warning,
    since a real class may be that rare."""
    counts = Counter(e.label for e in train)
    frequent = sorted(label for label, n in counts.items() if n > 1)
    fewest = min((counts[label] for label in frequent), default=0)
    if fewest < LONE_LABEL_AMONG:
        return []
    problems = []
    for e in train:
        if counts[e.label] == 1:
            close = difflib.get_close_matches(e.label, frequent, n=1)
            problems.append(Problem(str(path), e.line, "label", f"{e.label!r} labels this example alone, where "
                                    f"every other label has {fewest} or more: a class of its own "
                                    f"(a typo{f' of {close[0]!r}' if close else ''}?)", "warning"))
    return problems


def _reads_as_number(label: str) -> bool:
    try:
        float(label)
        return True
    except ValueError:
        return False


def _case_and_width_folded(label: str) -> str:
    """A label without case, its full-width and half-width forms (U+FF00-U+FFEF) as plain ones;
    NFKC alone would fold superscripts and circled digits too (x² and x2), which are no width. NFC
    last: a halfwidth voicing mark becomes a combining one, which joins its kana ("ﾎﾟｼﾞ" is "ポジ")."""
    folded = "".join(unicodedata.normalize("NFKC", c) if 0xFF00 <= ord(c) <= 0xFFEF else c for c in label)
    return unicodedata.normalize("NFC", folded).casefold()


def _copied_splits(paths: dict[str, Path], keys: dict[str, list[str]]) -> list[Problem]:
    """A dev or test split whose every text is in train, or in the other held-out split (a file
    copied over another): its scores would measure memory, or choose epochs on the test set."""
    texts = {split: set(split_keys) for split, split_keys in keys.items()}
    return [Problem(str(paths[split]), None, "text", f"every text also appears in {other}.jsonl "
                    "(a copied split?); held-out scores need text the model never saw")
            for split, other in (("dev", "train"), ("test", "train"), ("dev", "test"), ("test", "dev"))
            if texts[split] and texts[split] <= texts[other]]


def _labels_unseen_in_train(paths: dict[str, Path], splits: dict[str, list[Example]]) -> list[Problem]:
    train_labels = {e.label for e in splits["train"]}
    return [Problem(str(paths[split]), e.line, "label", f"{e.label!r} never occurs in train")
            for split in ("dev", "test") for e in splits[split] if e.label not in train_labels]


def _leakage(paths: dict[str, Path], splits: dict[str, list[Example]], keys: dict[str, list[str]],
             seen_in: str, held_out: tuple[str, ...]) -> list[Problem]:
    """Each text of the `held_out` splits that the `seen_in` split holds too (a warning)."""
    seen = set(keys[seen_in])
    return [Problem(str(paths[split]), e.line, "text", f"also appears in {seen_in}.jsonl (leakage)", "warning")
            for split in held_out for e, key in zip(splits[split], keys[split]) if key in seen]
