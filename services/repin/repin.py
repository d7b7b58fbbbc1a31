"""RepIn: apply the changes other regions' RepOuts mirrored into this cluster (decision 0032).

For each linked region a feed consumes ``<ns>.repin.<source>`` (``read_committed``: only
batches whose transaction RepOut committed), checks each batch's signature with the replication
key this region holds for the source (a batch that does not verify is refused and counted, never
applied), and applies the changes through the partitions' leaders as writes of kind
``replicate`` (``write_batch``, in order per partition): each leader applies a change only if its
stamp is newer than the item's (last writer wins, services/storage/writes.py), and writes it to
the partition log with the source's stamp and region, so this region's indexes, streams and
replicas derive from it as from any write, and RepOut here never ships it back.

The feed's position is committed to its consumer group after the batch was acknowledged (in the
background: the next batch is fetched and applied meanwhile).  A RepIn killed mid-batch, or
before a commit landed, applies those batches again: a change applied already has a
stamp equal to the item's, which is not newer, so it changes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from dynamolog import errors, regions
from dynamolog.catalog import TableDefinition
from dynamolog.config import Settings
from dynamolog.kafka.admin import KafkaAdmin
from dynamolog.metadata import Metadata, ensure_metadata_topics
from dynamolog.metrics import Samples
from dynamolog.routing import Routing

log = logging.getLogger(__name__)

#: how long a change waits for its table's replica to be ready here before it is dropped
READY_WAIT_S = 60.0
RETRY_S = 0.2
#: RepOut's batches (one Kafka record each) fetched and applied at once, at most
BATCHES_PER_APPLY = 50
#: writes per write_batch request at most
WRITES_PER_REQUEST = 100


@dataclass
class FeedFigures:
    source: str
    state: str = "starting"
    #: changes applied (sent to the leaders and acknowledged; an older one changes nothing there)
    applied: int = 0
    #: changes of tables without a replica here (dropped)
    dropped: int = 0
    #: batches refused because their signature did not verify with the replication key
    rejected: int = 0
    #: the next offset of the repin topic to apply, and its end
    position: int = 0
    end: int = 0
    #: ms from a change's stamp (its write in the source region) to its acknowledgement here
    lag_ms: deque[int] = field(default_factory=lambda: deque(maxlen=2000))
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        lags = sorted(self.lag_ms)
        return {"source": self.source, "state": self.state, "applied": self.applied, "dropped": self.dropped,
                "rejected": self.rejected, "position": self.position, "lag_records": max(0, self.end - self.position),
                "lag_ms_p50": lags[len(lags) // 2] if lags else None,
                "lag_ms_p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else None,
                "error": self.error, "updated_ms": int(time.time() * 1000)}


class RepIn:
    """The RepIn process: one feed per linked region."""

    def __init__(self, settings: Settings, master: bytes | None) -> None:
        self.settings = settings
        self.metadata = Metadata(settings)
        self.routing = Routing(self.metadata)
        self.regions = regions.RegionsView(settings, master)
        self._feeds: dict[str, asyncio.Task[None]] = {}
        self.figures: dict[str, FeedFigures] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None

    def metrics(self, samples: Samples) -> None:
        """Prometheus samples: per source region, changes applied, batches rejected, lag."""
        for name, f in list(self.figures.items()):
            d = f.as_dict()
            samples.add("dynamolog_repin_applied", f.applied, region=name)
            samples.add("dynamolog_repin_rejected", f.rejected, region=name)
            samples.add("dynamolog_repin_lag_records", d["lag_records"], region=name)
            for q, k in (("0.5", "lag_ms_p50"), ("0.99", "lag_ms_p99")):
                if d[k] is not None:
                    samples.add("dynamolog_repin_latency_ms", d[k], region=name, quantile=q)

    async def start(self) -> None:
        await ensure_metadata_topics(self.settings)
        await self.metadata.start()
        await self.regions.start()
        self._producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap, acks="all",
                                          enable_idempotence=True)
        await self._producer.start()
        self._loop_task = asyncio.ensure_future(self._loop())
        log.info("repin running in %s", self.settings.region)

    async def close(self) -> None:
        tasks = [*self._feeds.values(), *([self._loop_task] if self._loop_task else [])]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._producer is not None:
            await self._producer.stop()
        await self.routing.close()
        await self.regions.close()
        await self.metadata.close()

    async def _loop(self) -> None:
        assert self._producer is not None
        await regions.follow_regions(self.settings, self.regions, "repin", self._feeds, self.figures, FeedFigures,
                                     self._feed, self._producer)

    async def _feed(self, source: str) -> None:
        fig = self.figures[source]
        while True:
            try:
                await self._run_feed(source, fig)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the feed starts again from its committed position
                fig.state, fig.error = "retrying", f"{type(e).__name__}: {e}"
                log.warning("repin <- %s: %s; retrying", source, fig.error)
            await asyncio.sleep(1.0)

    async def _run_feed(self, source: str, fig: FeedFigures) -> None:
        topic = regions.repin_topic(self.settings.namespace, source)
        async with KafkaAdmin(self.settings.bootstrap) as admin:
            await admin.create_topic(topic, configs={"retention.ms": str(7 * 24 * 3600 * 1000)})
            await admin.wait_for_topics([topic])
        group = f"{self.settings.namespace}.repin.{source}"
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap, group_id=group,
                                    enable_auto_commit=False, isolation_level="read_committed", fetch_max_wait_ms=20)
        await consumer.start()
        tp = TopicPartition(topic, 0)
        try:
            consumer.assign([tp])
            committed = (await consumer.committed(tp)) or 0
            consumer.seek(tp, committed)
            fig.position, fig.state, fig.error = committed, "running", ""
            #: the position's commit to the group, in the background: the next batch does not wait
            #: for it (one at a time; a batch applied again after a restart changes nothing)
            commit: asyncio.Future[None] | None = None
            while True:
                batch = await consumer.getmany(tp, timeout_ms=200, max_records=BATCHES_PER_APPLY)
                fig.end = consumer.last_stable_offset(tp) or fig.end
                msgs = batch.get(tp, [])
                changes: list[dict[str, Any]] = []
                for m in msgs:
                    region = self.regions.regions().get(source)
                    headers = dict(m.headers or [])
                    sig = headers.get("sig", b"").decode()
                    if region is None or m.value is None or not regions.batch_signed(region.secret, source, m.value,
                                                                                     sig):
                        fig.rejected += 1
                        log.warning("repin <- %s: batch at offset %d refused: its signature does not verify with "
                                    "the replication key", source, m.offset)
                        continue
                    changes += orjson.loads(m.value)
                # the batches fetched together are applied together, in their order: under load
                # RepIn keeps up by writing larger batches, not by queueing small ones
                if changes:
                    await self._apply(changes, fig)
                if msgs:
                    fig.position = msgs[-1].offset + 1
                if commit is not None and commit.done():
                    commit.result()  # a failed commit restarts the feed from the last one that landed
                    commit = None
                if commit is None and fig.position > committed:
                    committed = fig.position
                    commit = asyncio.ensure_future(consumer.commit({tp: OffsetAndMetadata(committed, "")}))
        finally:
            if commit is not None:
                await asyncio.gather(commit, return_exceptions=True)
            await consumer.stop()

    async def _status(self, ctl: dict[str, Any], source: str) -> None:
        """A status record from ``source``: each region's replica status is its own to say, so
        this region's entry stays as recorded here — except after ``caught_up``, which follows
        every change the source had when the replica was made: applied by now, they make the
        replica here whole, and it is ACTIVE once the table here is: an empty table's
        ``caught_up`` can come while its partitions are still being opened here, and a replica
        that says ACTIVE must take reads, writes and UpdateTable."""
        me = self.settings.region
        if ctl["ctl"] == "caught_up" and await self._ready(ctl["t"]) is None:
            table = self.metadata.catalog.items.get(ctl["t"])
            if table is not None and table.status == "CREATING":
                # the feed starts again from its last commit and this record comes again
                raise RuntimeError(f"the table {ctl['t']} is still CREATING here after {READY_WAIT_S:.0f} s")
            return  # no replica here any more (deleted meanwhile)
        rep = self.regions.replicas(ctl["t"])
        if rep is None or me not in rep.status:
            return
        theirs = {str(k): str(v) for k, v in ctl["status"].items()}
        status = {r: st for r, st in theirs.items() if r != me} | {me: rep.status[me]}
        if ctl["ctl"] == "caught_up":
            status[me] = "ACTIVE"
            log.info("repin <- %s: every item of %s is here; its replica is ACTIVE", source, ctl["t"])
        if status != rep.status:
            await regions.put_replicas(self.settings, replace(rep, status=status))

    async def _ready(self, name: str) -> TableDefinition | None:
        """The table a change belongs to once it can take it: its replica here recorded and the
        table ACTIVE (a replica just created is CREATING for a moment); None when the table has no
        replica here (deleted, or never created) after ``READY_WAIT_S``."""
        deadline = time.monotonic() + READY_WAIT_S
        while True:
            rep = self.regions.replicas(name)
            table = self.metadata.catalog.items.get(name)
            if rep is not None and self.settings.region in rep.status and table is not None \
                    and table.status in ("ACTIVE", "UPDATING"):
                return table
            if time.monotonic() >= deadline or (table is not None and table.status == "DELETING"):
                return None
            await asyncio.sleep(0.2)

    async def _apply(self, changes: list[dict[str, Any]], fig: FeedFigures) -> None:
        """Apply one batch: per partition in order, all partitions at once; retried until every
        change was acknowledged (applying one twice changes nothing)."""
        by_part: dict[str, tuple[TableDefinition, Any, list[dict[str, Any]]]] = {}
        stamps: list[int] = []
        ready: dict[str, TableDefinition | None] = {}
        for ch in changes:
            if ch.get("ctl") in ("status", "caught_up"):
                await self._status(ch, fig.source)
                continue
            if ch["t"] not in ready:
                ready[ch["t"]] = await self._ready(ch["t"])
            table = ready[ch["t"]]
            if table is None:
                fig.dropped += 1
                continue
            part = self.routing.partition_for_item_key(table, base64.b64decode(ch["k"]))
            by_part.setdefault(part.partition_id, (table, part, []))[2].append(
                {"key": ch["k"], "kind": "replicate", "item": ch["i"], "ts": ch["ts"], "region": ch["r"]})
            stamps.append(int(ch["ts"]))

        if not by_part:
            return

        async def send(unit: TableDefinition, part: Any, writes: list[dict[str, Any]]) -> None:
            for i in range(0, len(writes), WRITES_PER_REQUEST):
                chunk = writes[i:i + WRITES_PER_REQUEST]
                while True:
                    try:
                        await self.routing.call(unit, part, "write_batch", leader=True, writes=chunk)
                        break
                    except errors.ApiError as e:  # a locked item, a leader change: try again
                        log.debug("repin: write_batch to %s: %s; again", part.partition_id, e.type_name)
                        await asyncio.sleep(RETRY_S)

        await asyncio.gather(*(send(u, p, w) for u, p, w in by_part.values()))
        fig.applied += sum(len(w) for _, _, w in by_part.values())
        now = int(time.time() * 1000)
        fig.lag_ms.extend(now - s for s in stamps)

