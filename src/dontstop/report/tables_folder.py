"""Where a suite's tables go, and whose they are: checked before any work by `aggregate` and
`reproduce`, which write them. Apart from report/write.py so that the runner's commands (`run`,
`status`, `--dry-run`) check it without loading the plotting libraries (1.3 s of matplotlib,
seaborn and pandas on a 2-core CPU)."""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

from ..conditions import check_outside_conditions
from ..fileio import UserError, check_writable_dir
from ..suites import Suite, analysis_dir, checkpoints_dir
from ..tasks import QUICK_FOLDER

# What others write into a suite's tables folder, kept when an aggregate replaces the tables:
# `dontstop analyze`'s domain analysis, and the notebook `reproduce` executes for a study file.
ANALYSIS, STUDY_NOTEBOOK = "analysis", "results.ipynb"
KEPT = (ANALYSIS, STUDY_NOTEBOOK)
# The index's second line: the command that makes the tables again, and the runs they come from.
WRITTEN_BY = "Written by `{command}` from {runs}/**/metrics.json."
WRITTEN_FROM = re.compile(r"^Written by `.*` from (?P<runs>.+)/\*\*/metrics\.json\.$", re.MULTILINE)
# The line under it, for the checks (an HTML comment, not shown): the runs folder relative to the
# index's own folder. The `Written by` line names it as the call was given it, relative to THAT call's
# working folder: `--results-dir results` from other/ was read by an aggregate in proj/ as proj's runs,
# which wrote over other's tables. Relative to the tables, it holds for a project copied or moved with
# them, and committed tables keep no machine's path. With links resolved too, where that differs: a runs
# folder linked to scratch space, moved with the project, is found by the first; tables reached by
# another (linked) name, by the second.
RUNS_HERE = "<!-- the runs folder, from this one: {runs} -->"
RUNS_HERE_FOUND = re.compile(r"^<!-- the runs folder, from this one: (?P<runs>.+?)"
                             r"(?: \(links resolved: (?P<resolved>.+)\))? -->$", re.MULTILINE)


def index_source(command: str, runs_folder: Path, out_dir: Path) -> list[str]:
    """The index's lines that name the runs the tables in `out_dir` are made from, `runs_folder`
    (as given), and the command that makes them again."""
    named = Path(os.path.relpath(os.path.abspath(runs_folder), os.path.abspath(out_dir))).as_posix()
    resolved = Path(os.path.relpath(runs_folder.resolve(), out_dir.parent.resolve() / out_dir.name)).as_posix()
    return [WRITTEN_BY.format(command=command, runs=runs_folder.as_posix()),
            RUNS_HERE.format(runs=named if resolved == named else f"{named} (links resolved: {resolved})")]


def check_tables_root(tables_root: Path, suite: Suite, experiments_dir: Path) -> None:
    """Before any work (`reproduce` writes the tables after every run): each folder the tables,
    plots and domain analysis go into can be written (a read-only plots folder, or a file in its
    place, failed once the tables had been replaced: half old, half new), none lies among the
    runs of <results>/<suite> or the stages of <cache>/<suite> (or holds them), which replacing
    the folder would delete, and none holds the tables of other runs (`reproduce --results-dir
    results-lr` replaced paper_tables/mini, the default run's, which the README shows) or files no
    aggregate wrote (its index names the runs and links every file it wrote; `analysis/` is
    `dontstop analyze`'s). The tables' root too: they are written beside their folder first
    (written_whole). Nor among the condition folders of `experiments_dir`
    (conditions.check_outside_conditions)."""
    out, runs = (Path(tables_root) / suite.name).absolute(), (Path(suite.results_dir) / suite.name).absolute()
    stages = checkpoints_dir(suite).parent.absolute()
    check_outside_conditions(out, experiments_dir, "--tables-dir")
    # `--tables-dir paper_tables/mini`, one level too deep: the tables went into paper_tables/mini/mini/,
    # among the earlier ones, whose next aggregate refused them as files it did not write
    given = out.parent.parent if out.parent.name == QUICK_FOLDER else out.parent   # --quick: <tables>/quick/<suite>
    if tables_runs(given) is not None:
        raise UserError(f"--tables-dir {given}: a suite's tables folder itself (its README.md is an aggregate's "
                        f"index); give the folder above it, {given.parent} (--tables-dir is the root of <suite>/...)")
    for folder, what, flag in ((runs, "the runs", "results"), (stages, "the pretraining stages", "cache")):
        if _nested(out, folder):   # the tables replace their whole folder (written_whole): what was in it goes
            raise UserError(f"{out}: the tables would go among {what} of {folder} (the tables and {flag} "
                            "folders are one); give the tables a folder of their own (--tables-dir)")
    theirs = tables_runs(out)
    if theirs and not same_runs(theirs, runs, out):
        raise UserError(f"{out / 'README.md'}: these are the tables of the runs in {theirs}, not of {runs}; "
                        "give these runs' tables a folder of their own (--tables-dir), or remove that one first")
    others = sorted(entry.name for entry in out.iterdir() if entry.name not in KEPT) if out.is_dir() else []
    if theirs is None and others:   # a runs.csv or findings.md of one's own was written over
        raise UserError(f"{out}: holds files no aggregate wrote ({', '.join(others[:3])}"
                        f"{', ...' if len(others) > 3 else ''}: no README.md naming the runs they are the tables "
                        "of); give these runs' tables a folder of their own (--tables-dir), or empty that one")
    for folder in (out.parent, out, out / "plots", analysis_dir(tables_root, suite.name)):
        check_writable_dir(folder)
    strays = _unlisted_files(out) if theirs else []
    if strays:   # notes.md or a plot of one's own went with the earlier tables, said only as "replacing"
        raise UserError(f"{out / strays[0]}: a file no aggregate wrote (its index, README.md, does not list it"
                        f"{f'; {len(strays) - 1} more' if len(strays) > 1 else ''}); the tables replace their "
                        "folder whole: move it out first")


def same_runs(theirs: Path, runs: Path, out: Path) -> bool:
    """Whether tables in `out` whose index names the runs folder `theirs` are the tables of `runs`:
    the same folder; in an index that names it as its command was given it alone (written before
    RUNS_HERE was), also one moved or copied with them (a study folder taken to a cluster, a project
    copied elsewhere; the index names the runs as given then, relative to that call's working folder
    or absolute): `runs` is `theirs` under another folder that holds these tables too. Its runs and
    stages were resumed there, and only its tables were refused, as another runs' tables.
    Moved: the runs named are gone. Copied: the old folder holds these tables too, naming the same
    runs. Else another study's tables written here (--tables-dir), whose runs folder only ends as
    these runs' does (results/<suite>), which an aggregate had written over."""
    text = _index_text(out)
    here = _runs_here(out, text)   # from the tables' folder as named: before its links are resolved
    given = _written_from(text)
    named, (theirs, runs, out) = theirs, (theirs.resolve(), runs.resolve(), out.resolve())
    if here:   # named from the tables' own folder, which moved or was copied with them; or, absolute
        # as its command was given it, the same folder: runs on scratch space that stayed where they
        # were while the project moved to another depth or home folder (a path from the tables to
        # them no longer leads there)
        return runs in here or (given is not None and given.is_absolute() and given.resolve() == runs)
    if theirs == runs:
        return True
    shared, most = 0, min(len(theirs.parts), len(runs.parts)) - 1   # trailing folder names in common
    while shared < most and theirs.parts[-1 - shared] == runs.parts[-1 - shared]:
        shared += 1
    moved_from = Path(*runs.parts[:len(runs.parts) - shared])   # where the folder that moved lies now
    if shared < 2 or moved_from == Path(moved_from.anchor) or moved_from not in out.parents:
        return False
    copied_from = Path(*theirs.parts[:len(theirs.parts) - shared])   # where it lay when the tables were made
    return not theirs.exists() or tables_runs(copied_from / out.relative_to(moved_from)) == named


def _unlisted_files(out_dir: Path) -> list[str]:
    """The files of an aggregate's folder (outside KEPT) that its index does not link to."""
    listed = set(re.findall(r"\]\(([^)]+)\)", _index_text(out_dir)))
    found = (path.relative_to(out_dir) for path in out_dir.rglob("*") if path.is_file() or path.is_symlink())
    return sorted(str(path) for path in found if path.parts[0] not in KEPT and str(path) not in listed | {"README.md"})


def check_outside_tables(folder: Path, tables: Path, flag: str, given: str) -> None:
    """A runs or stages folder (`flag`'s <given>/<suite>) that is, or lies inside, or holds the
    suite's tables folder: `run --results-dir paper_tables` wrote its runs among the default run's
    tables, which every later aggregate refused as files no aggregate wrote."""
    if tables.is_dir() and _nested(folder, tables):
        raise UserError(f"{flag} {given}: {folder} would lie among the tables of {tables} (or hold them); "
                        "give it a folder of its own")


def _nested(first: Path, second: Path) -> bool:
    """Whether two folders are one, or one lies inside the other (links resolved)."""
    first, second = first.resolve(), second.resolve()
    return first == second or first in second.parents or second in first.parents


def tables_runs(out_dir: Path) -> Path | None:
    """The runs folder the tables in `out_dir` were made from, as their index names it: from the
    index's own folder (absolute, links resolved), or, in an index written before it said so
    (paper_tables/mini/README.md), as its command was given it (a relative one from the folder
    that command ran in, unknown now: read from this one); None without an index."""
    text = _index_text(out_dir)
    given, here = _written_from(text), _runs_here(out_dir, text)
    return None if given is None else here[0] if here else given


def _index_text(out_dir: Path) -> str:
    """The index of the tables in `out_dir`, README.md; "" without one."""
    index = out_dir / "README.md"
    return index.read_text(encoding="utf-8", errors="replace") if index.is_file() else ""


def _written_from(text: str) -> Path | None:
    """The runs folder an index (its `text`) names in its `Written by` line, as its command was given it."""
    found = WRITTEN_FROM.search(text)
    return Path(found["runs"]) if found else None


def _runs_here(out_dir: Path, text: str) -> list[Path]:
    """The runs folder the index in `out_dir` (its `text`) names from its own folder, resolved: from
    the folder as named, and with its links resolved; [] where it does not (an index written before
    it said so)."""
    found = RUNS_HERE_FOUND.search(text)
    if not found:
        return []
    named = Path(os.path.normpath(os.path.join(os.path.abspath(out_dir), found["runs"]))).resolve()
    return [named, (out_dir.resolve() / (found["resolved"] or found["runs"])).resolve()]


@contextlib.contextmanager
def written_whole(out_dir: Path) -> Iterator[Path]:
    """A folder to write a suite's tables into (a hidden sibling of `out_dir`), put in the place
    of `out_dir` at the end, all at once, keeping what others wrote there (KEPT): an aggregate
    stopped before that leaves the earlier tables whole (it had left half of them replaced, so
    findings.md and table5.md told of different runs). One aggregate at a time per tables root
    (a lock on that folder, which dies with its process): a second waits, then writes its own."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    root = os.open(out_dir.parent, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):   # NFS takes flock as a write lock, which a folder cannot hold
            fcntl.flock(root, fcntl.LOCK_EX)
        staging = out_dir.with_name(f".{out_dir.name}.being-written")
        _recover_kept(out_dir)
        shutil.rmtree(staging, ignore_errors=True)   # a killed aggregate's
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        replaced = _replaced_folder(out_dir)
        shutil.rmtree(replaced, ignore_errors=True)
        if out_dir.exists():
            os.replace(out_dir, replaced)
        os.replace(staging, out_dir)
        _recover_kept(out_dir)
        shutil.rmtree(replaced, ignore_errors=True)
    finally:
        os.close(root)


def _replaced_folder(out_dir: Path) -> Path:
    return out_dir.with_name(f".{out_dir.name}.replaced")


def _recover_kept(out_dir: Path) -> None:
    """Move what others wrote (KEPT) from the earlier tables' folder into `out_dir`: where
    written_whole stopped between putting the new tables in place and doing so, it is there still."""
    for name in KEPT:
        earlier = _replaced_folder(out_dir) / name
        if earlier.exists() and not (out_dir / name).exists():
            out_dir.mkdir(parents=True, exist_ok=True)
            os.replace(earlier, out_dir / name)
