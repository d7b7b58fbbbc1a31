"""DynamoDB Streams: a view of the partition logs, served by the router.

A table's stream needs no storage of its own: each partition log already holds every change
of the partition's items, once, in commit order, with the old and the new image.  A partition
that was split is a closed shard (its log ends with the SEAL record; EndingSequenceNumber is
its last offset) and each child is a shard whose ParentShardId is the parent's, so a reader
that finishes a parent before its children reads every item's changes in order.  So a
stream **shard** is a partition log (``shardId-<stream creation ms>-<partition id>``), a record's
**sequence number** is its Kafka offset (plus 10**20, so it has DynamoDB's 21 digits), and
GetRecords reads the log with ``read_committed`` from the iterator's offset:

- PUT becomes INSERT (no old image) or MODIFY, DELETE becomes REMOVE, a transaction's TXN_COMMIT
  becomes the same (its PREPARE and TXN_ABORT records, and ConditionChecks, are not changes);
  a write that changes nothing writes no log record, so it has no stream record (as DynamoDB);
- records written before the stream was enabled, after it was disabled, or more than 24 hours
  ago are not part of it;
- a time-to-live deletion carries ``userIdentity: {type: Service, principalId:
  dynamodb.amazonaws.com}``.

Every record appears exactly once and in order per shard (a Kafka partition's order), so in
order per item.  Shard iterators are opaque tokens (the shard and the next offset) valid for 15
minutes, as DynamoDB's.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import hashlib
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from dynamolog import codec, errors
from dynamolog.attrs import item_size
from dynamolog.catalog import PartitionInfo, TableDefinition, key_names, table_arn
from dynamolog.config import Settings
from dynamolog.fencing import ORIGIN, Term, TermGate
from dynamolog.metadata import split_done

from .validate import check_enum, raise_constraints

if TYPE_CHECKING:
    from .tables import Tables

VIEW_TYPES = ("NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY")
RETENTION_MS = 24 * 3600 * 1000
ITERATOR_TTL_MS = 15 * 60 * 1000
SEQ_BASE = 10**20
RECORDS_MAX = 1000
TTL_IDENTITY = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}


def stream_label(ms: int) -> str:
    t = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def stream_arn(region: str, table: TableDefinition) -> str:
    return f"{table_arn(region, table.table_name)}/stream/{table.stream_label}"


def parse_stream_specification(spec: Any) -> tuple[bool, str | None]:
    """(StreamEnabled, StreamViewType) of a StreamSpecification, validated as DynamoDB does."""
    if not isinstance(spec, dict):
        raise errors.serialization("Unexpected value type in payload")
    enabled = spec.get("StreamEnabled")
    view = spec.get("StreamViewType")
    problems: list[str] = []
    if enabled is None:
        problems.append("Value null at 'streamSpecification.streamEnabled' failed to satisfy constraint: Member must "
                        "not be null")
    elif not isinstance(enabled, bool):
        raise errors.serialization("Unexpected value type in payload")
    check_enum(problems, spec, "StreamViewType", "streamSpecification.streamViewType", VIEW_TYPES)
    raise_constraints(problems)
    if enabled and view is None:
        raise errors.validation("One or more parameter values were invalid: StreamViewType is required when "
                                "StreamEnabled is true")
    if not enabled and view is not None:
        raise errors.validation("One or more parameter values were invalid: StreamViewType cannot be specified "
                                "when StreamEnabled is false")
    return bool(enabled), view


def describe_stream_fields(table: TableDefinition, region: str) -> dict[str, Any]:
    """The stream part of a TableDescription."""
    out: dict[str, Any] = {}
    if table.stream_enabled:
        out["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": table.stream_view_type}
    if table.stream_label:
        out["LatestStreamLabel"] = table.stream_label
        out["LatestStreamArn"] = stream_arn(region, table)
    return out


def apply_stream_change(updated: TableDefinition, table: TableDefinition, enabled: bool, view: str | None,
                        now_ms: int) -> TableDefinition:
    """``updated`` with UpdateTable's StreamSpecification applied (checked against ``table``)."""
    if enabled:
        if table.stream_enabled:
            raise errors.validation(f"Table already has an enabled stream: TableName: {table.table_name}")
        return replace(updated, stream_enabled=True, stream_view_type=view, stream_label=stream_label(now_ms),
                       stream_created_ms=now_ms, stream_disabled_ms=None)
    if not table.stream_enabled:
        raise errors.validation("Table does not have an enabled stream: TableName: "
                                f"{table.table_name}")
    return replace(updated, stream_enabled=False, stream_disabled_ms=now_ms)


def _seq(offset: int) -> str:
    return str(SEQ_BASE + offset)


def _offset(seq: Any) -> int:
    if not isinstance(seq, str) or not seq.isdigit() or len(seq) > 40 or int(seq) < SEQ_BASE:
        raise errors.validation(f"Invalid SequenceNumber: {seq}")
    return int(seq) - SEQ_BASE


class Streams:
    """ListStreams, DescribeStream, GetShardIterator and GetRecords."""

    def __init__(self, settings: Settings, tables: Tables) -> None:
        self.settings = settings
        self.tables = tables
        self.metadata = tables.metadata
        self._consumers: dict[str, tuple[AIOKafkaConsumer, asyncio.Lock]] = {}

    async def close(self) -> None:
        for consumer, _ in self._consumers.values():
            await consumer.stop()
        self._consumers.clear()

    # -- lookups -----------------------------------------------------------------------------------
    def _table_of_arn(self, arn: Any) -> TableDefinition:
        if not isinstance(arn, str):
            raise_constraints(["Value null at 'streamArn' failed to satisfy constraint: Member must not be null"])
            raise AssertionError  # unreachable: raise_constraints raised
        if len(arn) < 37 or len(arn) > 1024:
            raise_constraints([f"Value '{arn}' at 'streamArn' failed to satisfy constraint: Member must have length "
                               + ("greater than or equal to 37" if len(arn) < 37 else "less than or equal to 1024")])
        table_part, sep, label = arn.partition("/stream/")
        name = table_part.rsplit("/", 1)[-1] if sep else None
        table = self.metadata.catalog.items.get(name) if name else None
        if (table is None or table.stream_label != label
                or table_part != table_arn(self.settings.region, str(name))):
            raise errors.resource_not_found(f"Requested resource not found: Stream: {arn} not found")
        return table

    def _shards(self, table: TableDefinition) -> list[tuple[str, PartitionInfo]]:
        created = int(table.stream_created_ms or 0)
        out = []
        for part in self.metadata.table_lineage(table.table_id):
            out.append((f"shardId-{created:020d}-{part.partition_id}", part))
        return out

    def _closed(self, part: PartitionInfo) -> bool:
        """Whether a shard has ended: its partition was split (its children are shards of their
        own, whose ParentShardId names it)."""
        current = self.metadata.partitions.items.get(part.partition_id, part)
        return current.state == "SPLIT" or split_done(current, self.metadata.partitions.items)

    def _shard(self, table: TableDefinition, shard_id: Any) -> PartitionInfo:
        for sid, part in self._shards(table):
            if sid == shard_id:
                return part
        raise errors.resource_not_found(f"Requested resource not found: Shard does not exist: {shard_id}")

    async def _consumer(self, topic: str) -> tuple[AIOKafkaConsumer, asyncio.Lock]:
        held = self._consumers.get(topic)
        if held is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap, enable_auto_commit=False,
                                        isolation_level="read_committed", fetch_max_wait_ms=50,
                                        max_partition_fetch_bytes=4 * 1024 * 1024)
            await consumer.start()
            consumer.assign([TopicPartition(topic, 0)])
            held = (consumer, asyncio.Lock())
            if len(self._consumers) > 64:  # a bounded cache: drop the oldest
                oldest = next(iter(self._consumers))
                old, _ = self._consumers.pop(oldest)
                await old.stop()
            self._consumers[topic] = held
        return held

    async def _bounds(self, table: TableDefinition, topic: str) -> tuple[int, int]:
        """(first offset of the stream in this log, the log's end) as of now."""
        consumer, lock = await self._consumer(topic)
        tp = TopicPartition(topic, 0)
        since = max(int(table.stream_created_ms or 0), int(time.time() * 1000) - RETENTION_MS)
        async with lock:
            found = await consumer.offsets_for_times({tp: since})
            end = (await consumer.end_offsets([tp]))[tp]
        first = found[tp].offset if found.get(tp) is not None else end
        return first, end

    async def _trim_horizon(self, topic: str) -> int:
        """The first offset of the log still within the 24-hour retention (and not yet removed
        from Kafka): a sequence number before it has been trimmed."""
        consumer, lock = await self._consumer(topic)
        tp = TopicPartition(topic, 0)
        async with lock:
            found = await consumer.offsets_for_times({tp: int(time.time() * 1000) - RETENTION_MS})
            start = (await consumer.beginning_offsets([tp]))[tp]
            end = (await consumer.end_offsets([tp]))[tp]
        at = int(found[tp].offset) if found.get(tp) is not None else int(end)
        return max(int(start), at)

    async def _first_record(self, table: TableDefinition, topic: str, first: int, end: int) -> int:
        """The offset of the shard's first stream record at or after ``first`` (the log also holds
        records that are not changes: a leader's term, a transaction's prepare), else ``first``.
        The shard's StartingSequenceNumber is that record's (API Reference, SequenceNumberRange)."""
        if first >= end:
            return first
        consumer, lock = await self._consumer(topic)
        tp = TopicPartition(topic, 0)
        since = max(int(table.stream_created_ms or 0), int(time.time() * 1000) - RETENTION_MS)
        hk, rk = key_names(table)
        deadline = time.monotonic() + 1.0
        async with lock:
            consumer.seek(tp, first)
            while time.monotonic() < deadline:
                got = (await consumer.getmany(tp, timeout_ms=100, max_records=500)).get(tp, [])
                for rec in got:
                    if rec.value is not None and rec.timestamp >= since and self._record(
                            table, rec, codec.decode_log_record(rec.value), hk, rk, "KEYS_ONLY") is not None:
                        return int(rec.offset)
                if await consumer.position(tp) >= end:
                    break
        return first

    # -- the API -------------------------------------------------------------------------------------
    async def list_streams(self, p: dict[str, Any]) -> dict[str, Any]:
        limit = p.get("Limit", 100)
        problems: list[str] = []
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise errors.serialization("Unexpected value type in payload")
        if not 1 <= limit <= 100:
            problems.append(f"Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value "
                            + ("greater than or equal to 1" if limit < 1 else "less than or equal to 100"))
        raise_constraints(problems)
        name = p.get("TableName")
        arns = []
        for t in sorted(self.metadata.catalog.items.values(), key=lambda t: t.table_name):
            if t.stream_label and (name is None or t.table_name == name) and t.status != "DELETING":
                arns.append((stream_arn(self.settings.region, t), t))
        start = p.get("ExclusiveStartStreamArn")
        if start is not None:
            arns = [a for a in arns if a[0] > start]
        page = arns[:limit]
        out: dict[str, Any] = {"Streams": [
            {"StreamArn": arn, "TableName": t.table_name, "StreamLabel": t.stream_label} for arn, t in page]}
        if len(arns) > limit:
            out["LastEvaluatedStreamArn"] = page[-1][0]
        return out

    async def describe_stream(self, p: dict[str, Any]) -> dict[str, Any]:
        table = self._table_of_arn(p.get("StreamArn"))
        limit = p.get("Limit", 100)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
            raise_constraints([f"Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value "
                               "less than or equal to 100"])
        shards = []
        for sid, part in self._shards(table):
            first, end = await self._bounds(table, part.log_topic)
            rng: dict[str, Any] = {"StartingSequenceNumber": _seq(await self._first_record(table, part.log_topic,
                                                                                           first, end))}
            if not table.stream_enabled or self._closed(part):
                rng["EndingSequenceNumber"] = _seq(max(first, end - 1))
            shard: dict[str, Any] = {"ShardId": sid, "SequenceNumberRange": rng}
            if part.parent:
                shard["ParentShardId"] = f"shardId-{int(table.stream_created_ms or 0):020d}-{part.parent}"
            shards.append(shard)
        start = p.get("ExclusiveStartShardId")
        if start is not None:
            shards = [s for s in shards if s["ShardId"] > start]
        page = shards[:limit]
        hk, rk = key_names(table)
        desc: dict[str, Any] = {
            "StreamArn": stream_arn(self.settings.region, table),
            "StreamLabel": table.stream_label,
            "StreamStatus": "ENABLED" if table.stream_enabled else "DISABLED",
            "StreamViewType": table.stream_view_type,
            "CreationRequestDateTime": int(table.stream_created_ms or 0) / 1000.0,
            "TableName": table.table_name,
            "KeySchema": [{"AttributeName": hk, "KeyType": "HASH"}]
            + ([{"AttributeName": rk, "KeyType": "RANGE"}] if rk else []),
            "Shards": page,
        }
        if len(shards) > limit:
            desc["LastEvaluatedShardId"] = page[-1]["ShardId"]
        return {"StreamDescription": desc}

    async def get_shard_iterator(self, p: dict[str, Any]) -> dict[str, Any]:
        problems: list[str] = []
        for param, field in (("StreamArn", "streamArn"), ("ShardId", "shardId"),
                             ("ShardIteratorType", "shardIteratorType")):
            if p.get(param) is None:
                problems.append(f"Value null at '{field}' failed to satisfy constraint: Member must not be null")
        check_enum(problems, p, "ShardIteratorType", "shardIteratorType",
                   ("TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"))
        raise_constraints(problems)
        table = self._table_of_arn(p["StreamArn"])
        part = self._shard(table, p["ShardId"])
        kind = p["ShardIteratorType"]
        if kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            if p.get("SequenceNumber") is None:
                raise errors.validation("Must specify a sequence number with shard iterator type " + kind)
            offset = _offset(p["SequenceNumber"])
            emit = offset + (1 if kind == "AFTER_SEQUENCE_NUMBER" else 0)
            # only a sequence number older than the trim point is refused (API Reference,
            # TrimmedDataAccessException); one before the stream began or past the shard's last
            # record reads from there (GetRecords skips what is not part of the stream)
            if offset < await self._trim_horizon(part.log_topic):
                raise errors.ApiError("TrimmedDataAccessException",
                                      "The operation attempted to read past the oldest stream record in a shard")
        elif p.get("SequenceNumber") is not None:
            raise errors.validation("Sequence number is only allowed with shard iterator type AT_SEQUENCE_NUMBER or "
                                    "AFTER_SEQUENCE_NUMBER")
        else:
            first, end = await self._bounds(table, part.log_topic)
            offset = emit = first if kind == "TRIM_HORIZON" else end
        # the term rule's state (dynamolog/fencing.py): exact from the log's start; elsewhere the
        # first record read gives it (AFTER_SEQUENCE_NUMBER reads the record it names, a valid
        # one, without returning it)
        term = ORIGIN if offset == 0 else None
        return {"ShardIterator": self._token(table, p["ShardId"], offset, term, emit)}

    def _token(self, table: TableDefinition, shard_id: str, offset: int, term: Term | None, emit: int) -> str:
        raw = orjson.dumps({"t": table.table_name, "l": table.stream_label, "s": shard_id, "o": offset,
                            "i": int(time.time() * 1000), "g": term.encode() if term else "", "e": emit})
        return base64.urlsafe_b64encode(raw).decode()

    def _untoken(self, token: Any) -> tuple[TableDefinition, str, int, PartitionInfo, Term | None, int]:
        if not isinstance(token, str):
            raise_constraints(["Value null at 'shardIterator' failed to satisfy constraint: Member must not be null"])
            raise AssertionError  # unreachable
        try:
            d = orjson.loads(base64.urlsafe_b64decode(token.encode()))
            name, label, shard, offset, issued = d["t"], d["l"], d["s"], int(d["o"]), int(d["i"])
            term, emit = Term.decode(d.get("g")), int(d.get("e", offset))
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise errors.validation("Invalid ShardIterator") from None
        now = int(time.time() * 1000)
        if now - issued > ITERATOR_TTL_MS:
            raise errors.ApiError("ExpiredIteratorException",
                                  f"Iterator expired. The iterator was created at time {stream_label(issued)} while "
                                  f"right now it's {stream_label(now)} which is further in the future than the "
                                  "tolerated delay of 900000 milliseconds.")
        table = self.metadata.catalog.items.get(name)
        if table is None or table.stream_label != label:
            raise errors.resource_not_found(f"Requested resource not found: Stream: {label} not found")
        return table, shard, offset, self._shard(table, shard), term, emit

    async def get_records(self, p: dict[str, Any]) -> dict[str, Any]:
        limit = p.get("Limit", RECORDS_MAX)
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise errors.serialization("Unexpected value type in payload")
        if not 1 <= limit <= RECORDS_MAX:
            raise_constraints([f"Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value "
                               + ("greater than or equal to 1" if limit < 1 else "less than or equal to 1000")])
        table, shard, offset, part, term, emit = self._untoken(p.get("ShardIterator"))
        gate = TermGate(term)
        topic = part.log_topic
        tp = TopicPartition(topic, 0)
        consumer, lock = await self._consumer(topic)
        records: list[dict[str, Any]] = []
        created = int(table.stream_created_ms or 0)
        disabled = table.stream_disabled_ms
        horizon = int(time.time() * 1000) - RETENTION_MS
        hk, rk = key_names(table)
        view = table.stream_view_type or ""
        async with lock:
            end = (await consumer.end_offsets([tp]))[tp]
            position = offset
            if offset < end:
                consumer.seek(tp, offset)
                deadline = time.monotonic() + 1.0
                while not records and position < end and time.monotonic() < deadline:
                    got = await consumer.getmany(tp, timeout_ms=100, max_records=limit)
                    for rec in got.get(tp, []):
                        position = rec.offset + 1
                        if rec.value is None:
                            continue
                        decoded = codec.decode_log_record(rec.value)
                        if not gate.admit(decoded, rec.offset) or rec.offset < emit:
                            continue  # a deposed leader's record (or the one an iterator starts after)
                        if rec.timestamp < max(created, horizon):
                            continue
                        if disabled is not None and rec.timestamp > disabled:
                            continue
                        out = self._record(table, rec, decoded, hk, rk, view)
                        if out is not None:
                            records.append(out)
                    position = max(position, await consumer.position(tp))
        result: dict[str, Any] = {"Records": records}
        closed = (disabled is not None or self._closed(part)) and position >= end
        if not closed:
            result["NextShardIterator"] = self._token(table, shard, position, gate.term, max(emit, position))
        return result

    def _record(self, table: TableDefinition, rec: Any, r: dict[str, Any], hk: str, rk: str | None,
                view: str) -> dict[str, Any] | None:
        op = r["op"]
        if op == "TXN_COMMIT":
            action = r.get("txn_action")
            if action == "CHECK":
                return None
            op = "PUT" if action == "PUT" else "DELETE"
        elif op not in ("PUT", "DELETE"):
            return None  # PREPARE, TXN_ABORT: not changes
        new = r.get("new_image") if op == "PUT" else None
        old = r.get("old_image")
        if new == old or (new is None and old is None):
            return None
        name = "REMOVE" if new is None else ("INSERT" if old is None else "MODIFY")
        image = new if new is not None else old
        assert image is not None
        keys = {hk: image[hk]} | ({rk: image[rk]} if rk and rk in image else {})
        seq = _seq(rec.offset)
        body: dict[str, Any] = {"ApproximateCreationDateTime": rec.timestamp // 1000, "Keys": keys,
                                "SequenceNumber": seq, "StreamViewType": view}
        size = item_size(keys)
        if view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") and new is not None:
            body["NewImage"] = new
            size += item_size(new)
        if view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and old is not None:
            body["OldImage"] = old
            size += item_size(old)
        body["SizeBytes"] = size
        out: dict[str, Any] = {
            "eventID": hashlib.sha256(f"{table.stream_label}/{seq}/{rec.topic}".encode()).hexdigest()[:32],
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": self.settings.region,
            "dynamodb": body,
        }
        if r.get("system_principal"):
            out["userIdentity"] = {"Type": "Service", "PrincipalId": r["system_principal"]}
        return out
