"""Every setting of a Dynamolog process, in one place.

``Settings`` has one field per setting; each field names its environment variable and says what
it does.  A process reads the environment once, at start (``dynamolog.service.settings_from``
for the services, ``settings()`` for anything else), and hands the object to what it starts;
command-line options override the environment.  docs/settings.md lists every setting; a unit
test (tests/unit/test_config.py) keeps that table, this class and the code's environment reads
in step.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

_T = TypeVar("_T")


def _setting(default: _T, env: str, doc: str) -> _T:
    """A field of ``Settings``: its default, its environment variable and what it does."""
    return dataclasses.field(default=default, metadata={"env": env, "doc": doc})


class SettingsError(ValueError):
    """An environment variable or option holds a value its setting cannot take."""


@dataclass(frozen=True)
class Settings:
    """Where the Kafka cluster is, how this system names its topics, and every tunable of its
    services.  Each field's metadata holds its environment variable (``env``) and its meaning
    (``doc``); units are the last part of a field's name."""

    # -- every process -------------------------------------------------------------------
    bootstrap: str = _setting("127.0.0.1:9092", "KAFKA_BOOTSTRAP_SERVERS",
                              "comma-separated host:port list of the Kafka brokers")
    namespace: str = _setting("dyn", "DYNAMOLOG_NAMESPACE",
                              "prefix of every topic and transactional id, so that several systems "
                              "share one Kafka cluster")
    region: str = _setting("us-east-1", "DYNAMOLOG_REGION",
                           "region this system answers as (ARNs, the origin of log records)")
    log_level: str = _setting("INFO", "DYNAMOLOG_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR")
    system_key_file: str = _setting("", "DYNAMOLOG_SYSTEM_KEY_FILE",
                                    "the system key's file (internal RPC, credential secrets); "
                                    "`dynamolog up` sets it for the services it starts")
    # -- the dynamolog command and the local Kafka cluster ---------------------------------
    data_dir: str = _setting(".data", "DYNAMOLOG_DATA_DIR",
                             "default --data-dir of `dynamolog up`, `down`, `status`, `keys` and the benchmarks")
    cache_dir: str = _setting("", "DYNAMOLOG_CACHE_DIR",
                              "where Kafka's jars are kept (unset: ~/.cache/dynamolog)")
    kafka_extra_config: str = _setting("", "DYNAMOLOG_KAFKA_EXTRA_CONFIG",
                                       "extra broker settings for a local Kafka cluster, one key=value a line")
    native: int = _setting(1, "DYNAMOLOG_NATIVE",
                           "1: run the router's and storage node's hot modules compiled by `dynamolog native "
                           "build` while the build matches their sources; 0: run everything interpreted "
                           "(decision 0059; read when a process starts)")
    kafka_jvm_opts: str = _setting("", "DYNAMOLOG_KAFKA_JVM_OPTS",
                                   "JVM options replacing the local brokers' garbage-collector settings")
    # -- storage node: the leader's sequencer ----------------------------------------------
    group_linger_ms: float = _setting(6.0, "DYNAMOLOG_GROUP_LINGER_MS",
                                      "shortest interval between two group commits of a busy partition "
                                      "(a cluster of several brokers, where an append is replicated)")
    group_linger_one_broker_ms: float = _setting(0.0, "DYNAMOLOG_GROUP_LINGER_ONE_BROKER_MS",
                                                 "the same on a one-broker cluster, where an append costs the "
                                                 "broker little and waiting for a larger group costs more "
                                                 "time than it saves")
    pipeline_writes_min: int = _setting(16, "DYNAMOLOG_PIPELINE_MIN",
                                        "writes that must wait before a group is sent while the previous "
                                        "one commits")
    lease_ms: int = _setting(1000, "DYNAMOLOG_LEASE_MS",
                             "how long an append that landed where its leader expected proves leadership "
                             "for strongly consistent reads; a new term waits this long after its FENCE "
                             "before it serves them or acknowledges a write")
    ttl_sweep_s: float = _setting(30.0, "DYNAMOLOG_TTL_SWEEP_S",
                                  "interval between a leader's scans for items whose time to live has passed")
    item_collection_bytes_max: int = _setting(10 * 1024**3, "DYNAMOLOG_ITEM_COLLECTION_MAX_BYTES",
                                              "largest item collection of a table with local secondary "
                                              "indexes (DynamoDB: 10 GB)")
    stall_s: float = _setting(6.5, "DYNAMOLOG_STALL_S",
                              "a leader whose commits have failed (or whose writes have waited) this long, "
                              "or a follower without an answer from Kafka this long, reports itself "
                              "unhealthy, and the auto-admin moves leadership away; keep it above the "
                              "Kafka cluster's own failover time (decision 0057)")
    max_stale_ms: int = _setting(2000, "DYNAMOLOG_MAX_STALE_MS",
                                 "a follower serves eventually consistent reads only if it caught up with the "
                                 "log this recently ...")
    max_stale_records: int = _setting(1000, "DYNAMOLOG_MAX_STALE_RECORDS",
                                      "... and trails the log's last known end by at most this many records; "
                                      "beyond either bound the router reads from the leader")
    follower_fetch_wait_ms: int = _setting(50, "DYNAMOLOG_FOLLOWER_FETCH_WAIT_MS",
                                           "how long a follower's fetch waits for the log to gather "
                                           "``DYNAMOLOG_FOLLOWER_FETCH_MIN_BYTES`` before it takes what there is "
                                           "(bounds how far behind a busy partition's followers trail)")
    follower_fetch_min_bytes: int = _setting(65536, "DYNAMOLOG_FOLLOWER_FETCH_MIN_BYTES",
                                             "bytes of log a follower's fetch waits for (1: every record at "
                                             "once, a fetch per write; more: fewer, larger fetches)")
    reconcile_s: float = _setting(3.0, "DYNAMOLOG_RECONCILE_S",
                                  "interval between a storage node's comparisons of the partition map with "
                                  "the replicas it serves")
    capacity_burst_s: float = _setting(300.0, "DYNAMOLOG_CAPACITY_BURST_S",
                                       "unused provisioned capacity a partition saves for later bursts, in "
                                       "seconds of its rate (DynamoDB: 300)")
    capacity_report_ms: int = _setting(100, "DYNAMOLOG_CAPACITY_REPORT_MS",
                                       "how often a follower reports the read units it served to the "
                                       "partition's leader, which holds the read bucket (decision 0024)")
    capacity_enforce: int = _setting(1, "DYNAMOLOG_CAPACITY_ENFORCE",
                                     "1: storage nodes count capacity and throttle (as DynamoDB); 0: nothing is "
                                     "counted or throttled, only for measuring what enforcement costs "
                                     "(bench/capacity.py)")
    # -- router ----------------------------------------------------------------------------
    txn_timeout_ms: int = _setting(10_000, "DYNAMOLOG_TXN_TIMEOUT_MS",
                                   "how long a transaction's participant keeps a lock before it asks the "
                                   "decision log (bounds how long a dead coordinator blocks its items)")
    txn_read_wait_ms: int = _setting(50, "DYNAMOLOG_TXN_READ_WAIT_MS",
                                     "how long TransactGetItems waits at a partition for the decision of a "
                                     "transaction that holds one of its items before it is cancelled (read by "
                                     "routers); half of it bounds how long a transaction's prepare waits behind "
                                     "such reads and a read across partitions keeps its items for the router's "
                                     "check (read by storage nodes)")
    txn_one_phase: int = _setting(1, "DYNAMOLOG_TXN_ONE_PHASE",
                                  "1: a transaction whose items all live in one partition commits in one step "
                                  "at its leader, without a decision record; 0: every transaction takes two "
                                  "phases")
    # -- auto-admin ------------------------------------------------------------------------
    admin_check_s: float = _setting(0.25, "DYNAMOLOG_ADMIN_CHECK_S", "interval between heartbeats to storage nodes")
    dead_after_s: float = _setting(3.0, "DYNAMOLOG_DEAD_AFTER_S",
                                   "a node silent this long is down: its partitions get new leaders")
    repair_after_s: float = _setting(30.0, "DYNAMOLOG_REPAIR_AFTER_S",
                                     "a replica on a node down this long is rebuilt on another node")
    scaling_period_s: float = _setting(60.0, "DYNAMOLOG_SCALING_PERIOD_S",
                                       "auto scaling: the period over which consumed capacity is averaged and "
                                       "compared with the target (DynamoDB's alarms: one minute)")
    scaling_out_periods: int = _setting(2, "DYNAMOLOG_SCALING_OUT_PERIODS",
                                        "auto scaling: consecutive periods above the target before a scale-out")
    scaling_in_periods: int = _setting(15, "DYNAMOLOG_SCALING_IN_PERIODS",
                                       "auto scaling: consecutive periods 20 points or more below the target "
                                       "before a scale-in")
    table_stats_s: float = _setting(10.0, "DYNAMOLOG_TABLE_STATS_S",
                                    "how often the auto-admin publishes each table's item count and size "
                                    "(DescribeTable's ItemCount, TableSizeBytes, IndexSizeBytes) when they "
                                    "changed; DynamoDB refreshes them about every six hours")
    split_bytes: int = _setting(10 * 1024**3, "DYNAMOLOG_SPLIT_BYTES",
                                "a table partition whose items pass this size (DynamoDB's item size) is split in two "
                                "by the auto-admin (DynamoDB: 10 GB; docs/decisions/0039-partition-splits.md)")
    split_heat_share: float = _setting(0.8, "DYNAMOLOG_SPLIT_HEAT_SHARE",
                                       "a table partition consuming this share of the per-partition cap (1,000 write "
                                       "or 3,000 read units a second) for DYNAMOLOG_SPLIT_HEAT_S is split for heat")
    split_heat_s: float = _setting(120.0, "DYNAMOLOG_SPLIT_HEAT_S",
                                   "how long a partition's consumption must stay near the per-partition cap before "
                                   "it is split for heat")
    # -- singletons (auto-admin, indexer) ----------------------------------------------------
    election_session_ms: int = _setting(6000, "DYNAMOLOG_ELECTION_SESSION_MS",
                                        "how long an active auto-admin or indexer may be silent before its "
                                        "standby takes over (the election group's session timeout; the "
                                        "broker's group.min.session.timeout.ms bounds it from below)")
    # -- backup service --------------------------------------------------------------------
    backup_store: str = _setting("", "DYNAMOLOG_BACKUP_STORE",
                                 "where backups and point-in-time recovery snapshots live: a directory, "
                                 "file:///path or s3://bucket/prefix (unset: <data dir>/backups)")
    s3_endpoint_url: str = _setting("", "AWS_ENDPOINT_URL_S3",
                                    "the S3 API endpoint of an s3:// backup store, as the AWS SDKs take it "
                                    "(unset: AWS; credentials come from the SDK's usual chain)")
    pitr_snapshot_s: float = _setting(600.0, "DYNAMOLOG_PITR_SNAPSHOT_S",
                                      "with point-in-time recovery on, how often each partition's state is "
                                      "copied to the backup store (a restore replays the log after the "
                                      "newest copy at or before its time)")
    backup_duty: float = _setting(0.25, "DYNAMOLOG_BACKUP_DUTY",
                                  "the share of the time a backup or recovery snapshot spends copying (0 < x <= 1): "
                                  "after each page of a partition's data or log it rests for the rest, so the "
                                  "requests served meanwhile keep their latency (1: copy at full speed)")
    backup_work_dir: str = _setting("", "DYNAMOLOG_BACKUP_WORK_DIR",
                                    "where the backup service folds a partition on disk during a restore, "
                                    "import or export (a temporary RocksDB per partition; unset: the "
                                    "system's temporary directory)")
    incremental_export_min_s: float = _setting(900.0, "DYNAMOLOG_INCREMENTAL_EXPORT_MIN_S",
                                               "the shortest window of an incremental export (DynamoDB's: 15 "
                                               "minutes); the longest is 24 hours")
    gsi_read_wait_ms: int = _setting(2000, "DYNAMOLOG_GSI_READ_WAIT_MS",
                                     "how long a Query or Scan of a global secondary index waits for the index "
                                     "to apply every table write acknowledged before the request arrived "
                                     "(read-your-writes for indexes); 0: no wait, the index is read as it is")
    pitr_settle_ms: int = _setting(1000, "DYNAMOLOG_PITR_SETTLE_MS",
                                   "LatestRestorableDateTime trails the clock by this much: every write "
                                   "stamped at or before it has reached its log")
    # -- global tables (docs/decisions/0031, 0032) -----------------------------------------
    tombstone_s: float = _setting(86400.0, "DYNAMOLOG_TOMBSTONE_S",
                                  "how long a deleted item's last-writer-wins stamp refuses an older change "
                                  "replicated from another region (a change later than that by more may "
                                  "bring the item back)")
    repl_batch_max: int = _setting(500, "DYNAMOLOG_REPL_BATCH_MAX",
                                   "changes RepOut reads from the logs and ships in one Kafka transaction at most")
    # -- indexer ---------------------------------------------------------------------------
    indexer_stats_s: float = _setting(30.0, "DYNAMOLOG_INDEXER_STATS_S",
                                      "interval between the indexer's log lines of counters and delays")
    indexer_commit_ms: int = _setting(20, "DYNAMOLOG_INDEXER_COMMIT_MS",
                                      "how often at most the indexer commits how far each index has applied a "
                                      "table partition's log (what a Query or Scan of the index waits for); a "
                                      "restart repeats at most this much, idempotently")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and value < 0:
                raise SettingsError(f"{f.metadata['env']} must not be negative (got {value})")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The settings in ``environ`` (default: this process's environment), each replaced by
        an override that is not None or empty (command-line options)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = overrides.get(f.name)
            if raw is None or raw == "":
                raw = env.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f, raw)
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"no such settings: {sorted(unknown)}")
        return cls(**values)

    # -- topic names (docs/architecture.md, "Topics") -------------------------------------
    @property
    def catalog_topic(self) -> str:
        return f"{self.namespace}.catalog"

    @property
    def partitions_topic(self) -> str:
        return f"{self.namespace}.partitions"

    @property
    def nodes_topic(self) -> str:
        return f"{self.namespace}.nodes"

    @property
    def scaling_topic(self) -> str:
        """Application Auto Scaling's scalable targets and policies (dynamolog/scaling.py)."""
        return f"{self.namespace}.scaling"

    @property
    def stats_topic(self) -> str:
        """Tables' measured item counts and sizes (docs/decisions/0027-table-stats-and-metrics.md)."""
        return f"{self.namespace}.stats"

    @property
    def txn_topic(self) -> str:
        """Decisions of multi-item transactions (docs/transactions.md)."""
        return f"{self.namespace}.txn"

    def log_topic(self, table: str, partition_id: str) -> str:
        """The partition's replication log.  Kafka allows 249 characters in a topic name and
        DynamoDB 255 in a table name, so long table names are cut; the partition id keeps the
        name unique."""
        room = 249 - len(self.namespace) - len(partition_id) - 4
        return f"{self.namespace}.t.{table[:room]}.{partition_id}"


def _parse(f: dataclasses.Field[Any], raw: object) -> Any:
    kind: type[Any] = type(f.default)
    if isinstance(raw, kind) and not isinstance(raw, bool):
        return raw
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{f.metadata['env']}={raw!r} is not a{'n' if kind is int else ''} "
                            f"{kind.__name__}") from None


class SettingDoc(NamedTuple):
    """One setting as the documentation and ``--help`` show it."""

    #: the environment variable
    env: str
    #: the default, as one would write it in the environment ("" for none)
    default: str
    #: the field of ``Settings``
    name: str
    #: what it does
    doc: str


def documented() -> list[SettingDoc]:
    """Every setting, in the order of ``Settings``' fields."""
    return [SettingDoc(f.metadata["env"], str(f.default), f.name, f.metadata["doc"])
            for f in dataclasses.fields(Settings)]


def markdown_table() -> str:
    """The table of docs/settings.md."""
    rows = ["| environment variable | default | what it sets |", "|---|---|---|"]
    rows += [f"| `{d.env}` | {f'`{d.default}`' if d.default else '(none)'} | {d.doc} |" for d in documented()]
    return "\n".join(rows) + "\n"


def help_epilog() -> str:
    """The settings as ``--help`` lists them (command-line options above override them)."""
    lines = ["settings (environment variables; the options above override them; docs/settings.md):"]
    for d in documented():
        lines.append(f"  {d.env}={d.default}")
        lines += textwrap.wrap(d.doc, width=94, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


def external_bootstrap(environ: Mapping[str, str] | None = None) -> str | None:
    """The Kafka cluster named by ``KAFKA_BOOTSTRAP_SERVERS``, or None when it is not set (then
    ``dynamolog up`` starts a cluster of its own)."""
    return (os.environ if environ is None else environ).get("KAFKA_BOOTSTRAP_SERVERS") or None


_current: Settings | None = None


def settings() -> Settings:
    """This process's settings: the ones installed at start by ``use``, else the environment's,
    read on the first call."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current


def use(current: Settings) -> Settings:
    """Install this process's settings (a service does at start, from its options); returns them."""
    global _current
    _current = current
    return current


def write_docs_table(path: str = "docs/settings.md") -> None:
    """Rewrite the generated table in docs/settings.md from ``Settings``
    (``python -m dynamolog.config``, after adding or changing a setting)."""
    with open(path) as f:
        text = f.read()
    head, rest = text.split("-->\n", 1)
    tail = rest.split("<!-- end of settings table -->", 1)[1]
    with open(path, "w") as f:
        f.write(head + "-->\n" + markdown_table() + "<!-- end of settings table -->" + tail)


if __name__ == "__main__":
    write_docs_table()
