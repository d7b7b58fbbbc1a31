"""The console's server side over real HTTP: the system snapshot, its server-sent events, and
DynamoDB operations run as the signed-in key."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
from typing import Any

import pytest

from .conftest import credentials_for
from .test_rest_gateway import call

pytestmark = pytest.mark.api


def test_the_snapshot_shows_each_partition_its_leader_and_the_services(endpoint: str, create_table: Any) -> None:
    table = create_table()
    status, snap = call(endpoint, "GET", "/console/api/system")
    assert status == 200
    mine = [p for p in snap["partitions"] if p["table"] == table]
    assert mine and all(p["leader"] and p["epoch"] >= 1 and p["state"] == "ACTIVE" for p in mine)
    for p in mine:  # the leader's own replica reports itself as leader, with its log offset
        assert p["replica_status"][p["leader"]]["role"] == "leader"
        assert isinstance(p["replica_status"][p["leader"]]["next_offset"], int)
    assert any(n["healthy"] for n in snap["services"]["storage"])
    assert any(t["name"] == table for t in snap["tables"])
    assert call(endpoint, "GET", "/console/api/system", auth=None)[0] == 401


def test_events_arrive_as_server_sent_events(endpoint: str) -> None:
    creds = credentials_for(endpoint)
    assert creds is not None
    _, session = call(endpoint, "POST", "/v1/session", {"accessKeyId": creds[0], "secretAccessKey": creds[1]},
                      auth=None)
    url = urllib.parse.urlparse(endpoint)
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall(f"GET /console/api/events HTTP/1.1\r\nHost: x\r\nCookie: dynamolog_session={session['token']}"
                  "\r\n\r\n".encode())
        got = b""
        t0 = time.monotonic()
        while got.count(b"event: system") < 2 and time.monotonic() - t0 < 10:
            got += s.recv(65536)
    head = got.split(b"\r\n\r\n", 1)[0]
    assert b" 200 " in head and b"text/event-stream" in head and b"chunked" in head
    assert got.count(b"event: system") >= 2  # one snapshot after another, on one open answer
    data = got.split(b"event: system\ndata: ", 1)[1].split(b"\n\n", 1)[0]
    assert "partitions" in json.loads(data)


def test_operations_run_as_the_signed_in_key(endpoint: str, ddb: Any, create_table: Any) -> None:
    table = create_table()
    status, _ = call(endpoint, "POST", "/console/api/op/PutItem",
                     {"TableName": table, "Item": {"pk": {"S": "a"}, "n": {"N": "1"}}})
    assert status == 200
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": "1"}
    status, err = call(endpoint, "POST", "/console/api/op/PutItem", {"TableName": table, "Item": {"n": {"N": "1"}}})
    assert status == 400 and err["error"] == "ValidationException"  # the operation's own validation
    status, err = call(endpoint, "POST", "/console/api/op/NoSuchOperation", {})
    assert status == 400 and err["error"] == "UnknownOperationException"
    status, _ = call(endpoint, "POST", "/console/api/op/PutItem", {"TableName": table, "Item": {"pk": {"S": "b"}}},
                     auth=None)
    assert status == 401
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": "b"}})
