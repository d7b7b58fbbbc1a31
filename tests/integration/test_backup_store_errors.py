"""A backup store that cannot be used: a malformed S3 URL, an endpoint nobody answers.

The backup service stays up and every backup request answers a retriable InternalServerError
that names the store and what to check; nothing is left behind (no backup listed afterwards, no
restored table), and the table itself is untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import make_client, start_system, wait_active

pytestmark = pytest.mark.integration

STORES = {
    "malformed": ({"DYNAMOLOG_BACKUP_STORE": "s3://"}, "malformed S3 URL"),
    "unreachable": ({"DYNAMOLOG_BACKUP_STORE": "s3://dynamolog-backups/x", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
                     "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}, "s3://dynamolog-backups/x"),
}


@pytest.fixture(params=sorted(STORES))
def system(request: pytest.FixtureRequest, kafka_bootstrap: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    env, phrase = STORES[request.param]
    sysm, url = start_system(kafka_bootstrap, Path(tmp_path_factory.mktemp(f"store-{request.param}")),
                             extra_env=env)
    try:
        yield url, phrase
    finally:
        sysm.down()


def refused(call: Any, phrase: str) -> None:
    with pytest.raises(ClientError) as e:
        call()
    err = e.value.response["Error"]
    assert err["Code"] == "InternalServerError", err
    assert phrase in err["Message"] and "cannot be used" in err["Message"], err["Message"]


def test_an_unusable_store_refuses_backups_and_leaves_nothing(system: tuple[str, str]) -> None:
    url, phrase = system
    ddb = make_client(url, retries=0)
    name = f"t{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    wait_active(ddb, name)
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}})
    refused(lambda: ddb.create_backup(TableName=name, BackupName="nope"), phrase)
    refused(lambda: ddb.list_backups(TableName=name), phrase)
    arn = f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}/backup/01700000000000-deadbeef"
    target = f"r{uuid.uuid4().hex[:8]}"
    refused(lambda: ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn), phrase)
    assert target not in ddb.list_tables()["TableNames"]
    assert ddb.get_item(TableName=name, Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"] == {"pk": {"S": "a"}}
