"""Crash-safe file writing, hashing and per-job locks shared by every phase.

A file that a later stage reads as "finished" is always written to a temporary name in
the same directory and renamed into place (rename is atomic on POSIX), so a kill at any
point leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import contextlib
import fcntl
import filecmp
import hashlib
import json
import os
import re
import stat
import tempfile
import unicodedata
from pathlib import Path
from typing import Any, Iterable, Iterator

HASH_CHUNK = 1 << 20  # 1 MiB reads keep hashing a 50 GB corpus at constant memory
LONE_SURROGATE = re.compile("[\ud800-\udfff]")   # code points that UTF-8 cannot encode


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; finished outputs get the usual mode (0644 under umask 022).
FILE_MODE = 0o666 & ~_umask()


class UserError(Exception):
    """A problem with the user's input or environment: printed as one line, exit code 2."""

    @property
    def lines(self) -> list[str]:
        return [str(self)]


class UserErrors(UserError):
    """Every problem one pass found (a plan's inputs, a suite's sections, a command's flags):
    printed one line each, exit code 2."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    @property
    def lines(self) -> list[str]:
        return self.problems


def raise_problems(problems: list[str], shown: int = 20, where_all: str = "") -> None:
    """Raise UserErrors listing `problems`, if there are any: the first `shown` of them, then
    a line counting the rest (`where_all` says what lists every one)."""
    if len(problems) > shown:
        problems = problems[:shown] + [f"... and {len(problems) - shown} more problem(s){where_all}"]
    if problems:
        raise UserErrors(problems)


def unicode_twins(name: str, names: Iterable[str]) -> list[str]:
    """Those of `names` that are `name` in another Unicode form, not `name` itself: the same letters
    composed (NFC) or decomposed (NFD: an accent or a Hangul syllable split, as macOS keeps file
    names and some editors save text)."""
    want = unicodedata.normalize("NFC", name)
    return [other for other in names if other != name and unicodedata.normalize("NFC", other) == want]


def lone_surrogate(text: str) -> str | None:
    """What is wrong with a string holding a lone surrogate (a JSON or YAML escape such as \\ud800,
    half of a UTF-16 pair: valid JSON and YAML, but no Unicode text: the tokenizer raises a
    TypeError on it, writing it a UnicodeEncodeError), else None."""
    found = LONE_SURROGATE.search(text)
    return (f"holds a lone surrogate \\u{ord(found.group()):04x} at character {found.start() + 1} (half of a "
            "UTF-16 pair, an escape of broken text: no Unicode character)") if found else None


def unicode_twin(path: Path) -> str:
    """For a path that is not there: " (<name> is there: ...)" when its folder holds an entry of the
    same letters in another Unicode form (a folder copied from macOS keeps its names decomposed),
    else ""."""
    twins = unicode_twins(path.name, [entry.name for entry in path.parent.iterdir()] if path.parent.is_dir() else [])
    return (f" ({twins[0]!r} is there: the same letters in another Unicode form, NFC and NFD, as "
            "macOS keeps file names; rename it or retype the name)") if twins else ""


# What a path holds that is neither a regular file nor a folder, by os.stat's mode
SPECIAL_FILES = ((stat.S_ISFIFO, "a fifo (named pipe)"), (stat.S_ISCHR, "a character device"),
                 (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def wrong_kind(path: str | Path, folder: bool = False) -> str | None:
    """What stands at `path` in place of the regular file (or, `folder`, the folder) an input must
    be: "a folder, not a file", "a fifo (named pipe), not a regular file", "a link to nothing, or to
    itself"; None where the right kind is, or nothing (each caller says what is missing). A fifo
    or a device (/dev/zero) was "file not found" beside the path that is there; told by its mode,
    never opened: opening a fifo blocks until something writes to it."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError:   # not there; or a link to nothing, or a loop of links (ELOOP)
        return "a link to nothing, or to itself" if path.is_symlink() else None
    if stat.S_ISDIR(mode):
        return None if folder else "a folder, not a file"
    if stat.S_ISREG(mode):
        return "a file, not a folder" if folder else None
    kind = next((name for test, name in SPECIAL_FILES if test(mode)), "not a file")
    # an input is read more than once (hashed, checked, then trained on): a fifo's text only once
    return f"{kind}, not a {'folder' if folder else 'regular file'}; give a {'folder' if folder else 'file'}"


def under_home(value: Any) -> Any:
    """A value with each string (or path) that starts with ~ under the home folder, as the shell
    expands a path, through lists and mappings: it leaves the ~ in `--out=~/x`, a quoted path, a
    `--set results_dir=~/r` or `cs=~/cs.txt`, which named a folder ~ in the working folder."""
    if isinstance(value, list):
        return [under_home(item) for item in value]
    if isinstance(value, dict):
        return {key: under_home(item) for key, item in value.items()}
    if isinstance(value, (str, Path)) and str(value).startswith("~"):
        return type(value)(os.path.expanduser(value))
    return value


def check_writable_dir(directory: str | Path) -> None:
    """Refuse an output folder that can never be written (a file on its path, a folder not
    writable) before any work, not when the tables are written after the study's runs. Creates
    nothing, so a dry run can check it: the nearest part of the path that exists must be a
    writable folder."""
    path = _nearest_existing(directory)
    if not path.is_dir():
        raise UserError(f"{directory}: not a writable directory ({path} is a file)")
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"{directory}: not a writable directory (no write permission on {path})")


def check_dir_path(directory: str | Path) -> None:
    """Refuse a folder to read from that a file stands on (a mistyped flag): read as an empty
    folder, it would show every job as not started."""
    path = _nearest_existing(directory)
    if not path.is_dir():
        raise UserError(f"{directory}: not a directory ({path} is a file)")


def _nearest_existing(directory: str | Path) -> Path:
    path = Path(directory).absolute()
    while not path.exists():
        path = path.parent
    return path


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_output(path) as f:
        f.write(text)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


@contextlib.contextmanager
def atomic_output(path: str | Path, mode: str = "w") -> Iterator[Any]:
    """Open a temporary sibling of `path` for writing; rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, FILE_MODE)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None and e.errno:   # a write names no file (a full disk)
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
    except UnicodeDecodeError as e:   # a damaged file: bytes that are no text at all
        raise UserError(f"{path}: invalid JSON (not UTF-8 at byte offset {e.start}: {e.reason})") from None
    except IsADirectoryError:         # a record's name taken by a folder: "Is a directory", exit 1
        raise UserError(f"{path}: a folder, not a file; remove it") from None


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


MISSING_DATA = "input file not found (build or download the data first)"   # an input the data folder lacks
_MEMO: dict[str, str] = {}   # this process's hashes, by file_sha256's memo key


def file_sha256(path: str | Path, memo_dir: str | Path | None = None) -> str:
    """sha256 of a file, memoised by (path, size, mtime) so a 50 GB corpus is hashed once: in this
    process always, and across processes in <memo_dir>/file_sha256.json when `memo_dir` is given."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {wrong_kind(path) or MISSING_DATA + unicode_twin(path)}")
    stat = path.stat()
    memo_key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    if memo_key in _MEMO:
        return _MEMO[memo_key]
    memo_path = Path(memo_dir) / "file_sha256.json" if memo_dir is not None else None
    memo = read_memo(memo_path) if memo_path else {}
    if memo_key not in memo:
        memo[memo_key] = sha256_file(path)
        if memo_path:
            try:
                atomic_write_json(memo_path, memo)
            except OSError:   # a cache this command only reads (analyze; a colleague's): the memo is a shortcut
                pass
    _MEMO[memo_key] = memo[memo_key]
    return _MEMO[memo_key]


def read_memo(path: Path) -> dict:
    """A memo file of this cache (file hashes, input verdicts): a shortcut, so one damaged (a JSON
    list, cut short) is started again rather than stopping every command (it was a traceback)."""
    try:
        memo = read_json(path) if path.exists() else {}
    except UserError:
        return {}
    return memo if isinstance(memo, dict) else {}


def same_text(path: str, other: str) -> bool:
    """One file, or two that hold the same bytes (a copy). Files of other sizes are never read, so
    comparing GBs of corpora is cheap."""
    return path == other or (Path(path).is_file() and Path(other).is_file() and filecmp.cmp(path, other, shallow=False))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_locked(lock_path: str | Path) -> bool:
    """Whether a live process holds the lock; a missing lock file is not created. Only read (a
    shared lock tried): `status` of results it may not write (a read-only mount, a colleague's
    folder) failed with `Read-only file system` at the first lock an interrupted run had left."""
    lock_path = Path(lock_path)
    if not _lock_file(lock_path).exists():
        return False
    with open(lock_path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


@contextlib.contextmanager
def job_lock(lock_path: str | Path, wait: bool = False) -> Iterator[bool]:
    """Hold an exclusive lock; yields False if another process holds it (unless `wait`).

    flock locks die with their process, so a SIGKILLed runner never leaves a stale lock.
    """
    lock_path = _lock_file(Path(lock_path))
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_file(lock_path: Path) -> Path:
    if lock_path.is_dir():   # "Is a directory", exit 1: nothing of ours makes one there
        raise UserError(f"{lock_path}: a folder where a lock file goes (made by hand or a copy?); remove it")
    return lock_path
