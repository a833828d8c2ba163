"""Each condition's README.md, rendered from its config.yaml (`dontstop readmes` writes them;
tests/test_plan.py checks that every shipped one equals its rendering), so that no README
repeats its config by hand and drifts from it. Notes of one's own go under a `## Notes` heading
at the end: `dontstop readmes` keeps that section as it is below a new rendering.

    # TAPT (`tapt`)

    Continued pretraining on the task's own unlabeled training text; paper Tables 5, 6, 7, 8, 9
    and our Table LoRA; applies to every task.

        dontstop run experiments/tapt --suite mini ...
"""
from __future__ import annotations

import re
from pathlib import Path

from .conditions import APPLIES_TO_TEXT, PAPER_TABLES, Condition, Conditions, load_conditions
from .fileio import atomic_write_text, raise_problems
from .suites import Suite, load_suite

README = "README.md"
NOTES = re.compile(r"^## Notes[ \t]*$", re.M)   # from this heading to the end, a README is one's own


def render_readme(condition: Condition, conditions: Conditions, paper: Suite) -> str:
    """The README of `condition`: its display name and key, description, tables, the tasks it
    applies to, and its commands (a task of the paper suite it applies to, and, for a condition
    outside the default run, the `reproduce` that runs it beside the rows it is compared with)."""
    paper_tables = [table for table in condition.tables if table in PAPER_TABLES]
    where = [f"paper Table{'s' if len(paper_tables) > 1 else ''} {', '.join(paper_tables)}"] if paper_tables else []
    where += ["our Table LoRA (not a paper table)"] if "lora" in condition.tables else []
    sentence = "; ".join([condition.description[:1].upper() + condition.description[1:],
                          " and ".join(where) or "in no table", f"applies to {APPLIES_TO_TEXT[condition.applies_to]}"])
    if not condition.default:
        sentence += "; not in the default run (`default: false`: name it with --conditions)"
    folder = f"experiments/{condition.condition}"
    task = next(key for key in paper.tasks if condition.applies(paper.task(key), paper))
    lines = [f"# {condition.display} (`{condition.condition}`)", "", sentence + ".", "",
             f"    dontstop run {folder} --suite mini                  # offline mini benchmark, all seeds",
             f"    dontstop run {folder} --suite paper --tasks {task}  # the paper's setting (GPU + network)"]
    if not condition.default:
        named = {conditions.baseline, condition.condition, *condition.significance_against,
                 *(claim.better for claim in condition.claims), *(claim.worse for claim in condition.claims)}
        compared = [c.condition for c in conditions if c.condition in named]
        lines.append(f"    dontstop reproduce --conditions {' '.join(compared)}   # beside the rows it is compared with")
    return "\n".join(lines) + "\n"


def write_readmes(experiments_dir: Path, check: bool = False) -> list[Path]:
    """Render the README of every condition folder under `experiments_dir`; returns those that
    differed (and, unless `check`, were rewritten)."""
    conditions, paper = load_conditions(experiments_dir), load_suite("paper")
    folders = {experiments_dir / c.condition / README: c for c in conditions}
    on_disk = {path: path.read_text(encoding="utf-8", errors="replace") for path in folders if path.is_file()}
    rendered = {path: render_readme(c, conditions, paper) + _own_notes(on_disk.get(path, ""))
                for path, c in folders.items()}
    differ = [path for path, text in rendered.items() if on_disk.get(path) != text]
    # a README of one's own in a condition folder (not a rendering: another title) was written over
    raise_problems([] if check else [f"{path}: a README `dontstop readmes` did not write (its title is not "
                                     f"{rendered[path].splitlines()[0]!r}), which it would replace; move it aside "
                                     "(notes of your own go under a '## Notes' heading at its end, which it keeps)"
                                     for path in differ if path in on_disk and not _rendered_title(on_disk[path])])
    for path in [] if check else differ:
        atomic_write_text(path, rendered[path])
    return differ


def _own_notes(text: str) -> str:
    """A README's `## Notes` section, from its heading to the end, after a blank line ('' if none)."""
    found = NOTES.search(text)
    return "\n" + text[found.start():] if found else ""


def _rendered_title(text: str) -> bool:
    """Whether a README's first line is a rendering's title, `# <display> (`<condition>`)`: of
    this condition, or of the one its folder was copied from."""
    return re.fullmatch(r"# .+ \(`[^`]+`\)", text.split("\n", 1)[0]) is not None
