"""Fuzz tier: random and mutated DynamoDB requests against a real router (hypothesis).

Every answer must be a well-formed DynamoDB answer (JSON, request id, CRC-32, an error
``__type`` and message, no stack trace or server path), no process may die, and a protected
table's items, description and tags must not change. The fuzzing key may read the protected
table and do anything on a scratch table, so a mutation that happens to be valid exercises the
permission checks as well: it must still change nothing protected.

Bounded for CI (about a minute); ``DYNAMOLOG_FUZZ_SCALE=10`` tries ten times as many requests,
``DYNAMOLOG_FUZZ_REPORT=FILE`` writes the counts (requests tried, distinct error types).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynamolog.auth import credentials, policy
from dynamolog.client import sigv4
from dynamolog.launcher import health, pid_alive
from tests.api.conftest import make_client, start_system, wait_active

pytestmark = pytest.mark.integration

SCALE = float(os.environ.get("DYNAMOLOG_FUZZ_SCALE", "1"))
PROTECTED, SCRATCH = "fuzz_protected", "fuzz_scratch"
JSON_TYPE = "application/x-amz-json-1.0"
_ERROR_TYPE = re.compile(r"^[A-Za-z0-9_.]+#[A-Za-z0-9_]+$")
_LEAKS = ("Traceback", 'File "', ".py\"", ".py,", "/work/", "site-packages", "/usr/lib")

STATS: Counter[str] = Counter()
LAST = [""]  # the request being answered, for assertion messages


def examples(n: int) -> settings:
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


# -- the system under test --------------------------------------------------------------------
class Target:
    def __init__(self, system: Any, url: str, key: str, secret: str) -> None:
        self.system, self.url, self.key, self.secret = system, url, key, secret
        self.host = url.split("://", 1)[1]
        self._conn: http.client.HTTPConnection | None = None

    def send(self, target: str | None, body: bytes, *, sign: bool = True,
             mangle: Any = None) -> tuple[int, dict[str, str], bytes]:
        headers = {"host": self.host, "content-type": JSON_TYPE, "x-amz-date": sigv4.amz_date()}
        if target is not None:
            headers["x-amz-target"] = target
        if sign:
            headers["authorization"] = sigv4.sign(method="POST", path="/", headers=headers, body=body,
                                                  access_key=self.key, secret_key=self.secret,
                                                  region="us-east-1", service="dynamodb",
                                                  timestamp=headers["x-amz-date"])
        if mangle is not None:
            headers = mangle(headers)
        LAST[0] = f"{target} {body[:500]!r}"
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, timeout=30)
            try:
                self._conn.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
                for k, v in headers.items():
                    self._conn.putheader(k, v)
                self._conn.putheader("content-length", str(len(body)))
                self._conn.endheaders(body)
                r = self._conn.getresponse()
                data = r.read()
                out = r.status, {k.lower(): v for k, v in r.getheaders()}, data
                if r.getheader("connection", "").lower() == "close":
                    self._conn.close()
                    self._conn = None
                return out
            except (ConnectionError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def check_answer(status: int, headers: dict[str, str], body: bytes) -> str:
    """Assert the answer is well-formed; returns its kind (``ok`` or the error type)."""
    STATS["requests"] += 1
    assert status in (200, 400, 413, 503), (status, body[:500], LAST[0][:1000])
    assert headers.get("content-type") == JSON_TYPE, headers
    text = body.decode("utf-8")
    for leak in _LEAKS:
        assert leak not in text, text[:2000]
    doc = json.loads(text)
    assert isinstance(doc, dict)
    if "x-amz-crc32" in headers:
        assert int(headers["x-amz-crc32"]) == zlib.crc32(body)
    if status == 200:
        assert "x-amzn-requestid" in headers
        kind = "ok"
    else:
        assert isinstance(doc.get("__type"), str) and _ERROR_TYPE.match(doc["__type"]), doc
        assert isinstance(doc.get("message", ""), str), doc
        kind = doc["__type"].rsplit("#", 1)[1]
    STATS[f"type:{kind}"] += 1
    return kind


@pytest.fixture(scope="module")
def target(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    system, url = start_system(kafka_bootstrap, Path(tmp_path_factory.mktemp("fuzz")))
    try:
        admin = make_client(url)
        for name, rng in ((PROTECTED, True), (SCRATCH, False)):
            keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
            defs = [{"AttributeName": "pk", "AttributeType": "S"}]
            if rng:
                keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
                defs.append({"AttributeName": "sk", "AttributeType": "N"})
            admin.create_table(TableName=name, KeySchema=keys, AttributeDefinitions=defs,
                               BillingMode="PAY_PER_REQUEST", Tags=[{"Key": "k", "Value": "v"}])
        for name in (PROTECTED, SCRATCH):
            wait_active(admin, name)
        for i in range(20):
            admin.put_item(TableName=PROTECTED, Item={
                "pk": {"S": f"p{i % 4}"}, "sk": {"N": str(i)}, "n": {"N": str(i * 7)}, "s": {"S": "x" * i},
                "m": {"M": {"a": {"L": [{"N": "1"}, {"BOOL": True}, {"NULL": True}]}}}, "ss": {"SS": ["a", str(i)]}})
        doc = policy.document([
            policy.statement(["dynamodb:*"], [f"{SCRATCH}*"]),
            policy.statement(policy.GROUPS["read"], [PROTECTED]),
            policy.statement(["dynamodb:ListTables", "dynamodb:DescribeLimits", "dynamodb:DescribeEndpoints",
                              "dynamodb:ListStreams"], ["*"]),
            # CreateTable of the two existing tables gets past the permission check into validation
            # (a valid one is refused: the table exists); deleting or changing a table is denied
            policy.statement(["dynamodb:CreateTable"], [PROTECTED]),
            policy.statement(["dynamodb:DeleteTable", "dynamodb:UpdateTable"], ["*"], "Deny"),
        ])
        cred, _ = credentials.new("fuzzer", doc)
        credentials.run(credentials.publish(system.settings(), system.system_key(), cred))
        t = Target(system, url, cred.access_key_id, cred.secret)
        before = snapshot(admin)
        for _ in range(100):  # the new key reaches the router through the topic
            if t.send("DynamoDB_20120810.ListTables", b"{}")[0] == 200:
                break
        yield t
        # the invariants of the whole tier, after every test of it ran
        assert health(int(url.rsplit(":", 1)[1])), "the router stopped answering"
        dead = [n for n, p in system.state()["pids"].items() if not pid_alive(p)]
        assert not dead, f"processes died: {dead}"
        assert snapshot(admin) == before, "the protected table changed"
        report = os.environ.get("DYNAMOLOG_FUZZ_REPORT")
        summary = {"requests": STATS["requests"],
                   "answers": {k[5:]: v for k, v in sorted(STATS.items()) if k.startswith("type:")}}
        summary["distinct_error_types"] = len([k for k in summary["answers"] if k != "ok"])
        print("\nfuzz summary:", json.dumps(summary))
        if report:
            Path(report).write_text(json.dumps(summary, indent=2) + "\n")
    finally:
        system.down()


def snapshot(admin: Any) -> Any:
    items = admin.scan(TableName=PROTECTED, ConsistentRead=True)["Items"]
    t = admin.describe_table(TableName=PROTECTED)["Table"]
    tags = admin.list_tags_of_resource(ResourceArn=t["TableArn"])["Tags"]
    return (sorted(json.dumps(i, sort_keys=True) for i in items),
            {k: t.get(k) for k in ("KeySchema", "AttributeDefinitions", "TableStatus", "BillingModeSummary",
                                   "StreamSpecification", "GlobalSecondaryIndexes")}, tags)


# -- seeds: valid requests of every operation ---------------------------------------------------
def seeds(table: str) -> list[tuple[str, dict[str, Any]]]:
    key = {"pk": {"S": "p1"}, "sk": {"N": "1"}} if table == PROTECTED else {"pk": {"S": "p1"}}
    item = key | {"v": {"S": "new"}, "n": {"N": "5"}, "l": {"L": [{"S": "a"}]}}
    arn = f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}"
    return [
        ("PutItem", {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)",
                     "ReturnValues": "ALL_OLD"}),
        ("GetItem", {"TableName": table, "Key": key, "ProjectionExpression": "#v, n", "ConsistentRead": True,
                     "ExpressionAttributeNames": {"#v": "v"}}),
        ("UpdateItem", {"TableName": table, "Key": key, "UpdateExpression": "SET #v = :v ADD n :one REMOVE l[0]",
                        "ConditionExpression": "size(#v) < :ten OR attribute_not_exists(#v)",
                        "ExpressionAttributeNames": {"#v": "v"},
                        "ExpressionAttributeValues": {":v": {"S": "u"}, ":one": {"N": "1"}, ":ten": {"N": "10"}},
                        "ReturnValues": "UPDATED_NEW"}),
        ("DeleteItem", {"TableName": table, "Key": key, "ConditionExpression": "n > :z",
                        "ExpressionAttributeValues": {":z": {"N": "0"}}}),
        ("Query", {"TableName": table, "KeyConditionExpression": "pk = :p",
                   "FilterExpression": "contains(s, :x) AND n BETWEEN :a AND :b", "Limit": 3,
                   "ExpressionAttributeValues": {":p": {"S": "p1"}, ":x": {"S": "x"}, ":a": {"N": "0"},
                                                 ":b": {"N": "100"}}, "ScanIndexForward": False}),
        ("Scan", {"TableName": table, "Segment": 0, "TotalSegments": 2, "Limit": 5, "Select": "COUNT"}),
        ("BatchGetItem", {"RequestItems": {table: {"Keys": [key], "ConsistentRead": True}}}),
        ("BatchWriteItem", {"RequestItems": {table: [{"PutRequest": {"Item": item}},
                                                     {"DeleteRequest": {"Key": key | {"pk": {"S": "p2"}}}}]}}),
        ("TransactWriteItems", {"TransactItems": [
            {"Put": {"TableName": table, "Item": item}},
            {"ConditionCheck": {"TableName": table, "Key": key | {"pk": {"S": "p3"}},
                                "ConditionExpression": "attribute_not_exists(pk)"}}]}),
        ("TransactGetItems", {"TransactItems": [{"Get": {"TableName": table, "Key": key}}]}),
        ("ExecuteStatement", {"Statement": f"SELECT * FROM \"{table}\" WHERE pk = ?",
                              "Parameters": [{"S": "p1"}]}),
        ("ExecuteStatement", {"Statement": f"UPDATE \"{table}\" SET v = 'p' WHERE pk = 'p1'"}),
        ("BatchExecuteStatement", {"Statements": [{"Statement": f"DELETE FROM \"{table}\" WHERE pk = 'p1'"}]}),
        ("ExecuteTransaction", {"TransactStatements": [
            {"Statement": f"INSERT INTO \"{table}\" VALUE {{'pk': 'q', 'sk': 1}}"}]}),
        ("DescribeTable", {"TableName": table}),
        ("UpdateTable", {"TableName": table, "BillingMode": "PROVISIONED",
                         "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}),
        ("DeleteTable", {"TableName": table}),
        ("CreateTable", {"TableName": table, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                         "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                         "BillingMode": "PAY_PER_REQUEST"}),
        ("TagResource", {"ResourceArn": arn, "Tags": [{"Key": "k", "Value": "changed"}]}),
        ("UntagResource", {"ResourceArn": arn, "TagKeys": ["k"]}),
        ("ListTagsOfResource", {"ResourceArn": arn}),
        ("UpdateTimeToLive", {"TableName": table, "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "n"}}),
        ("DescribeTimeToLive", {"TableName": table}),
        ("ListTables", {"Limit": 5}),
        ("DescribeLimits", {}),
    ]


def nested_seeds(table: str) -> list[tuple[str, dict[str, Any]]]:
    """Requests with structures inside lists and maps, where a member may go missing deep down."""
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    return [
        ("CreateTable", {"TableName": table, "KeySchema": keys, "BillingMode": "PAY_PER_REQUEST",
                         "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                                  {"AttributeName": "g", "AttributeType": "S"}],
                         "GlobalSecondaryIndexes": [{"IndexName": "gi",
                                                     "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                                     "Projection": {"ProjectionType": "INCLUDE",
                                                                    "NonKeyAttributes": ["x"]}}],
                         "Tags": [{"Key": "a", "Value": "b"}],
                         "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}}),
        ("UpdateTable", {"TableName": table, "AttributeDefinitions": [{"AttributeName": "g", "AttributeType": "S"}],
                         "GlobalSecondaryIndexUpdates": [{"Create": {
                             "IndexName": "gi", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                             "Projection": {"ProjectionType": "ALL"}}}]}),
        ("Query", {"TableName": table, "KeyConditions": {"pk": {"ComparisonOperator": "EQ",
                                                                "AttributeValueList": [{"S": "a"}]}},
                   "QueryFilter": {"x": {"ComparisonOperator": "NULL"}}}),
        ("UpdateItem", {"TableName": table, "Key": {"pk": {"S": "a"}},
                        "AttributeUpdates": {"x": {"Action": "PUT", "Value": {"S": "b"}}},
                        "Expected": {"x": {"Exists": False}}}),
        ("TransactWriteItems", {"TransactItems": [
            {"Update": {"TableName": table, "Key": {"pk": {"S": "q"}}, "UpdateExpression": "SET a = :a",
                        "ExpressionAttributeValues": {":a": {"S": "x"}}}},
            {"Delete": {"TableName": table, "Key": {"pk": {"S": "r"}}}}]}),
        ("UpdateTimeToLive", {"TableName": table,
                              "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "t"}}),
    ]


# the scratch table three times as often: requests on it get past the permission check into validation
ALL_SEEDS = seeds(PROTECTED) + seeds(SCRATCH) * 3 + nested_seeds(PROTECTED) + nested_seeds(SCRATCH) * 3
STREAM_OPS = ["ListStreams", "DescribeStream", "GetShardIterator", "GetRecords"]

json_leaf = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
             | st.text(max_size=30) | st.sampled_from(["", "S", "N", "B", "SS", "NS", ":v", "#v", "pk", PROTECTED,
                                                       "1e400", "-0", "NaN", "\u0000", "a" * 300]))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=8) | st.sampled_from(["S", "N", "M", "L", "pk"]),
                                            inner, max_size=4), max_leaves=12)
expression = st.text(alphabet="abcpksnv#:=<>()[]., ANDORNOTSETREMOVEADDBETWEENIN0123456789_-+\"'", max_size=120)


def _paths(v: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(v, dict):
        for k, x in v.items():
            yield from _paths(x, (*prefix, k))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from _paths(x, (*prefix, i))


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    op, params = draw(st.sampled_from(ALL_SEEDS))
    params = json.loads(json.dumps(params))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(params) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = params
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        how = draw(st.sampled_from(["drop", "extra", "value", "expression", "table", "deep", "big", "number"]))
        if how == "drop":
            del parent[last]
        elif how == "extra":  # a member the shape does not have, next to the mutated one
            target = parent[last] if isinstance(parent[last], dict) else parent
            if isinstance(target, dict):
                target[draw(st.sampled_from(["Extra", "S", "Key", "TableName", "Item", "member"]))] = draw(json_value)
        elif how == "value":
            parent[last] = draw(json_value)
        elif how == "expression":
            parent[last] = draw(expression)
        elif how == "table":
            parent[last] = draw(st.sampled_from([PROTECTED, SCRATCH, "", "x", "a" * 300, "fuzz protected", "\u00e9t"]))
        elif how == "deep":
            depth = draw(st.integers(30, 1100))
            parent[last] = json.loads('{"M":' * depth + '{}' + "}" * depth) if depth < 900 else [[]] * 2
        elif how == "big":
            parent[last] = "x" * draw(st.integers(4_000, 500_000))
        else:
            parent[last] = draw(st.sampled_from(["1e126", "1e-131", "9" * 40, "-", "0x10", "1_000", " 1", "1e"]))
    return op, params


@examples(900)
@given(req=mutated())
def test_mutated_requests(target: Target, req: tuple[str, dict[str, Any]]) -> None:
    op, params = req
    check_answer(*target.send(f"DynamoDB_20120810.{op}", json.dumps(params).encode()))


def _required_paths(op: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Paths of the members of ``params`` that DynamoDB's request shapes (botocore's copy) mark
    required, below the top level."""
    from botocore.model import ListShape, MapShape, StructureShape
    from botocore.session import get_session

    out: list[tuple[Any, ...]] = []

    def walk(shape: Any, value: Any, path: tuple[Any, ...]) -> None:
        if isinstance(shape, StructureShape) and isinstance(value, dict):
            for name, member in shape.members.items():
                if name in value:
                    if name in shape.required_members and path:
                        out.append((*path, name))
                    walk(member, value[name], (*path, name))
        elif isinstance(shape, ListShape) and isinstance(value, list):
            for i, v in enumerate(value):
                walk(shape.member, v, (*path, i))
        elif isinstance(shape, MapShape) and isinstance(value, dict):
            for k, v in value.items():
                walk(shape.value, v, (*path, k))

    walk(get_session().get_service_model("dynamodb").operation_model(op).input_shape, params, ())
    return out


NESTED_REQUIRED = [(op, params, path) for op, params in ALL_SEEDS for path in _required_paths(op, params)]


@examples(150)
@given(case=st.sampled_from(NESTED_REQUIRED), extra=st.booleans())
def test_missing_nested_members(target: Target, case: tuple[str, dict[str, Any], tuple[Any, ...]],
                                extra: bool) -> None:
    """A required member missing anywhere in a request is a ValidationException naming it, never a
    server error, and changes nothing (an unknown extra member beside it does not matter)."""
    op, params, path = case
    params = json.loads(json.dumps(params))
    parent: Any = params
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    if extra:
        parent["NotAMember"] = {"S": "x"}
    status, headers, body = target.send(f"DynamoDB_20120810.{op}", json.dumps(params).encode())
    kind = check_answer(status, headers, body)
    if kind != "AccessDeniedException":
        assert kind == "ValidationException", (kind, body[:300])
        field = path[-1][:1].lower() + path[-1][1:]
        assert "validation error" in body.decode() and f".{field}' failed to satisfy constraint: Member must not be " \
            "null" in body.decode(), body[:400]


@examples(350)
@given(op=st.sampled_from([o for o, _ in ALL_SEEDS] + STREAM_OPS), params=json_value)
def test_random_json(target: Target, op: str, params: Any) -> None:
    prefix = "DynamoDBStreams_20120810." if op in STREAM_OPS else "DynamoDB_20120810."
    check_answer(*target.send(prefix + op, json.dumps(params).encode()))


@examples(350)
@given(seed=st.sampled_from(ALL_SEEDS), edits=st.lists(st.tuples(st.integers(0, 10_000), st.binary(max_size=3)),
                                                        min_size=1, max_size=5))
def test_mutated_bytes(target: Target, seed: tuple[str, dict[str, Any]], edits: list[tuple[int, bytes]]) -> None:
    op, params = seed
    body = bytearray(json.dumps(params).encode())
    for pos, new in edits:
        i = pos % (len(body) + 1)
        body[i:i + len(new) or i + 1] = new
    check_answer(*target.send(f"DynamoDB_20120810.{op}", bytes(body)))


@examples(250)
@given(target_header=st.one_of(st.none(), st.text(max_size=60),
                               st.sampled_from(["DynamoDB_20120810.", "DynamoDB_20120810.Nope", "DynamoDBStreams_20120810.",
                                                "dynamodb_20120810.GetItem", "DynamoDB_20120810.GetItem "])),
       header_edit=st.sampled_from(["none", "drop-auth", "flip-signature", "date", "credential", "scope",
                                    "garbage-auth", "unsigned-target"]),
       junk=st.text(max_size=80))
def test_mangled_headers(target: Target, target_header: str | None, header_edit: str, junk: str) -> None:
    def mangle(h: dict[str, str]) -> dict[str, str]:
        auth = h.get("authorization", "")
        if header_edit == "drop-auth":
            h.pop("authorization", None)
        elif header_edit == "flip-signature":
            h["authorization"] = auth[:-1] + ("0" if auth[-1:] != "0" else "1")
        elif header_edit == "date":
            h["x-amz-date"] = junk.encode("ascii", "replace").decode() or "x"
        elif header_edit == "credential":
            h["authorization"] = auth.replace(target.key, junk.encode("ascii", "replace").decode().replace(",", ""))
        elif header_edit == "scope":
            h["authorization"] = auth.replace("/us-east-1/", "/" + junk.encode("ascii", "replace").decode() + "/")
        elif header_edit == "garbage-auth":
            h["authorization"] = "AWS4-HMAC-SHA256 " + junk.encode("ascii", "replace").decode()
        elif header_edit == "unsigned-target":
            h["authorization"] = auth.replace(";x-amz-target", "")
        for k, v in list(h.items()):  # control characters would make it malformed HTTP, not a bad signature
            h[k] = "".join(c for c in v if " " <= c <= "~")
        return h

    safe_target = None if target_header is None else target_header.encode("ascii", "replace").decode().replace(
        "\r", "").replace("\n", "")
    status, headers, body = target.send(safe_target, b'{"TableName": "' + PROTECTED.encode() + b'"}',
                                        mangle=mangle)
    kind = check_answer(status, headers, body)
    if header_edit != "none" and not (header_edit == "unsigned-target" and safe_target is None):
        assert kind in ("MissingAuthenticationTokenException", "UnrecognizedClientException",
                        "InvalidSignatureException", "IncompleteSignatureException"), kind
