"""ExportTableToPointInTime: a table's items at a moment, in DynamoDB's export layout on S3.

Objects written under ``s3://<S3Bucket>/<S3Prefix>/AWSDynamoDB/<export id>/`` (at the
endpoint of ``Settings.s3_endpoint_url``), as DynamoDB writes them, so tools that read DynamoDB
exports read these:

- ``_started``: empty, first (proves the bucket is writable);
- ``data/<partition>-<n>.json.gz``: gzipped lines ``{"Item": <item as DynamoDB JSON>}``, at
  least one file per partition (an empty one for an empty partition);
- ``manifest-files.json``: one JSON line per data file: ``itemCount``, ``md5Checksum`` (of
  the gzipped object, base64), ``etag`` (hex MD5), ``dataFileS3Key``;
- ``manifest-summary.json``: version, ARNs, times, bucket and prefix, ``manifestFilesS3Key``,
  ``billedSizeBytes``, ``itemCount``, ``outputFormat``, ``exportType``;
- ``manifest-files.checksum`` and ``manifest-summary.checksum``: the hex MD5 of each manifest.

The items are those of a point-in-time restore to the export time (services/backup/fold.py).

An INCREMENTAL_EXPORT (IncrementalExportSpecification: ExportFromTime inclusive, ExportToTime
exclusive, ExportViewType) writes, for every item changed by a write stamped in the window, one
line: ``Metadata.WriteTimestampMicros`` (the stamp of its last change in the window, as a
number in DynamoDB JSON), ``Keys`` (its key attributes), ``NewImage`` (the item at the window's
end; absent when it was deleted) and, with NEW_AND_OLD_IMAGES, ``OldImage`` (the item before the
window; absent when it did not exist).  An item created and deleted within the window writes
nothing.  Its data files go to the folder that DynamoDB's incremental exports share,
``<prefix>/AWSDynamoDB/data/`` (named ``<export id>-<partition>-<n>.json.gz`` here); its
manifests to ``<prefix>/AWSDynamoDB/<export id>/`` as a full export's, the summary also giving
``exportFromTime``, ``exportToTime`` and ``outputView``.

Files are compressed as they are written (at most ``FILE_ITEMS_MAX`` lines and
``FILE_BYTES_MAX`` compressed bytes each), so memory does not grow with the table.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import zlib
from collections.abc import Iterable
from typing import Any

import orjson

from .store import ObjectStore

#: items per data file at most, and compressed bytes per data file at most (about)
FILE_ITEMS_MAX = 100_000
FILE_BYTES_MAX = 64 * 1024 * 1024


def iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def export_root(prefix: str | None, export_id: str) -> str:
    return f"{prefix.strip('/') + '/' if prefix and prefix.strip('/') else ''}AWSDynamoDB/{export_id}/"


def data_key(root: str, export_id: str, pid: str, n: int, incremental: bool) -> str:
    """A data file's key: under the export's folder, or the shared ``data/`` of incremental exports."""
    if incremental:
        return f"{root.removesuffix(export_id + '/')}data/{export_id}-{pid}-{n:05d}.json.gz"
    return f"{root}data/{pid}-{n:05d}.json.gz"


class _GzipFile:
    """One data file, gzipped as its lines come."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: the gzip container
        self.data = bytearray()
        self.lines = 0
        self.bytes = 0

    def add(self, line: bytes) -> None:
        self.data += self._z.compress(line)
        self.lines += 1
        self.bytes += len(line)

    def finish(self) -> bytes:
        self.data += self._z.flush()
        return bytes(self.data)


async def write_partition(store: ObjectStore, root: str, pid: str, lines: Iterable[bytes], *,
                          export_id: str = "", incremental: bool = False) -> list[dict[str, Any]]:
    """Write one partition's lines (each a JSON object without its newline) as data files, at
    least one; their manifest lines (with ``bytes``, the lines' size, for the summary)."""
    out: list[dict[str, Any]] = []

    async def put(f: _GzipFile) -> None:
        data = f.finish()
        key = data_key(root, export_id, pid, len(out), incremental)
        await store.put(key, data)
        md5 = hashlib.md5(data, usedforsecurity=False)
        out.append({"itemCount": f.lines, "md5Checksum": base64.b64encode(md5.digest()).decode(),
                    "etag": md5.hexdigest(), "dataFileS3Key": key, "bytes": f.bytes})

    current = _GzipFile()
    for line in lines:
        current.add(line + b"\n")
        if current.lines >= FILE_ITEMS_MAX or len(current.data) >= FILE_BYTES_MAX:
            await put(current)
            current = _GzipFile()
    if current.lines or not out:
        await put(current)
    return out


def full_lines(items: Iterable[bytes]) -> Iterable[bytes]:
    """A full export's lines: ``{"Item": ...}`` per item JSON."""
    for item in items:
        yield b'{"Item":' + item + b"}"


def incremental_lines(changes: Iterable[tuple[bytes, int, bytes | None, bytes | None]], key_names: list[str],
                      view: str) -> Iterable[bytes]:
    """An incremental export's lines, from a fold's changes (key, stamp ms, old, new)."""
    for _key, ts, old, new in changes:
        image: dict[str, Any] = orjson.loads(new if new is not None else old or b"{}")
        line: dict[str, Any] = {"Metadata": {"WriteTimestampMicros": {"N": str(ts * 1000)}},
                                "Keys": {k: image[k] for k in key_names if k in image}}
        if new is not None:
            line["NewImage"] = orjson.Fragment(new)
        if old is not None and view == "NEW_AND_OLD_IMAGES":
            line["OldImage"] = orjson.Fragment(old)
        yield orjson.dumps(line)


async def write_manifests(store: ObjectStore, root: str, files: list[dict[str, Any]],
                          summary: dict[str, Any]) -> None:
    lines = b"".join(orjson.dumps({k: v for k, v in f.items() if k != "bytes"}) + b"\n" for f in files)
    await store.put(f"{root}manifest-files.json", lines)
    await store.put(f"{root}manifest-files.checksum", hashlib.md5(lines, usedforsecurity=False).hexdigest().encode())
    body = orjson.dumps(summary)
    await store.put(f"{root}manifest-summary.json", body)
    await store.put(f"{root}manifest-summary.checksum", hashlib.md5(body, usedforsecurity=False).hexdigest().encode())
