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
])
def test_json_answer_headers(ddb: Any, endpoint: str, target: str, body: bytes) -> None:
    # SDKs check these on every JSON answer, success or error: a request id, a CRC-32 of the
    # body (boto3 retries or fails when it does not match), and the JSON 1.0 content type.
    answer = raw_request(ddb, endpoint, target=TARGET_PREFIX + target, body=body)
    assert answer.headers.get("x-amzn-requestid")
    assert answer.headers.get("x-amz-crc32") == str(zlib.crc32(answer.body))
    assert answer.headers.get("content-type") == JSON_TYPE
    json.loads(answer.body)


def test_request_ids_differ(ddb: Any, endpoint: str) -> None:
    # Each request gets its own id (support cases and logs are keyed by it).
    ids = {raw_request(ddb, endpoint, target=TARGET_PREFIX + "ListTables", body=b"{}").headers["x-amzn-requestid"]
           for _ in range(3)}
    assert len(ids) == 3
