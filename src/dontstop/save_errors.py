"""A library's failure to write a model or a training state, said as the system's error naming
the folder (cli.main prints an OSError as one line, exit 1).

torch.save (accelerate's save_state writes the optimizer and scheduler with it) reports a full
disk as `RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos 9792 vs 9684`,
and safetensors (the weights) as `SafetensorError: Error while serializing: I/O error: No space
left on device (os error 28)`: each a traceback of 30 lines naming no file.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

OS_ERROR = re.compile(r"\(os error (\d+)\)")   # how Rust's io::Error (safetensors) ends its text
FULL_BELOW = 1 << 20   # bytes: a write that failed where less than this is free failed for want of room


@contextlib.contextmanager
def written_or_os_error(folder: str | Path, partial: str | Path | None = None) -> Iterator[None]:
    """Run a save into `folder`; a library's error that is the system's (safetensors' `os error N`,
    or any error while `folder`'s file system is full) comes out as that OSError, naming `folder`.
    On any failure the `partial` folder being written goes (on a full disk, its room is freed)."""
    try:
        yield
    except BaseException as e:
        # what the error was, told before the partial folder goes (its removal frees the disk)
        error = os_error_of(e, Path(folder)) if isinstance(e, Exception) and not isinstance(e, OSError) else None
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)
        if error is None:
            raise
        raise error from e


def os_error_of(error: Exception, folder: Path) -> OSError | None:
    """The OSError behind a library's `error` while writing into `folder`, or None if none shows."""
    found = OS_ERROR.search(str(error))
    if found:
        code = int(found[1])
    elif free_bytes(folder) < FULL_BELOW:
        code = errno.ENOSPC
    else:
        return None
    return OSError(code, os.strerror(code), str(folder))


def free_bytes(folder: Path) -> int:
    """Room left for this user on the file system holding `folder` (root writes into the blocks
    reserved for it too); a folder not made yet counts as its nearest existing parent."""
    path = folder.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        stats = os.statvfs(path)
    except OSError:
        return FULL_BELOW   # cannot tell: never taken for full
    return (stats.f_bfree if os.geteuid() == 0 else stats.f_bavail) * stats.f_frsize
