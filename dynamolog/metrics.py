"""Prometheus text endpoint of every service (docs/metrics.md).

Each service process (router, storage node, auto-admin, indexer) started with ``--metrics-port``
serves ``GET /metrics`` in the Prometheus text format, made by ``prometheus_client``.  The HTTP
server is ``prometheus_client``'s own, on a thread of its own; a scrape asks the service's event
loop for the samples (:class:`MetricsEndpoint`), so the service's state is read only on its loop
and nothing is computed between scrapes.

Every metric name, type, help text and label set is in :data:`METRICS`, the one list docs/metrics.md
describes; a service adds samples through :class:`Samples`, which refuses a name or label set
not listed there.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

log = logging.getLogger(__name__)

#: how long a scrape waits for the service's event loop
SCRAPE_TIMEOUT_S = 5.0


class MetricDef(NamedTuple):
    """One metric family."""

    kind: str
    """gauge or counter (a counter's samples end in ``_total``)."""
    help: str
    labels: tuple[str, ...]


_PART = ("table", "index", "partition")
#: every metric a Dynamolog service exposes; ``index`` is "" for a table's own partitions
METRICS: dict[str, MetricDef] = {
    # sizes: storage nodes (each replica), auto-admin and routers (each table, from <ns>.stats)
    "dynamolog_partition_items": MetricDef("gauge", "Items (entries, for an index partition) in the replica", (
        *_PART, "role")),
    "dynamolog_partition_size_bytes": MetricDef("gauge", "Size of the replica's items, DynamoDB's item size", (
        *_PART, "role")),
    "dynamolog_partition_next_offset": MetricDef("gauge", "Next log offset the replica applies", (*_PART, "role")),
    "dynamolog_table_items": MetricDef("gauge", "DescribeTable's ItemCount", ("table",)),
    "dynamolog_table_size_bytes": MetricDef("gauge", "DescribeTable's TableSizeBytes", ("table",)),
    "dynamolog_index_items": MetricDef("gauge", "A global secondary index's ItemCount", ("table", "index")),
    "dynamolog_index_size_bytes": MetricDef("gauge", "A global secondary index's IndexSizeBytes", ("table", "index")),
    "dynamolog_table_stats_age_seconds": MetricDef("gauge", "Age of the published item count and size", ("table",)),
    # capacity: provisioned (routers, auto-admin: the catalog), consumed and throttled (storage
    # nodes: the partition leaders' token buckets), the adaptive multiplier (auto-admin)
    "dynamolog_provisioned_read_units": MetricDef("gauge", "Provisioned read capacity units (0: on demand)", (
        "table", "index")),
    "dynamolog_provisioned_write_units": MetricDef("gauge", "Provisioned write capacity units (0: on demand)", (
        "table", "index")),
    "dynamolog_consumed_read_units": MetricDef("counter", "Read capacity units consumed at the partition", _PART),
    "dynamolog_consumed_write_units": MetricDef("counter", "Write capacity units consumed at the partition", _PART),
    "dynamolog_throttled_requests": MetricDef("counter", "Requests refused with ProvisionedThroughputExceeded", (
        *_PART, "kind")),
    "dynamolog_partition_rate_units": MetricDef("gauge", "Rate the partition's token bucket refills at, units/s", (
        *_PART, "kind")),
    "dynamolog_adaptive_multiplier": MetricDef("gauge", "Adaptive capacity's multiplier of the partition's share", (
        *_PART, "kind")),
    "dynamolog_partition_splits": MetricDef("counter", "Partitions this auto-admin has split", ()),
    "dynamolog_partition_split_blocked": MetricDef("gauge", "1 for a partition that should be split but cannot be", (
        "table", "partition", "reason")),
    # processes
    "dynamolog_singleton_active": MetricDef("gauge", "1 while this process is the active one of its role", (
        "role",)),
    "dynamolog_router_requests": MetricDef("counter", "HTTP requests the router answered", ()),
    "dynamolog_router_index_read_waits": MetricDef(
        "counter", "Global index reads that waited for the index to apply earlier table writes", ()),
    "dynamolog_router_index_read_wait_timeouts": MetricDef(
        "counter", "Global index reads that stopped waiting after DYNAMOLOG_GSI_READ_WAIT_MS", ()),
    "dynamolog_indexer_index_writes": MetricDef("counter", "Index entries the indexer wrote", ("table", "index")),
    "dynamolog_indexer_base_records": MetricDef("counter", "Table log records the indexer read for an index", (
        "table", "index")),
    # global tables (services/repout, services/repin); region: the other region
    "dynamolog_repout_shipped": MetricDef("counter", "Local changes RepOut committed into the region's cluster", (
        "region",)),
    "dynamolog_repout_skipped_replicated": MetricDef("counter", "Log records RepOut did not ship: made in another "
                                                     "region", ("region",)),
    "dynamolog_repout_lag_records": MetricDef("gauge", "Log records RepOut has not read yet for the region", (
        "region",)),
    "dynamolog_repout_latency_ms": MetricDef("gauge", "Write here -> committed in the region's cluster, recent "
                                             "changes (ms)", ("region", "quantile")),
    "dynamolog_repin_applied": MetricDef("counter", "Changes from the region RepIn applied (acknowledged)", (
        "region",)),
    "dynamolog_repin_rejected": MetricDef("counter", "Batches from the region refused: signature not verified", (
        "region",)),
    "dynamolog_repin_lag_records": MetricDef("gauge", "Batches from the region not applied yet", ("region",)),
    "dynamolog_repin_latency_ms": MetricDef("gauge", "Write in the region -> applied here, recent changes (ms)", (
        "region", "quantile")),
}


def index_label(table_id: str) -> str:
    """The ``index`` label of a partition of ``table_id`` (``<table id>#<index>`` for an index)."""
    return table_id.split("#", 1)[1] if "#" in table_id else ""


class Samples:
    """Samples of one scrape, grouped into the families of :data:`METRICS`."""

    def __init__(self) -> None:
        self._families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}

    def add(self, name: str, value: float, **labels: str) -> None:
        d = METRICS[name]
        if tuple(labels) != d.labels:
            raise ValueError(f"{name}: labels {tuple(labels)}, expected {d.labels}")
        fam = self._families.get(name)
        if fam is None:
            cls = GaugeMetricFamily if d.kind == "gauge" else CounterMetricFamily
            fam = self._families[name] = cls(name, d.help, labels=list(d.labels))
        fam.add_metric([labels[k] for k in d.labels], value)

    def families(self) -> list[Metric]:
        return list(self._families.values())


#: what a service gives: its samples of one scrape
Collect = Callable[[Samples], None]


class _OnLoop(Collector):
    """A collector whose samples are made on the service's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, collect: Collect) -> None:
        self._loop = loop
        self._collect = collect

    async def _gather(self) -> list[Metric]:
        s = Samples()
        self._collect(s)
        return s.families()

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        fut = asyncio.run_coroutine_threadsafe(self._gather(), self._loop)
        yield from fut.result(timeout=SCRAPE_TIMEOUT_S)


class MetricsEndpoint:
    """``GET /metrics`` on ``host:port`` (port 0: any free one, see :attr:`port`)."""

    def __init__(self, collect: Collect, host: str = "127.0.0.1", port: int = 0) -> None:
        self._collect = collect
        self.host = host
        self._port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_port)

    async def start(self) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_OnLoop(asyncio.get_running_loop(), self._collect))
        self._server, self._thread = start_http_server(self._port, self.host, registry)
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            server = self._server
            # shutdown() waits for the serving thread, which may wait for this loop: not on it
            await asyncio.get_running_loop().run_in_executor(None, server.shutdown)
            server.server_close()
            self._server = None


def collect_of(service: Any) -> Collect | None:
    """The ``metrics(samples)`` method of a service object, if it has one."""
    fn = getattr(service, "metrics", None)
    return fn if callable(fn) else None
