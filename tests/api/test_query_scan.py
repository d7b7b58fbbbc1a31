"""Query and Scan: key conditions, order, pagination, filters, counts, parallel scan."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import TableFactory, make_client
from .helpers import all_items, assert_error, pages, unique

pytestmark = pytest.mark.api

#: numeric sort keys whose string order differs from their numeric order
SORT_KEYS = ["-100", "-2.5", "-1", "-0.5", "0", "0.25", "1", "2", "10", "100.5"]
ORDERED = sorted(SORT_KEYS, key=Decimal)


def S(v: str) -> dict[str, str]:
    return {"S": v}


def N(v: str) -> dict[str, str]:
    return {"N": v}


@pytest.fixture(scope="module")
def numbers(ddb: Any, range_table: str) -> tuple[str, str]:
    """One partition of ``range_table`` holding SORT_KEYS (v = position in numeric order), plus a
    neighbouring partition that no query of the first may return; returns (table, pk)."""
    pk = unique()
    for i, sk in enumerate(ORDERED):
        ddb.put_item(TableName=range_table, Item={"pk": S(pk), "sk": N(sk), "v": N(str(i))})
    ddb.put_item(TableName=range_table, Item={"pk": S(pk + "x"), "sk": N("0"), "v": N("0")})
    return range_table, pk


@pytest.fixture(scope="module")
def strings(ddb: Any, create_table: TableFactory) -> tuple[str, str, list[str]]:
    """A table with a string sort key and one partition of it: (table, pk, sort keys)."""
    table = create_table(range=("sk", "S"))
    pk = unique()
    sks = ["a", "aa", "ab", "abc", "abd", "ac", "b", "ba", "éa"]
    for sk in sks:
        ddb.put_item(TableName=table, Item={"pk": S(pk), "sk": S(sk)})
    return table, pk, sks


def query_sks(ddb: Any, table: str, pk: str, cond: str = "", values: dict[str, Any] | None = None,
              **kw: Any) -> list[str]:
    """Sort keys a (paginated) Query returns, in order."""
    expr = "pk = :p" + (f" AND {cond}" if cond else "")
    items = all_items(ddb.query, TableName=table, KeyConditionExpression=expr, ConsistentRead=True,
                      ExpressionAttributeValues={":p": S(pk)} | (values or {}), **kw)
    return [next(iter(i["sk"].values())) for i in items]


# -- Query ----------------------------------------------------------------------------------
def test_query_whole_partition_numeric_order(ddb: Any, numbers: tuple[str, str]) -> None:
    # A Query returns one partition's items in numeric sort-key order (negatives and decimals
    # included), and nothing from other partitions.
    table, pk = numbers
    assert query_sks(ddb, table, pk) == ORDERED


@pytest.mark.parametrize("cond, values, keep", [
    ("sk = :a", {":a": "-2.5"}, lambda d: d == Decimal("-2.5")),
    ("sk < :a", {":a": "0"}, lambda d: d < 0),
    ("sk <= :a", {":a": "-0.5"}, lambda d: d <= Decimal("-0.5")),
    ("sk > :a", {":a": "1"}, lambda d: d > 1),
    ("sk >= :a", {":a": "0.25"}, lambda d: d >= Decimal("0.25")),
    ("sk BETWEEN :a AND :b", {":a": "-2.5", ":b": "2"}, lambda d: Decimal("-2.5") <= d <= 2),
    ("sk BETWEEN :a AND :b", {":a": "-1000", ":b": "-99"}, lambda d: d == -100),
    ("sk > :a", {":a": "1000"}, lambda d: False),
])
def test_query_sort_key_condition(ddb: Any, numbers: tuple[str, str], cond: str, values: dict[str, str],
                                  keep: Callable[[Decimal], bool]) -> None:
    # Each sort-key operator selects exactly the matching items, in numeric order.
    table, pk = numbers
    got = query_sks(ddb, table, pk, cond, {k: N(v) for k, v in values.items()})
    assert got == [sk for sk in ORDERED if keep(Decimal(sk))]


@pytest.mark.parametrize("prefix", ["ab", "a", "é", "z"])
def test_query_begins_with(ddb: Any, strings: tuple[str, str, list[str]], prefix: str) -> None:
    # begins_with on a string sort key selects the keys with that prefix, in byte order.
    table, pk, sks = strings
    got = query_sks(ddb, table, pk, "begins_with(sk, :s)", {":s": S(prefix)})
    assert got == sorted((s for s in sks if s.startswith(prefix)), key=lambda s: s.encode())


def test_query_string_order(ddb: Any, strings: tuple[str, str, list[str]]) -> None:
    # String sort keys sort by their UTF-8 bytes.
    table, pk, sks = strings
    assert query_sks(ddb, table, pk) == sorted(sks, key=lambda s: s.encode())


def test_query_backward(ddb: Any, numbers: tuple[str, str]) -> None:
    # ScanIndexForward=False returns the same items in descending order.
    table, pk = numbers
    assert query_sks(ddb, table, pk, ScanIndexForward=False) == ORDERED[::-1]
    assert query_sks(ddb, table, pk, "sk < :a", {":a": N("1")}, ScanIndexForward=False) == \
        [sk for sk in ORDERED[::-1] if Decimal(sk) < 1]


@pytest.mark.parametrize("forward", [True, False])
def test_query_pagination(ddb: Any, numbers: tuple[str, str], forward: bool) -> None:
    # Limit + LastEvaluatedKey/ExclusiveStartKey walk the partition, every item exactly once.
    table, pk = numbers
    got: list[str] = []
    n_pages = 0
    for page in pages(ddb.query, TableName=table, KeyConditionExpression="pk = :p", ConsistentRead=True,
                      ExpressionAttributeValues={":p": S(pk)}, Limit=3, ScanIndexForward=forward):
        n_pages += 1
        assert len(page["Items"]) <= 3
        if "LastEvaluatedKey" in page:
            last = page["Items"][-1]
            assert page["LastEvaluatedKey"] == {"pk": last["pk"], "sk": last["sk"]}
        got += [i["sk"]["N"] for i in page["Items"]]
    assert got == (ORDERED if forward else ORDERED[::-1])
    assert n_pages >= 4


def test_query_filter(ddb: Any, numbers: tuple[str, str]) -> None:
    # A FilterExpression drops items after they are read: Count counts the returned items,
    # ScannedCount the items read.
    table, pk = numbers
    resp = ddb.query(TableName=table, KeyConditionExpression="pk = :p", FilterExpression="v >= :x",
                     ExpressionAttributeValues={":p": S(pk), ":x": N("7")}, ConsistentRead=True)
    assert [i["sk"]["N"] for i in resp["Items"]] == ORDERED[7:]
    assert resp["Count"] == len(ORDERED) - 7
    assert resp["ScannedCount"] == len(ORDERED)


def test_query_filter_with_limit(ddb: Any, numbers: tuple[str, str]) -> None:
    # Limit bounds the items read, not the items returned; pages may come back empty.
    table, pk = numbers
    got: list[str] = []
    scanned = 0
    for page in pages(ddb.query, TableName=table, KeyConditionExpression="pk = :p", FilterExpression="v >= :x",
                      ExpressionAttributeValues={":p": S(pk), ":x": N("7")}, ConsistentRead=True, Limit=4):
        assert page["ScannedCount"] <= 4
        assert page["Count"] == len(page["Items"])
        scanned += page["ScannedCount"]
        got += [i["sk"]["N"] for i in page["Items"]]
    assert got == ORDERED[7:]
    assert scanned == len(ORDERED)


def test_query_select_count(ddb: Any, numbers: tuple[str, str]) -> None:
    # Select=COUNT answers the count without items.
    table, pk = numbers
    resp = ddb.query(TableName=table, KeyConditionExpression="pk = :p AND sk > :z", Select="COUNT",
                     ExpressionAttributeValues={":p": S(pk), ":z": N("0")}, ConsistentRead=True)
    assert "Items" not in resp
    assert resp["Count"] == resp["ScannedCount"] == sum(1 for sk in ORDERED if Decimal(sk) > 0)


def test_query_missing_hash_condition(ddb: Any, numbers: tuple[str, str]) -> None:
    # A Query must fix the partition key with "=".
    table, _ = numbers
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=table, KeyConditionExpression="sk = :s", ExpressionAttributeValues={":s": N("1")})
    assert_error(e, "ValidationException", "Query condition missed key schema element: pk")


def test_query_condition_on_non_key(ddb: Any, numbers: tuple[str, str]) -> None:
    # Only key attributes may appear in a KeyConditionExpression (a FilterExpression is for others).
    table, pk = numbers
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=table, KeyConditionExpression="pk = :p AND v = :v",
                  ExpressionAttributeValues={":p": S(pk), ":v": N("1")})
    assert_error(e, "ValidationException", "Query condition missed key schema element")


def test_query_hash_key_not_equality(ddb: Any, numbers: tuple[str, str]) -> None:
    # The partition key condition must be an equality.
    table, pk = numbers
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=table, KeyConditionExpression="pk > :p", ExpressionAttributeValues={":p": S(pk)})
    assert_error(e, "ValidationException", "Query key condition not supported")


def test_query_value_type_mismatch(ddb: Any, numbers: tuple[str, str]) -> None:
    # Key condition values must have the key attributes' types.
    table, pk = numbers
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=table, KeyConditionExpression="pk = :p AND sk = :s",
                  ExpressionAttributeValues={":p": S(pk), ":s": S("1")})
    assert_error(e, "ValidationException", "Condition parameter type does not match schema type")


def test_query_projection(ddb: Any, numbers: tuple[str, str]) -> None:
    # ProjectionExpression applies to every item a Query returns.
    table, pk = numbers
    resp = ddb.query(TableName=table, KeyConditionExpression="pk = :p", ProjectionExpression="v",
                     ExpressionAttributeValues={":p": S(pk)}, ConsistentRead=True)
    assert resp["Items"] == [{"v": N(str(i))} for i in range(len(ORDERED))]


# -- Scan -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scan_items(ddb: Any, hash_table: str) -> tuple[str, str, set[str]]:
    """40 items with one random marker prefix in ``hash_table`` (spread over its partitions):
    (table, marker, their keys)."""
    marker = unique("scan")
    keys = {f"{marker}-{i}" for i in range(40)}
    for k in keys:
        ddb.put_item(TableName=hash_table, Item={"pk": S(k), "marker": S(marker)})
    return hash_table, marker, keys


def scan_keys(ddb: Any, **kw: Any) -> Iterator[str]:
    for page in pages(ddb.scan, ConsistentRead=True, **kw):
        for item in page["Items"]:
            yield item["pk"]["S"]


def test_scan_pagination(ddb: Any, scan_items: tuple[str, str, set[str]]) -> None:
    # A Scan with Limit returns every item of the table exactly once over its pages.
    table, _, keys = scan_items
    n_pages = 0
    seen: list[str] = []
    for page in pages(ddb.scan, TableName=table, ConsistentRead=True, Limit=7):
        n_pages += 1
        assert page["ScannedCount"] <= 7
        seen += [i["pk"]["S"] for i in page["Items"]]
    assert len(seen) == len(set(seen))
    assert keys <= set(seen)
    assert n_pages >= 40 // 7


def test_scan_filter(ddb: Any, scan_items: tuple[str, str, set[str]]) -> None:
    # A FilterExpression on a Scan keeps only the matching items; ScannedCount counts all read.
    table, marker, keys = scan_items
    got: list[str] = []
    count = scanned = 0
    for page in pages(ddb.scan, TableName=table, ConsistentRead=True, FilterExpression="marker = :m",
                      ExpressionAttributeValues={":m": S(marker)}):
        got += [i["pk"]["S"] for i in page["Items"]]
        count += page["Count"]
        scanned += page["ScannedCount"]
    assert sorted(got) == sorted(keys)
    assert count == len(keys)
    assert scanned >= count


def test_scan_select_count(ddb: Any, scan_items: tuple[str, str, set[str]]) -> None:
    # Select=COUNT with a filter counts the matching items without returning them.
    table, marker, keys = scan_items
    total = 0
    for page in pages(ddb.scan, TableName=table, ConsistentRead=True, Select="COUNT",
                      FilterExpression="marker = :m", ExpressionAttributeValues={":m": S(marker)}):
        assert "Items" not in page
        total += page["Count"]
    assert total == len(keys)


@pytest.mark.parametrize("total_segments", [1, 3, 4])
def test_parallel_scan(endpoint: str, scan_items: tuple[str, str, set[str]], total_segments: int) -> None:
    # Segments of a parallel scan are disjoint and together cover the whole table.
    # Whole consistent scans of the shared table, back to back, may exceed its read capacity for a
    # moment: this client retries a throttled page with backoff, as DynamoDB asks of clients (the
    # session's client makes two attempts only, to show other errors at once).
    ddb = make_client(endpoint, retries=10)
    table, _, keys = scan_items
    whole = list(scan_keys(ddb, TableName=table))
    segments = [list(scan_keys(ddb, TableName=table, Segment=s, TotalSegments=total_segments, Limit=6))
                for s in range(total_segments)]
    union = [k for seg in segments for k in seg]
    assert len(union) == len(set(union))
    assert set(union) == set(whole)
    assert keys <= set(union)


def test_scan_segment_out_of_range(ddb: Any, hash_table: str) -> None:
    # Segment counts from 0 and must be below TotalSegments.
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=hash_table, Segment=3, TotalSegments=3)
    assert_error(e, "ValidationException", "The Segment parameter is zero-based and must be less than parameter "
                                           "TotalSegments")
