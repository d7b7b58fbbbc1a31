"""ImportTable: items from S3 objects into a new table, with DynamoDB's error counts.

Every object under ``s3://<bucket>/<key prefix>`` (at the system's S3 endpoint) is read,
decompressed (GZIP, ZSTD or NONE) and parsed line by line:

- DYNAMODB_JSON: one ``{"Item": {...}}`` object a line (DynamoDB's export format);
- CSV: the header is ``HeaderList`` or each file's first line; every other value is a string
  attribute, key attributes take their defined type (S, N or B as base64); empty values are
  left out.

A line that does not parse, or whose item lacks a key attribute or has it of another type, is
counted in ``ErrorCount`` and skipped (DynamoDB logs it to CloudWatch; here it is logged).
Pure functions of the bytes, so they are tested without a store.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
from collections.abc import Iterator
from typing import Any

import orjson

from dynamolog.keys import encode_item_key


def decompress(data: bytes, compression: str) -> bytes:
    if compression == "GZIP":
        return gzip.decompress(data)
    if compression == "ZSTD":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return data


def _key_ok(av: Any, kind: str) -> bool:
    return isinstance(av, dict) and len(av) == 1 and kind in av and isinstance(av[kind], str) and av[kind] != ""


def item_key(item: dict[str, Any], keys: list[tuple[str, str]]) -> bytes | None:
    """The encoded key of an item (None: a key attribute is missing or of another type)."""
    for name, kind in keys:
        if not _key_ok(item.get(name), kind):
            return None
    return encode_item_key(item[keys[0][0]], item[keys[1][0]] if len(keys) > 1 else None)


def parse_object(text: bytes, fmt: str, keys: list[tuple[str, str]], delimiter: str = ",",
                 header: list[str] | None = None) -> Iterator[tuple[bytes, dict[str, Any]] | None]:
    """(encoded key, item) per line of one object, None for a line in error."""
    if fmt == "DYNAMODB_JSON":
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)["Item"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                yield None
                continue
            if not isinstance(item, dict):
                yield None
                continue
            key = item_key(item, keys)
            yield None if key is None else (key, item)
        return
    types = dict(keys)
    rows = csv.reader(io.StringIO(text.decode("utf-8", errors="replace")), delimiter=delimiter)
    names = header
    for row in rows:
        if names is None:
            names = row
            continue
        if not row:
            continue
        if len(row) != len(names):
            yield None
            continue
        row_item: dict[str, Any] = {}
        for name, value in zip(names, row):
            if value == "":
                continue
            kind = types.get(name, "S")
            if kind == "B":
                try:
                    base64.b64decode(value, validate=True)
                except ValueError:
                    yield None
                    break
            row_item[name] = {kind: value}
        else:
            key = item_key(row_item, keys)
            yield None if key is None else (key, row_item)
