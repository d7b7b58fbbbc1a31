"""Authentication and access control, black-box: boto3 and raw HTTP against the session's system.

The first group (signatures) holds against DynamoDB itself too; the rest makes keys with
`dynamolog keys` in the session system's data directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from dynamolog.client import sigv4 as signer

from .conftest import SYSTEMS, TableFactory, make_client
from .helpers import JSON_TYPE, RawAnswer, assert_error, raw_request, unique

pytestmark = pytest.mark.api

ROOT = Path(__file__).resolve().parents[2]


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def system(endpoint: str) -> Any:
    s = SYSTEMS.get(endpoint)
    if s is None:
        pytest.fail("this test makes keys with `dynamolog keys`: it needs a Dynamolog the session starts")
    return s


def keys_cli(system: Any, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "dynamolog.cli", "keys", *args, "--data-dir", str(system.data_dir)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout


def create_key(system: Any, name: str, *args: str) -> dict[str, str]:
    out = keys_cli(system, "create", name, *args, "--format", "env")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def client_for(endpoint: str, creds: dict[str, str], service: str = "dynamodb") -> Any:
    return make_client(endpoint, service, key=(creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"]),
                       retries=1)


def post(endpoint: str, target: str, body: bytes, headers: dict[str, str]) -> RawAnswer:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(endpoint + "/", data=body, method="POST",
                                 headers={"Content-Type": JSON_TYPE, "X-Amz-Target": target, **headers})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return RawAnswer(r.status, dict(r.headers.items()), r.read())
    except urllib.error.HTTPError as e:
        return RawAnswer(e.code, dict(e.headers.items()), e.read())


def signed_at(endpoint: str, key: str, secret: str, when: datetime, body: bytes = b"{}",
              target: str = "DynamoDB_20120810.ListTables") -> RawAnswer:
    """A request signed (by the client package's signer) as if at ``when``."""
    host = endpoint.split("://", 1)[1]
    ts = signer.amz_date(when)
    headers = {"host": host, "x-amz-date": ts, "x-amz-target": target, "content-type": JSON_TYPE}
    auth = signer.sign(method="POST", path="/", headers=headers, body=body, access_key=key, secret_key=secret,
                       region="us-east-1", service="dynamodb", timestamp=ts)
    return post(endpoint, target, body, {"X-Amz-Date": ts, "Authorization": auth})


def error_of(answer: RawAnswer) -> tuple[str, str]:
    doc = answer.json()
    return doc["__type"].rsplit("#", 1)[-1], doc.get("message", "")


# -- signatures ----------------------------------------------------------------------------------
def test_unsigned_request_is_refused(ddb: Any, endpoint: str) -> None:
    # Without an Authorization header nothing is served, not even ListTables.
    answer = raw_request(ddb, endpoint, target="DynamoDB_20120810.ListTables", body=b"{}", sign=False)
    assert answer.status == 400
    assert error_of(answer) == ("MissingAuthenticationTokenException", "Request is missing Authentication Token")


def test_unknown_access_key_is_unrecognized(endpoint: str) -> None:
    # A well-signed request with a key the system never issued.
    ddb = make_client(endpoint, key=("DKIAUNKNOWNUNKNOWN00", "whatever-secret"), retries=1)
    with pytest.raises(ClientError) as e:
        ddb.list_tables()
    assert_error(e, "UnrecognizedClientException", "The security token included in the request is invalid.")


def test_wrong_secret_is_invalid_signature_with_the_expected_canonical_form(ddb: Any, endpoint: str) -> None:
    # The message tells the canonical request and string to sign the server computed, as AWS does;
    # they must equal what botocore (an independent signer) computes for the same request.
    key = ddb._request_signer._credentials.access_key
    body = b'{"Limit": 3}'
    url = endpoint + "/"
    request = AWSRequest(method="POST", url=url, data=body,
                         headers={"Content-Type": JSON_TYPE, "X-Amz-Target": "DynamoDB_20120810.ListTables"})
    auth = SigV4Auth(Credentials(key, "not-the-secret"), "dynamodb", "us-east-1")
    auth.add_auth(request)
    prepared = request.prepare()
    del request.headers["Authorization"]  # recompute what was signed, as the server must
    canonical = auth.canonical_request(request)
    sts = auth.string_to_sign(request, canonical)
    answer = post(endpoint, "DynamoDB_20120810.ListTables", body,
                  {k: v for k, v in prepared.headers.items() if k.lower() not in ("content-type", "x-amz-target")})
    code, message = error_of(answer)
    assert answer.status == 400 and code == "InvalidSignatureException"
    assert message.startswith("The request signature we calculated does not match the signature you provided. "
                              "Check your AWS Secret Access Key and signing method.")
    assert f"The Canonical String for this request should have been\n'{canonical}'\n" in message
    assert f"The String-to-Sign should have been\n'{sts}'\n" in message


def test_tampered_body_is_invalid_signature(ddb: Any, endpoint: str) -> None:
    # A signature covers the body: the same headers with another body are refused.
    creds = ddb._request_signer._credentials
    now = datetime.now(UTC)
    ts = signer.amz_date(now)
    host = endpoint.split("://", 1)[1]
    headers = {"host": host, "x-amz-date": ts, "x-amz-target": "DynamoDB_20120810.ListTables",
               "content-type": JSON_TYPE}
    auth = signer.sign(method="POST", path="/", headers=headers, body=b"{}", access_key=creds.access_key,
                       secret_key=creds.secret_key, region="us-east-1", service="dynamodb", timestamp=ts)
    answer = post(endpoint, "DynamoDB_20120810.ListTables", b'{"Limit": 1}', {"X-Amz-Date": ts, "Authorization": auth})
    assert error_of(answer)[0] == "InvalidSignatureException"


def test_clock_skew_window_is_15_minutes(ddb: Any, endpoint: str) -> None:
    # 10 minutes off either way is accepted; 20 minutes late is expired, 20 early not yet current.
    creds = ddb._request_signer._credentials
    now = datetime.now(UTC)
    for minutes in (-10, 10):
        answer = signed_at(endpoint, creds.access_key, creds.secret_key, now + timedelta(minutes=minutes))
        assert answer.status == 200, answer.body
    answer = signed_at(endpoint, creds.access_key, creds.secret_key, now - timedelta(minutes=20))
    code, message = error_of(answer)
    assert code == "InvalidSignatureException"
    assert message.startswith("Signature expired: ") and " is now earlier than " in message
    assert message.endswith(" - 15 min.)")
    answer = signed_at(endpoint, creds.access_key, creds.secret_key, now + timedelta(minutes=20))
    code, message = error_of(answer)
    assert code == "InvalidSignatureException"
    assert message.startswith("Signature not yet current: ") and message.endswith(" + 15 min.)")


def test_malformed_authorization_header_is_incomplete_signature(endpoint: str) -> None:
    answer = post(endpoint, "DynamoDB_20120810.ListTables", b"{}",
                  {"Authorization": "AWS4-HMAC-SHA256 Credential=abc", "X-Amz-Date": "20250101T000000Z"})
    code, message = error_of(answer)
    assert code == "IncompleteSignatureException"
    assert "Authorization header requires 'Signature' parameter." in message


def test_credential_scoped_to_another_region_is_refused(ddb: Any, endpoint: str) -> None:
    creds = ddb._request_signer._credentials
    other = boto3.client("dynamodb", endpoint_url=endpoint, region_name="eu-west-1",
                         aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key)
    with pytest.raises(ClientError) as e:
        other.list_tables()
    assert_error(e, "InvalidSignatureException", "Credential should be scoped to a valid region")


# -- keys ----------------------------------------------------------------------------------------
def test_credentials_env_is_private_and_configures_boto3(system: Any, endpoint: str) -> None:
    # `set -a; . credentials.env` is all a shell needs: boto3 then finds key, region and endpoint.
    path = system.credentials_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((system.data_dir / "system.key").stat().st_mode) == 0o600
    lines = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    assert set(lines) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"}
    assert lines["AWS_ENDPOINT_URL"] == endpoint
    script = "import boto3; print(type(boto3.client('dynamodb').list_tables()['TableNames']).__name__)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"AWS_CONFIG_FILE": "/dev/null",
                                                                            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    out = subprocess.run(["bash", "-c", f"set -a; . {path}; set +a; exec {sys.executable} -c \"{script}\""],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "list"


def test_aws_profile_files(system: Any, endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What `dynamolog up --aws-profile NAME` writes works as a named profile for boto3.
    from dynamolog.auth.credentials import write_aws_profile

    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    (tmp_path / "config").write_text("[profile other]\nregion = eu-west-1\n")
    creds = system.credentials()
    write_aws_profile("dynamolog-test", creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"], "us-east-1",
                      endpoint)
    assert stat.S_IMODE((tmp_path / "credentials").stat().st_mode) == 0o600
    assert "[profile other]" in (tmp_path / "config").read_text()  # other profiles are kept
    ddb = boto3.Session(profile_name="dynamolog-test").client("dynamodb")
    assert "TableNames" in ddb.list_tables()


def test_revoked_key_is_refused_within_seconds(system: Any, endpoint: str) -> None:
    creds = create_key(system, "short-lived", "--allow", "dynamodb:ListTables")
    ddb = client_for(endpoint, creds)
    deadline = time.monotonic() + 10
    while True:  # a new key, too, reaches the router through the topic
        try:
            ddb.list_tables()
            break
        except ClientError:
            assert time.monotonic() < deadline, "a new key was not usable within 10 s"
            time.sleep(0.1)
    listed = keys_cli(system, "list")
    assert creds["AWS_ACCESS_KEY_ID"] in listed and creds["AWS_SECRET_ACCESS_KEY"] not in listed
    keys_cli(system, "revoke", creds["AWS_ACCESS_KEY_ID"])
    t0 = time.monotonic()
    while True:
        try:
            ddb.list_tables()
        except ClientError as e:
            assert e.response["Error"]["Code"] == "UnrecognizedClientException"
            break
        assert time.monotonic() - t0 < 5, "a revoked key still worked 5 s later"
        time.sleep(0.05)
    assert "revoked" in keys_cli(system, "list")


def test_session_token_is_required_when_the_key_has_one(system: Any, endpoint: str) -> None:
    creds = create_key(system, "temporary", "--allow", "dynamodb:ListTables", "--session-token")
    token = creds["AWS_SESSION_TOKEN"]
    key = (creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"])
    with_token = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key[0],
                              aws_secret_access_key=key[1], aws_session_token=token)
    deadline = time.monotonic() + 10
    while True:
        try:
            with_token.list_tables()
            break
        except ClientError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    for bad in (None, token + "x"):
        c = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key[0],
                         aws_secret_access_key=key[1], aws_session_token=bad)
        with pytest.raises(ClientError) as e:
            c.list_tables()
        assert_error(e, "UnrecognizedClientException", "The security token included in the request is invalid.")


# -- permissions ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tables(create_table: TableFactory, ddb: Any) -> tuple[str, str]:
    a = create_table(range=("sk", "N"), StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    b = create_table()
    ddb.put_item(TableName=a, Item={"pk": {"S": "p"}, "sk": {"N": "1"}, "v": {"S": "original"}})
    ddb.put_item(TableName=b, Item={"pk": {"S": "p"}, "v": {"S": "original"}})
    return a, b


def _wait_usable(c: Any, call: str, **kw: Any) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            getattr(c, call)(**kw)
            return
        except ClientError as e:
            if e.response["Error"]["Code"] != "UnrecognizedClientException" or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def denied(call: Any, action: str, resource_tail: str, user: str) -> None:
    with pytest.raises(ClientError) as e:
        call()
    assert_error(e, "AccessDeniedException",
                 f"User: arn:aws:iam::000000000000:user/{user} is not authorized to perform: dynamodb:{action} on "
                 f"resource: arn:aws:dynamodb:us-east-1:000000000000:{resource_tail} because no identity-based "
                 f"policy allows the dynamodb:{action} action")


def test_read_only_key(system: Any, endpoint: str, tables: tuple[str, str], ddb: Any) -> None:
    # "read" on table A: every read action on A works; writes to A, anything on B, control plane
    # actions and account-wide actions are refused, and a refused write changes nothing.
    a, b = tables
    user = unique("reader")
    c = client_for(endpoint, create_key(system, user, "--allow", f"read={a}"))
    key_a = {"pk": {"S": "p"}, "sk": {"N": "1"}}
    _wait_usable(c, "get_item", TableName=a, Key=key_a)
    assert c.get_item(TableName=a, Key=key_a)["Item"]["v"] == {"S": "original"}
    c.query(TableName=a, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}})
    c.scan(TableName=a)
    c.describe_table(TableName=a)
    c.batch_get_item(RequestItems={a: {"Keys": [key_a]}})
    c.transact_get_items(TransactItems=[{"Get": {"TableName": a, "Key": key_a}}])
    c.execute_statement(Statement=f'SELECT * FROM "{a}" WHERE pk = \'p\'')
    streams = client_for(endpoint, {"AWS_ACCESS_KEY_ID": c._request_signer._credentials.access_key,
                                    "AWS_SECRET_ACCESS_KEY": c._request_signer._credentials.secret_key},
                         "dynamodbstreams")
    arn = ddb.describe_table(TableName=a)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    streams.get_records(ShardIterator=it)

    put = {"TableName": a, "Item": {**key_a, "v": {"S": "changed"}}}
    denied(lambda: c.put_item(**put), "PutItem", f"table/{a}", user)
    denied(lambda: c.update_item(TableName=a, Key=key_a, UpdateExpression="SET v = :v",
                                 ExpressionAttributeValues={":v": {"S": "changed"}}), "UpdateItem", f"table/{a}", user)
    denied(lambda: c.delete_item(TableName=a, Key=key_a), "DeleteItem", f"table/{a}", user)
    denied(lambda: c.batch_write_item(RequestItems={a: [{"PutRequest": {"Item": put["Item"]}}]}),
           "BatchWriteItem", f"table/{a}", user)
    denied(lambda: c.transact_write_items(TransactItems=[{"Put": put}]), "PutItem", f"table/{a}", user)
    denied(lambda: c.execute_statement(Statement=f"INSERT INTO \"{a}\" VALUE {{'pk': 'q', 'sk': 2}}"),
           "PartiQLInsert", f"table/{a}", user)
    denied(lambda: c.delete_table(TableName=a), "DeleteTable", f"table/{a}", user)
    denied(lambda: c.update_time_to_live(TableName=a, TimeToLiveSpecification={"Enabled": True, "AttributeName": "t"}),
           "UpdateTimeToLive", f"table/{a}", user)
    denied(lambda: c.get_item(TableName=b, Key={"pk": {"S": "p"}}), "GetItem", f"table/{b}", user)
    with pytest.raises(ClientError) as e:
        c.list_tables()
    assert_error(e, "AccessDeniedException", "dynamodb:ListTables on resource: *")
    assert ddb.get_item(TableName=a, Key=key_a, ConsistentRead=True)["Item"]["v"] == {"S": "original"}
    assert ddb.describe_table(TableName=a)["Table"]["TableStatus"] == "ACTIVE"


def test_write_only_key_and_table_patterns(system: Any, endpoint: str, tables: tuple[str, str]) -> None:
    # "write" on tables matching a pattern: writes work, reads are refused.
    a, b = tables
    user = unique("writer")
    c = client_for(endpoint, create_key(system, user, "--allow", f"write={b[:-3]}*"))
    item = {"pk": {"S": unique()}, "v": {"S": "w"}}
    _wait_usable(c, "put_item", TableName=b, Item=item)
    c.delete_item(TableName=b, Key={"pk": item["pk"]})
    c.batch_write_item(RequestItems={b: [{"PutRequest": {"Item": item}}]})
    denied(lambda: c.get_item(TableName=b, Key={"pk": item["pk"]}), "GetItem", f"table/{b}", user)
    denied(lambda: c.scan(TableName=b), "Scan", f"table/{b}", user)
    denied(lambda: c.put_item(TableName=a, Item={"pk": {"S": "x"}, "sk": {"N": "1"}}), "PutItem", f"table/{a}", user)


def test_explicit_deny_wins(system: Any, endpoint: str, tables: tuple[str, str], tmp_path: Path) -> None:
    a, _ = tables
    user = unique("denied")
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
        {"Effect": "Deny", "Action": ["dynamodb:Delete*"], "Resource": f"arn:aws:dynamodb:*:*:table/{a}"}]}
    (tmp_path / "p.json").write_text(json.dumps(policy))
    c = client_for(endpoint, create_key(system, user, "--policy", str(tmp_path / "p.json")))
    _wait_usable(c, "list_tables")
    with pytest.raises(ClientError) as e:
        c.delete_item(TableName=a, Key={"pk": {"S": "p"}, "sk": {"N": "1"}})
    assert_error(e, "AccessDeniedException", "dynamodb:DeleteItem on resource: arn:aws:dynamodb:us-east-1:"
                 f"000000000000:table/{a} with an explicit deny in an identity-based policy")
    denied_table = c.describe_table(TableName=a)["Table"]
    assert denied_table["TableName"] == a


def test_keys_create_explains_bad_permissions(system: Any) -> None:
    out = subprocess.run([sys.executable, "-m", "dynamolog.cli", "keys", "create", "x", "--allow", "GetItem=T",
                          "--data-dir", str(system.data_dir)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 2
    assert "'GetItem' is not an action: write e.g. dynamodb:GetItem" in out.stderr


# -- internal RPC --------------------------------------------------------------------------------
def test_storage_node_refuses_unauthenticated_rpc(system: Any) -> None:
    # Without the system's internal key a storage node answers nothing: not a raw frame, not a
    # client holding another key.
    from dynamolog.rpc import HandshakeRefused, RpcClient

    port = next(iter(system.state()["storage_ports"].values()))
    frame = json.dumps({"id": 1, "op": "status"}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        hello = s.recv(20)
        assert hello[:4] == b"DLR1"
        s.sendall(len(frame).to_bytes(4, "big") + frame + b"\0" * 64)
        s.settimeout(10)
        data = s.recv(65536)
        assert data == b""  # closed without an answer

    async def with_key(key: bytes) -> Any:
        c = RpcClient("127.0.0.1", port, key=key)
        try:
            return await c.call("status", timeout_s=5)
        finally:
            await c.close()

    with pytest.raises(HandshakeRefused):
        asyncio.run(with_key(os.urandom(32)))
    assert "partitions" in asyncio.run(with_key(system.rpc_key()))
