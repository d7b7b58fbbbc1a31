"""The backup service killed (SIGKILL) in the middle of a backup and of a restore.

The active backup service is one that kills itself at a fault point
(tests/integration/backup_fault_service.py); its standby takes over (a fenced singleton):

- killed after copying the first partition of a backup: the backup, answered CREATING, ends
  AVAILABLE (copied again from the logs to the same cut) and restores to exactly the items
  written before it;
- killed after loading the first partition of a restore: the new table never reads ACTIVE
  with part of its items: it stays CREATING until the standby has loaded everything.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from dynamolog.singleton import active_pids
from tests.api.conftest import make_client, start_system, wait_active
from tests.api.helpers import all_items

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    sysm, url = start_system(kafka_bootstrap, Path(tmp_path_factory.mktemp("backup-crash")))
    try:
        yield sysm, url
    finally:
        sysm.down()


def active_backup_pid(sysm: Any) -> int | None:
    return asyncio.run(active_pids(sysm.settings(), ["backup"]))["backup"]


def faulty_active(sysm: Any, step: str) -> None:
    """Make the active backup service one that dies at ``step``, with a healthy standby."""
    sysm.kill_service("backup")
    sysm.kill_service("backup-2")
    pid = sysm.start_service("backup", module=["tests.integration.backup_fault_service", step])
    deadline = time.monotonic() + 60
    while active_backup_pid(sysm) != pid:
        assert time.monotonic() < deadline, "the faulty backup service was not elected"
        time.sleep(0.2)
    sysm.start_service("backup-2")


def items_of(ddb: Any, name: str) -> dict[str, str]:
    return {i["pk"]["S"]: i["v"]["S"] for i in all_items(ddb.scan, TableName=name, ConsistentRead=True)}


def test_kill_during_backup_then_restore(system: Any) -> None:
    sysm, url = system
    ddb = make_client(url)
    name = "crashy"
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    wait_active(ddb, name)
    for i in range(200):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"k{i:03d}"}, "v": {"S": f"v{i}"}})
    before = items_of(ddb, name)

    faulty_active(sysm, "copying")
    dying = active_backup_pid(sysm)
    arn = ddb.create_backup(TableName=name, BackupName="crash")["BackupDetails"]["BackupArn"]
    for i in range(50):  # after the cut: not in the backup
        ddb.put_item(TableName=name, Item={"pk": {"S": f"late{i}"}, "v": {"S": "x"}})
    deadline = time.monotonic() + 120
    while True:
        status = ddb.describe_backup(BackupArn=arn)["BackupDescription"]["BackupDetails"]["BackupStatus"]
        if status == "AVAILABLE":
            break
        assert status == "CREATING" and time.monotonic() < deadline, status
        time.sleep(0.2)
    assert active_backup_pid(sysm) not in (None, dying), "the service that took the backup did not die"

    faulty_active(sysm, "loading")
    target = "crashy_restored"
    ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
    deadline = time.monotonic() + 180
    seen_creating = 0
    while True:
        status = ddb.describe_table(TableName=target)["Table"]["TableStatus"]
        if status == "ACTIVE":
            break
        seen_creating += 1
        assert time.monotonic() < deadline, "the restore never finished"
        time.sleep(0.1)
    # the moment it reads ACTIVE, every item is there (none of the later writes)
    assert items_of(ddb, target) == before
    assert seen_creating > 0
