"""The object layout of backups and recovery snapshots, and the chunk formats.

Every key is relative to the store's root (a directory or ``s3://bucket/prefix``)::

    backups/<backup id>/manifest.json               the backup: details, the table's definition,
                                                    per partition its snapshot and log cut
    backups/<backup id>/<partition>/snapshot-00000.gz  items of the partition's snapshot
    backups/<backup id>/<partition>/log-00000.gz       the partition's log from the snapshot to the cut
    pitr/<table id>/<partition>/<offset 20 digits>/manifest.json   a recovery snapshot
    pitr/<table id>/<partition>/<offset 20 digits>/snapshot-00000.gz

A backup id is ``<creation ms, 14 digits>-<8 hex>``, as DynamoDB's; the backup's ARN is
``<table ARN>/backup/<id>``.  Snapshot chunks are gzipped lines ``base64(item key) TAB item``
(the item as DynamoDB JSON, the replica's bytes); log chunks are gzipped lines
``offset TAB base64(LogRecord Avro bytes)``, the records exactly as the log holds them, control
records included (the term rule needs them, dynamolog/fencing.py).  A chunk holds about
``CHUNK_BYTES`` before compression.

The manifest is JSON, written when the backup starts (``BackupStatus`` CREATING, with the cut
offsets already fixed) and again when every chunk is written (AVAILABLE, with the chunks'
names, item and byte counts).  A reader trusts only the chunks a manifest lists.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson

#: uncompressed bytes of one chunk at most (about; a line is never split)
CHUNK_BYTES = 4 * 1024 * 1024
#: the manifest format written here; a reader refuses a newer one
FORMAT = 1


def backup_prefix(backup_id: str) -> str:
    return f"backups/{backup_id}/"


def backup_manifest_key(backup_id: str) -> str:
    return f"backups/{backup_id}/manifest.json"


def pitr_prefix(table_id: str, pid: str | None = None) -> str:
    return f"pitr/{table_id}/" + (f"{pid}/" if pid is not None else "")


def pitr_snapshot_prefix(table_id: str, pid: str, offset: int) -> str:
    return f"pitr/{table_id}/{pid}/{offset:020d}/"


def backup_arn(table_arn: str, backup_id: str) -> str:
    return f"{table_arn}/backup/{backup_id}"


def backup_id_of(arn: str) -> str | None:
    """The backup id of a backup ARN (None: not a backup ARN)."""
    head, sep, tail = arn.rpartition("/backup/")
    if not sep or not head.startswith("arn:") or ":table/" not in head or not tail or "/" in tail:
        return None
    return tail


#: the one thread the backup service's CPU work runs in (compressing, decoding, folding): off
#: the event loop, and one thread rather than a pool, so the work of one job stays in order and
#: its memory in one allocator arena
_CPU = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backup-cpu")

T = TypeVar("T")


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in the service's CPU thread."""
    return await asyncio.get_running_loop().run_in_executor(_CPU, fn, *args)


class ChunkWriter:
    """Collects lines and hands out gzipped chunks of about ``CHUNK_BYTES``.

    The compression runs off the event loop (:func:`off_loop`): a chunk takes tens of
    milliseconds to compress, and the service's event loop keeps its election heartbeats
    (dynamolog/singleton.py) and its answers going meanwhile."""

    def __init__(self) -> None:
        self._lines: list[bytes] = []
        self._size = 0
        #: lines and uncompressed bytes written over the writer's life
        self.lines = 0
        self.bytes = 0

    def add(self, line: bytes) -> bool:
        """Add a line; True when a full chunk is ready (take it with :meth:`flush`)."""
        self._lines.append(line)
        self._size += len(line) + 1
        self.lines += 1
        self.bytes += len(line) + 1
        return self.full

    @property
    def full(self) -> bool:
        return self._size >= CHUNK_BYTES

    async def flush(self) -> bytes | None:
        """The chunk of the lines collected, compressed (None: none)."""
        if not self._lines:
            return None
        lines, self._lines, self._size = self._lines, [], 0
        return await off_loop(_compress, lines)


def _compress(lines: list[bytes]) -> bytes:
    return gzip.compress(b"\n".join(lines) + b"\n", compresslevel=1)


def chunk_lines(data: bytes) -> Iterator[bytes]:
    """The lines of a chunk, decompressed as they are read (never the whole chunk at once)."""
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        for line in f:
            line = line.rstrip(b"\n")
            if line:
                yield line


def item_line(key: bytes, item_json: bytes) -> bytes:
    return base64.b64encode(key) + b"\t" + item_json


def parse_item_line(line: bytes) -> tuple[bytes, bytes]:
    k, _, v = line.partition(b"\t")
    return base64.b64decode(k), v


def log_line(offset: int, value: bytes) -> bytes:
    return str(offset).encode() + b"\t" + base64.b64encode(value)


def parse_log_line(line: bytes) -> tuple[int, bytes]:
    o, _, v = line.partition(b"\t")
    return int(o), base64.b64decode(v)


def dumps(manifest: dict[str, Any]) -> bytes:
    return orjson.dumps(manifest, option=orjson.OPT_INDENT_2)


def loads(data: bytes) -> dict[str, Any]:
    manifest: dict[str, Any] = orjson.loads(data)
    if int(manifest.get("format", 0)) > FORMAT:
        raise ValueError(f"manifest format {manifest.get('format')} is newer than this version reads ({FORMAT})")
    return manifest
