"""RepOut: ship this region's changes of replicated tables to every other region (decision 0032).

For each linked region (dynamolog/regions.py) a link task:

1. asks the other region's router where its Kafka cluster is (``DescribeReplicationEndpoint``,
   signed with the replication key);
2. opens a transactional producer on *that* cluster (transactional id
   ``<their ns>.repout.<this region>``: a restarted RepOut fences the one before it and aborts
   its unfinished transaction), then reads its positions from the positions topic there
   (``<their ns>.repout.<this region>``, compacted, ``read_committed``);
3. follows the partition logs of every table with a replica in that region
   (services/streams/reader.py), and ships each batch of local changes to the topic
   ``<their ns>.repin.<this region>`` of the other cluster, signed with the replication key,
   **in the same Kafka transaction** as the positions after them.

So the positions are stored with their effects: after a crash (``kill -9``) the next RepOut
starts exactly after the last committed batch; nothing is lost, and nothing is shipped twice
(and a change applied twice would change nothing anyway: last writer wins).  A change that
arrived by replication is never shipped (the reader hands on only this region's changes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from dynamolog import regions
from dynamolog.config import Settings
from dynamolog.kafka.admin import KafkaAdmin
from dynamolog.metadata import Metadata, ensure_metadata_topics
from dynamolog.metrics import Samples
from services.streams.reader import ChangeReader, Position

log = logging.getLogger(__name__)

#: how long a link waits before it tries again after a failure
RETRY_S = 1.0
#: the repin topic's retention: how long a region may stay unreachable... and still be caught up
#: from the topic (the logs are kept forever; a longer outage is caught up from them anyway)
REPIN_RETENTION_MS = 7 * 24 * 3600 * 1000


@dataclass
class LinkFigures:
    """One link's counters."""

    target: str
    state: str = "starting"
    #: changes shipped (committed in the other cluster) since this process started
    shipped: int = 0
    #: records read that another region made (never shipped again)
    skipped_replicated: int = 0
    batches: int = 0
    lag_records: int = 0
    #: source log -> next offset shipped (committed)
    positions: dict[str, int] = field(default_factory=dict)
    error: str = ""
    #: ms from a change's stamp (its write here) to its commit in the other cluster, recent ones
    ship_ms: deque[int] = field(default_factory=lambda: deque(maxlen=2000))

    def as_dict(self) -> dict[str, Any]:
        ships = sorted(self.ship_ms)
        return {"target": self.target, "state": self.state, "shipped": self.shipped,
                "skipped_replicated": self.skipped_replicated, "batches": self.batches,
                "lag_records": self.lag_records, "positions": self.positions, "error": self.error,
                "ship_ms_p50": ships[len(ships) // 2] if ships else None,
                "ship_ms_p99": ships[min(len(ships) - 1, int(len(ships) * 0.99))] if ships else None,
                "updated_ms": int(time.time() * 1000)}


async def describe_endpoint(region: regions.Region) -> dict[str, Any]:
    from dynamolog.client.core import Client

    async with Client(region.endpoint, region=region.name, access_key=region.key_id, secret_key=region.secret,
                      timeout=5.0, max_retries=1) as c:
        return await c.call("DescribeReplicationEndpoint", {})


async def read_positions(bootstrap: str, topic: str) -> dict[str, Position]:
    """The committed positions in a positions topic (log topic -> Position)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out: dict[str, Position] = {}
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=500)
            for m in batch.get(tp, []):
                if m.key is not None and m.value is not None:
                    out[m.key.decode()] = Position.decode(orjson.loads(m.value))
        return out
    finally:
        await consumer.stop()


class RepOut:
    """The RepOut process: one link per other region."""

    def __init__(self, settings: Settings, master: bytes | None) -> None:
        self.settings = settings
        self.metadata = Metadata(settings)
        self.regions = regions.RegionsView(settings, master)
        self._links: dict[str, asyncio.Task[None]] = {}
        self.figures: dict[str, LinkFigures] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None

    def metrics(self, samples: Samples) -> None:
        """Prometheus samples: per target region, changes shipped, records skipped, lag, and
        the time from a write here to its commit there."""
        for name, f in list(self.figures.items()):
            samples.add("dynamolog_repout_shipped", f.shipped, region=name)
            samples.add("dynamolog_repout_skipped_replicated", f.skipped_replicated, region=name)
            samples.add("dynamolog_repout_lag_records", f.lag_records, region=name)
            d = f.as_dict()
            for q, k in (("0.5", "ship_ms_p50"), ("0.99", "ship_ms_p99")):
                if d[k] is not None:
                    samples.add("dynamolog_repout_latency_ms", d[k], region=name, quantile=q)

    async def start(self) -> None:
        await ensure_metadata_topics(self.settings)
        await self.metadata.start()
        await self.regions.start()
        self._producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap, acks="all",
                                          enable_idempotence=True)
        await self._producer.start()
        self._loop_task = asyncio.ensure_future(self._loop())
        log.info("repout running in %s", self.settings.region)

    async def close(self) -> None:
        tasks = [*self._links.values(), *([self._loop_task] if self._loop_task else [])]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._producer is not None:
            await self._producer.stop()
        await self.regions.close()
        await self.metadata.close()

    async def _loop(self) -> None:
        assert self._producer is not None
        await regions.follow_regions(self.settings, self.regions, "repout", self._links, self.figures, LinkFigures,
                                     self._link, self._producer)

    def _logs_for(self, target: str) -> dict[str, tuple[str, str]]:
        """Log topic -> (table name, table id) of every table with a replica here and in ``target``."""
        out: dict[str, tuple[str, str]] = {}
        for name, rep in self.regions.tables().items():
            if target not in rep.status or self.settings.region not in rep.status:
                continue
            table = self.metadata.catalog.items.get(name)
            if table is None or table.status in ("CREATING", "DELETING"):
                continue
            # split partitions too: a parent's log up to its SEAL, then its children's (last
            # writer wins orders an item's changes across them by their stamps; decision 0039)
            for p in self.metadata.table_lineage(table.table_id):
                out[p.log_topic] = (name, table.table_id)
        return out

    def _controls(self, target: str, logs: dict[str, tuple[str, str]], reader: ChangeReader,
                  sent: dict[str, dict[str, str]], announced: set[str]) -> list[dict[str, Any]]:
        """Status records to ship after this batch's changes (decision 0032):

        - ``caught_up``: a replica in ``target`` still CREATING whose table's logs are all read to
          their ends (the changes up to there go in the same transaction, before this record): once
          its RepIn has applied everything before it, the replica there has every item, and it
          records itself ACTIVE;
        - ``status``: this region's record of a replicated table changed since it was last told to
          ``target`` (so a replica that became ACTIVE there tells the region that made it)."""
        out: list[dict[str, Any]] = []
        for name, rep in self.regions.tables().items():
            if target not in rep.status or self.settings.region not in rep.status:
                continue
            topics = [t for t, (n, _) in logs.items() if n == name]
            if rep.status.get(target) == "CREATING" and name not in announced and topics and all(
                    t in reader.ends and reader.positions.get(t, 0) >= reader.ends[t] for t in topics):
                out.append({"ctl": "caught_up", "t": name, "status": dict(rep.status), "record": dict(rep.status)})
            elif sent.get(name) != rep.status:
                out.append({"ctl": "status", "t": name, "status": dict(rep.status), "record": dict(rep.status)})
        return out

    async def _link(self, target: str) -> None:
        fig = self.figures[target]
        failures = 0
        while True:
            try:
                await self._run_link(target, fig)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the link retries whatever failed
                error = f"{type(e).__name__}: {e}"
                if error != fig.error:  # one line per new cause, not one per attempt
                    log.warning("repout -> %s: %s; retrying", target, error)
                fig.state, fig.error = "retrying", error
                failures += 1
            await asyncio.sleep(min(RETRY_S * 2 ** min(failures, 5), 10.0))

    async def _run_link(self, target: str, fig: LinkFigures) -> None:
        region = self.regions.regions().get(target)
        if region is None:
            return
        answer = await describe_endpoint(region)
        if answer.get("Region") != target:
            raise RuntimeError(f"{region.endpoint} answers as region {answer.get('Region')!r}, not {target}")
        bootstrap, ns = str(answer["KafkaBootstrap"]), str(answer["Namespace"])
        me = self.settings.region
        out_topic, pos_topic = regions.repin_topic(ns, me), regions.positions_topic(ns, me)
        async with KafkaAdmin(bootstrap) as admin:
            await admin.create_topic(out_topic, configs={"retention.ms": str(REPIN_RETENTION_MS)})
            await admin.ensure_compacted_topic(pos_topic)
            await admin.wait_for_topics([out_topic, pos_topic])
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                    transactional_id=f"{ns}.repout.{me}", max_request_size=8 * 1024 * 1024,
                                    linger_ms=0)
        await producer.start()  # fences an earlier RepOut of this region and aborts its transaction
        reader = ChangeReader(self.settings)
        try:
            stored = await read_positions(bootstrap, pos_topic)
            shipped = {t: p.offset for t, p in stored.items()}
            #: table -> the replica statuses last told to the target; tables announced caught up
            sent: dict[str, dict[str, str]] = {}
            announced: set[str] = set()
            await reader.start()
            fig.state, fig.error = "running", ""
            log.info("repout -> %s: shipping to %s (%s), %d log positions stored", target, bootstrap, out_topic,
                     len(stored))
            while True:
                logs = self._logs_for(target)
                reader.follow({t: (name, stored.get(t, Position())) for t, (name, _) in logs.items()})
                changes = await reader.poll(self.settings.repl_batch_max, timeout_ms=50)
                moved = {t: reader.position(t) for t in logs if reader.positions.get(t, 0) != shipped.get(t, 0)}
                fig.lag_records = reader.lag()
                fig.skipped_replicated = reader.skipped_replicated
                controls = self._controls(target, logs, reader, sent, announced)
                if not changes and not moved and not controls:
                    continue
                async with producer.transaction():
                    for records in (changes, controls):  # the controls after the changes they follow
                        if records:
                            payload = orjson.dumps([{k: v for k, v in r.items() if k != "record"} for r in records])
                            await producer.send(out_topic, value=payload, headers=[
                                ("src", me.encode()), ("sig", regions.sign_batch(region.secret, me, payload).encode())])
                    for t, pos in moved.items():
                        await producer.send(pos_topic, key=t.encode(), value=orjson.dumps(pos.encode()))
                for c in controls:
                    sent[c["t"]] = c["record"]
                    if c["ctl"] == "caught_up":
                        announced.add(c["t"])
                        log.info("repout -> %s: every item of %s shipped; its replica there becomes ACTIVE once "
                                 "applied", target, c["t"])
                for t, pos in moved.items():
                    shipped[t] = pos.offset
                    stored[t] = pos
                now_ms = int(time.time() * 1000)
                fig.ship_ms.extend(now_ms - int(c["ts"]) for c in changes)
                fig.shipped += len(changes)
                fig.batches += 1 if changes else 0
                fig.positions = dict(shipped)
        finally:
            await reader.close()
            await producer.stop()
