"""The HTTP edge of the DynamoDB JSON 1.0 protocol, seen with raw (SigV4-signed) requests."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest

from .helpers import JSON_TYPE, TARGET_PREFIX, RawAnswer, raw_request, unique_table_name

pytestmark = pytest.mark.api


def error_type(answer: RawAnswer) -> str:
    """The short error name of an error answer (``__type`` is ``namespace#Name``)."""
    return str(answer.json()["__type"]).rsplit("#", 1)[-1]


def test_health_check(ddb: Any, endpoint: str) -> None:
    # Load balancers and scripts probe GET / ; it answers 200 with a health line.
    answer = raw_request(ddb, endpoint, method="GET", sign=False)
    assert answer.status == 200
    assert answer.body.decode().startswith("healthy")


def test_unknown_operation(ddb: Any, endpoint: str) -> None:
    # An X-Amz-Target naming no operation.
    answer = raw_request(ddb, endpoint, target=TARGET_PREFIX + "NoSuchOperation", body=b"{}")
    assert answer.status == 400
    assert error_type(answer) == "UnknownOperationException"


def test_malformed_json(ddb: Any, endpoint: str) -> None:
    # A body that is not JSON.
    answer = raw_request(ddb, endpoint, target=TARGET_PREFIX + "ListTables", body=b'{"Limit": ')
    assert answer.status == 400
    assert error_type(answer) == "SerializationException"


def test_success_answer(ddb: Any, endpoint: str) -> None:
    # A successful call answers 200 with the JSON result.
    answer = raw_request(ddb, endpoint, target=TARGET_PREFIX + "ListTables", body=b'{"Limit": 1}')
    assert answer.status == 200
    assert isinstance(answer.json()["TableNames"], list)


def test_error_answer(ddb: Any, endpoint: str) -> None:
    # A refused call answers 400 with __type and message.
    name = unique_table_name()
    answer = raw_request(ddb, endpoint, target=TARGET_PREFIX + "DescribeTable",
                         body=json.dumps({"TableName": name}).encode())
    assert answer.status == 400
    assert error_type(answer) == "ResourceNotFoundException"
    body = answer.json()
    assert "Requested resource not found" in body.get("message", body.get("Message", ""))


@pytest.mark.parametrize("target, body", [
    ("ListTables", b"{}"),
    ("DescribeTable", b'{"TableName": "no_such_table_for_headers"}'),
    ("NoSuchOperation", b"{}"),
    ("ListTables", b"not json"),
    ("GetItem", b'{"TableName": "no_such_table_for_headers", "Key": {"k": {"S": "a"}}}'),  # the quick path
])
def test_json_answer_headers(ddb: Any, endpoint: str, target: str, body: bytes) -> None:
    # SDKs check these on every JSON answer, success or error: a request id, a CRC-32 of the
    # body (boto3 retries or fails when it does not match), and the JSON 1.0 content type.
    answer = raw_request(ddb, endpoint, target=TARGET_PREFIX + target, body=body)
    assert answer.headers.get("x-amzn-requestid")
    assert answer.headers.get("x-amz-crc32") == str(zlib.crc32(answer.body))
    assert answer.headers.get("content-type") == JSON_TYPE
    assert answer.headers.get("access-control-allow-origin") == "*"  # a browser may read it
    assert answer.headers.get("content-length") == str(len(answer.body))
    json.loads(answer.body)


def test_request_ids_differ(ddb: Any, endpoint: str) -> None:
    # Each request gets its own id (support cases and logs are keyed by it).
    ids = {raw_request(ddb, endpoint, target=TARGET_PREFIX + "ListTables", body=b"{}").headers["x-amzn-requestid"]
           for _ in range(3)}
    assert len(ids) == 3


# -- the HTTP surface browsers and load balancers see -------------------------------------------
def test_health_line_names_the_endpoint(ddb: Any, endpoint: str) -> None:
    """DynamoDB's endpoints answer ``GET /`` with ``healthy: <the host addressed>``."""
    answer = raw_request(ddb, endpoint, method="GET", sign=False)
    assert answer.status == 200
    assert answer.body.decode() == "healthy: " + endpoint.split("://", 1)[1].rstrip("/")


def test_get_on_another_path_is_not_found(endpoint: str) -> None:
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(endpoint.rstrip("/") + "/no/such/path", timeout=30)
    assert e.value.code == 404


def test_cors_preflight(endpoint: str) -> None:
    """A browser SDK's preflight: any origin, the method and the headers it asks for."""
    import urllib.request

    req = urllib.request.Request(endpoint.rstrip("/") + "/", method="OPTIONS", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-amz-date,x-amz-target,x-amz-user-agent"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
        h = {k.lower(): v for k, v in resp.headers.items()}
    assert h["access-control-allow-origin"] == "*"
    assert "POST" in h["access-control-allow-methods"]
    allowed = {x.strip().lower() for x in h["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-amz-date", "x-amz-target"} <= allowed


def test_cors_headers_on_answers(ddb: Any, endpoint: str) -> None:
    """A browser script can read the answer and its request id, errors included."""
    for target in ("ListTables", "NoSuchOperation"):
        answer = raw_request(ddb, endpoint, target=TARGET_PREFIX + target, body=b"{}")
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "x-amzn-requestid" in answer.headers["access-control-expose-headers"].lower()


def test_broken_large_request_harms_nothing(ddb: Any, endpoint: str, hash_table: str) -> None:
    """A client that disconnects halfway through a large PutItem: nothing is written, the
    endpoint keeps answering."""
    import socket

    k = unique_table_name()
    body = json.dumps({"TableName": hash_table, "Item": {"pk": {"S": k}, "v": {"S": "x" * 300_000}}}).encode()
    host, port = endpoint.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {JSON_TYPE}\r\n"
                  f"X-Amz-Target: {TARGET_PREFIX}PutItem\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                  + body[: len(body) // 2])
    assert "Item" not in ddb.get_item(TableName=hash_table, Key={"pk": {"S": k}}, ConsistentRead=True)
    assert ddb.list_tables(Limit=1)["ResponseMetadata"]["HTTPStatusCode"] == 200
