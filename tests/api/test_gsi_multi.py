"""Global secondary indexes with multi-attribute keys, black box (DynamoDB Developer Guide,
"Multi-attribute keys pattern"; API Reference GlobalSecondaryIndex, KeySchemaElement, Query).

A GSI's KeySchema may name up to four partition key (HASH) and four sort key (RANGE)
attributes, each a top-level S, N or B attribute defined in AttributeDefinitions and keeping its
own type.  A Query names every partition key attribute with an equality, and the sort key
attributes left to right without a gap: equalities, then optionally one range condition on the
last one it names.  Items lacking any key attribute are not in the index.  Index reads are
eventually consistent, so the tests wait for an index to show a write."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .helpers import S, all_items, assert_error, eventually, raw_ddb, unique  # noqa: F401 - raw_ddb is a fixture


def N(v: int | str) -> dict[str, str]:
    return {"N": str(v)}


def B(v: bytes) -> dict[str, bytes]:
    return {"B": v}


DEFS = [{"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "tour", "AttributeType": "S"}, {"AttributeName": "rgn", "AttributeType": "S"},
        {"AttributeName": "round", "AttributeType": "S"}, {"AttributeName": "seq", "AttributeType": "N"},
        {"AttributeName": "tag", "AttributeType": "B"}]


def keys(hashes: list[str], ranges: list[str]) -> list[dict[str, str]]:
    return ([{"AttributeName": a, "KeyType": "HASH"} for a in hashes]
            + [{"AttributeName": a, "KeyType": "RANGE"} for a in ranges])


def gsi(name: str, hashes: list[str], ranges: list[str], projection: str = "ALL") -> dict[str, Any]:
    return {"IndexName": name, "KeySchema": keys(hashes, ranges), "Projection": {"ProjectionType": projection}}


@pytest.fixture(scope="module")
def matches(ddb: Any) -> Any:
    """Tournament matches: by (tour, rgn) sorted by (round, seq, tag); keys-only by the four
    attributes (tour, rgn, round, seq) with no sort key."""
    name = unique("matches_")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", AttributeDefinitions=DEFS,
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     GlobalSecondaryIndexes=[gsi("byBracket", ["tour", "rgn"], ["round", "seq", "tag"]),
                                             gsi("byFour", ["tour", "rgn", "round", "seq"], [], "KEYS_ONLY")])
    from .conftest import wait_active

    wait_active(ddb, name)
    yield name
    ddb.delete_table(TableName=name)


def query(ddb: Any, table: str, cond: str, values: dict[str, Any], index: str = "byBracket",
          **kw: Any) -> dict[str, Any]:
    if "#rd" in cond:  # "round" is a reserved word
        kw.setdefault("ExpressionAttributeNames", {"#rd": "round"})
    return dict(ddb.query(TableName=table, IndexName=index, KeyConditionExpression=cond,
                          ExpressionAttributeValues=values, **kw))


def put(ddb: Any, table: str, pk: str, tour: str, region: str, rnd: str, seq: int, tag: bytes, **more: Any) -> None:
    ddb.put_item(TableName=table, Item={"pk": S(pk), "tour": S(tour), "rgn": S(region), "round": S(rnd),
                                        "seq": N(seq), "tag": B(tag), **more})


def test_create_and_describe_list_every_key_attribute_in_order(ddb: Any, matches: str) -> None:
    # DescribeTable answers the KeySchema as created: the HASH elements, then the RANGE elements.
    desc = ddb.describe_table(TableName=matches)["Table"]
    by_name = {i["IndexName"]: i for i in desc["GlobalSecondaryIndexes"]}
    assert by_name["byBracket"]["KeySchema"] == keys(["tour", "rgn"], ["round", "seq", "tag"])
    assert by_name["byFour"]["KeySchema"] == keys(["tour", "rgn", "round", "seq"], [])
    assert all(i["IndexStatus"] == "ACTIVE" for i in by_name.values())
    assert desc["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]  # the table's own key unchanged
    assert {d["AttributeName"] for d in desc["AttributeDefinitions"]} == {d["AttributeName"] for d in DEFS}


def test_four_and_four_key_attributes_are_accepted(ddb: Any) -> None:
    # The maximum: four partition key and four sort key attributes, of mixed types.
    from .conftest import wait_active

    names = [f"a{i}" for i in range(8)]
    defs = [{"AttributeName": "pk", "AttributeType": "S"}] + [
        {"AttributeName": n, "AttributeType": "SNB"[i % 3]} for i, n in enumerate(names)]
    table = unique("eight_")
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST", AttributeDefinitions=defs,
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     GlobalSecondaryIndexes=[gsi("eight", names[:4], names[4:])])
    wait_active(ddb, table)
    desc = ddb.describe_table(TableName=table)["Table"]
    assert desc["GlobalSecondaryIndexes"][0]["KeySchema"] == keys(names[:4], names[4:])
    values = {n: {"SNB"[i % 3]: (f"v{i}" if i % 3 == 0 else str(i) if i % 3 == 1 else bytes([i]))}
              for i, n in enumerate(names)}
    ddb.put_item(TableName=table, Item={"pk": S("p"), **values})
    cond = " AND ".join(f"{n} = :{n}" for n in names)
    got = eventually(lambda: (r := query(ddb, table, cond, {f":{n}": v for n, v in values.items()},
                                         "eight"))["Count"] and r)
    assert got["Items"] == [{"pk": S("p"), **values}]
    with pytest.raises(ClientError) as e:  # three of four partition key attributes are not enough
        query(ddb, table, " AND ".join(f"{n} = :{n}" for n in names[:3]),
              {f":{n}": values[n] for n in names[:3]}, "eight")
    assert_error(e, "ValidationException", "Query condition missed key schema element: a3")
    ddb.delete_table(TableName=table)


def test_key_schema_shapes_that_are_refused(raw_ddb: Any) -> None:
    # Only global indexes take several attributes per key; HASH elements come first; at most four
    # of each; every attribute defined and named once.  (Wording: docs/compatibility.md.)
    def refused(ks: list[dict[str, str]], phrase: str, kind: str = "GlobalSecondaryIndexes",
                table_keys: list[dict[str, str]] | None = None) -> None:
        table_keys = table_keys or [{"AttributeName": "pk", "KeyType": "HASH"}]
        names = {k["AttributeName"] for k in ks + table_keys} - {"nope"}
        with pytest.raises(ClientError) as e:
            raw_ddb.create_table(TableName=unique("t_"), BillingMode="PAY_PER_REQUEST", KeySchema=table_keys,
                                 AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in names],
                                 **{kind: [{"IndexName": "bad", "KeySchema": ks,
                                            "Projection": {"ProjectionType": "ALL"}}]})
        assert_error(e, "ValidationException", phrase)

    h = [f"h{i}" for i in range(5)]
    r = [f"r{i}" for i in range(5)]
    refused(keys(h, []), "Invalid KeySchema: Too many hash keys")
    refused(keys(h[:1], r), "Invalid KeySchema: Too many range keys")
    refused([{"AttributeName": "h0", "KeyType": "HASH"}, {"AttributeName": "r0", "KeyType": "RANGE"},
             {"AttributeName": "h1", "KeyType": "HASH"}],
            "Every HASH KeySchemaElement must come before the RANGE KeySchemaElements for index: bad")
    refused([{"AttributeName": "r0", "KeyType": "RANGE"}, {"AttributeName": "h0", "KeyType": "HASH"}],
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type for index: bad")
    refused(keys(["h0", "h0"], ["r0"]), "Duplicate attribute in KeySchema: h0 for index: bad")
    refused(keys(["h0", "nope"], ["r0"]), "Some index key attributes are not defined in AttributeDefinitions")
    refused(keys(h[:4], r), "Member must have length less than or equal to 8")  # nine elements
    # a local index keeps one partition key (the table's) and one sort key attribute
    refused(keys(["pk"], ["r0", "r1"]), "Member must have length less than or equal to 2",
            "LocalSecondaryIndexes", keys(["pk"], ["h0"]))


def test_query_in_composite_sort_order_with_every_rule(ddb: Any, matches: str) -> None:
    tour, other = unique("w"), unique("w")
    rows = [("r1", "semi", 2, b"\x01"), ("r2", "final", 1, b"\x00"), ("r3", "semi", 10, b"\x00"),
            ("r4", "semi", 2, b"\x00"), ("r5", "quarter", -3, b"\xff"), ("r6", "semi", 2, b"\x00\x01")]
    for pk, rnd, seq, tag in rows:
        put(ddb, matches, f"{tour}-{pk}", tour, "eu", rnd, seq, tag)
    put(ddb, matches, f"{tour}-other-region", tour, "us", "semi", 2, b"\x00")
    put(ddb, matches, f"{tour}-other-tour", other, "eu", "semi", 2, b"\x00")
    base = "tour = :t AND rgn = :r"
    v = {":t": S(tour), ":r": S("eu")}
    got = eventually(lambda: (r := query(ddb, matches, base, v))["Count"] == 6 and r)
    # round (S, by bytes), then seq (N, numerically: 2 < 10), then tag (B, bytewise)
    order = [(it["round"]["S"], int(it["seq"]["N"]), it["tag"]["B"]) for it in got["Items"]]
    assert order == [("final", 1, b"\x00"), ("quarter", -3, b"\xff"), ("semi", 2, b"\x00"),
                     ("semi", 2, b"\x00\x01"), ("semi", 2, b"\x01"), ("semi", 10, b"\x00")]
    back = query(ddb, matches, base, v, ScanIndexForward=False)
    assert back["Items"] == got["Items"][::-1]

    def pks(cond: str, extra: dict[str, Any]) -> list[str]:
        return [it["pk"]["S"].rsplit("-", 1)[1] for it in query(ddb, matches, f"{base} AND {cond}", v | extra)["Items"]]

    assert pks("#rd = :s", {":s": S("semi")}) == ["r4", "r6", "r1", "r3"]
    assert pks("#rd = :s AND seq = :n", {":s": S("semi"), ":n": N(2)}) == ["r4", "r6", "r1"]
    assert pks("#rd = :s AND seq > :n", {":s": S("semi"), ":n": N(2)}) == ["r3"]
    assert pks("#rd = :s AND seq BETWEEN :a AND :b", {":s": S("semi"), ":a": N(2), ":b": N(9)}) == ["r4", "r6", "r1"]
    assert pks("#rd = :s AND seq = :n AND tag < :g", {":s": S("semi"), ":n": N(2), ":g": B(b"\x01")}) == ["r4", "r6"]
    assert pks("#rd = :s AND seq = :n AND begins_with(tag, :g)",
               {":s": S("semi"), ":n": N(2), ":g": B(b"\x00")}) == ["r4", "r6"]
    assert pks("begins_with(#rd, :s)", {":s": S("q")}) == ["r5"]
    assert pks("#rd <= :s", {":s": S("quarter")}) == ["r2", "r5"]
    assert pks("#rd >= :s", {":s": S("semi")}) == ["r4", "r6", "r1", "r3"]


def test_query_rules_and_their_errors(ddb: Any, matches: str) -> None:
    # Equality on every partition key attribute; sort key attributes left to right, no gap;
    # a range condition only on the last one named.
    v = {":t": S("t"), ":r": S("eu"), ":s": S("semi"), ":n": N(1), ":g": B(b"\x00")}
    cases = [
        ("tour = :t", "Query condition missed key schema element: rgn"),
        ("rgn = :r", "Query condition missed key schema element: tour"),
        ("tour = :t AND rgn > :r", "Query key condition not supported"),
        ("tour = :t AND rgn = :r AND seq = :n", "Query condition missed key schema element: round"),
        ("tour = :t AND rgn = :r AND #rd = :s AND tag = :g", "Query condition missed key schema element: seq"),
        ("tour = :t AND rgn = :r AND #rd > :s AND seq = :n", "Query key condition not supported"),
        ("tour = :t AND rgn = :r AND #rd = :s AND seq < :n AND tag = :g", "Query key condition not supported"),
        ("tour = :t AND tour = :t AND rgn = :r", "KeyConditionExpressions must only contain one condition per key"),
    ]
    for cond, phrase in cases:
        values = {k: val for k, val in v.items() if k in cond}
        with pytest.raises(ClientError) as e:
            query(ddb, matches, cond, values)
        assert_error(e, "ValidationException", phrase)
    with pytest.raises(ClientError) as e:  # each value has its attribute's type
        query(ddb, matches, "tour = :t AND rgn = :r AND #rd = :s AND seq = :n",
              {":t": S("t"), ":r": S("eu"), ":s": S("semi"), ":n": S("1")})
    assert_error(e, "ValidationException", "Condition parameter type does not match schema type")
    with pytest.raises(ClientError) as e:  # key attributes belong in the key condition, not the filter
        query(ddb, matches, "tour = :t AND rgn = :r", {":t": S("t"), ":r": S("eu"), ":n": N(1)},
              FilterExpression="seq = :n")
    assert_error(e, "ValidationException", "Filter Expression can only contain non-primary key attributes: "
                 "Primary key attribute: seq")
    with pytest.raises(ClientError) as e:
        query(ddb, matches, "tour = :t AND rgn = :r", {":t": S("t"), ":r": S("eu")}, ConsistentRead=True)
    assert_error(e, "ValidationException", "Consistent reads are not supported on global secondary indexes")


def test_items_missing_any_key_attribute_are_not_indexed(ddb: Any, matches: str) -> None:
    tour = unique("w")
    put(ddb, matches, f"{tour}-full", tour, "eu", "semi", 1, b"\x00")
    for missing in ("rgn", "round", "seq", "tag"):
        item = {"pk": S(f"{tour}-no-{missing}"), "tour": S(tour), "rgn": S("eu"), "round": S("semi"),
                "seq": N(1), "tag": B(b"\x00")}
        del item[missing]
        ddb.put_item(TableName=matches, Item=item)
    v = {":t": S(tour), ":r": S("eu")}
    assert eventually(lambda: query(ddb, matches, "tour = :t AND rgn = :r", v)["Count"] >= 1)
    # byFour needs tour, rgn, round and seq: the item without tag is there, the others not
    four = {":t": S(tour), ":r": S("eu"), ":s": S("semi"), ":n": N(1)}
    cond4 = "tour = :t AND rgn = :r AND #rd = :s AND seq = :n"
    assert eventually(lambda: query(ddb, matches, cond4, four, "byFour")["Count"] == 2)
    time.sleep(0.5)
    assert [it["pk"]["S"] for it in query(ddb, matches, "tour = :t AND rgn = :r", v)["Items"]] == [f"{tour}-full"]
    got = query(ddb, matches, cond4, four, "byFour")
    assert sorted(it["pk"]["S"] for it in got["Items"]) == [f"{tour}-full", f"{tour}-no-tag"]
    # KEYS_ONLY projects the table's key and every index key attribute
    assert sorted(got["Items"][0]) == ["pk", "rgn", "round", "seq", "tour"]


def test_paging_returns_every_key_attribute_and_resumes(ddb: Any, matches: str) -> None:
    tour = unique("w")
    for i in range(7):
        put(ddb, matches, f"{tour}-{i}", tour, "eu", "semi" if i % 2 else "final", i, bytes([i]), note=S("n"))
    v = {":t": S(tour), ":r": S("eu")}
    assert eventually(lambda: query(ddb, matches, "tour = :t AND rgn = :r", v)["Count"] == 7)
    page = query(ddb, matches, "tour = :t AND rgn = :r", v, Limit=3)
    assert page["LastEvaluatedKey"] == {"tour": S(tour), "rgn": S("eu"), "round": S("final"), "seq": N(4),
                                        "tag": B(bytes([4])), "pk": S(f"{tour}-4")}
    everything = all_items(ddb.query, TableName=matches, IndexName="byBracket", Limit=2,
                           KeyConditionExpression="tour = :t AND rgn = :r", ExpressionAttributeValues=v)
    assert [it["pk"]["S"] for it in everything] == [f"{tour}-{i}" for i in (0, 2, 4, 6, 1, 3, 5)]
    # a start key of another partition key value is refused; one lacking a key attribute too
    with pytest.raises(ClientError) as e:
        query(ddb, matches, "tour = :t AND rgn = :r", v,
              ExclusiveStartKey=page["LastEvaluatedKey"] | {"rgn": S("us")})
    assert_error(e, "ValidationException", "The provided starting key is invalid")
    with pytest.raises(ClientError) as e:
        query(ddb, matches, "tour = :t AND rgn = :r", v,
              ExclusiveStartKey={k: x for k, x in page["LastEvaluatedKey"].items() if k != "tag"})
    assert_error(e, "ValidationException", "The provided starting key is invalid")


def test_scan_of_the_index_pages_through_every_entry(ddb: Any, matches: str) -> None:
    tour = unique("w")
    for i in range(5):
        put(ddb, matches, f"{tour}-{i}", tour, f"reg{i % 2}", "semi", i, b"\x00")

    def scanned() -> list[dict[str, Any]]:
        return all_items(ddb.scan, TableName=matches, IndexName="byBracket", Limit=2, FilterExpression="tour = :t",
                         ExpressionAttributeValues={":t": S(tour)})

    items = eventually(lambda: (r if len(r := scanned()) == 5 else None))
    assert sorted(int(i["seq"]["N"]) for i in items) == [0, 1, 2, 3, 4]
    page = ddb.scan(TableName=matches, IndexName="byBracket", Limit=1)
    assert {"tour", "rgn", "round", "seq", "tag", "pk"} <= set(page["LastEvaluatedKey"])


def test_updating_a_key_attribute_moves_the_entry(ddb: Any, matches: str) -> None:
    tour, pk = unique("w"), unique("p")
    put(ddb, matches, pk, tour, "eu", "semi", 5, b"\x00")
    v = {":t": S(tour), ":r": S("eu")}
    assert eventually(lambda: query(ddb, matches, "tour = :t AND rgn = :r", v)["Count"] == 1)
    ddb.update_item(TableName=matches, Key={"pk": S(pk)}, UpdateExpression="SET seq = :n",
                    ExpressionAttributeValues={":n": N(7)})
    assert eventually(lambda: [it["seq"] for it in query(ddb, matches, "tour = :t AND rgn = :r", v)["Items"]]
                      == [N(7)])
    ddb.update_item(TableName=matches, Key={"pk": S(pk)}, UpdateExpression="SET #r = :r",
                    ExpressionAttributeNames={"#r": "rgn"}, ExpressionAttributeValues={":r": S("us")})
    assert eventually(lambda: query(ddb, matches, "tour = :t AND rgn = :r", {":t": S(tour), ":r": S("us")})
                      ["Count"] == 1)
    assert eventually(lambda: query(ddb, matches, "tour = :t AND rgn = :r", v)["Count"] == 0)
    ddb.update_item(TableName=matches, Key={"pk": S(pk)}, UpdateExpression="REMOVE tag")
    assert eventually(lambda: query(ddb, matches, "tour = :t AND rgn = :r", {":t": S(tour), ":r": S("us")})
                      ["Count"] == 0)


def test_a_write_with_a_key_attribute_of_the_wrong_type_is_refused(ddb: Any, matches: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=matches, Item={"pk": S(unique()), "tour": S("t"), "seq": S("1")})
    assert_error(e, "ValidationException", "Type mismatch for Index Key seq Expected: N Actual: S IndexName: ")


def test_update_table_adds_a_multi_attribute_index_with_backfill(ddb: Any, create_table: Any) -> None:
    from .conftest import wait_active

    table = str(create_table())
    for i in range(12):
        ddb.put_item(TableName=table, Item={"pk": S(f"k{i}"), "grp": S(f"g{i % 2}"), "lvl": N(i % 3),
                                            "tstamp": N(100 - i)})
    ddb.put_item(TableName=table, Item={"pk": S("sparse"), "grp": S("g0"), "tstamp": N(1)})  # no lvl
    ddb.update_table(TableName=table, AttributeDefinitions=[
        {"AttributeName": "grp", "AttributeType": "S"}, {"AttributeName": "lvl", "AttributeType": "N"},
        {"AttributeName": "tstamp", "AttributeType": "N"}],
        GlobalSecondaryIndexUpdates=[{"Create": gsi("byGrpLvl", ["grp", "lvl"], ["tstamp"])}])

    def status() -> str | None:
        desc = ddb.describe_table(TableName=table)["Table"]
        return next((i["IndexStatus"] for i in desc.get("GlobalSecondaryIndexes", [])
                     if i["IndexName"] == "byGrpLvl"), None)

    assert eventually(lambda: status() == "ACTIVE", 30)
    wait_active(ddb, table)
    desc = ddb.describe_table(TableName=table)["Table"]
    assert desc["GlobalSecondaryIndexes"][0]["KeySchema"] == keys(["grp", "lvl"], ["tstamp"])
    got = query(ddb, table, "grp = :g AND lvl = :l", {":g": S("g0"), ":l": N(0)}, "byGrpLvl")
    assert [it["pk"]["S"] for it in got["Items"]] == ["k6", "k0"]  # tstamp 94, then 100
    got = query(ddb, table, "grp = :g AND lvl = :l AND tstamp < :a", {":g": S("g0"), ":l": N(1), ":a": N(99)},
                "byGrpLvl")
    assert [it["pk"]["S"] for it in got["Items"]] == ["k10", "k4"]


def test_partiql_select_from_the_index(ddb: Any, matches: str) -> None:
    # PartiQL reads the index with a Query when the WHERE has an equality on every partition key
    # attribute (its sort key conditions left to right), else with a filtered Scan of the index.
    tour = unique("w")
    for i in range(3):
        put(ddb, matches, f"{tour}-{i}", tour, "eu", "semi", i, b"\x00")
    put(ddb, matches, f"{tour}-x", tour, "us", "semi", 9, b"\x00")
    stmt = f'SELECT * FROM "{matches}"."byBracket" WHERE tour = ? AND rgn = ? AND "round" = ? AND seq >= ?'
    args = [S(tour), S("eu"), S("semi"), N(1)]
    got = eventually(lambda: (r := ddb.execute_statement(Statement=stmt, Parameters=args))["Items"]
                     and len(r["Items"]) == 2 and r)
    assert [int(it["seq"]["N"]) for it in got["Items"]] == [1, 2]
    every = eventually(lambda: len(r := ddb.execute_statement(
        Statement=f'SELECT pk FROM "{matches}"."byBracket" WHERE tour = ?', Parameters=[S(tour)])["Items"]) == 4
        and r)
    assert sorted(it["pk"]["S"] for it in every) == [f"{tour}-{i}" for i in (0, 1, 2)] + [f"{tour}-x"]
