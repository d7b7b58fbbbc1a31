"""On-demand backups, restores and point-in-time recovery, black-box through boto3.

Every operation and every error a user meets: CreateBackup / DescribeBackup / ListBackups /
DeleteBackup / RestoreTableFromBackup, UpdateContinuousBackups / DescribeContinuousBackups /
RestoreTableToPointInTime.  A refused request must leave nothing behind (no table, no backup).
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import wait_active
from .helpers import all_items, assert_error, eventually, raw_ddb, unique, unique_table_name

__all__ = ["raw_ddb"]
pytestmark = pytest.mark.api


def wait_backup(ddb: Any, arn: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        d = ddb.describe_backup(BackupArn=arn)["BackupDescription"]
        if d["BackupDetails"]["BackupStatus"] == "AVAILABLE":
            return dict(d)
        time.sleep(0.1)
    raise TimeoutError(f"backup {arn} not AVAILABLE after {timeout_s} s")


def make_indexed_table(ddb: Any, name: str, billing: str = "PAY_PER_REQUEST") -> None:
    extra: dict[str, Any] = {}
    gsi: dict[str, Any] = {"IndexName": "byColour",
                           "KeySchema": [{"AttributeName": "colour", "KeyType": "HASH"}],
                           "Projection": {"ProjectionType": "ALL"}}
    if billing == "PROVISIONED":
        extra["ProvisionedThroughput"] = {"ReadCapacityUnits": 7, "WriteCapacityUnits": 3}
        gsi["ProvisionedThroughput"] = {"ReadCapacityUnits": 2, "WriteCapacityUnits": 2}
    ddb.create_table(
        TableName=name, BillingMode=billing,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "N"},
                              {"AttributeName": "colour", "AttributeType": "S"},
                              {"AttributeName": "size", "AttributeType": "N"}],
        GlobalSecondaryIndexes=[gsi],
        LocalSecondaryIndexes=[{"IndexName": "bySize",
                                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                              {"AttributeName": "size", "KeyType": "RANGE"}],
                                "Projection": {"ProjectionType": "KEYS_ONLY"}}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}, **extra)
    wait_active(ddb, name)


def fill(ddb: Any, name: str, n: int = 40) -> list[dict[str, Any]]:
    """``n`` items written; a write refused for capacity (a provisioned table of a few units) is
    sent again after a pause, as an SDK's retries would."""
    items = [{"pk": {"S": f"p{i % 5}"}, "sk": {"N": str(i)}, "colour": {"S": ["red", "blue"][i % 2]},
              "size": {"N": str(100 - i)}, "blob": {"B": bytes([i]) * 10}} for i in range(n)]
    for item in items:
        for _ in range(100):
            try:
                ddb.put_item(TableName=name, Item=item)
                break
            except ddb.exceptions.ProvisionedThroughputExceededException:
                time.sleep(0.2)
        else:
            raise AssertionError(f"{name}: a write refused for capacity for 20 s")
    return items


def scan_all(ddb: Any, name: str) -> list[dict[str, Any]]:
    return sorted(all_items(ddb.scan, TableName=name, ConsistentRead=True),
                  key=lambda i: (i["pk"]["S"], int(i["sk"]["N"])))


def table_exists(ddb: Any, name: str) -> bool:
    try:
        ddb.describe_table(TableName=name)
        return True
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ResourceNotFoundException"
        return False


def test_backup_and_restore_with_indexes(ddb: Any) -> None:
    # The whole round trip a user makes: back up a table with a GSI, an LSI and a stream, change
    # the table afterwards, restore the backup into a new table, and find exactly the items of
    # the backup's moment there, with both indexes answering queries.
    name, target = unique_table_name(), unique_table_name()
    make_indexed_table(ddb, name)
    items = fill(ddb, name)
    created = ddb.create_backup(TableName=name, BackupName="nightly")["BackupDetails"]
    assert created["BackupName"] == "nightly" and created["BackupType"] == "USER"
    assert created["BackupStatus"] in ("CREATING", "AVAILABLE")
    assert created["BackupArn"].startswith(f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}/backup/")
    # writes after the backup are not in it
    ddb.put_item(TableName=name, Item={"pk": {"S": "late"}, "sk": {"N": "1"}, "colour": {"S": "red"}})
    ddb.delete_item(TableName=name, Key={"pk": {"S": "p0"}, "sk": {"N": "0"}})
    d = wait_backup(ddb, created["BackupArn"])
    src = d["SourceTableDetails"]
    assert src["TableName"] == name and src["BillingMode"] == "PAY_PER_REQUEST"
    assert [k["AttributeName"] for k in src["KeySchema"]] == ["pk", "sk"]
    features = d["SourceTableFeatureDetails"]
    assert [i["IndexName"] for i in features["GlobalSecondaryIndexes"]] == ["byColour"]
    assert [i["IndexName"] for i in features["LocalSecondaryIndexes"]] == ["bySize"]
    assert features["StreamDescription"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert d["BackupDetails"]["BackupSizeBytes"] > 0

    restored = ddb.restore_table_from_backup(TargetTableName=target, BackupArn=created["BackupArn"])
    desc = restored["TableDescription"]
    assert desc["TableStatus"] == "CREATING" and desc["TableName"] == target
    assert desc["RestoreSummary"]["SourceBackupArn"] == created["BackupArn"]
    assert desc["RestoreSummary"]["RestoreInProgress"] is True
    wait_active(ddb, target, timeout_s=120)
    table = ddb.describe_table(TableName=target)["Table"]
    assert table["RestoreSummary"]["RestoreInProgress"] is False
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["byColour"]
    assert [i["IndexName"] for i in table["LocalSecondaryIndexes"]] == ["bySize"]
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_IMAGE"
    assert scan_all(ddb, target) == sorted(items, key=lambda i: (i["pk"]["S"], int(i["sk"]["N"])))
    # the local index, strongly consistent: p1's items by size
    lsi = ddb.query(TableName=target, IndexName="bySize", ConsistentRead=True,
                    KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p1"}})
    assert [int(i["size"]["N"]) for i in lsi["Items"]] == sorted(100 - i for i in range(40) if i % 5 == 1)
    # the global index is fed from the restored table's logs: eventually every red item
    want_red = sorted(int(i["sk"]["N"]) for i in items if i["colour"]["S"] == "red")

    def red() -> list[int] | None:
        got = sorted(int(i["sk"]["N"]) for i in all_items(
            ddb.query, TableName=target, IndexName="byColour", KeyConditionExpression="colour = :c",
            ExpressionAttributeValues={":c": {"S": "red"}}))
        return got if got == want_red else None

    assert eventually(red, 30) == want_red
    # the restored table takes writes
    ddb.put_item(TableName=target, Item={"pk": {"S": "new"}, "sk": {"N": "1"}})


def test_restore_overrides_billing_throughput_and_indexes(ddb: Any) -> None:
    # DynamoDB lets a restore change the billing mode and throughput and leave indexes out.
    name = unique_table_name()
    make_indexed_table(ddb, name, billing="PROVISIONED")
    fill(ddb, name, 10)
    arn = ddb.create_backup(TableName=name, BackupName="bb1")["BackupDetails"]["BackupArn"]
    d = wait_backup(ddb, arn)
    assert d["SourceTableDetails"]["ProvisionedThroughput"] == {"ReadCapacityUnits": 7, "WriteCapacityUnits": 3}
    same = unique_table_name()
    ddb.restore_table_from_backup(TargetTableName=same, BackupArn=arn)
    wait_active(ddb, same, timeout_s=120)
    t = ddb.describe_table(TableName=same)["Table"]
    assert t["ProvisionedThroughput"]["ReadCapacityUnits"] == 7  # the backup's capacity
    on_demand = unique_table_name()
    ddb.restore_table_from_backup(TargetTableName=on_demand, BackupArn=arn, BillingModeOverride="PAY_PER_REQUEST",
                                  GlobalSecondaryIndexOverride=[], LocalSecondaryIndexOverride=[])
    wait_active(ddb, on_demand, timeout_s=120)
    t = ddb.describe_table(TableName=on_demand)["Table"]
    assert t["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert "GlobalSecondaryIndexes" not in t and "LocalSecondaryIndexes" not in t
    assert len(scan_all(ddb, on_demand)) == 10
    more = unique_table_name()
    ddb.restore_table_from_backup(TargetTableName=more, BackupArn=arn,
                                  ProvisionedThroughputOverride={"ReadCapacityUnits": 11, "WriteCapacityUnits": 12})
    wait_active(ddb, more, timeout_s=120)
    pt = ddb.describe_table(TableName=more)["Table"]["ProvisionedThroughput"]
    assert (pt["ReadCapacityUnits"], pt["WriteCapacityUnits"]) == (11, 12)


def test_list_backups_filters_and_pages(ddb: Any) -> None:
    # ListBackups filters by table, time range and type, and pages with
    # ExclusiveStartBackupArn / LastEvaluatedBackupArn.
    a, b = unique_table_name(), unique_table_name()
    for name in (a, b):
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        wait_active(ddb, name)
    before = datetime.datetime.now(datetime.UTC)
    arns_a = [ddb.create_backup(TableName=a, BackupName=f"aa{i}")["BackupDetails"]["BackupArn"] for i in range(3)]
    arn_b = ddb.create_backup(TableName=b, BackupName="bb0")["BackupDetails"]["BackupArn"]
    listed = ddb.list_backups(TableName=a)["BackupSummaries"]
    assert [s["BackupArn"] for s in listed] == arns_a
    assert {s["TableName"] for s in listed} == {a}
    page1 = ddb.list_backups(TableName=a, Limit=2)
    assert [s["BackupArn"] for s in page1["BackupSummaries"]] == arns_a[:2]
    assert page1["LastEvaluatedBackupArn"] == arns_a[1]
    page2 = ddb.list_backups(TableName=a, Limit=2, ExclusiveStartBackupArn=page1["LastEvaluatedBackupArn"])
    assert [s["BackupArn"] for s in page2["BackupSummaries"]] == arns_a[2:]
    assert "LastEvaluatedBackupArn" not in page2
    ranged = ddb.list_backups(TimeRangeLowerBound=before, TimeRangeUpperBound=datetime.datetime.now(datetime.UTC))
    assert set(arns_a + [arn_b]) <= {s["BackupArn"] for s in ranged["BackupSummaries"]}
    old = ddb.list_backups(TableName=a, TimeRangeUpperBound=before - datetime.timedelta(seconds=5))
    assert old["BackupSummaries"] == []
    assert ddb.list_backups(TableName=a, BackupType="SYSTEM")["BackupSummaries"] == []
    assert len(ddb.list_backups(TableName=a, BackupType="ALL")["BackupSummaries"]) == 3


def test_delete_backup_then_it_is_gone(ddb: Any) -> None:
    # DeleteBackup answers the description as DELETED; afterwards the backup cannot be described,
    # listed, deleted again or restored.
    name = unique_table_name()
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    wait_active(ddb, name)
    ddb.put_item(TableName=name, Item={"pk": {"S": "x"}})
    arn = ddb.create_backup(TableName=name, BackupName="gone")["BackupDetails"]["BackupArn"]
    wait_backup(ddb, arn)
    d = ddb.delete_backup(BackupArn=arn)["BackupDescription"]
    assert d["BackupDetails"]["BackupStatus"] == "DELETED"
    for call in (lambda: ddb.describe_backup(BackupArn=arn), lambda: ddb.delete_backup(BackupArn=arn)):
        with pytest.raises(ClientError) as e:
            call()
        assert_error(e, "BackupNotFoundException", arn)
    assert ddb.list_backups(TableName=name)["BackupSummaries"] == []
    target = unique_table_name()
    with pytest.raises(ClientError) as e:
        ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
    assert_error(e, "BackupNotFoundException")
    assert not table_exists(ddb, target)


def test_backup_and_restore_errors_change_nothing(ddb: Any, raw_ddb: Any) -> None:
    # Each refused request answers DynamoDB's error and creates no table and no backup.
    name = unique_table_name()
    missing = unique_table_name()
    with pytest.raises(ClientError) as e:
        ddb.create_backup(TableName=missing, BackupName="x1x")
    assert_error(e, "TableNotFoundException", missing)
    with pytest.raises(ClientError) as e:
        raw_ddb.create_backup(TableName=unique_table_name(), BackupName="bad name!")
    assert_error(e, "ValidationException", "backupName")
    with pytest.raises(ClientError) as e:
        raw_ddb.describe_backup(BackupArn="arn:short")
    assert_error(e, "ValidationException", "length greater than or equal to 37")
    with pytest.raises(ClientError) as e:
        raw_ddb.list_backups(Limit=0)
    assert_error(e, "ValidationException", "limit")
    with pytest.raises(ClientError) as e:
        raw_ddb.list_backups(BackupType="DAILY")
    assert_error(e, "ValidationException", "backupType")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    wait_active(ddb, name)
    arn = ddb.create_backup(TableName=name, BackupName="ok1")["BackupDetails"]["BackupArn"]
    wait_backup(ddb, arn)
    # into an existing table
    with pytest.raises(ClientError) as e:
        ddb.restore_table_from_backup(TargetTableName=name, BackupArn=arn)
    assert_error(e, "TableAlreadyExistsException", name)
    # a backup that never existed
    fake = arn.rsplit("/", 1)[0] + "/01700000000000-deadbeef"
    target = unique_table_name()
    with pytest.raises(ClientError) as e:
        ddb.restore_table_from_backup(TargetTableName=target, BackupArn=fake)
    assert_error(e, "BackupNotFoundException", fake)
    # an override CreateTable would refuse: on-demand with provisioned throughput
    with pytest.raises(ClientError) as e:
        ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn, BillingModeOverride="PAY_PER_REQUEST",
                                      ProvisionedThroughputOverride={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
    assert_error(e, "ValidationException")
    assert not table_exists(ddb, target)
    with pytest.raises(ClientError) as e:
        raw_ddb.restore_table_from_backup(TargetTableName="a", BackupArn=arn)
    assert_error(e, "ValidationException", "targetTableName")
    assert [s["BackupArn"] for s in ddb.list_backups(TableName=name)["BackupSummaries"]] == [arn]


def test_restore_into_a_table_being_created_is_in_use(ddb: Any) -> None:
    # A target name whose table is still CREATING answers TableInUseException.
    name = unique_table_name()
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    wait_active(ddb, name)
    arn = ddb.create_backup(TableName=name, BackupName="bbb")["BackupDetails"]["BackupArn"]
    wait_backup(ddb, arn)
    target = unique_table_name()
    ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
    if ddb.describe_table(TableName=target)["Table"]["TableStatus"] == "CREATING":
        with pytest.raises(ClientError) as e:
            ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
        assert_error(e, "TableInUseException", target)
    wait_active(ddb, target, timeout_s=120)
    with pytest.raises(ClientError) as e:
        ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
    assert_error(e, "TableAlreadyExistsException", target)


# -- point-in-time recovery ----------------------------------------------------------------------
def test_continuous_backups_turned_on_and_off(ddb: Any, raw_ddb: Any) -> None:
    # UpdateContinuousBackups turns recovery on with a period; DescribeContinuousBackups shows the
    # window; turning it off hides it again.
    name = unique_table_name()
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    wait_active(ddb, name)
    off = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert off["ContinuousBackupsStatus"] == "ENABLED"
    assert off["PointInTimeRecoveryDescription"] == {"PointInTimeRecoveryStatus": "DISABLED"}
    on = ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": 7})["ContinuousBackupsDescription"]
    pitr = on["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED" and pitr["RecoveryPeriodInDays"] == 7
    assert pitr["EarliestRestorableDateTime"] <= pitr["LatestRestorableDateTime"]
    described = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert described["PointInTimeRecoveryDescription"]["RecoveryPeriodInDays"] == 7
    for days in (0, 36):
        with pytest.raises(ClientError) as e:
            raw_ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": days})
        assert_error(e, "ValidationException", "recoveryPeriodInDays")
    assert ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"]["RecoveryPeriodInDays"] == 7
    ddb.update_continuous_backups(TableName=name,
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False})
    assert ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"] == {"PointInTimeRecoveryStatus": "DISABLED"}
    missing = unique_table_name()
    for call in (lambda: ddb.describe_continuous_backups(TableName=missing),
                 lambda: ddb.update_continuous_backups(TableName=missing, PointInTimeRecoverySpecification={
                     "PointInTimeRecoveryEnabled": True})):
        with pytest.raises(ClientError) as e:
            call()
        assert_error(e, "TableNotFoundException", missing)


def test_point_in_time_restore_errors(ddb: Any) -> None:
    # Recovery off, a time outside the window, a missing source, an existing target: DynamoDB's
    # errors, and no table made.
    name = unique_table_name()
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    wait_active(ddb, name)
    target = unique_table_name()
    with pytest.raises(ClientError) as e:
        ddb.restore_table_to_point_in_time(SourceTableName=name, TargetTableName=target, UseLatestRestorableTime=True)
    assert_error(e, "PointInTimeRecoveryUnavailableException", name)
    ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    window = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"]
    for when in (window["EarliestRestorableDateTime"] - datetime.timedelta(hours=1),
                 datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)):
        with pytest.raises(ClientError) as e:
            ddb.restore_table_to_point_in_time(SourceTableName=name, TargetTableName=target, RestoreDateTime=when)
        assert_error(e, "InvalidRestoreTimeException", "RestoreDateTime")
    missing = unique_table_name()
    with pytest.raises(ClientError) as e:
        ddb.restore_table_to_point_in_time(SourceTableName=missing, TargetTableName=target,
                                           UseLatestRestorableTime=True)
    assert_error(e, "TableNotFoundException", missing)
    with pytest.raises(ClientError) as e:
        ddb.restore_table_to_point_in_time(SourceTableName=name, TargetTableName=name, UseLatestRestorableTime=True)
    assert_error(e, "TableAlreadyExistsException", name)
    with pytest.raises(ClientError) as e:
        ddb.restore_table_to_point_in_time(SourceTableName=name, TargetTableName=target)
    assert_error(e, "ValidationException", "RestoreDateTime")
    assert not table_exists(ddb, target)


def test_point_in_time_restore_by_arn_to_the_latest_time(ddb: Any) -> None:
    # RestoreTableToPointInTime by SourceTableArn with UseLatestRestorableTime: the new table has
    # every item written before the request.
    name, target = unique_table_name(), unique_table_name()
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    wait_active(ddb, name)
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    keys = [unique() for _ in range(20)]
    for k in keys:
        ddb.put_item(TableName=name, Item={"pk": {"S": k}, "v": {"N": "1"}})
    time.sleep(1.2)  # past the settle time: the writes are before the latest restorable time
    desc = ddb.restore_table_to_point_in_time(SourceTableArn=arn, TargetTableName=target,
                                              UseLatestRestorableTime=True)["TableDescription"]
    assert desc["RestoreSummary"]["SourceTableArn"] == arn
    wait_active(ddb, target, timeout_s=120)
    got = sorted(i["pk"]["S"] for i in all_items(ddb.scan, TableName=target, ConsistentRead=True))
    assert got == sorted(keys)


def test_cli_backup_create_list_restore(ddb: Any, endpoint: str) -> None:
    # `dynamolog backup create | list | restore` do what the API does, following the work to the
    # end and printing the backup's ARN and the new table's name.
    import os
    import subprocess
    import sys

    from .conftest import credentials_for

    name = unique_table_name()
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    wait_active(ddb, name)
    for i in range(5):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"k{i}"}})
    env = dict(os.environ)
    creds = credentials_for(endpoint)
    if creds:
        env.update(AWS_ACCESS_KEY_ID=creds[0], AWS_SECRET_ACCESS_KEY=creds[1], AWS_REGION="us-east-1")

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "dynamolog.cli", "backup", *args, "--endpoint-url", endpoint],
                              env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    arn = cli("create", name, "--name", "from-cli")
    assert arn.startswith("arn:aws:dynamodb:") and "/backup/" in arn
    assert ddb.describe_backup(BackupArn=arn)["BackupDescription"]["BackupDetails"]["BackupStatus"] == "AVAILABLE"
    listed = cli("list", "--table", name)
    assert arn in listed and "from-cli" in listed and "AVAILABLE" in listed
    target = unique_table_name()
    assert cli("restore", target, "--backup-arn", arn) == target
    assert ddb.describe_table(TableName=target)["Table"]["TableStatus"] == "ACTIVE"
    assert len(all_items(ddb.scan, TableName=target, ConsistentRead=True)) == 5
    bad = subprocess.run([sys.executable, "-m", "dynamolog.cli", "backup", "restore", target, "--backup-arn", arn,
                          "--endpoint-url", endpoint], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "TableAlreadyExistsException" in bad.stderr
