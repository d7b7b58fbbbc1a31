"""Reading a table's change stream through the DynamoDB Streams API.

:class:`StreamReader` (made by :meth:`Client.stream <dynamolog.client.Client.stream>`) finds the
table's ``LatestStreamArn`` (DescribeTable), lists the stream's shards (DescribeStream, paged
with ``ExclusiveStartShardId``) and reads every shard whose parent is finished, concurrently:
``GetShardIterator`` then ``GetRecords`` with each ``NextShardIterator`` until the answer has
none (the shard is closed and read to its end). The stream is described again every
``describe_interval`` seconds, and at once when a shard finishes, to find new shards.

Order: the records of one shard come in order; a child shard is read only after its parent has
been read to its end, and all the parent's records are yielded before any of the child's, so the
changes of one item come in order across splits. Records of different shards interleave.

Where reading starts, per shard: after the checkpointed sequence number when the checkpoint has
one; otherwise at ``start`` for the shards found at the first describe (with ``LATEST``, closed
shards are skipped entirely, and a shard descended from a checkpointed shard starts at its
beginning); shards found later (children of splits) start at ``TRIM_HORIZON``. An expired
iterator is replaced by one ``AFTER_SEQUENCE_NUMBER`` of the last record read (or at the shard's
start position when none was read yet). A checkpointed position that has been trimmed away
(``TrimmedDataAccessException``) falls back to ``TRIM_HORIZON``: those records are lost.

Checkpoints, at-least-once: a record's sequence number is saved when the *next* record is
requested (so a record counts as processed once the loop body that got it has finished), or by
``await reader.commit()``. After a crash, the last record handed out but not committed comes
again. Call ``commit()`` before leaving a loop early if the last record was handled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from .attributes import from_item
from .errors import ClientError

if TYPE_CHECKING:
    from .core import Client

__all__ = ["Checkpoint", "FileCheckpoint", "MemoryCheckpoint", "StreamNotEnabledError", "StreamReader",
           "StreamRecord"]


class StreamNotEnabledError(Exception):
    """The table has no stream (DescribeTable shows no ``LatestStreamArn``)."""


@dataclass(frozen=True)
class StreamRecord:
    """One change. Images and keys are plain Python values (see :mod:`.attributes`);
    ``new_image``/``old_image`` are None when the stream's view type does not carry them."""

    event_id: str
    event_name: str  # INSERT | MODIFY | REMOVE
    keys: dict[str, Any]
    new_image: dict[str, Any] | None
    old_image: dict[str, Any] | None
    sequence_number: str
    shard_id: str
    approximate_creation: datetime | None
    size_bytes: int | None
    user_identity: dict[str, Any] | None
    raw: dict[str, Any]

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any], shard_id: str) -> StreamRecord:
        d = raw.get("dynamodb") or {}
        created = d.get("ApproximateCreationDateTime")
        new, old = d.get("NewImage"), d.get("OldImage")
        return cls(
            event_id=str(raw.get("eventID", "")),
            event_name=str(raw.get("eventName", "")),
            keys=from_item(d.get("Keys") or {}),
            new_image=from_item(new) if new is not None else None,
            old_image=from_item(old) if old is not None else None,
            sequence_number=str(d.get("SequenceNumber", "")),
            shard_id=shard_id,
            approximate_creation=datetime.fromtimestamp(float(created), UTC) if created is not None else None,
            size_bytes=int(d["SizeBytes"]) if d.get("SizeBytes") is not None else None,
            user_identity=raw.get("userIdentity"),
            raw=dict(raw),
        )


class Checkpoint(Protocol):
    """Where a reader keeps its position: the last processed sequence number of each shard."""

    async def load(self) -> dict[str, str]: ...

    async def save(self, shard_id: str, sequence_number: str) -> None: ...


class MemoryCheckpoint:
    """A checkpoint in memory (``positions``): for tests, or to hand a position between readers."""

    def __init__(self, positions: Mapping[str, str] | None = None) -> None:
        self.positions: dict[str, str] = dict(positions or {})

    async def load(self) -> dict[str, str]:
        return dict(self.positions)

    async def save(self, shard_id: str, sequence_number: str) -> None:
        self.positions[shard_id] = sequence_number


class FileCheckpoint:
    """A checkpoint in a JSON file (``{"shard id": "sequence number", ...}``), rewritten
    atomically on every save (temporary file in the same directory, fsync, rename)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._positions: dict[str, str] | None = None
        self._lock = asyncio.Lock()

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        if not isinstance(data, dict):
            raise ValueError(f"{self.path}: not a checkpoint (expected a JSON object)")
        return {str(k): str(v) for k, v in data.items()}

    def _write(self, positions: dict[str, str]) -> None:
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(positions, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    async def load(self) -> dict[str, str]:
        async with self._lock:
            self._positions = await asyncio.to_thread(self._read)
            return dict(self._positions)

    async def save(self, shard_id: str, sequence_number: str) -> None:
        async with self._lock:
            if self._positions is None:
                self._positions = await asyncio.to_thread(self._read)
            self._positions[shard_id] = sequence_number
            await asyncio.to_thread(self._write, dict(self._positions))


_WAITING: Final = "waiting"
_READING: Final = "reading"
_DONE: Final = "done"


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    position: tuple[str, str | None]  # (ShardIteratorType, SequenceNumber)
    status: str = _WAITING
    last_seq: str | None = None
    task: asyncio.Task[None] | None = None


class _End:
    pass


_END: Final = _End()


class StreamReader:
    """Async iterator of :class:`StreamRecord` over a table's stream (see the module's text).

    ``async for rec in client.stream("T", checkpoint=FileCheckpoint("pos.json")): ...``

    Also an async context manager; :meth:`aclose` stops the background reads (the client's
    ``close`` does it for readers it made). Iteration ends only when the stream is DISABLED and
    every shard has been read to its end; an error of any read is raised by ``__anext__``.
    """

    def __init__(self, client: Client, table: str, *, start: Literal["TRIM_HORIZON", "LATEST"] = "TRIM_HORIZON",
                 checkpoint: Checkpoint | None = None, poll_interval: float = 0.1,
                 describe_interval: float = 5.0, batch_limit: int = 1000, queue_size: int = 1000) -> None:
        if start not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError("start must be 'TRIM_HORIZON' or 'LATEST'")
        self.client = client
        self.table = table
        self.start = start
        self.checkpoint = checkpoint
        self.poll_interval = poll_interval
        self.describe_interval = describe_interval
        self.batch_limit = batch_limit
        self.stream_arn: str | None = None
        self._queue: asyncio.Queue[StreamRecord | BaseException | _End] = asyncio.Queue(queue_size)
        self._shards: dict[str, _Shard] = {}
        self._positions: dict[str, str] = {}
        self._committed: dict[str, str] = {}
        self._last: StreamRecord | None = None
        self._changed = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._closed = False

    # ---- consumer side -------------------------------------------------------------------

    def __aiter__(self) -> StreamReader:
        return self

    async def __aenter__(self) -> StreamReader:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def __anext__(self) -> StreamRecord:
        if self._closed:
            raise StopAsyncIteration
        await self.commit()
        if self._supervisor is None:
            await self._begin()
        item = await self._queue.get()
        if isinstance(item, _End):
            await self.aclose()
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            await self.aclose()
            raise item
        self._last = item
        return item

    async def commit(self) -> None:
        """Saves the position of the last record handed out (no-op without a checkpoint)."""
        rec, self._last = self._last, None
        if rec is None or self.checkpoint is None or not rec.sequence_number:
            return
        if self._committed.get(rec.shard_id) != rec.sequence_number:
            await self.checkpoint.save(rec.shard_id, rec.sequence_number)
            self._committed[rec.shard_id] = rec.sequence_number

    async def aclose(self) -> None:
        """Stops reading (does not commit: see :meth:`commit`)."""
        self._closed = True
        self.client._forget(self)
        tasks = [t for t in [self._supervisor, *(s.task for s in self._shards.values())] if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    # ---- reading -------------------------------------------------------------------------

    async def _begin(self) -> None:
        desc = await self.client.call("DescribeTable", {"TableName": self.table})
        arn = desc.get("Table", {}).get("LatestStreamArn")
        if not arn:
            raise StreamNotEnabledError(f"table {self.table} has no stream (enable one with StreamSpecification)")
        self.stream_arn = str(arn)
        self._positions = await self.checkpoint.load() if self.checkpoint is not None else {}
        self._committed = dict(self._positions)
        self._supervisor = asyncio.create_task(self._supervise())

    async def _describe(self) -> tuple[list[dict[str, Any]], str | None]:
        shards: list[dict[str, Any]] = []
        status: str | None = None
        after: str | None = None
        while True:
            params: dict[str, Any] = {"StreamArn": self.stream_arn}
            if after:
                params["ExclusiveStartShardId"] = after
            d = (await self.client.call("DescribeStream", params))["StreamDescription"]
            status = d.get("StreamStatus")
            page = d.get("Shards") or []
            shards.extend(page)
            after = d.get("LastEvaluatedShardId")
            if not after or not page:
                return shards, status

    def _checkpointed_ancestor(self, parent: str | None, info: Mapping[str, Mapping[str, Any]]) -> bool:
        seen: set[str] = set()
        while parent and parent not in seen:
            if parent in self._positions:
                return True
            seen.add(parent)
            parent = info.get(parent, {}).get("ParentShardId")
        return False

    def _new_shard(self, shard: Mapping[str, Any], initial: bool, info: Mapping[str, Mapping[str, Any]]) -> _Shard:
        sid = str(shard["ShardId"])
        parent = shard.get("ParentShardId")
        closed = (shard.get("SequenceNumberRange") or {}).get("EndingSequenceNumber") is not None
        st = _Shard(sid, str(parent) if parent else None, ("TRIM_HORIZON", None))
        if sid in self._positions:
            st.position = ("AFTER_SEQUENCE_NUMBER", self._positions[sid])
        elif initial and self.start == "LATEST" and not self._checkpointed_ancestor(st.parent_id, info):
            if closed:
                st.status = _DONE  # history before the reader started: skipped
            else:
                st.position = ("LATEST", None)
        return st

    def _start_ready(self) -> None:
        for st in self._shards.values():
            if st.status != _WAITING:
                continue
            parent = self._shards.get(st.parent_id) if st.parent_id else None
            if parent is not None and parent.status != _DONE:
                continue
            st.status = _READING
            st.task = asyncio.create_task(self._read_shard(st))

    async def _supervise(self) -> None:
        try:
            initial = True
            while True:
                self._changed.clear()
                shards, status = await self._describe()
                info = {str(s["ShardId"]): s for s in shards}
                for sid, shard in info.items():
                    if sid not in self._shards:
                        self._shards[sid] = self._new_shard(shard, initial, info)
                initial = False
                self._start_ready()
                if status == "DISABLED" and all(s.status == _DONE for s in self._shards.values()):
                    await self._queue.put(_END)
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.describe_interval):
                        await self._changed.wait()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - handed to the consumer
            await self._queue.put(e)

    async def _iterator(self, st: _Shard) -> str | None:
        kind, seq = ("AFTER_SEQUENCE_NUMBER", st.last_seq) if st.last_seq else st.position
        params: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": st.shard_id, "ShardIteratorType": kind}
        if seq is not None:
            params["SequenceNumber"] = seq
        try:
            answer = await self.client.call("GetShardIterator", params)
        except ClientError as e:
            if e.code == "ResourceNotFoundException":
                return None  # the shard is gone (trimmed)
            if e.code == "TrimmedDataAccessException" and kind != "TRIM_HORIZON":
                st.last_seq, st.position = None, ("TRIM_HORIZON", None)
                return await self._iterator(st)
            raise
        it = answer.get("ShardIterator")
        return str(it) if it else None

    async def _read_shard(self, st: _Shard) -> None:
        try:
            it = await self._iterator(st)
            while it is not None:
                try:
                    answer = await self.client.call("GetRecords", {"ShardIterator": it, "Limit": self.batch_limit})
                except ClientError as e:
                    if e.code in ("ExpiredIteratorException", "TrimmedDataAccessException"):
                        if e.code == "TrimmedDataAccessException":
                            st.last_seq, st.position = None, ("TRIM_HORIZON", None)
                        it = await self._iterator(st)
                        continue
                    if e.code == "ResourceNotFoundException":
                        break
                    raise
                records = answer.get("Records") or []
                for raw in records:
                    rec = StreamRecord.from_wire(raw, st.shard_id)
                    await self._queue.put(rec)
                    st.last_seq = rec.sequence_number or st.last_seq
                nxt = answer.get("NextShardIterator")
                it = str(nxt) if nxt else None
                if it is not None and not records:
                    await asyncio.sleep(self.poll_interval)
            st.status = _DONE
            self._changed.set()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - handed to the consumer
            await self._queue.put(e)
