"""Fetch the paper's released jsonl files into a local cache: atomic, resumable, verified.

A task's files live at `<base>/<task>/<split>.jsonl` (tasks.data_urls). The base is the
paper's S3 bucket unless `--data-url` or, below it, the DONTSTOP_DATA_URL environment variable
names a mirror with the same layout (data_base).

Each file is streamed into `<name>.part`; an interrupted transfer is resumed with an HTTP
Range request on the next call, from the same URL and only while the server still has the
version it began (If-Range with the ETag or Last-Modified kept in `<name>.part-source`; else
it starts over). A task's splits are renamed into place together, once all of
them have arrived, so a failed request (an HTTP error such as 404, a refused connection, a cut
transfer) creates or replaces no final file; only a cut transfer leaves a `.part` behind, to
resume from. Each finished file's sha256 and size go into `manifest.json` beside it. A second
call verifies and does nothing. When the manifest already records a checksum (from an earlier
download, or shipped by a mirror), a file on disk whose bytes differ is fetched again from the
mirror given, and bytes that differ from the record are rejected, the copy on disk kept.
Downloaded splits are checked as `dontstop data check` checks a task (format, labels) before
they replace anything: a mirror serving a malformed file changes nothing, and a malformed
copy already on disk (from an earlier mirror) is fetched again.
"""
from __future__ import annotations

import dataclasses
import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..fileio import UserError, atomic_write_json, raise_problems, read_json, sha256_file
from ..tasks import S3_DATA, SPLITS, Task, data_urls
from .task_checks import check_splits, check_task, unlike_published

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
    return the manifest entries. No final file changes unless every split arrived and the
    task's files, as they would then be, pass the task check (format, labels)."""
    dest_dir = Path(dest_dir)
    manifest_path = dest_dir / "manifest.json"
    manifest = read_json(manifest_path) if manifest_path.exists() else {}
    if not (isinstance(manifest, dict) and all(isinstance(e, dict) and isinstance(e.get("sha256"), str)
                                               for e in manifest.values())):   # a traceback, exit 1
        raise UserError(f"{manifest_path}: not the manifest a download writes ({{split: {{url, sha256, bytes}}}}); "
                        "remove it to fetch the task again")
    if _malformed_on_disk(task, dest_dir):   # an earlier mirror served them: fetch them all again
        manifest = {}
    urls = data_urls(task.key, data_base(base))
    staged = {split: _stage(url, dest_dir / f"{split}.jsonl", manifest.get(split), progress)
              for split, url in urls.items()}
    new = [split for split, entry in staged.items() if entry is not manifest.get(split)]
    _check_staged(task, dest_dir, new, urls)
    for split in new:                             # its .part goes into place
        _keep_aside(dest_dir / f"{split}.jsonl", staged[split]["sha256"])
        _finish(dest_dir / f"{split}.jsonl")
        manifest[split] = staged[split]
        atomic_write_json(manifest_path, manifest)  # record each split as soon as it is done
    if new:
        for problem in unlike_published({split: dest_dir / f"{split}.jsonl" for split in SPLITS}, task):
            print(f"note: {problem.error_line}", file=sys.stderr)
    return manifest


def _malformed_on_disk(task: Task, dest_dir: Path) -> bool:
    files = [dest_dir / f"{split}.jsonl" for split in SPLITS]
    return all(f.is_file() for f in files) and any(p.severity == "error" for p in check_task(dest_dir, task))


def _check_staged(task: Task, dest_dir: Path, new: list[str], urls: dict[str, str]) -> None:
    """The task check (data/formats.py, as `dontstop data check`) on the splits as they would be
    once the new ones are in place; on any error the new bytes are deleted (a rerun fetches
    them again, from this mirror or another) and every problem is one line naming the URL."""
    paths = {split: _part(dest_dir / f"{split}.jsonl") if split in new else dest_dir / f"{split}.jsonl"
             for split in SPLITS}
    errors = [p for p in check_splits(paths, task) if p.severity == "error"]
    if not errors:
        return
    for split in new:
        _drop_part(dest_dir / f"{split}.jsonl")
    served = {str(paths[split]): urls[split] for split in new}
    raise_problems([f"{dataclasses.replace(p, path=served.get(p.path, p.path)).error_line}; "
                    "nothing was replaced" for p in errors], where_all=f" (in {', '.join(urls.values())})")


def fetch(url: str, path: Path, recorded: dict | None, progress: bool = True) -> dict:
    """Make `path` hold the bytes at `url`; return {url, sha256, bytes}."""
    entry = _stage(url, path, recorded, progress)
    if entry is not recorded:
        _finish(path)
    return entry


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def _part_source(part: Path) -> Path:
    """Beside a .part: the URL its bytes come from and the version the server named for them
    (ETag, else Last-Modified), which a resumed request must still match (If-Range)."""
    return part.with_name(part.name + "-source")


def _finish(path: Path) -> None:
    os.replace(_part(path), path)
    _part_source(_part(path)).unlink(missing_ok=True)


def _keep_aside(path: Path, fetched_sha256: str) -> None:
    """A split on disk that is not what the manifest records (edited since its download, one's own
    files put there, or damaged) is renamed <split>.jsonl.replaced-<n>, saying so: it was replaced
    without a word. The same bytes as those fetched (`fetched_sha256`, _stage's) are simply replaced."""
    if not path.exists() or sha256_file(path) == fetched_sha256:
        return
    n = 1
    while (kept := path.with_name(f"{path.name}.replaced-{n}")).exists():
        n += 1
    os.replace(path, kept)
    print(f"note: {path}: not the bytes manifest.json records (edited, or files of one's own?); kept as "
          f"{kept.name}", file=sys.stderr)


def _drop_part(path: Path) -> None:
    _part(path).unlink(missing_ok=True)
    _part_source(_part(path)).unlink(missing_ok=True)


def _resume_headers(url: str, part: Path) -> dict[str, str]:
    """Range and If-Range to resume `part`: only for the URL it came from and the version the
    server named then, which the server still has or else sends the whole file again (a .part
    of another mirror, or of a file changed since, had the rest of the new one appended to it:
    two versions in one file, recorded in manifest.json as fetched). Else no header: from the start."""
    have = part.stat().st_size if part.exists() else 0
    try:
        source = read_json(_part_source(part)) if have else {}
    except UserError:   # a damaged note: the bytes cannot be vouched for
        source = {}
    if not (isinstance(source, dict) and source.get("url") == url and source.get("version")):
        return {}
    return {"Range": f"bytes={have}-", "If-Range": source["version"]}


def _stage(url: str, path: Path, recorded: dict | None, progress: bool) -> dict:
    """Return `recorded` when `path` already holds those bytes; else bring the bytes at `url`
    into `path`'s .part, verified against `recorded`, and return their new entry."""
    if path.exists() and recorded and sha256_file(path) == recorded["sha256"]:
        return recorded                           # already here and intact: a no-op
    # missing, or damaged on disk (not the bytes the manifest records): fetched again, and the
    # new bytes must be the recorded ones
    part = _part(path)
    _stream_to(url, part, progress)
    digest, size = sha256_file(part), part.stat().st_size
    if recorded and recorded.get("sha256") not in (None, digest):
        _drop_part(path)
        raise UserError(f"{url}: checksum mismatch (got sha256 {digest[:12]}…, manifest.json "
                        f"records {recorded['sha256'][:12]}…); nothing was replaced")
    return {"url": url, "sha256": digest, "bytes": size}


def _stream_to(url: str, part: Path, progress: bool) -> None:
    """Append the rest of `url` to `part`, resuming from its current size. Nothing is
    written, and no folder made, unless the server answers with the file."""
    headers = _resume_headers(url, part)
    have = part.stat().st_size if headers else 0
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and have:               # nothing left to fetch: .part is complete
            return
        reason = " ".join(str(e.reason).split())   # a redirect loop's is three lines
        raise UserError(f"{url}: HTTP {e.code} {reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise UserError(f"{url}: cannot connect ({getattr(e, 'reason', e)})") from None
    except http.client.HTTPException as e:       # not an HTTP server on the other end
        raise UserError(f"{url}: no valid HTTP response ({type(e).__name__}: {e})") from None
    except ValueError as e:                      # unknown url type, bad port, ...
        raise UserError(f"{url}: not a URL to download from ({e})") from None
    with response:
        resumed = have and getattr(response, "status", 200) == 206
        expected = _expected_total(response, have if resumed else 0, url)
        mode = "ab" if resumed else "wb"         # a server that ignores Range sends it all again
        written = have if resumed else 0
        part.parent.mkdir(parents=True, exist_ok=True)
        if not resumed:   # what a later call may resume: this URL, in this version
            atomic_write_json(_part_source(part), {"url": url, "version": response.headers.get("ETag")
                                                   or response.headers.get("Last-Modified")})
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


def _expected_total(response, offset: int, url: str) -> int | None:
    length = response.headers.get("Content-Length")
    if length is not None and not length.strip().isdigit():   # int() raised: a traceback, exit 1
        raise UserError(f"{url}: no valid HTTP response (Content-Length {length!r})")
    return offset + int(length) if length is not None else None
