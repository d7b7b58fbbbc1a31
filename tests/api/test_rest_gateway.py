"""The REST gateway (/v1 on the DynamoDB endpoint's port): plain JSON over real HTTP, against the
real system, checked against what the DynamoDB protocol (boto3) sees of the same items."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal
from typing import Any

import pytest

from .conftest import credentials_for

pytestmark = pytest.mark.api


def call(endpoint: str, method: str, path: str, body: Any = None, *, auth: str | None = "basic",
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """(status, parsed JSON answer) of one request to the gateway."""
    h = dict(headers or {})
    creds = credentials_for(endpoint)
    assert creds is not None
    if auth == "basic":
        h["Authorization"] = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    if data is not None:
        h.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(endpoint + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def music(create_table: Any) -> str:
    return str(create_table(hash=("Artist", "S"), range=("Song", "S")))


def test_put_get_delete_an_item_in_plain_json(endpoint: str, ddb: Any, music: str) -> None:
    item = {"Year": 1999, "Price": 1.25, "Tags": ["live", "b-side"], "Live": True, "Note": None,
            "Credits": {"guitar": "Ann", "takes": 3}}
    status, out = call(endpoint, "PUT", f"/v1/tables/{music}/items/Arturus/Call%20Me", item)
    assert status == 200 and out == {**item, "Artist": "Arturus", "Song": "Call Me"}
    # the DynamoDB protocol sees the types the document clients give these JSON values
    typed = ddb.get_item(TableName=music, Key={"Artist": {"S": "Arturus"}, "Song": {"S": "Call Me"}})["Item"]
    assert typed["Year"] == {"N": "1999"} and typed["Price"] == {"N": "1.25"} and typed["Live"] == {"BOOL": True}
    assert typed["Note"] == {"NULL": True} and typed["Tags"] == {"L": [{"S": "live"}, {"S": "b-side"}]}
    assert typed["Credits"] == {"M": {"guitar": {"S": "Ann"}, "takes": {"N": "3"}}}
    assert call(endpoint, "GET", f"/v1/tables/{music}/items/Arturus/Call%20Me") == (200, out)
    assert call(endpoint, "DELETE", f"/v1/tables/{music}/items/Arturus/Call%20Me") == (200, {"deleted": out})
    status, err = call(endpoint, "GET", f"/v1/tables/{music}/items/Arturus/Call%20Me")
    assert status == 404 and err["error"] == "ItemNotFound"
    assert "Item" not in ddb.get_item(TableName=music, Key={"Artist": {"S": "Arturus"}, "Song": {"S": "Call Me"}})


def test_items_written_by_the_dynamodb_protocol_read_as_plain_json(endpoint: str, ddb: Any, music: str) -> None:
    ddb.put_item(TableName=music, Item={"Artist": {"S": "B"}, "Song": {"S": "s"}, "Tags": {"SS": ["y", "x"]},
                                        "Raw": {"B": b"\x00\x01"}, "Big": {"N": "12345678901234567890"}})
    status, out = call(endpoint, "GET", f"/v1/tables/{music}/items/B/s")
    assert status == 200
    assert out == {"Artist": "B", "Song": "s", "Tags": ["x", "y"], "Raw": "AAE=", "Big": 12345678901234567890}


def test_query_string_conditions_query_and_scan_with_paging(endpoint: str, ddb: Any, music: str) -> None:
    for i in range(7):
        assert call(endpoint, "PUT", f"/v1/tables/{music}/items/Q/track{i}", {"n": i, "odd": i % 2 == 1})[0] == 200
    status, page = call(endpoint, "GET", f"/v1/tables/{music}/items?Artist=Q&Song=begins_with:track&limit=3")
    assert status == 200 and [i["n"] for i in page["items"]] == [0, 1, 2] and page["next"]
    rest: list[int] = []
    token = page["next"]
    while token:
        status, page = call(endpoint, "GET", f"/v1/tables/{music}/items?Artist=Q&limit=3&start={token}")
        rest += [i["n"] for i in page["items"]]
        token = page["next"]
    assert rest == [3, 4, 5, 6]
    _, page = call(endpoint, "GET", f"/v1/tables/{music}/items?Artist=Q&Song=between:track2,track4&order=desc")
    assert [i["n"] for i in page["items"]] == [4, 3, 2]
    _, page = call(endpoint, "GET", f"/v1/tables/{music}/items?Artist=Q&n=ge:5")  # a filter on a non-key attribute
    assert [i["n"] for i in page["items"]] == [5, 6]
    _, page = call(endpoint, "GET", f"/v1/tables/{music}/items?n=lt:2")  # no partition key: a Scan
    assert sorted(i["n"] for i in page["items"]) == [0, 1]
    # the same question through the DynamoDB protocol
    q = ddb.query(TableName=music, KeyConditionExpression="Artist = :a AND Song BETWEEN :l AND :h",
                  ExpressionAttributeValues={":a": {"S": "Q"}, ":l": {"S": "track2"}, ":h": {"S": "track4"}})
    assert sorted(int(Decimal(i["n"]["N"])) for i in q["Items"]) == [2, 3, 4]


def test_bad_requests_get_clear_errors_and_change_nothing(endpoint: str, ddb: Any, music: str) -> None:
    status, err = call(endpoint, "PUT", f"/v1/tables/{music}/items/only-one-part", {"a": 1})
    assert status == 400 and err["error"] == "ValidationException" and "Song" in err["message"]
    status, err = call(endpoint, "PUT", f"/v1/tables/{music}/items/A/b", {"Artist": "other"})
    assert status == 400 and "differs" in err["message"]
    status, err = call(endpoint, "PUT", f"/v1/tables/{music}/items/A/b", [1, 2])
    assert status == 400 and err["error"] == "ValidationException"
    assert "Item" not in ddb.get_item(TableName=music, Key={"Artist": {"S": "A"}, "Song": {"S": "b"}})
    status, err = call(endpoint, "GET", "/v1/tables/NoSuchTable/items/x")
    assert status == 404 and err["error"] == "ResourceNotFoundException"
    status, err = call(endpoint, "GET", f"/v1/tables/{music}/items?Artist=gt:A")
    assert status == 400 and "equality" in err["message"]


def test_the_same_keys_authenticate_and_their_policies_apply(endpoint: str, music: str) -> None:
    status, err = call(endpoint, "GET", f"/v1/tables/{music}/items/A/b", auth=None)
    assert status == 401 and err["error"] == "UnrecognizedClientException"
    wrong = base64.b64encode(f"{credentials_for(endpoint)[0]}:wrong".encode()).decode()  # type: ignore[index]
    status, _ = call(endpoint, "GET", f"/v1/tables/{music}/items/A/b", auth=None,
                     headers={"Authorization": f"Basic {wrong}"})
    assert status == 401
    creds = credentials_for(endpoint)
    assert creds is not None
    status, session = call(endpoint, "POST", "/v1/session", {"accessKeyId": creds[0], "secretAccessKey": creds[1]},
                           auth=None)
    assert status == 200 and session["token"]
    bearer = {"Authorization": f"Bearer {session['token']}"}
    assert call(endpoint, "PUT", f"/v1/tables/{music}/items/T/t", {"v": 1}, auth=None, headers=bearer)[0] == 200
    forged = {"Authorization": f"Bearer {session['token'][:-2]}xx"}
    assert call(endpoint, "GET", f"/v1/tables/{music}/items/T/t", auth=None, headers=forged)[0] == 401


def test_a_key_without_permission_is_refused(endpoint: str, music: str) -> None:
    import subprocess
    import sys

    from .conftest import SYSTEMS

    system = SYSTEMS[endpoint.rstrip("/")]
    out = subprocess.run([sys.executable, "-m", "dynamolog.cli", "keys", "create", "reader", "--allow",
                          f"read={music}", "--format", "env", "--data-dir", str(system.data_dir)],
                         capture_output=True, text=True, check=True).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    key_id, secret = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    basic = {"Authorization": "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()}
    import time

    deadline = time.monotonic() + 10  # a new key reaches the router within about a second
    while True:
        status, _ = call(endpoint, "GET", f"/v1/tables/{music}/items/Q/track1", auth=None, headers=basic)
        if status != 401 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200
    status, err = call(endpoint, "PUT", f"/v1/tables/{music}/items/Q/track1", {"n": 0}, auth=None, headers=basic)
    assert status == 403 and err["error"] == "AccessDeniedException" and "dynamodb:PutItem" in err["message"]


def test_openapi_document_and_its_interactive_page(endpoint: str) -> None:
    with urllib.request.urlopen(endpoint + "/v1/openapi.json", timeout=10) as r:
        doc = json.loads(r.read())
    assert doc["openapi"].startswith("3.")
    assert {"/v1/tables/{table}/items/{key}", "/v1/tables/{table}/items", "/v1/session"} <= set(doc["paths"])
    with urllib.request.urlopen(endpoint + "/v1/docs", timeout=10) as r:
        page = r.read().decode()
    assert "swagger-ui-bundle" in page and "/v1/openapi.json" in page
    src = page.split('src="')[1].split('"')[0]  # its script is served by the router itself, no network
    with urllib.request.urlopen(endpoint + src, timeout=10) as r:
        assert r.status == 200 and len(r.read()) > 100_000


def test_the_dynamodb_endpoint_and_its_health_line_are_unchanged(endpoint: str) -> None:
    # GET / answers DynamoDB's health line (healthy: host:port) beside the gateway's routes
    with urllib.request.urlopen(endpoint + "/", timeout=10) as r:
        assert r.read().decode() == f"healthy: {endpoint.removeprefix('http://')}"
