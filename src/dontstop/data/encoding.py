"""UTF-8, the one encoding of every data file (task splits, corpora, pools, curated files).

Bytes that are not UTF-8 are an error naming the file, the line and the byte offset, never
replaced silently (a replacement character would train and score as if it were text):

    data/mini/corpora/cs.txt:12: not UTF-8 at byte offset 5310 (byte 0xff: invalid start byte)

A NUL byte is valid UTF-8 but never text: a file holding one is binary (a zero-filled copy, an
archive, UTF-16 without its byte-order mark) and is refused the same way. A UTF-8 byte-order
mark at the start of a file (Windows editors, spreadsheet exports) is read as UTF-8 without it.
"""
from __future__ import annotations

import codecs
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..fileio import UserError

CHUNK = 1 << 20  # 1 MiB reads: a 30 GB corpus is checked at constant memory, at C speed
ENCODING = "utf-8-sig"   # UTF-8; a byte-order mark at the start of the file is dropped
NUL = "a NUL byte: an archive, a zero-filled copy or UTF-16?"
HINTS = {b"\x1f\x8b": "a gzip file? decompress it first", b"\xff\xfe": "UTF-16? save it as UTF-8",
         b"\xfe\xff": "UTF-16? save it as UTF-8"}   # the first bytes of a file, what they mean


@dataclass(frozen=True)
class NotUtf8:
    path: str
    line: int        # 1-based line of the first byte that is not UTF-8
    offset: int      # its 0-based byte offset in the file
    reason: str      # "byte 0xff: invalid start byte", "byte 0xc3: unexpected end of data", NUL, ...

    @property
    def error_message(self) -> str:
        what = "binary data" if self.reason == NUL else "not UTF-8"
        return f"{what} at byte offset {self.offset} ({self.reason})"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.error_message}"


def utf8_problem(path: str | Path) -> NotUtf8 | None:
    """The first byte of `path` that is not UTF-8 or is a NUL, or None when the whole file is text."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, newlines, head = 0, 0, b""   # bytes and line ends before the current chunk; the file's start
    with open(path, "rb") as f:
        for chunk in itertools.chain(iter(lambda: f.read(CHUNK), b""), [b""]):  # b"": the end
            head = head or chunk[:2]
            pending = len(decoder.getstate()[0])   # an unfinished character from the chunk before
            nul = chunk.find(b"\x00")
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                bad = offset - pending + e.start
                if nul < 0 or offset + nul > bad:
                    hint = f"; {HINTS[head]}" if head in HINTS else ""
                    return _at(path, chunk, offset, newlines, bad,
                               f"byte 0x{e.object[e.start]:02x}: {e.reason}{hint}")
            if nul >= 0:
                return _at(path, chunk, offset, newlines, offset + nul, NUL)
            offset, newlines = offset + len(chunk), newlines + chunk.count(b"\n")
    return None


def _at(path: str | Path, chunk: bytes, offset: int, newlines: int, bad: int, reason: str) -> NotUtf8:
    """The problem at byte `bad` of the file, `chunk` being the bytes from `offset` on."""
    line = newlines + 1 + chunk[:max(0, bad - offset)].count(b"\n")
    return NotUtf8(str(path), line, bad, reason)


def text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) of a UTF-8 text file; a byte that is not UTF-8, or a NUL, is
    a one-line UserError naming the file, its line and its byte offset."""
    with open(path, encoding=ENCODING) as f:
        try:
            for line_no, line in enumerate(f, start=1):
                if "\x00" in line:
                    raise UserError(str(utf8_problem(path)))
                yield line_no, line
        except UnicodeDecodeError:
            raise UserError(str(utf8_problem(path))) from None
