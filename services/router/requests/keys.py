"""Keys and items of a request, checked against the table's key schema and its indexes."""

from __future__ import annotations

from typing import Any

from dynamolog import errors
from dynamolog.attrs import validate_item, value_size
from dynamolog.catalog import TableDefinition
from dynamolog.indexes import check_index_key_values, index_key_attributes

HASH_KEY_BYTES_MAX = 2048
RANGE_KEY_BYTES_MAX = 1024


def _key_value_checks(name: str, av: dict[str, Any], want: str, mismatch: str) -> None:
    actual = next(iter(av))
    if actual != want:
        raise errors.validation(mismatch.format(name=name, want=want, actual=actual))
    value = av[actual]
    if value == "":
        raise errors.validation(
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain "
            f"an empty {'string' if want == 'S' else 'binary'} value. Key: {name}"
        )


def key_sizes(hash_av: dict[str, Any], range_av: dict[str, Any] | None) -> None:
    if value_size(hash_av) > HASH_KEY_BYTES_MAX:
        raise errors.validation("One or more parameter values were invalid: Size of hashkey has exceeded the "
                                "maximum size limit of2048 bytes")
    if range_av is not None and value_size(range_av) > RANGE_KEY_BYTES_MAX:
        raise errors.validation("One or more parameter values were invalid: Aggregated size of all range keys "
                                "has exceeded the size limit of 1024 bytes")


def item_keys(item: dict[str, Any], hash_key: str, range_key: str | None, types: dict[str, str]) -> tuple[
        dict[str, Any], dict[str, Any] | None]:
    """The key attributes of a PutItem item, checked against the key schema."""
    out: list[dict[str, Any] | None] = []
    for name in (hash_key, range_key):
        if name is None:
            out.append(None)
            continue
        av = item.get(name)
        if av is None:
            raise errors.validation(f"One or more parameter values were invalid: Missing the key {name} in the item")
        _key_value_checks(name, av, types[name],
                          "One or more parameter values were invalid: Type mismatch for key {name} expected: "
                          "{want} actual: {actual}")
        out.append(av)
    assert out[0] is not None
    key_sizes(out[0], out[1])
    return out[0], out[1]


def parse_key(key: Any, hash_key: str, range_key: str | None, types: dict[str, str], *,
              what: str = "key") -> dict[str, Any]:
    """A ``Key`` parameter (GetItem, DeleteItem, UpdateItem, ExclusiveStartKey), checked."""
    if not isinstance(key, dict):
        raise errors.serialization("Unexpected value type in payload")
    key = validate_item(key)
    wanted = {hash_key} | ({range_key} if range_key else set())
    prefix = "The provided starting key is invalid: " if what == "start" else ""
    if set(key) != wanted:
        raise errors.validation(f"{prefix}The provided key element does not match the schema")
    for name in wanted:
        _key_value_checks(name, key[name], types[name], prefix + "The provided key element does not match the schema")
    key_sizes(key[hash_key], key.get(range_key) if range_key else None)
    out: dict[str, Any] = key
    return out


def parse_item(item: Any) -> dict[str, Any]:
    """An ``Item`` parameter, its values checked."""
    if item is None:
        raise errors.counted("Value null at 'item' failed to satisfy constraint: Member must not be null")
    if not isinstance(item, dict):
        raise errors.serialization("Unexpected value type in payload")
    return validate_item(item)


def check_index_keys(table: TableDefinition, item: dict[str, Any]) -> None:
    """Refuse an item whose secondary index key attributes have the wrong type or are empty, before
    anything is written (the storage node checks again, for UpdateItem's results)."""
    if table.global_indexes or table.local_indexes:
        check_index_key_values(item, index_key_attributes(table))
