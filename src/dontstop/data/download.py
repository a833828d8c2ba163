"""Fetch the paper's released jsonl files into a local cache: atomic, resumable, verified.

A task's files live at `<base>/<task>/<split>.jsonl` (tasks.data_urls). The base is the
paper's S3 bucket unless `--data-url` or, below it, the DONTSTOP_DATA_URL environment variable
names a mirror with the same layout (data_base).

Each file is streamed into `<name>.part`; an interrupted transfer is resumed with an HTTP
Range request on the next call. A task's splits are renamed into place together, once all of
them have arrived, so a failed request (an HTTP error such as 404, a refused connection, a cut
transfer) creates or replaces no final file; only a cut transfer leaves a `.part` behind, to
resume from. Each finished file's sha256 and size go into `manifest.json` beside it. A second
call verifies and does nothing. When the manifest already records a checksum (from an earlier
download, or shipped by a mirror), a file whose bytes differ is rejected and the good copy on
disk is kept.
"""
from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..fileio import UserError, atomic_write_json, read_json, sha256_file
from ..tasks import S3_DATA, Task, data_urls

CHUNK = 1 << 16          # 64 KiB network reads
TIMEOUT_S = 60
DATA_URL_ENV = "DONTSTOP_DATA_URL"
SCHEMES = ("http", "https", "file")


def data_base(flag: str | None = None) -> str:
    """The base URL to download from: `flag` (--data-url), else $DONTSTOP_DATA_URL, else S3."""
    if flag:
        base, source = flag, "--data-url"
    elif os.environ.get(DATA_URL_ENV):
        base, source = os.environ[DATA_URL_ENV], DATA_URL_ENV
    else:
        return S3_DATA
    try:
        parts = urllib.parse.urlsplit(base)
        valid = parts.scheme in SCHEMES and (parts.scheme == "file" or bool(parts.hostname))
        _ = parts.port  # raises ValueError on a port that is not a number
    except ValueError:
        valid = False
    if not valid:
        raise UserError(f"{base}: not a URL to download from (given by {source}); "
                        "expected http://host/..., https://host/... or file:///...")
    return base.rstrip("/")


def download_task(task: Task, dest_dir: str | Path, base: str | None = None,
                  progress: bool = True) -> dict:
    """Download the three splits of `task` from `base` (see data_base) into dest_dir;
    return the manifest entries. No final file changes unless every split arrived."""
    dest_dir = Path(dest_dir)
    manifest_path = dest_dir / "manifest.json"
    manifest = read_json(manifest_path) if manifest_path.exists() else {}
    staged = {split: _stage(url, dest_dir / f"{split}.jsonl", manifest.get(split), progress)
              for split, url in data_urls(task.key, data_base(base)).items()}
    for split, entry in staged.items():
        if entry is not manifest.get(split):      # new bytes: its .part goes into place
            _finish(dest_dir / f"{split}.jsonl")
            manifest[split] = entry
            atomic_write_json(manifest_path, manifest)  # record each split as soon as it is done
    return manifest


def fetch(url: str, path: Path, recorded: dict | None, progress: bool = True) -> dict:
    """Make `path` hold the bytes at `url`; return {url, sha256, bytes}."""
    entry = _stage(url, path, recorded, progress)
    if entry is not recorded:
        _finish(path)
    return entry


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def _finish(path: Path) -> None:
    os.replace(_part(path), path)


def _stage(url: str, path: Path, recorded: dict | None, progress: bool) -> dict:
    """Return `recorded` when `path` already holds those bytes; else bring the bytes at `url`
    into `path`'s .part, verified against `recorded`, and return their new entry."""
    if path.exists() and recorded:
        if sha256_file(path) == recorded["sha256"]:
            return recorded                       # already here and intact: a no-op
        raise UserError(f"{path}: sha256 differs from manifest.json; delete the file to re-download")
    part = _part(path)
    _stream_to(url, part, progress)
    digest, size = sha256_file(part), part.stat().st_size
    if recorded and recorded.get("sha256") not in (None, digest):
        os.unlink(part)
        raise UserError(f"{url}: checksum mismatch (got sha256 {digest[:12]}…, manifest.json "
                        f"records {recorded['sha256'][:12]}…); nothing was replaced")
    return {"url": url, "sha256": digest, "bytes": size}


def _stream_to(url: str, part: Path, progress: bool) -> None:
    """Append the rest of `url` to `part`, resuming from its current size. Nothing is
    written, and no folder made, unless the server answers with the file."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and have:               # nothing left to fetch: .part is complete
            return
        raise UserError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise UserError(f"{url}: cannot connect ({getattr(e, 'reason', e)})") from None
    except http.client.HTTPException as e:       # not an HTTP server on the other end
        raise UserError(f"{url}: no valid HTTP response ({type(e).__name__}: {e})") from None
    except ValueError as e:                      # unknown url type, bad port, ...
        raise UserError(f"{url}: not a URL to download from ({e})") from None
    with response:
        resumed = have and getattr(response, "status", 200) == 206
        expected = _expected_total(response, have if resumed else 0)
        mode = "ab" if resumed else "wb"         # a server that ignores Range sends it all again
        written = have if resumed else 0
        part.parent.mkdir(parents=True, exist_ok=True)
        with open(part, mode) as out, tqdm(total=expected, initial=written, unit="B",
                                           unit_scale=True, desc=part.stem,
                                           disable=True if not progress else None) as bar:
            written = _copy(response, out, bar, written, url)
    if expected is not None and written < expected:
        raise UserError(f"{url}: transfer interrupted at {written} of {expected} bytes; "
                        "rerun the same command to resume")


def _copy(response, out, bar, written: int, url: str) -> int:
    try:
        for chunk in iter(lambda: response.read(CHUNK), b""):
            out.write(chunk)
            written += len(chunk)
            bar.update(len(chunk))
    except (OSError, http.client.HTTPException) as e:
        # ConnectionResetError, IncompleteRead and disk-full (ENOSPC) all land here; the
        # bytes written so far stay in .part for the next call to resume from.
        raise UserError(f"{url}: transfer interrupted after {written} bytes ({e}); "
                        "rerun the same command to resume") from None
    return written


def _expected_total(response, offset: int) -> int | None:
    length = response.headers.get("Content-Length")
    return offset + int(length) if length is not None else None
