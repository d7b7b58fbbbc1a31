"""The catalog's records and the lookups every service makes on them.

A table is a TableDefinition record in ``<ns>.catalog`` (``schemas/TableDefinition.avsc``) and
its partitions are PartitionInfo records in ``<ns>.partitions`` (``schemas/PartitionInfo.avsc``);
the codec (:mod:`dynamolog.codec`) hands them over as dicts with the schemas' field names.  The
typed model (:class:`TableDefinition`, :class:`GlobalIndex`, :class:`LocalIndex`,
:class:`PartitionInfo`) mirrors the schemas field for field, with ``from_record`` /
``to_record`` for the codec's dicts.  It is the representation the services use: the metadata
views (:mod:`dynamolog.metadata`) decode each record once, the services read it by attribute
and make changes with ``dataclasses.replace``, and the dicts appear only at the Kafka edge and
on the internal RPC.  The functions below are the one place that reads a table's key names,
attribute types and ARN, and finds the partition of a hash, so no service re-writes them.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from . import errors

#: the account id in every ARN this system answers
ACCOUNT = "000000000000"
#: statuses during which the auto-admin is still carrying out a change of the table
PENDING_STATUSES = ("CREATING", "UPDATING", "DELETING")
_TABLE_ARN = re.compile(r"^arn:aws:dynamodb:([^:/]+):(\d+):table/([^/]{3,})$")


@dataclass(frozen=True)
class KeySchemaElement:
    attribute_name: str
    """The key attribute's name."""
    key_type: str
    """HASH (partition key) or RANGE (sort key)."""


@dataclass(frozen=True)
class AttributeDefinition:
    attribute_name: str
    """A key attribute's name (of the table or of an index)."""
    attribute_type: str
    """S, N or B."""


@dataclass(frozen=True)
class GlobalIndex:
    """A global secondary index: partitions of its own, fed by the indexer (decision 0012)."""

    index_name: str
    """The name the API uses."""
    index_id: str
    """Internal table id of its partitions: ``<table_id>#<index name>``."""
    hash_key: str
    """Its partition key attribute."""
    range_key: str | None
    """Its sort key attribute, if any."""
    projection_type: str
    """ALL, KEYS_ONLY or INCLUDE."""
    non_key_attributes: tuple[str, ...]
    """The attributes INCLUDE projects besides the keys."""
    status: str
    """CREATING (backfilling), ACTIVE or DELETING."""
    partition_ids: tuple[str, ...]
    """Its partitions, in hash order."""
    read_capacity_units: int = 0
    """Provisioned reads (0 on demand)."""
    write_capacity_units: int = 0
    """Provisioned writes (0 on demand)."""
    created_at_ms: int = 0
    """When UpdateTable or CreateTable made it."""
    max_read_request_units: int | None = None
    """OnDemandThroughput's read maximum (None: none set)."""
    max_write_request_units: int | None = None
    """OnDemandThroughput's write maximum (None: none set)."""
    more_hash_keys: tuple[str, ...] = ()
    """A multi-attribute partition key's 2nd to 4th attributes, in key-schema order (v9)."""
    more_range_keys: tuple[str, ...] = ()
    """A multi-attribute sort key's 2nd to 4th attributes, in key-schema order (v9)."""
    warm_read_units: int | None = None
    """WarmThroughput.ReadUnitsPerSecond the index was raised to (None: never raised; v10)."""
    warm_write_units: int | None = None
    """WarmThroughput.WriteUnitsPerSecond the index was raised to (None: never raised; v10)."""

    @property
    def hash_keys(self) -> tuple[str, ...]:
        """Every partition key attribute, in key-schema order."""
        return (self.hash_key, *self.more_hash_keys)

    @property
    def range_keys(self) -> tuple[str, ...]:
        """Every sort key attribute, in key-schema order (none: no sort key)."""
        return (self.range_key, *self.more_range_keys) if self.range_key is not None else ()

    def key_schema(self) -> list[dict[str, str]]:
        """KeySchema as the API describes it: the HASH elements, then the RANGE elements."""
        return ([{"AttributeName": a, "KeyType": "HASH"} for a in self.hash_keys]
                + [{"AttributeName": a, "KeyType": "RANGE"} for a in self.range_keys])

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> GlobalIndex:
        return cls(**{**r, "non_key_attributes": tuple(r.get("non_key_attributes") or ()),
                      "partition_ids": tuple(r["partition_ids"]),
                      "more_hash_keys": tuple(r.get("more_hash_keys") or ()),
                      "more_range_keys": tuple(r.get("more_range_keys") or ())})

    def to_record(self) -> dict[str, Any]:
        return {**asdict(self), "non_key_attributes": list(self.non_key_attributes),
                "partition_ids": list(self.partition_ids), "more_hash_keys": list(self.more_hash_keys),
                "more_range_keys": list(self.more_range_keys)}


@dataclass(frozen=True)
class LocalIndex:
    """A local secondary index: kept in the table's own replicas (decision 0013)."""

    index_name: str
    """The name the API uses."""
    range_key: str
    """Its sort key attribute (its partition key is the table's)."""
    projection_type: str
    """ALL, KEYS_ONLY or INCLUDE."""
    non_key_attributes: tuple[str, ...] = ()
    """The attributes INCLUDE projects besides the keys."""

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> LocalIndex:
        return cls(**{**r, "non_key_attributes": tuple(r.get("non_key_attributes") or ())})

    def to_record(self) -> dict[str, Any]:
        return {**asdict(self), "non_key_attributes": list(self.non_key_attributes)}


@dataclass(frozen=True)
class TableDefinition:
    """A table of the catalog (``schemas/TableDefinition.avsc``)."""

    table_name: str
    """The name the API uses; the catalog topic's key."""
    table_id: str
    """A uuid: tells a table from an older one of the same name."""
    key_schema: tuple[KeySchemaElement, ...]
    """HASH first, then RANGE if the table has a sort key."""
    attribute_definitions: tuple[AttributeDefinition, ...]
    """Types of the key attributes of the table and its indexes."""
    billing_mode: str
    """PROVISIONED or PAY_PER_REQUEST."""
    read_capacity_units: int
    """Provisioned reads (0 on demand)."""
    write_capacity_units: int
    """Provisioned writes (0 on demand)."""
    status: str
    """CREATING, ACTIVE, UPDATING or DELETING."""
    created_at_ms: int
    """When CreateTable was accepted."""
    partition_ids: tuple[str, ...]
    """The table's partitions, in hash order."""
    tags: dict[str, str] = field(default_factory=dict)
    """TagResource's tags."""
    deleted: bool = False
    """Kept for old records; deletion writes DELETING, then a tombstone."""
    last_increase_ms: int | None = None
    """Last provisioned-throughput increase."""
    last_decrease_ms: int | None = None
    """Last provisioned-throughput decrease."""
    decreases_today: int = 0
    """Decreases in the UTC day of ``last_decrease_ms``."""
    pay_per_request_since_ms: int | None = None
    """When the table last switched to on demand."""
    stream_enabled: bool = False
    """Whether the stream is on."""
    stream_view_type: str | None = None
    """KEYS_ONLY, NEW_IMAGE, OLD_IMAGE or NEW_AND_OLD_IMAGES."""
    stream_label: str | None = None
    """The stream ARN's timestamp label."""
    stream_created_ms: int | None = None
    """When the current stream was enabled."""
    stream_disabled_ms: int | None = None
    """When the stream was last disabled."""
    ttl_attribute: str | None = None
    """The time-to-live attribute, when TTL is enabled."""
    global_indexes: tuple[GlobalIndex, ...] = ()
    """Its global secondary indexes."""
    local_indexes: tuple[LocalIndex, ...] = ()
    """Its local secondary indexes."""
    max_read_request_units: int | None = None
    """OnDemandThroughput's read maximum, an on-demand table's ceiling (None: none set)."""
    max_write_request_units: int | None = None
    """OnDemandThroughput's write maximum (None: none set)."""
    pitr_enabled: bool = False
    """Point-in-time recovery is on (UpdateContinuousBackups)."""
    pitr_recovery_days: int = 35
    """The recovery period in days (1-35)."""
    pitr_enabled_ms: int | None = None
    """When point-in-time recovery was last turned on."""
    restoring: bool = False
    """A restore is loading the table: it stays CREATING until the backup service publishes it ACTIVE."""
    restore_summary: str | None = None
    """The table's RestoreSummary as JSON (``SourceBackupArn`` or ``SourceTableArn``,
    ``RestoreDateTime`` in ms), when it was made by a restore."""
    resource_policies: dict[str, str] = field(default_factory=dict)
    """Resource-based policies: key ``""`` for the table's (its indexes too), a stream label for
    that stream's; value the JSON ``{"policy": document text, "revision": RevisionId}``
    (services/router/policies.py)."""
    warm_read_units: int | None = None
    """The read units a second the table was warmed to (WarmThroughput given, the highest
    ReadCapacityUnits provisioned, an on-demand table's start once it was on demand; None: never
    raised; dynamolog/units.py ``warm``; v10)."""
    warm_write_units: int | None = None
    """The same for writes (v10)."""

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> TableDefinition:
        """From the codec's dict (:func:`dynamolog.codec.decode_table`)."""
        return cls(**{
            **r,
            "key_schema": tuple(KeySchemaElement(**k) for k in r["key_schema"]),
            "attribute_definitions": tuple(AttributeDefinition(**a) for a in r["attribute_definitions"]),
            "partition_ids": tuple(r["partition_ids"]),
            "tags": dict(r.get("tags") or {}),
            "resource_policies": dict(r.get("resource_policies") or {}),
            "global_indexes": tuple(GlobalIndex.from_record(i) for i in r.get("global_indexes") or ()),
            "local_indexes": tuple(LocalIndex.from_record(i) for i in r.get("local_indexes") or ()),
        })

    def to_record(self) -> dict[str, Any]:
        """The codec's dict (:func:`dynamolog.codec.encode_table`)."""
        return {
            **{f: getattr(self, f) for f in self.__dataclass_fields__},
            "key_schema": [asdict(k) for k in self.key_schema],
            "attribute_definitions": [asdict(a) for a in self.attribute_definitions],
            "partition_ids": list(self.partition_ids),
            "tags": dict(self.tags),
            "resource_policies": dict(self.resource_policies),
            "global_indexes": [i.to_record() for i in self.global_indexes],
            "local_indexes": [i.to_record() for i in self.local_indexes],
        }

    def key_names(self) -> tuple[str, str | None]:
        """(hash key name, range key name or None)."""
        names = {k.key_type: k.attribute_name for k in self.key_schema}
        if "HASH" not in names:
            raise AssertionError(f"table {self.table_name} has no HASH key")
        return names["HASH"], names.get("RANGE")

    def attribute_types(self) -> dict[str, str]:
        return {a.attribute_name: a.attribute_type for a in self.attribute_definitions}

    def arn(self, region: str) -> str:
        return table_arn(region, self.table_name)


@dataclass(frozen=True)
class PartitionInfo:
    """A partition of a table or of a global index (``schemas/PartitionInfo.avsc``)."""

    partition_id: str
    """Unique id; the partitions topic's key."""
    table_name: str
    """The table it belongs to."""
    table_id: str
    """The table's id, or ``<table_id>#<index>`` for a global index's partition."""
    hash_start: int
    """First partition-key hash it holds (unsigned 64-bit)."""
    hash_end: int
    """Last partition-key hash it holds (inclusive)."""
    log_topic: str
    """Its log's Kafka topic."""
    replicas: tuple[str, ...]
    """Storage node ids holding a replica."""
    leader: str | None
    """The replica that sequences writes."""
    leader_epoch: int
    """Raised with every new leader."""
    state: str
    """ACTIVE or DELETED."""
    parent: str | None = None
    """The partition it was split from."""
    children: tuple[str, ...] = ()
    """The partitions it was split into."""

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> PartitionInfo:
        """From the codec's dict (:func:`dynamolog.codec.decode_partition`)."""
        return cls(**{**r, "replicas": tuple(r["replicas"]), "children": tuple(r.get("children") or ())})

    def to_record(self) -> dict[str, Any]:
        """The codec's dict (:func:`dynamolog.codec.encode_partition`)."""
        return {**asdict(self), "replicas": list(self.replicas), "children": list(self.children)}


@dataclass(frozen=True)
class NodeInfo:
    """A storage node's registration, or the auto-admin's address (``schemas/NodeInfo.avsc``)."""

    node_id: str
    """The node's id; the nodes topic's key."""
    rpc_address: str
    """host:port of its internal RPC server."""
    pid: int
    """Operating-system process id, for local tooling."""
    started_at_ms: int
    """When it registered."""
    zone: str | None = None
    """Its availability zone, when it was given."""

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> NodeInfo:
        """From the codec's dict (:func:`dynamolog.codec.decode_node`)."""
        return cls(**r)

    def to_record(self) -> dict[str, Any]:
        """The codec's dict (:func:`dynamolog.codec.encode_node`)."""
        return asdict(self)

    def host_port(self) -> tuple[str, int]:
        """(host, port) of :attr:`rpc_address`."""
        host, _, port = self.rpc_address.rpartition(":")
        return host, int(port)


def partition_index_for_hash(starts: Sequence[int], h: int) -> int:
    """Index of the partition holding hash ``h``, given the partitions' sorted ``hash_start``s."""
    return max(0, bisect.bisect_right(starts, h) - 1)


def hash_key(table: TableDefinition) -> str:
    """The name of the table's partition (HASH) key."""
    return table.key_names()[0]


def key_names(table: TableDefinition) -> tuple[str, str | None]:
    """(hash key name, range key name or None) of a table."""
    return table.key_names()


def index_key_names(table: TableDefinition, index: GlobalIndex | LocalIndex) -> tuple[str, str | None]:
    """(hash key name, range key name or None) of one of the table's indexes: a global index
    names both; a local index has the table's hash key and its own range key."""
    if isinstance(index, GlobalIndex):
        return index.hash_key, index.range_key
    return table.key_names()[0], index.range_key


def attribute_types(table: TableDefinition) -> dict[str, str]:
    """Attribute name -> S, N or B, for every attribute the table defines."""
    return table.attribute_types()


class Unit(Protocol):
    """What :class:`dynamolog.routing.Routing` finds partitions of: a :class:`TableDefinition`
    or an :class:`IndexUnit`."""

    @property
    def table_id(self) -> str: ...


@dataclass(frozen=True)
class IndexUnit:
    """The partitions of a global index, as :class:`dynamolog.routing.Routing` finds them (a
    table is found by its own ``table_id``)."""

    table_id: str
    """The index's ``index_id`` (``<table_id>#<index name>``), its partitions' table id."""


def table_arn(region: str, name: str) -> str:
    return f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}"


def parse_arn(arn: Any) -> tuple[str, str, str]:
    """(region, account, table name) of a table ARN, or ValidationException ``Invalid TableArn``."""
    if arn is None:
        raise errors.validation("Invalid TableArn")
    if not isinstance(arn, str):
        raise errors.serialization("Unexpected value type in payload")
    m = _TABLE_ARN.match(arn)
    if m is None:
        raise errors.validation(f"Invalid TableArn: Invalid ResourceArn provided as input {arn}")
    return m.group(1), m.group(2), m.group(3)


def in_use(table: TableDefinition) -> errors.ApiError:
    """ResourceInUseException for a change of a table that is being created, updated or deleted."""
    doing = {"CREATING": "created", "UPDATING": "updated", "DELETING": "deleted"}.get(table.status, "updated")
    return errors.resource_in_use(
        f"Attempt to change a resource which is still in use: Table is being {doing}: {table.table_name}")
