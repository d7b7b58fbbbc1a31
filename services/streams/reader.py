"""Follow the partition logs of replicated tables and hand every local change, in log order per
partition (so in order per item), to whoever ships it (RepOut; decision 0032).

A reader is positioned per log at an offset and the term rule's state there (a
:class:`~dynamolog.fencing.TermGate`); :meth:`ChangeReader.poll` returns the changes that count
(PUT, DELETE and a transaction's committed PUT / DELETE of records admitted by the term rule)
together with each log's position after them, which the caller stores with its effects.

Only changes made in this region are handed on (``origin_region`` is this region's): a change
that arrived by replication carries the region that made it, so it is never shipped again (no
loop between regions).
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from dynamolog import codec
from dynamolog.config import Settings
from dynamolog.fencing import CONTROL_OPS, ORIGIN, Term, TermGate


@dataclass
class Position:
    """Where a reader stands in one log: the next offset and the term rule's state there."""

    offset: int = 0
    term: Term | None = ORIGIN

    def encode(self) -> dict[str, Any]:
        return {"offset": self.offset, "term": self.term.encode() if self.term else ""}

    @staticmethod
    def decode(d: dict[str, Any]) -> Position:
        return Position(int(d["offset"]), Term.decode(d.get("term")) if d.get("term") else ORIGIN)


def change_of(rec: dict[str, Any], table: str) -> dict[str, Any] | None:
    """The replicated form of a log record that changes an item, or None (control records,
    prepares, aborts, condition checks)."""
    op = rec["op"]
    if op in CONTROL_OPS:
        return None
    if op == "TXN_COMMIT":
        action = rec.get("txn_action")
        if action not in ("PUT", "DELETE"):
            return None
        op = action
    if op not in ("PUT", "DELETE"):
        return None
    return {"t": table, "k": base64.b64encode(rec["key"]).decode(),
            "i": rec.get("new_image") if op == "PUT" else None,
            "ts": int(rec["timestamp_ms"]), "r": rec["origin_region"]}


class ChangeReader:
    """One consumer following several partition logs (``read_committed``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._consumer: AIOKafkaConsumer | None = None
        #: log topic -> (table name, position, term gate)
        self._logs: dict[str, tuple[str, TermGate]] = {}
        #: log topic -> the next offset to read
        self.positions: dict[str, int] = {}
        #: records read that were not handed on because another region made them (replicated here)
        self.skipped_replicated = 0
        #: the logs' ends when last fetched (for the lag)
        self.ends: dict[str, int] = {}

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap, enable_auto_commit=False, isolation_level="read_committed",
            fetch_max_wait_ms=20, max_partition_fetch_bytes=4 * 1024 * 1024)
        await self._consumer.start()

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    def follow(self, logs: dict[str, tuple[str, Position]]) -> None:
        """Follow exactly these logs (topic -> (table, position to start from when new))."""
        assert self._consumer is not None
        changed = set(logs) != set(self._logs)
        for topic, (table, pos) in logs.items():
            if topic not in self._logs:
                self._logs[topic] = (table, TermGate(pos.term))
                self.positions[topic] = pos.offset
        for topic in list(self._logs):
            if topic not in logs:
                del self._logs[topic]
                self.positions.pop(topic, None)
        if changed:
            self._consumer.assign([TopicPartition(t, 0) for t in self._logs])
            for t in self._logs:
                self._consumer.seek(TopicPartition(t, 0), self.positions[t])

    def position(self, topic: str) -> Position:
        return Position(self.positions[topic], self._logs[topic][1].term)

    async def poll(self, max_records: int, timeout_ms: int) -> list[dict[str, Any]]:
        """The next local changes of the followed logs (each log's in order); moves the positions."""
        assert self._consumer is not None
        if not self._logs:
            await asyncio.sleep(timeout_ms / 1000)
            return []
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        out: list[dict[str, Any]] = []
        for tp, msgs in batches.items():
            followed = self._logs.get(tp.topic)
            if followed is None:
                continue
            table, gate = followed
            for m in msgs:
                rec = codec.decode_log_record(m.value)
                if gate.admit(rec, m.offset):
                    ch = change_of(rec, table)
                    if ch is not None:
                        if rec["origin_region"] == self.settings.region:
                            out.append(ch)
                        else:
                            self.skipped_replicated += 1
                self.positions[tp.topic] = m.offset + 1
        for topic in self._logs:
            end = self._consumer.last_stable_offset(TopicPartition(topic, 0))
            if end is not None:
                self.ends[topic] = end
        return out

    def lag(self) -> int:
        """Records between the positions and the logs' ends (as last fetched)."""
        return sum(max(0, self.ends.get(t, p) - p) for t, p in self.positions.items())
