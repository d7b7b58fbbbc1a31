"""Where backups live: an object store, a directory or any S3-compatible endpoint.

``open_store(url, settings)`` chooses by the URL (``Settings.backup_store``):

- ``""`` (the default): the directory ``<data dir>/backups``;
- ``/a/path`` or ``file:///a/path``: that directory;
- ``s3://bucket/prefix``: the bucket at the endpoint the AWS SDKs would use
  (``Settings.s3_endpoint_url``, from ``AWS_ENDPOINT_URL_S3`` or ``--s3-endpoint-url``; unset:
  AWS itself), with the credentials of the SDK's usual chain.

Both stores keep whole objects under ``/``-separated keys and write each object atomically
(a directory store renames a finished temporary file; S3 makes an object visible whole), so a
reader sees an object complete or not at all.  boto3 is synchronous: its calls run in worker
threads (``asyncio.to_thread``) so that the service's event loop stays free.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from dynamolog.config import Settings


class StoreError(Exception):
    """The store cannot be used: a malformed URL, an unreachable endpoint, refused credentials."""


class ObjectStore(Protocol):
    """Whole objects under ``/``-separated keys."""

    #: where it is, for logs and messages
    url: str

    async def put(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key`` (replacing any object there), atomically."""

    async def get(self, key: str) -> bytes:
        """The object under ``key``; KeyError when there is none."""

    async def keys(self, prefix: str) -> list[str]:
        """Every key that starts with ``prefix``, sorted."""

    async def delete(self, keys: list[str]) -> None:
        """Delete these objects (missing ones are no error)."""

    async def check(self) -> None:
        """Raise StoreError unless the store can be written and read now."""


class DirectoryStore:
    """Objects as files under a root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"bad object key {key!r}")
        return self.root / key

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, key, data)

    def _get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, key)

    def _keys(self, prefix: str) -> list[str]:
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return []
        out = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith("."):
                    continue  # a temporary file being written
                key = str(Path(dirpath, name).relative_to(self.root))
                if key.startswith(prefix):
                    out.append(key)
        return sorted(out)

    async def keys(self, prefix: str) -> list[str]:
        return await asyncio.to_thread(self._keys, prefix)

    def _delete(self, keys: list[str]) -> None:
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            parent = path.parent
            while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent

    async def delete(self, keys: list[str]) -> None:
        await asyncio.to_thread(self._delete, keys)

    async def check(self) -> None:
        try:
            await self.put(".check", b"ok")
            await self.get(".check")
        except OSError as e:
            raise StoreError(f"the backup directory {self.root} cannot be written: {e}") from e


class S3Store:
    """Objects in an S3 bucket under a key prefix (boto3, calls in worker threads)."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None, region: str) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}" + (f" at {endpoint_url}" if endpoint_url else "")
        self._s3: Any = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url or None, region_name=region,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=60))

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._s3.put_object, Bucket=self.bucket, Key=self.prefix + key, Body=data)

    def _get(self, key: str) -> bytes:
        try:
            answer = self._s3.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except self._s3.exceptions.NoSuchKey:
            raise KeyError(key) from None
        data: bytes = answer["Body"].read()
        return data

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, key)

    def _keys(self, prefix: str) -> list[str]:
        out = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            out += [o["Key"][len(self.prefix):] for o in page.get("Contents", ())]
        return sorted(out)

    async def keys(self, prefix: str) -> list[str]:
        return await asyncio.to_thread(self._keys, prefix)

    def _delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):  # DeleteObjects takes up to 1,000 keys
            chunk = [{"Key": self.prefix + k} for k in keys[i:i + 1000]]
            if chunk:
                self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})

    async def delete(self, keys: list[str]) -> None:
        await asyncio.to_thread(self._delete, keys)

    async def check(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            await asyncio.to_thread(self._s3.head_bucket, Bucket=self.bucket)
        except (BotoCoreError, ClientError) as e:
            raise StoreError(f"the backup store {self.url} cannot be reached: {e}") from e


def open_store(url: str, settings: Settings) -> ObjectStore:
    """The store ``url`` names (see the module docstring); StoreError for a malformed URL."""
    if not url:
        return DirectoryStore(Path(settings.data_dir).resolve() / "backups")
    if url.startswith("s3://"):
        parsed = urlparse(url)
        bucket = parsed.netloc
        if not bucket or not all(c.isalnum() or c in ".-" for c in bucket) or not 3 <= len(bucket) <= 63:
            raise StoreError(f"malformed S3 URL {url!r}: expected s3://bucket/prefix with a valid bucket name")
        return S3Store(bucket, parsed.path, settings.s3_endpoint_url or None, settings.region)
    if url.startswith("file://"):
        url = urlparse(url).path
    if "://" in url:
        raise StoreError(f"unsupported backup store {url!r}: use a directory, file:///path or s3://bucket/prefix")
    return DirectoryStore(Path(url).resolve())
