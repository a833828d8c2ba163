"""UTF-8, the one encoding of every data file (task splits, corpora, pools, curated files).

Bytes that are not UTF-8 are an error naming the file, the line and the byte offset, never
replaced silently (a replacement character would train and score as if it were text):

    data/mini/corpora/cs.txt:12: not UTF-8 at byte offset 5310 (byte 0xff: invalid start byte)
"""
from __future__ import annotations

import codecs
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..fileio import UserError

CHUNK = 1 << 20  # 1 MiB reads: a 30 GB corpus is checked at constant memory, at C speed


@dataclass(frozen=True)
class NotUtf8:
    path: str
    line: int        # 1-based line of the first byte that is not UTF-8
    offset: int      # its 0-based byte offset in the file
    reason: str      # "byte 0xff: invalid start byte", "byte 0xc3: unexpected end of data", ...

    @property
    def error_message(self) -> str:
        return f"not UTF-8 at byte offset {self.offset} ({self.reason})"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.error_message}"


def utf8_problem(path: str | Path) -> NotUtf8 | None:
    """The first byte of `path` that is not UTF-8, or None when the whole file decodes."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, newlines = 0, 0          # bytes and line ends before the current chunk
    with open(path, "rb") as f:
        for chunk in itertools.chain(iter(lambda: f.read(CHUNK), b""), [b""]):  # b"": the end
            pending = len(decoder.getstate()[0])   # an unfinished character from the chunk before
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                bad = offset - pending + e.start
                line = newlines + 1 + chunk[:max(0, bad - offset)].count(b"\n")
                return NotUtf8(str(path), line, bad, f"byte 0x{e.object[e.start]:02x}: {e.reason}")
            offset, newlines = offset + len(chunk), newlines + chunk.count(b"\n")
    return None


def text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) of a UTF-8 text file; a byte that is not UTF-8 is a
    one-line UserError naming the file, its line and its byte offset."""
    with open(path, encoding="utf-8") as f:
        try:
            yield from enumerate(f, start=1)
        except UnicodeDecodeError:
            raise UserError(str(utf8_problem(path))) from None
