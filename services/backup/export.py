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
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
from typing import Any

import orjson

from .store import ObjectStore

#: items per data file at most
FILE_ITEMS_MAX = 100_000


def iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def export_root(prefix: str | None, export_id: str) -> str:
    return f"{prefix.strip('/') + '/' if prefix and prefix.strip('/') else ''}AWSDynamoDB/{export_id}/"


async def write_partition(store: ObjectStore, root: str, pid: str, items: list[bytes]) -> list[dict[str, Any]]:
    """Write one partition's items (item JSON bytes) as data files; their manifest lines."""
    out = []
    for n in range(max(1, -(-len(items) // FILE_ITEMS_MAX))):
        chunk = items[n * FILE_ITEMS_MAX:(n + 1) * FILE_ITEMS_MAX]
        data = gzip.compress(b"".join(b'{"Item":' + i + b"}\n" for i in chunk), compresslevel=6)
        key = f"{root}data/{pid}-{n:05d}.json.gz"
        await store.put(key, data)
        md5 = hashlib.md5(data, usedforsecurity=False)
        out.append({"itemCount": len(chunk), "md5Checksum": base64.b64encode(md5.digest()).decode(),
                    "etag": md5.hexdigest(), "dataFileS3Key": key, "bytes": sum(len(i) for i in chunk)})
    return out


async def write_manifests(store: ObjectStore, root: str, files: list[dict[str, Any]],
                          summary: dict[str, Any]) -> None:
    lines = b"".join(orjson.dumps({k: v for k, v in f.items() if k != "bytes"}) + b"\n" for f in files)
    await store.put(f"{root}manifest-files.json", lines)
    await store.put(f"{root}manifest-files.checksum", hashlib.md5(lines, usedforsecurity=False).hexdigest().encode())
    body = orjson.dumps(summary)
    await store.put(f"{root}manifest-summary.json", body)
    await store.put(f"{root}manifest-summary.checksum", hashlib.md5(body, usedforsecurity=False).hexdigest().encode())
