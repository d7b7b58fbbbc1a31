"""Global secondary indexes: entry keys, projections, and the index operations of a change.

An index entry lives in one of the index's own partitions, under the key

    hash_prefix(index hash value) | esc(encode_value(index range value)) 00 01 | base item key

(no middle part for an index without a range key).  ``esc`` doubles ``00`` as ``00 FF`` and
``00 01`` terminates it, so the index range value is self-delimiting *and* order-preserving:
entries sort by the index key, then by the base item's key (which makes every entry unique,
as several items may share an index key).  :func:`index_key_range` turns a key condition on
the index range key into RocksDB bounds over this layout.

A global index with a multi-attribute key (up to four partition key and four sort key
attributes) extends the same layout, and a single-attribute key's bytes are unchanged:

    hash8(all partition values) | esc(v1) 00 01 | esc(v2) 00 01 ... | esc(s1) 00 01 | esc(s2) 00 01 ... | base key

``hash8`` is :func:`composite_hash` (for one attribute, :func:`dynamolog.keys.partition_hash`),
so one partition key value combination lives in one index partition.  Each sort key value is
self-delimiting and order-preserving and ``00 01`` sorts below every escaped byte, so entries
sort by the first sort key attribute, then the second, and so on, each by its own type
(:func:`composite_prefix` and :func:`sort_prefix`; a Query's equalities on the leading sort key
attributes extend the prefix, its last condition becomes bounds as for a single attribute).

The value of an entry is the item as the index projects it (ALL, KEYS_ONLY: the table's and the
index's key attributes, INCLUDE: those plus NonKeyAttributes).  An item lacking any index key
attribute, or holding one of the wrong type, has no entry (a sparse index, as DynamoDB).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from .catalog import TableDefinition
from .keys import encode_value, hash_prefix, partition_hash, prefix_end

Item = dict[str, Any]

_TERM = b"\x00\x01"
_AFTER = b"\x00\x02"


class IndexSchema(Protocol):
    """What an index's entries are made of: a :class:`dynamolog.catalog.GlobalIndex`, or a local
    index's :class:`LocalShape`."""

    @property
    def hash_key(self) -> str: ...
    @property
    def range_key(self) -> str | None: ...
    @property
    def projection_type(self) -> str: ...
    @property
    def non_key_attributes(self) -> tuple[str, ...]: ...
    @property
    def hash_keys(self) -> tuple[str, ...]: ...
    @property
    def range_keys(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class LocalShape:
    """A local secondary index with the table's partition key filled in."""

    index_name: str
    """The name the API uses."""
    hash_key: str
    """The table's partition key attribute."""
    range_key: str
    """The index's sort key attribute."""
    projection_type: str
    """ALL, KEYS_ONLY or INCLUDE."""
    non_key_attributes: tuple[str, ...]
    """The attributes INCLUDE projects besides the keys."""

    @property
    def hash_keys(self) -> tuple[str, ...]:
        return (self.hash_key,)

    @property
    def range_keys(self) -> tuple[str, ...]:
        return (self.range_key,)


def _esc(av: dict[str, Any]) -> bytes:
    return encode_value(av).replace(b"\x00", b"\x00\xff")


def composite_hash(hash_avs: Sequence[dict[str, Any]]) -> int:
    """The partition hash of an index partition key: :func:`dynamolog.keys.partition_hash` of a
    single attribute's value; of several, the first 8 bytes of MD5 over each value's type,
    length and bytes in key-schema order (so no two combinations share their input)."""
    if len(hash_avs) == 1:
        return partition_hash(hash_avs[0])
    data = bytearray()
    for av in hash_avs:
        kind = next(iter(av))
        raw = encode_value(av)
        data += kind.encode("ascii") + len(raw).to_bytes(4, "big") + raw
    return int.from_bytes(hashlib.md5(bytes(data)).digest()[:8], "big")


def composite_prefix(hash_avs: Sequence[dict[str, Any]]) -> bytes:
    """The key prefix shared by every entry with these partition key values (for one attribute,
    :func:`dynamolog.keys.hash_prefix`)."""
    if len(hash_avs) == 1:
        return hash_prefix(hash_avs[0])
    return composite_hash(hash_avs).to_bytes(8, "big") + sort_prefix(hash_avs)


def sort_prefix(avs: Sequence[dict[str, Any]]) -> bytes:
    """The self-delimiting, order-preserving encoding of several key values, in order."""
    return b"".join(_esc(av) + _TERM for av in avs)


def index_keys(index: IndexSchema, item: Item | None,
               types: dict[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """(partition key values, sort key values) of ``item`` in ``index``, in key-schema order, or
    None if it has no entry (an attribute missing or of another type)."""
    if item is None:
        return None
    values: list[dict[str, Any]] = []
    for name in (*index.hash_keys, *index.range_keys):
        v = item.get(name)
        if not isinstance(v, dict) or next(iter(v)) != types.get(name):
            return None
        values.append(v)
    n = len(index.hash_keys)
    return values[:n], values[n:]


def entry_key(hash_av: dict[str, Any] | Sequence[dict[str, Any]],
              range_av: dict[str, Any] | Sequence[dict[str, Any]] | None, base_key: bytes) -> bytes:
    """The key of an index entry for the base item with key ``base_key``: of one partition key
    value and one sort key value (or None), or of the lists of a multi-attribute key's values."""
    hash_avs = [hash_av] if isinstance(hash_av, dict) else list(hash_av)
    range_avs = [] if range_av is None else [range_av] if isinstance(range_av, dict) else list(range_av)
    return composite_prefix(hash_avs) + sort_prefix(range_avs) + base_key


def start_key(hash_av: dict[str, Any] | Sequence[dict[str, Any]],
              range_av: dict[str, Any] | Sequence[dict[str, Any]] | None, base_key: bytes) -> bytes:
    """Same as :func:`entry_key`: an ExclusiveStartKey of an index query names an entry."""
    return entry_key(hash_av, range_av, base_key)


def index_key_range(prefix: bytes, cond: list[Any] | None) -> tuple[bytes, bytes | None]:
    """RocksDB bounds [start, end) of the entries under one index hash value (``prefix``) whose
    index range value meets ``cond`` (``[op, value, value2?]``)."""
    end_all = prefix_end(prefix)
    if not cond:
        return prefix, end_all
    op = cond[0]
    e = prefix + _esc(cond[1])
    if op == "EQ":
        return e + _TERM, e + _AFTER
    if op == "LT":
        return prefix, e + _TERM
    if op == "LE":
        return prefix, e + _AFTER
    if op == "GT":
        return e + _AFTER, end_all
    if op == "GE":
        return e + _TERM, end_all
    if op == "BETWEEN":
        return e + _TERM, prefix + _esc(cond[2]) + _AFTER
    if op == "BEGINS_WITH":
        return e, (prefix_end(e) if len(e) > len(prefix) else end_all)
    raise ValueError(f"unknown sort key operator {op!r}")


def project(index: IndexSchema, item: Item, table_keys: list[str]) -> Item:
    """The item as the index stores it."""
    kind = index.projection_type
    if kind == "ALL":
        return item
    keep = set(table_keys) | set(index.hash_keys) | set(index.range_keys)
    if kind == "INCLUDE":
        keep |= set(index.non_key_attributes)
    return {k: v for k, v in item.items() if k in keep}


def index_ops(index: IndexSchema, base_key: bytes, old: Item | None, new: Item | None,
              types: dict[str, str], table_keys: list[str]) -> list[tuple[bytes, Item | None]]:
    """What one change of a base item does to an index: (entry key, projected item, or None to
    delete the entry).  A changed index key deletes the old entry and puts the new one."""
    ops: list[tuple[bytes, Item | None]] = []
    old_k = index_keys(index, old, types)
    new_k = index_keys(index, new, types)
    old_entry = entry_key(old_k[0], old_k[1], base_key) if old_k else None
    new_entry = entry_key(new_k[0], new_k[1], base_key) if new_k else None
    if old_entry is not None and old_entry != new_entry:
        ops.append((old_entry, None))
    if new_entry is not None and new is not None:
        ops.append((new_entry, project(index, new, table_keys)))
    return ops


# -- local secondary indexes ------------------------------------------------------------------
#: RocksDB key spaces of a replica (services/storage/replica.py) that hold local index entries
#: (``l`` + index name + 00 + entry key) and item-collection sizes (``c`` + hash prefix)
LOCAL_SPACE = b"l"
COLLECTION_SPACE = b"c"
#: DynamoDB counts this much per local index entry on top of its attributes
LSI_ENTRY_OVERHEAD = 100


def local_space(index_name: str) -> bytes:
    """The RocksDB key prefix of one local secondary index's entries."""
    return LOCAL_SPACE + index_name.encode() + b"\x00"


class LocalIndexes:
    """A table's local secondary indexes, as every replica of its partitions maintains them.

    An entry is keyed like a global index's (:func:`entry_key`: the item's partition key, the
    index sort key, the item's key) under :func:`local_space`; its value is the projected item.
    Each change of an item yields the entry mutations and the change of its item collection's
    size (the items under one partition key value plus their index entries), computed from the
    old and new images alone, so every replica folding the log reaches the same state.
    """

    def __init__(self, table: TableDefinition) -> None:
        self.hash_key, rk = table.key_names()
        self.table_keys: list[str] = [self.hash_key] + ([rk] if rk else [])
        self.types: dict[str, str] = table.attribute_types()
        self.indexes: list[LocalShape] = [
            LocalShape(i.index_name, self.hash_key, i.range_key, i.projection_type, i.non_key_attributes)
            for i in table.local_indexes]
        self.spaces = [local_space(i.index_name) for i in self.indexes]

    def __bool__(self) -> bool:
        return bool(self.indexes)

    def mutations(self, base_key: bytes, old: Item | None, new: Item | None) -> list[tuple[bytes, Any]]:
        """RocksDB mutations of the index entries for one item change (full keys; None deletes)."""
        out: list[tuple[bytes, Any]] = []
        for index, space in zip(self.indexes, self.spaces):
            for k, v in index_ops(index, base_key, old, new, self.types, self.table_keys):
                out.append((space + k, None if v is None else orjson.dumps(v)))
        return out

    def footprint(self, item: Item | None) -> int:
        """What an item counts in its item collection: its size plus its index entries'."""
        from .attrs import item_size

        if item is None:
            return 0
        n = item_size(item)
        for index in self.indexes:
            if index_keys(index, item, self.types) is not None:
                n += item_size(project(index, item, self.table_keys)) + LSI_ENTRY_OVERHEAD
        return n

    def collection_key(self, item: Item) -> bytes:
        """The RocksDB key holding the size of the item's collection."""
        return COLLECTION_SPACE + hash_prefix(item[self.hash_key])

    def collection_delta(self, old: Item | None, new: Item | None) -> tuple[bytes, int] | None:
        """(collection key, size change) of one item change, or None if nothing changes."""
        some = new if new is not None else old
        if some is None:
            return None
        delta = self.footprint(new) - self.footprint(old)
        return (self.collection_key(some), delta) if delta else None


# -- index key attributes of a write ----------------------------------------------------------
def index_key_attributes(table: TableDefinition) -> list[tuple[str, str, str]]:
    """The secondary index key attributes of a table: (index name, attribute, type), for its
    global indexes (but those being deleted) and its local ones."""
    types = table.attribute_types()
    out: list[tuple[str, str, str]] = []
    for g in table.global_indexes:
        if g.status != "DELETING":
            out += [(g.index_name, a, types[a]) for a in (*g.hash_keys, *g.range_keys) if a in types]
    for loc in table.local_indexes:
        out.append((loc.index_name, loc.range_key, types[loc.range_key]))
    return out


def check_index_key_values(item: Item, keys: list[tuple[str, str, str]]) -> None:
    """An item's index key attributes must have the index's type and must not be empty; DynamoDB
    refuses such a write (a missing attribute is fine: the index is sparse)."""
    from . import errors

    for index, attr, want in keys:
        av = item.get(attr)
        if av is None:
            continue
        actual = next(iter(av))
        if actual != want:
            raise errors.validation(f"One or more parameter values were invalid: Type mismatch for Index Key "
                                    f"{attr} Expected: {want} Actual: {actual} IndexName: {index}")
        if av[actual] in ("", b""):
            raise errors.validation("One or more parameter values are not valid. A value specified for a "
                                    "secondary index key is not supported. The AttributeValue for a key attribute "
                                    f"cannot contain an empty {'string' if want == 'S' else 'binary'} value. "
                                    f"IndexName: {index}, IndexKey: {attr}")


def indexer_group(namespace: str, index_id: str, created_at_ms: int) -> str:
    """The Kafka consumer group whose committed offset in each table partition's log is how far
    the indexer has applied that log to the index ``index_id``: the indexer commits it, a router
    reads it to wait for an index to catch up (services/router/freshness.py).  ``created_at_ms``
    (the index's creation) tells an index from an earlier one of the same name, deleted and then
    created again: the new one has a group of its own, so it is backfilled from the start of the
    logs rather than from where the old one stopped."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in index_id)
    return f"{namespace}.indexer.{safe}.{created_at_ms}"
