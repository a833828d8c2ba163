"""Read back what Weights & Biases wrote in offline mode (`WANDB_MODE=offline`).

An offline run leaves `<dir>/wandb/offline-run-<time>-<id>/run-<id>.wandb`, a record log
in LevelDB's log format as wandb writes it (wandb 0.31 ships no Python reader: the old
`wandb.sdk.internal.datastore` is gone, the writer lives in the Go `wandb-core`):

    file   := header block*          header := ":W&B"  magic 0xBEE1 (uint16 LE)  version 0 (uint8)
    block  := chunk* trailer?        32 KiB each; the first one starts after the 7-byte header;
                                     a tail under 7 bytes is zero padding
    chunk  := crc32 (uint32 LE)  length (uint16 LE)  type (uint8)  data[length]
              type: 1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST (a record split across blocks)
              crc32: zlib/IEEE CRC-32 of the type byte then the data, not masked
              (LevelDB itself uses masked CRC-32C; wandb does not)

Each reassembled record is a serialized `wandb.proto.wandb_internal_pb2.Record`.
`summarize_run` folds those records into a `WandbRun`.

The file is complete only once wandb-core closes it: until then only whole 32 KiB blocks
reach the disk, and `run.finish()` can return before the core closes the run's stream
(seen once in ~40 runs). `wait_for_exit` polls until the run's exit record is on disk;
`wandb.teardown()` after `run.finish()` also guarantees it (by stopping the service).
"""
from __future__ import annotations

import json
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

HEADER = struct.Struct("<4sHB")
HEADER_IDENT, HEADER_MAGIC, HEADER_VERSION = b":W&B", 0xBEE1, 0
CHUNK = struct.Struct("<IHB")
BLOCK_LEN = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
INTERNAL_HISTORY_KEYS = {"_step", "_runtime", "_timestamp"}


class WandbLogError(ValueError):
    """The file is not a wandb record log, or a chunk is corrupt."""


def _chunks(data: bytes, path: Path, strict: bool) -> Iterable[tuple[int, bytes]]:
    offset = HEADER.size
    while offset < len(data):
        left_in_block = BLOCK_LEN - offset % BLOCK_LEN
        if left_in_block < CHUNK.size:  # block trailer
            offset += left_in_block
            continue
        if offset + CHUNK.size > len(data):
            if strict:
                raise WandbLogError(f"{path}: truncated chunk header at byte {offset}")
            return
        checksum, length, kind = CHUNK.unpack_from(data, offset)
        if kind == 0 and length == 0 and checksum == 0:  # zero padding to the end of the block
            offset += left_in_block
            continue
        start = offset + CHUNK.size
        payload = data[start:start + length]
        if len(payload) < length or start + length > offset + left_in_block:
            if strict:
                raise WandbLogError(f"{path}: truncated chunk at byte {offset}")
            return
        if zlib.crc32(payload, zlib.crc32(bytes([kind]))) != checksum:
            raise WandbLogError(f"{path}: CRC mismatch in chunk at byte {offset}")
        yield kind, payload
        offset = start + length


def read_raw_records(path: str | Path, strict: bool = False) -> list[bytes]:
    """The serialized records of a `run-*.wandb` file, in order.

    strict=False tolerates a truncated tail (a run that is still writing or crashed);
    CRC mismatches and bad chunk types always raise.
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) < HEADER.size:
        raise WandbLogError(f"{path}: too short for a wandb log header")
    ident, magic, version = HEADER.unpack_from(data)
    if ident != HEADER_IDENT or magic != HEADER_MAGIC or version != HEADER_VERSION:
        raise WandbLogError(f"{path}: not a wandb record log (header {data[:7]!r})")
    records, pending = [], None
    for kind, payload in _chunks(data, path, strict):
        if kind == FULL:
            if pending is not None and strict:
                raise WandbLogError(f"{path}: FULL chunk inside a split record")
            pending = None
            records.append(payload)
        elif kind == FIRST:
            pending = bytearray(payload)
        elif kind in (MIDDLE, LAST):
            if pending is None:
                raise WandbLogError(f"{path}: {'MIDDLE' if kind == MIDDLE else 'LAST'} chunk "
                                    "without a FIRST")
            pending += payload
            if kind == LAST:
                records.append(bytes(pending))
                pending = None
        else:
            raise WandbLogError(f"{path}: unknown chunk type {kind}")
    if pending is not None and strict:
        raise WandbLogError(f"{path}: log ends inside a split record")
    return records


def read_records(path: str | Path, strict: bool = False) -> list:
    """The `wandb_internal_pb2.Record` messages of a `run-*.wandb` file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    records = []
    for raw in read_raw_records(path, strict=strict):
        record = pb.Record()
        record.ParseFromString(raw)
        records.append(record)
    return records


def has_exit_record(path: str | Path) -> bool:
    """Whether the run's exit record (written by run.finish()) is on disk, with nothing torn before it."""
    from wandb.proto import wandb_internal_pb2 as pb

    try:
        raw_records = read_raw_records(path)
    except (OSError, WandbLogError):
        return False
    for raw in reversed(raw_records):
        record = pb.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "exit":
            return True
    return False


def wait_for_exit(path: str | Path, timeout: float = 30.0) -> Path:
    """Wait until wandb-core has flushed the run's log through its exit record."""
    deadline = time.monotonic() + timeout
    while not has_exit_record(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path}: no exit record after {timeout}s (run not finished?)")
        time.sleep(0.02)
    return Path(path)


def find_offline_runs(root: str | Path) -> list[Path]:
    """Every `run-*.wandb` under root (recursively), sorted by path (offline-run-<time>-<id>)."""
    return sorted(Path(root).rglob("run-*.wandb"))


@dataclass
class LoggedArtifact:
    """An artifact the run logged (Record.artifact, from `run.log_artifact`)."""
    name: str
    type: str
    aliases: list[str]
    references: list[str]          # ArtifactManifestEntry.ref, e.g. file:///dir/file
    paths: list[str]               # ArtifactManifestEntry.path of every entry
    digest: str
    client_id: str
    sequence_client_id: str
    metadata: dict
    use_after_commit: bool         # True when logged on behalf of use_artifact(draft artifact)


@dataclass
class UsedArtifact:
    """An artifact the run declared as input (Record.use_artifact)."""
    name: str
    type: str
    id: str


@dataclass
class WandbRun:
    path: Path
    run_id: str = ""
    name: str = ""                 # RunRecord.display_name (empty offline unless name= is given)
    group: str = ""
    job_type: str = ""
    project: str = ""
    entity: str = ""
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    config: dict = field(default_factory=dict)        # without wandb's internal "_wandb" key
    history_keys: set = field(default_factory=set)    # top-level keys, without _step/_runtime/_timestamp
    history: list[dict] = field(default_factory=list)  # one dict per step, all keys
    summary: dict = field(default_factory=dict)
    artifacts_logged: list[LoggedArtifact] = field(default_factory=list)
    artifacts_used: list[UsedArtifact] = field(default_factory=list)
    media: dict = field(default_factory=dict)         # history key -> wandb _type, e.g. "table-file"
    files: list[str] = field(default_factory=list)    # Record.files paths (relative to files/)
    exit_code: int | None = None                      # None: no exit record (crashed or running)
    record_counts: dict = field(default_factory=dict)  # record type -> count

    @property
    def tables(self) -> set:
        return {key for key, kind in self.media.items() if kind.startswith("table")}

    @property
    def images(self) -> set:
        return {key for key, kind in self.media.items() if kind.startswith("image")}

    def logged(self, type: str | None = None) -> list[LoggedArtifact]:
        return [a for a in self.artifacts_logged if type is None or a.type == type]


def _decode(value_json: str) -> Any:
    return json.loads(value_json) if value_json else None


def _item_key(item) -> list[str]:
    """ConfigItem/SummaryItem/HistoryItem: either `key` or the path `nested_key`."""
    return list(item.nested_key) if item.nested_key else [item.key]


def _item_value(item) -> Any:
    if item.value_json:
        return json.loads(item.value_json)
    # HistoryItem also has a typed oneof `value` (none/boolean/integer/number/text/json)
    kind = item.WhichOneof("value") if "value" in item.DESCRIPTOR.oneofs_by_name else None
    if kind is None or kind == "none":
        return None
    if kind == "json":
        return json.loads(item.json)
    return getattr(item, kind)


def _set(target: dict, keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    target[keys[-1]] = value


def _remove(target: dict, keys: list[str]) -> None:
    for key in keys[:-1]:
        target = target.get(key)
        if not isinstance(target, dict):
            return
    target.pop(keys[-1], None)


def _apply(target: dict, update_record) -> None:
    """A ConfigRecord or SummaryRecord: `update` items set, `remove` items delete."""
    for item in update_record.update:
        _set(target, _item_key(item), _item_value(item))
    for item in update_record.remove:
        _remove(target, _item_key(item))


def summarize_run(path: str | Path) -> WandbRun:
    """Fold the records of one offline run into a WandbRun."""
    path = Path(path)
    run = WandbRun(path=path)
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        run.record_counts[kind] = run.record_counts.get(kind, 0) + 1
        if kind == "run":
            r = record.run  # the first at init; another one follows e.g. a rename
            for attr, value in [("run_id", r.run_id), ("project", r.project), ("entity", r.entity),
                                ("group", r.run_group), ("job_type", r.job_type),
                                ("name", r.display_name), ("notes", r.notes),
                                ("tags", list(r.tags))]:
                if value:
                    setattr(run, attr, value)
            _apply(run.config, r.config)
            _apply(run.summary, r.summary)
        elif kind == "config":
            _apply(run.config, record.config)
        elif kind == "summary":
            _apply(run.summary, record.summary)
        elif kind == "history":
            row: dict = {}
            for item in record.history.item:
                _set(row, _item_key(item), _item_value(item))
            run.history.append(row)
            for key, value in row.items():
                if key not in INTERNAL_HISTORY_KEYS:
                    run.history_keys.add(key)
                if isinstance(value, dict) and isinstance(value.get("_type"), str):
                    run.media[key] = value["_type"]
        elif kind == "artifact":
            a = record.artifact
            entries = a.manifest.contents
            run.artifacts_logged.append(LoggedArtifact(
                name=a.name, type=a.type, aliases=list(a.aliases),
                references=[e.ref for e in entries if e.ref], paths=[e.path for e in entries],
                digest=a.digest, client_id=a.client_id, sequence_client_id=a.sequence_client_id,
                metadata=_decode(a.metadata) or {}, use_after_commit=a.use_after_commit))
            if a.use_after_commit:
                run.artifacts_used.append(UsedArtifact(name=a.name, type=a.type, id=a.client_id))
        elif kind == "use_artifact":
            u = record.use_artifact
            run.artifacts_used.append(UsedArtifact(name=u.name, type=u.type, id=u.id))
        elif kind == "files":
            run.files += [f.path for f in record.files.files]
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    run.config.pop("_wandb", None)
    return run
