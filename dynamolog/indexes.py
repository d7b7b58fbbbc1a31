"""Global secondary indexes: entry keys, projections, and the index operations of a change.

An index entry lives in one of the index's own partitions, under the key

    hash_prefix(index hash value) | esc(encode_value(index range value)) 00 01 | base item key

(no middle part for an index without a range key).  ``esc`` doubles ``00`` as ``00 FF`` and
``00 01`` terminates it, so the index range value is self-delimiting *and* order-preserving:
entries sort by the index key, then by the base item's key (which makes every entry unique,
as several items may share an index key).  :func:`index_key_range` turns a key condition on
the index range key into RocksDB bounds over this layout.

The value of an entry is the item as the index projects it (ALL, KEYS_ONLY: the table's and the
index's key attributes, INCLUDE: those plus NonKeyAttributes).  An item lacking either index key
attribute, or holding one of the wrong type, has no entry (a sparse index, as DynamoDB).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from .catalog import TableDefinition
from .keys import encode_value, hash_prefix, prefix_end

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


def _esc(av: dict[str, Any]) -> bytes:
    return encode_value(av).replace(b"\x00", b"\x00\xff")


def index_keys(index: IndexSchema, item: Item | None, types: dict[str, str]) -> tuple[Any, Any] | None:
    """(hash value, range value or None) of ``item`` in ``index``, or None if it has no entry."""
    if item is None:
        return None
    h = item.get(index.hash_key)
    if not isinstance(h, dict) or next(iter(h)) != types.get(index.hash_key):
        return None
    rk = index.range_key
    if rk is None:
        return h, None
    r = item.get(rk)
    if not isinstance(r, dict) or next(iter(r)) != types.get(rk):
        return None
    return h, r


def entry_key(hash_av: dict[str, Any], range_av: dict[str, Any] | None, base_key: bytes) -> bytes:
    """The key of an index entry for the base item with key ``base_key``."""
    middle = b"" if range_av is None else _esc(range_av) + _TERM
    return hash_prefix(hash_av) + middle + base_key


def start_key(hash_av: dict[str, Any], range_av: dict[str, Any] | None, base_key: bytes) -> bytes:
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
    keep = set(table_keys) | {index.hash_key} | ({index.range_key} if index.range_key else set())
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
            out += [(g.index_name, a, types[a]) for a in (g.hash_key, g.range_key) if a is not None and a in types]
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


def indexer_group(namespace: str, index_id: str) -> str:
    """The Kafka consumer group whose committed offset in each table partition's log is how far
    the indexer has applied that log to the index ``index_id``: the indexer commits it, a router
    reads it to wait for an index to catch up (services/router/freshness.py)."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in index_id)
    return f"{namespace}.indexer.{safe}"
