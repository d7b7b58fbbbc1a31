"""Small helpers shared by the black-box API tests (nothing here knows Dynamolog's internals)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

from .conftest import make_client

JSON_TYPE = "application/x-amz-json-1.0"
TARGET_PREFIX = "DynamoDB_20120810."


def unique(prefix: str = "k") -> str:
    """A value no other test (or earlier run against the same endpoint) uses."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def unique_table_name() -> str:
    return unique("test_")


@pytest.fixture(scope="session")
def raw_ddb(endpoint: str) -> Any:
    """A boto3 client with client-side parameter validation off, so requests that boto3 itself
    would refuse (a too-short table name, a missing KeySchema) reach the server."""
    return make_client(endpoint, parameter_validation=False)


def error(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    """(code, message) of a refused request, as boto3 shows them."""
    err = e.value.response["Error"]
    return err["Code"], err.get("Message", "")


def assert_error(e: pytest.ExceptionInfo[ClientError], code: str, phrase: str = "") -> None:
    got_code, message = error(e)
    assert got_code == code, (got_code, message)
    assert phrase in message, (phrase, message)


def sets_sorted(value: Any) -> Any:
    """A low-level item (or value) with set members sorted, for comparing sets of any order."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in ("SS", "NS", "BS") and isinstance(v, list):
                out[k] = sorted(v)
            else:
                out[k] = sets_sorted(v)
        return out
    if isinstance(value, list):
        return [sets_sorted(v) for v in value]
    return value


def pages(call: Callable[..., dict[str, Any]], **kw: Any) -> Iterator[dict[str, Any]]:
    """Every page of a Query or Scan, following LastEvaluatedKey."""
    while True:
        page = call(**kw)
        yield page
        last = page.get("LastEvaluatedKey")
        if last is None:
            return
        kw["ExclusiveStartKey"] = last


def all_items(call: Callable[..., dict[str, Any]], **kw: Any) -> list[dict[str, Any]]:
    return [item for page in pages(call, **kw) for item in page.get("Items", [])]


def eventually(check: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    """Retry ``check`` until it returns something truthy (for eventually consistent reads)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


# -- raw HTTP ---------------------------------------------------------------------------------
class RawAnswer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(ddb: Any, endpoint: str, method: str = "POST", target: str | None = None,
                body: bytes = b"", sign: bool = True) -> RawAnswer:
    """Send one HTTP request to the endpoint, signed with SigV4 like an SDK would (so the same
    request also works against DynamoDB itself); header names in the answer are lower-cased."""
    url = endpoint.rstrip("/") + "/"
    headers = {"Content-Type": JSON_TYPE} if method == "POST" else {}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method=method, url=url, data=body if method == "POST" else None, headers=headers)
    if sign:
        credentials = ddb._request_signer._credentials
        SigV4Auth(credentials, "dynamodb", ddb.meta.region_name).add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(url, data=prepared.body if method == "POST" else None,
                                 headers=dict(prepared.headers.items()), method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return RawAnswer(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as e:
        return RawAnswer(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


# -- item helpers shared by the API tests ------------------------------------------------
def S(v: str) -> dict[str, str]:
    return {"S": v}


def N(v: str) -> dict[str, str]:
    return {"N": v}


def B(v: bytes) -> dict[str, bytes]:
    return {"B": v}


def key(pk: str) -> dict[str, Any]:
    return {"pk": S(pk)}


def get(ddb: Any, table: str, k: dict[str, Any]) -> dict[str, Any] | None:
    item: dict[str, Any] | None = ddb.get_item(TableName=table, Key=k, ConsistentRead=True).get("Item")
    return item


def put_new(ddb: Any, table: str, **attrs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Put an item under a fresh key; returns (key, item)."""
    k = key(unique())
    item = k | attrs
    ddb.put_item(TableName=table, Item=item)
    return k, item
