"""Fetch the paper's released jsonl files into a local cache: atomic, resumable, verified.

Each file is streamed into `<name>.part`; an interrupted transfer is resumed with an HTTP
Range request on the next call; the finished file is renamed into place and its sha256 and
size go into `manifest.json` beside it. A second call verifies and does nothing. When the
manifest already records a checksum (from an earlier download, or shipped by a mirror),
a file whose bytes differ is rejected and the good copy on disk is kept.
"""
from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..fileio import UserError, atomic_write_json, read_json, sha256_file
from ..tasks import SPLITS, Task

CHUNK = 1 << 16          # 64 KiB network reads
TIMEOUT_S = 60


def download_task(task: Task, dest_dir: str | Path, url_base: str | None = None,
                  progress: bool = True) -> dict:
    """Download the three splits of `task` into dest_dir; return the manifest entries."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = dest_dir / "manifest.json"
    manifest = read_json(manifest_path) if manifest_path.exists() else {}
    for split in SPLITS:
        url = f"{url_base.rstrip('/')}/{split}.jsonl" if url_base else task.urls.get(split)
        if not url:
            raise UserError(f"task {task.key}: no URL for split {split!r}")
        entry = fetch(url, dest_dir / f"{split}.jsonl", manifest.get(split), progress)
        manifest[split] = entry
        atomic_write_json(manifest_path, manifest)  # record each split as soon as it is done
    return manifest


def fetch(url: str, path: Path, recorded: dict | None, progress: bool = True) -> dict:
    """Make `path` hold the bytes at `url`; return {url, sha256, bytes}."""
    if path.exists() and recorded:
        if sha256_file(path) == recorded["sha256"]:
            return recorded                       # already here and intact: a no-op
        raise UserError(f"{path}: sha256 differs from manifest.json; delete the file to re-download")
    part = path.with_name(path.name + ".part")
    _stream_to(url, part, progress)
    digest, size = sha256_file(part), part.stat().st_size
    if recorded and recorded.get("sha256") not in (None, digest):
        os.unlink(part)
        raise UserError(f"{url}: checksum mismatch (got sha256 {digest[:12]}…, manifest.json "
                        f"records {recorded['sha256'][:12]}…); nothing was replaced")
    os.replace(part, path)
    return {"url": url, "sha256": digest, "bytes": size}


def _stream_to(url: str, part: Path, progress: bool) -> None:
    """Append the rest of `url` to `part`, resuming from its current size."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:               # nothing left to fetch: .part is complete
            return
        raise UserError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise UserError(f"{url}: cannot connect ({getattr(e, 'reason', e)})") from None
    with response:
        resumed = have and getattr(response, "status", 200) == 206
        expected = _expected_total(response, have if resumed else 0)
        mode = "ab" if resumed else "wb"         # a server that ignores Range sends it all again
        written = have if resumed else 0
        with open(part, mode) as out, tqdm(total=expected, initial=written, unit="B",
                                           unit_scale=True, desc=part.stem,
                                           disable=not progress) as bar:
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
