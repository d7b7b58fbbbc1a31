"""Backups and point-in-time restores checked against a recorded history, on both stores.

Each test runs twice: with the default directory store and with an S3 store on a real S3 API
server (moto's, started by the session).  Recovery snapshots are taken every second here, so
point-in-time restores start from snapshots as well as from the start of the log.

- A backup taken while four clients write: the restored table is checked with the
  linearizability checker (dynamolog/testing/checker.py) as one read of every key that happened
  during the CreateBackup call: every write acknowledged before the call is there, none that
  started after its answer is.
- Point in time, to the millisecond: the restored table holds exactly the writes whose log
  records are stamped at or before the restore time -- restoring to a record's timestamp
  includes it, to one millisecond before excludes it.
"""

from __future__ import annotations

import asyncio
import datetime
import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from dynamolog import codec
from dynamolog.testing.checker import OK, READ, WRITE, History, Op
from tests.api.conftest import make_client, start_system, wait_active
from tests.api.helpers import all_items
from tests.conftest import make_bucket

pytestmark = pytest.mark.integration


class Store:
    """Where the system under test keeps its backups, and how the test looks inside."""

    def __init__(self, kind: str, data_dir: Path, endpoint: str | None = None, bucket: str | None = None) -> None:
        self.kind, self.data_dir, self.endpoint, self.bucket = kind, data_dir, endpoint, bucket

    def keys(self, prefix: str) -> list[str]:
        if self.kind == "directory":
            root = self.data_dir / "backups"
            return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                          and str(p.relative_to(root)).startswith(prefix))
        s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        got = s3.list_objects_v2(Bucket=self.bucket, Prefix=f"dynamolog/{prefix}").get("Contents", [])
        return sorted(o["Key"].removeprefix("dynamolog/") for o in got)


@pytest.fixture(scope="module", params=["directory", "s3"])
def system(request: pytest.FixtureRequest, kafka_bootstrap: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str, Store]]:
    data_dir = tmp_path_factory.mktemp(f"backups-{request.param}")
    # exports always go to the S3 API server; backups to the directory or to S3
    endpoint = request.getfixturevalue("s3_endpoint")
    # incremental exports' shortest window is 2 s here (15 minutes by default, as DynamoDB)
    extra = {"DYNAMOLOG_PITR_SNAPSHOT_S": "1", "DYNAMOLOG_INCREMENTAL_EXPORT_MIN_S": "2",
             "AWS_ENDPOINT_URL_S3": endpoint,
             "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    if request.param == "s3":
        bucket = f"backups-{uuid.uuid4().hex[:8]}"
        make_bucket(endpoint, bucket)
        store = Store("s3", data_dir, endpoint, bucket)
        extra |= {"DYNAMOLOG_BACKUP_STORE": f"s3://{bucket}/dynamolog"}
    else:
        store = Store("directory", data_dir, endpoint)
    sys_, url = start_system(kafka_bootstrap, data_dir, extra_env=extra)
    try:
        yield sys_, url, store
    finally:
        sys_.down()


def new_table(ddb: Any, pitr: bool = False) -> str:
    name = f"t{uuid.uuid4().hex[:10]}"
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    wait_active(ddb, name)
    if pitr:
        ddb.update_continuous_backups(TableName=name,
                                      PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    return name


def contents(ddb: Any, name: str) -> dict[str, int]:
    return {i["pk"]["S"]: int(i["v"]["N"]) for i in all_items(ddb.scan, TableName=name, ConsistentRead=True)}


def test_backup_under_write_load_holds_what_was_acknowledged_before_its_cut(system: tuple[Any, str, Store]) -> None:
    _sys, url, store = system
    ddb = make_client(url)
    name = new_table(ddb)
    keys = [f"k{i}" for i in range(30)]
    history = History()
    stop = threading.Event()
    counter = iter(range(1, 10**9))
    lock = threading.Lock()

    def writer(w: int) -> None:
        client = make_client(url, retries=0)
        rnd = random.Random(w)
        while not stop.is_set():
            key = rnd.choice(keys)
            delete = rnd.random() < 0.15
            with lock:
                value = None if delete else next(counter)
            h = history.invoke(f"w{w}", key, WRITE, value=value)
            try:
                if delete:
                    client.delete_item(TableName=name, Key={"pk": {"S": key}})
                else:
                    client.put_item(TableName=name, Item={"pk": {"S": key}, "v": {"N": str(value)}})
            except Exception as e:  # an error leaves the outcome unknown to the checker
                history.complete(h, "unknown", error=repr(e))
            else:
                history.complete(h, OK)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while len(history) < 60 and time.monotonic() < deadline:  # the load is running
            time.sleep(0.05)
        t0 = history.clock()
        arn = ddb.create_backup(TableName=name, BackupName="underload")["BackupDetails"]["BackupArn"]
        t1 = history.clock()
        while sum(1 for o in history.ops() if o.invoke > t1) < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
    ops = history.ops()
    assert sum(1 for o in ops if o.complete is not None and o.complete < t0) > 20, "no load before the backup"
    assert sum(1 for o in ops if o.invoke > t1) > 20, "no load after the backup"
    deadline = time.monotonic() + 60
    while ddb.describe_backup(BackupArn=arn)["BackupDescription"]["BackupDetails"]["BackupStatus"] != "AVAILABLE":
        assert time.monotonic() < deadline, "backup not AVAILABLE in 60 s"
        time.sleep(0.1)
    backup_id = arn.rsplit("/", 1)[-1]
    assert f"backups/{backup_id}/manifest.json" in store.keys(f"backups/{backup_id}/")
    target = f"r{uuid.uuid4().hex[:10]}"
    ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
    wait_active(ddb, target, timeout_s=120)
    restored = contents(ddb, target)
    assert set(restored) <= set(keys)
    # the restored table as one read of every key, somewhere within the CreateBackup call
    for key in keys:
        history.add(Op(client="backup", key=key, kind=READ, invoke=t0, complete=t1, outcome=OK,
                       observed=restored.get(key)))
    results = history.check()
    bad = {k: r.explanation or r.status for k, r in results.items() if r.linearizable is not True}
    assert not bad, f"the restored table is no state of the table during the backup: {bad}"


def log_records(settings_ns: str, bootstrap: str, table: str) -> list[tuple[int, str, int | None]]:
    """(timestamp ms, key, value or None for a delete) of every item change in the table's logs."""

    async def read() -> list[tuple[int, str, int | None]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            topics = [t for t in await consumer.topics() if t.startswith(f"{settings_ns}.t.{table}.")]
            tps = [TopicPartition(t, 0) for t in topics]
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                consumer.seek(tp, 0)
            out = []
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                for _tp, recs in (await consumer.getmany(timeout_ms=500)).items():
                    for r in recs:
                        assert r.value is not None
                        d = codec.decode_log_record(r.value)
                        if d["op"] in ("PUT", "DELETE"):
                            image = d["new_image"] or d["old_image"]
                            value = int(d["new_image"]["v"]["N"]) if d["new_image"] else None
                            out.append((int(d["timestamp_ms"]), image["pk"]["S"], value))
            return out
        finally:
            await consumer.stop()

    return asyncio.run(read())


def test_point_in_time_restore_holds_each_item_to_the_millisecond(system: tuple[Any, str, Store]) -> None:
    sys_, url, store = system
    ddb = make_client(url)
    name = new_table(ddb, pitr=True)
    table_id = ddb.describe_table(TableName=name)["Table"]["TableId"]
    rnd = random.Random(7)
    windows = []
    for i in range(60):
        key = f"k{rnd.randrange(4)}"
        t0 = int(time.time() * 1000)
        if rnd.random() < 0.2:
            ddb.delete_item(TableName=name, Key={"pk": {"S": key}})
        else:
            ddb.put_item(TableName=name, Item={"pk": {"S": key}, "v": {"N": str(i)}})
        windows.append((t0, int(time.time() * 1000)))
        time.sleep(0.04)
    time.sleep(1.5)  # past the settle time, and another recovery snapshot
    state = sys_.state()
    records = log_records(state["namespace"], state["bootstrap"], name)
    assert 40 < len(records) <= 60  # a delete of a missing item writes no record
    assert any(value is None for _, _, value in records)
    # every record's stamp lies within its request's window (one clock on this machine)
    assert all(any(a <= ts <= b for a, b in windows) for ts, _, _ in records)
    assert [k for k in store.keys(f"pitr/{table_id}/") if k.endswith("manifest.json")], "no recovery snapshot"

    def expected(until: int) -> dict[str, int]:
        out: dict[str, int] = {}
        for ts, key, value in sorted(records, key=lambda r: r[0]):
            if ts <= until:
                if value is None:
                    out.pop(key, None)
                else:
                    out[key] = value
        return out

    puts = sorted(ts for ts, _, value in records if value is not None)
    for ts in (puts[5], puts[len(puts) // 2], puts[-3]):
        # a put's record at ts: restoring to ts includes it, to ts - 1 ms does not
        assert expected(ts) != expected(ts - 1)
        for until in (ts, ts - 1):
            target = f"p{uuid.uuid4().hex[:10]}"
            when = datetime.datetime.fromtimestamp(until / 1000, datetime.UTC)
            ddb.restore_table_to_point_in_time(SourceTableName=name, TargetTableName=target, RestoreDateTime=when)
            wait_active(ddb, target, timeout_s=120)
            assert contents(ddb, target) == expected(until), f"restore to {until} ms"


def test_export_to_point_in_time_in_dynamodb_layout(system: tuple[Any, str, Store]) -> None:
    # ExportTableToPointInTime writes the items of the export time in DynamoDB's layout
    # (manifest-summary.json, manifest-files.json with checksums, gzipped {"Item": ...} lines);
    # DescribeExport and ListExports show it; bad requests get DynamoDB's errors.
    import gzip
    import hashlib
    import json

    from botocore.exceptions import ClientError

    _sys, url, store = system
    ddb = make_client(url)
    name = new_table(ddb, pitr=True)
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    first = {f"k{i}": i for i in range(30)}
    for k, v in first.items():
        ddb.put_item(TableName=name, Item={"pk": {"S": k}, "v": {"N": str(v)}, "bin": {"B": b"\x00\x01"},
                                           "tags": {"SS": ["a", "b"]}})
    time.sleep(0.05)
    at = datetime.datetime.now(datetime.UTC)
    time.sleep(0.05)
    for i in range(10):  # after the export time: not exported
        ddb.put_item(TableName=name, Item={"pk": {"S": f"late{i}"}, "v": {"N": "0"}})
    time.sleep(1.2)
    bucket = f"exports-{uuid.uuid4().hex[:8]}"
    make_bucket(store.endpoint or "", bucket)
    d = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=bucket, S3Prefix="team/x", ExportTime=at,
                                          ExportFormat="DYNAMODB_JSON")["ExportDescription"]
    assert d["ExportStatus"] == "IN_PROGRESS" and d["ExportType"] == "FULL_EXPORT"
    export_arn = d["ExportArn"]
    assert export_arn.startswith(arn + "/export/")
    deadline = time.monotonic() + 120
    while (d := ddb.describe_export(ExportArn=export_arn)["ExportDescription"])["ExportStatus"] == "IN_PROGRESS":
        assert time.monotonic() < deadline, "export not finished in 120 s"
        time.sleep(0.2)
    assert d["ExportStatus"] == "COMPLETED", d
    assert d["ItemCount"] == 30
    s3 = boto3.client("s3", endpoint_url=store.endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")

    def get(key: str) -> bytes:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    export_id = export_arn.rsplit("/", 1)[-1]
    root = f"team/x/AWSDynamoDB/{export_id}/"
    assert d["ExportManifest"] == root + "manifest-summary.json"
    get(root + "_started")
    summary = json.loads(get(root + "manifest-summary.json"))
    assert summary["exportArn"] == export_arn and summary["itemCount"] == 30
    assert summary["outputFormat"] == "DYNAMODB_JSON" and summary["tableArn"] == arn
    assert get(root + "manifest-summary.checksum").decode() == hashlib.md5(
        get(root + "manifest-summary.json")).hexdigest()
    exported = {}
    for line in get(summary["manifestFilesS3Key"]).splitlines():
        f = json.loads(line)
        data = get(f["dataFileS3Key"])
        assert f["etag"] == hashlib.md5(data).hexdigest()
        rows = [json.loads(x)["Item"] for x in gzip.decompress(data).splitlines() if x]
        assert len(rows) == f["itemCount"]
        exported.update({r["pk"]["S"]: r for r in rows})
    assert {k: int(r["v"]["N"]) for k, r in exported.items()} == first
    assert exported["k1"]["bin"] == {"B": "AAE="} and sorted(exported["k1"]["tags"]["SS"]) == ["a", "b"]
    listed = ddb.list_exports(TableArn=arn)["ExportSummaries"]
    assert [e["ExportArn"] for e in listed] == [export_arn] and listed[0]["ExportStatus"] == "COMPLETED"

    missing = export_arn.rsplit("/", 1)[0] + "/01700000000000-deadbeef"
    with pytest.raises(ClientError) as e:
        ddb.describe_export(ExportArn=missing)
    assert e.value.response["Error"]["Code"] == "ExportNotFoundException"
    plain = new_table(ddb)
    plain_arn = ddb.describe_table(TableName=plain)["Table"]["TableArn"]
    with pytest.raises(ClientError) as e:
        ddb.export_table_to_point_in_time(TableArn=plain_arn, S3Bucket=bucket)
    assert e.value.response["Error"]["Code"] == "PointInTimeRecoveryUnavailableException"
    with pytest.raises(ClientError) as e:
        ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=bucket,
                                          ExportTime=datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1))
    assert e.value.response["Error"]["Code"] == "InvalidExportTimeException"
    # a bucket that does not exist: the export is accepted, then FAILED with the reason
    d = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="no-such-bucket-here")["ExportDescription"]
    deadline = time.monotonic() + 60
    while (d := ddb.describe_export(ExportArn=d["ExportArn"])["ExportDescription"])["ExportStatus"] == "IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert d["ExportStatus"] == "FAILED" and "no-such-bucket-here" in d["FailureMessage"]


def test_incremental_export_holds_exactly_the_changes_of_its_window(system: tuple[Any, str, Store]) -> None:
    # INCREMENTAL_EXPORT over [from, to): one line per item changed by a write stamped in the
    # window -- Keys, NewImage (absent for a delete), OldImage (NEW_AND_OLD_IMAGES, absent for a
    # new item), Metadata.WriteTimestampMicros of its last change -- checked against the
    # partition logs (the recorded history); data files in the shared AWSDynamoDB/data/ folder;
    # DynamoDB's errors for a bad window.
    import gzip
    import json

    from botocore.exceptions import ClientError

    sys_, url, store = system
    ddb = make_client(url)
    name = new_table(ddb, pitr=True)
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    rnd = random.Random(3)

    def write(i: int) -> None:
        key = f"k{rnd.randrange(10)}"
        if rnd.random() < 0.25:
            ddb.delete_item(TableName=name, Key={"pk": {"S": key}})
        else:
            ddb.put_item(TableName=name, Item={"pk": {"S": key}, "v": {"N": str(i)}})

    for i in range(25):
        write(i)
    ddb.put_item(TableName=name, Item={"pk": {"S": "doomed"}, "v": {"N": "1"}})
    time.sleep(0.05)
    lo = int(time.time() * 1000)
    for i in range(25, 60):
        write(i)
        time.sleep(0.06)
    ddb.delete_item(TableName=name, Key={"pk": {"S": "doomed"}})  # a delete: Keys and OldImage only
    # an item created and deleted inside the window: no line
    ddb.put_item(TableName=name, Item={"pk": {"S": "brief"}, "v": {"N": "1"}})
    ddb.delete_item(TableName=name, Key={"pk": {"S": "brief"}})
    time.sleep(0.05)
    hi = int(time.time() * 1000)
    for i in range(60, 70):
        write(i)
    time.sleep(1.5)
    state = sys_.state()
    records = sorted(log_records(state["namespace"], state["bootstrap"], name))

    def at(until: int) -> dict[str, int]:
        out: dict[str, int] = {}
        for ts, key, value in records:
            if ts <= until:
                if value is None:
                    out.pop(key, None)
                else:
                    out[key] = value
        return out

    before, after = at(lo - 1), at(hi - 1)
    want = {}
    for key in {k for ts, k, _ in records if lo <= ts < hi}:
        if key in before or key in after:
            last = max(ts for ts, k, _ in records if k == key and lo <= ts < hi)
            want[key] = (last * 1000, before.get(key), after.get(key))
    assert len(want) >= 5 and any(v[2] is None for v in want.values()) and any(v[1] is None for v in want.values())
    bucket = f"exports-{uuid.uuid4().hex[:8]}"
    make_bucket(store.endpoint or "", bucket)
    s3 = boto3.client("s3", endpoint_url=store.endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")

    def get(key: str) -> bytes:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def when(ms: int) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)

    for view in ("NEW_AND_OLD_IMAGES", "NEW_IMAGE"):
        d = ddb.export_table_to_point_in_time(
            TableArn=arn, S3Bucket=bucket, S3Prefix="inc", ExportType="INCREMENTAL_EXPORT",
            IncrementalExportSpecification={"ExportFromTime": when(lo), "ExportToTime": when(hi),
                                            "ExportViewType": view})["ExportDescription"]
        assert d["ExportType"] == "INCREMENTAL_EXPORT"
        assert d["IncrementalExportSpecification"]["ExportViewType"] == view
        deadline = time.monotonic() + 120
        while (d := ddb.describe_export(ExportArn=d["ExportArn"])["ExportDescription"])["ExportStatus"] \
                == "IN_PROGRESS":
            assert time.monotonic() < deadline, "export not finished in 120 s"
            time.sleep(0.2)
        assert d["ExportStatus"] == "COMPLETED", d
        summary = json.loads(get(d["ExportManifest"]))
        assert summary["exportType"] == "INCREMENTAL_EXPORT" and summary["outputView"] == view
        got = {}
        for line in get(summary["manifestFilesS3Key"]).splitlines():
            f = json.loads(line)
            assert f["dataFileS3Key"].startswith("inc/AWSDynamoDB/data/")
            rows = [json.loads(x) for x in gzip.decompress(get(f["dataFileS3Key"])).splitlines() if x]
            assert len(rows) == f["itemCount"]
            for r in rows:
                key = r["Keys"]["pk"]["S"]
                assert r["Keys"] == {"pk": {"S": key}}
                new = int(r["NewImage"]["v"]["N"]) if "NewImage" in r else None
                old = int(r["OldImage"]["v"]["N"]) if "OldImage" in r else None
                got[key] = (int(r["Metadata"]["WriteTimestampMicros"]["N"]), old, new)
        expected = want if view == "NEW_AND_OLD_IMAGES" else {k: (t, None, n) for k, (t, _o, n) in want.items()}
        assert got == expected, view
        assert d["ItemCount"] == len(want)

    def refused(code: str, **kw: Any) -> None:
        with pytest.raises(ClientError) as e:
            ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=bucket, **kw)
        assert e.value.response["Error"]["Code"] == code, e.value.response

    inc = "INCREMENTAL_EXPORT"
    refused("InvalidExportTimeException", ExportType=inc,  # shorter than the shortest window
            IncrementalExportSpecification={"ExportFromTime": when(lo), "ExportToTime": when(lo + 1000)})
    refused("InvalidExportTimeException", ExportType=inc,  # from before recovery was on
            IncrementalExportSpecification={"ExportFromTime": when(lo - 3_600_000), "ExportToTime": when(hi)})
    refused("InvalidExportTimeException", ExportType=inc,  # to before from
            IncrementalExportSpecification={"ExportFromTime": when(hi), "ExportToTime": when(lo)})
    refused("ValidationException", ExportType=inc, ExportTime=when(hi),
            IncrementalExportSpecification={"ExportFromTime": when(lo)})
    refused("ValidationException", ExportType=inc)
    refused("ValidationException", IncrementalExportSpecification={"ExportFromTime": when(lo)})
    refused("ValidationException", ExportType=inc,
            IncrementalExportSpecification={"ExportFromTime": when(lo), "ExportViewType": "OLD_IMAGE"})


def test_restore_memory_stays_bounded(system: tuple[Any, str, Store]) -> None:
    # A restore folds each partition on disk and writes in small batches: the backup service's
    # peak resident memory grows by far less than the data it restores (60 MB of items here;
    # holding them, as dicts for the writes, would take several times that).
    import base64
    import sys

    sys_, url, _store = system
    # each 380 KB put takes 372 write units: past an on-demand partition's burst they are
    # throttled, and a client retries them, as any DynamoDB client does
    ddb = make_client(url, retries=10)
    name = new_table(ddb)
    n, size = 160, 380_000
    rnd = random.Random(5)
    for i in range(n):
        blob = base64.b64encode(rnd.randbytes(size * 3 // 4)).decode()
        ddb.put_item(TableName=name, Item={"pk": {"S": f"k{i}"}, "v": {"N": str(i)}, "blob": {"S": blob}})
    arn = ddb.create_backup(TableName=name, BackupName="big")["BackupDetails"]["BackupArn"]
    deadline = time.monotonic() + 180
    while ddb.describe_backup(BackupArn=arn)["BackupDescription"]["BackupDetails"]["BackupStatus"] != "AVAILABLE":
        assert time.monotonic() < deadline, "backup not AVAILABLE in 180 s"
        time.sleep(0.5)
    pids = [pid for proc, pid in (sys_.state() or {})["pids"].items() if proc.startswith("backup")]
    assert pids

    def peak_kb(pid: int) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError(f"no VmHWM for {pid}")

    def rss_kb(pid: int) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError(f"no VmRSS for {pid}")

    for pid in pids:  # the peak starts again from the current resident size
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    start = {pid: rss_kb(pid) for pid in pids}
    target = f"r{uuid.uuid4().hex[:10]}"
    ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
    wait_active(ddb, target, timeout_s=300)
    growth_mb = max(peak_kb(pid) - start[pid] for pid in pids) / 1024
    data_mb = n * size / 1e6
    assert ddb.describe_table(TableName=target)["Table"]["ItemCount"] >= 0
    got = {i["pk"]["S"]: int(i["v"]["N"]) for i in all_items(ddb.scan, TableName=target, ConsistentRead=True,
                                                              ProjectionExpression="pk, v")}
    assert got == {f"k{i}": i for i in range(n)}
    assert growth_mb < data_mb / 3, f"peak resident memory grew by {growth_mb:.1f} MB restoring {data_mb:.0f} MB"
    print(f"restore of {data_mb:.0f} MB: backup service peak RSS grew {growth_mb:.1f} MB", file=sys.stderr)


def test_import_table_from_s3_json_and_csv(system: tuple[Any, str, Store]) -> None:
    # ImportTable makes a new table from S3 objects: DynamoDB JSON (gzipped) with bad lines
    # counted in ErrorCount, and CSV (zstd, a header list) with typed key attributes; the table is
    # CREATING until loaded, then ACTIVE with exactly the good items.  DescribeImport and
    # ListImports show it; an existing table name, a bucket that does not exist: DynamoDB's
    # answers, and no table left behind.
    import gzip
    import json

    import zstandard
    from botocore.exceptions import ClientError

    _sys, url, store = system
    ddb = make_client(url)
    s3 = boto3.client("s3", endpoint_url=store.endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = f"imports-{uuid.uuid4().hex[:8]}"
    make_bucket(store.endpoint or "", bucket)
    good = [{"Item": {"pk": {"S": f"j{i}"}, "sk": {"N": str(i)}, "v": {"L": [{"S": "x"}, {"N": "1"}]}}}
            for i in range(25)]
    lines = [json.dumps(g) for g in good] + ["not json", json.dumps({"Item": {"pk": {"N": "1"}, "sk": {"N": "1"}}})]
    s3.put_object(Bucket=bucket, Key="json/part-1.json.gz", Body=gzip.compress("\n".join(lines).encode()))
    creation = {"TableName": f"imp{uuid.uuid4().hex[:8]}", "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                         {"AttributeName": "sk", "AttributeType": "N"}]}
    d = ddb.import_table(S3BucketSource={"S3Bucket": bucket, "S3KeyPrefix": "json/"}, InputFormat="DYNAMODB_JSON",
                         InputCompressionType="GZIP", TableCreationParameters=creation)["ImportTableDescription"]
    assert d["ImportStatus"] == "IN_PROGRESS"
    name = creation["TableName"]
    wait_active(ddb, name, timeout_s=120)
    d = ddb.describe_import(ImportArn=d["ImportArn"])["ImportTableDescription"]
    assert (d["ImportStatus"], d["ImportedItemCount"], d["ErrorCount"], d["ProcessedItemCount"]) == (
        "COMPLETED", 25, 2, 27)
    got = all_items(ddb.scan, TableName=name, ConsistentRead=True)
    assert sorted((i["pk"]["S"], i["sk"]["N"]) for i in got) == sorted((f"j{i}", str(i)) for i in range(25))
    assert "RestoreSummary" not in ddb.describe_table(TableName=name)["Table"]
    assert d["ImportArn"] in [s["ImportArn"] for s in ddb.list_imports(TableArn=d["TableArn"])["ImportSummaryList"]]

    rows = "\n".join(f"c{i}|{i}|hello {i}" for i in range(10)) + "\n"
    s3.put_object(Bucket=bucket, Key="csv/a.csv.zst", Body=zstandard.ZstdCompressor().compress(rows.encode()))
    csv_creation = dict(creation, TableName=f"imp{uuid.uuid4().hex[:8]}")
    ddb.import_table(S3BucketSource={"S3Bucket": bucket, "S3KeyPrefix": "csv/"}, InputFormat="CSV",
                     InputCompressionType="ZSTD", TableCreationParameters=csv_creation,
                     InputFormatOptions={"Csv": {"Delimiter": "|", "HeaderList": ["pk", "sk", "note"]}})
    wait_active(ddb, csv_creation["TableName"], timeout_s=120)
    got = all_items(ddb.scan, TableName=csv_creation["TableName"], ConsistentRead=True)
    assert sorted((i["pk"]["S"], i["sk"]["N"], i["note"]["S"]) for i in got) == sorted(
        (f"c{i}", str(i), f"hello {i}") for i in range(10))

    with pytest.raises(ClientError) as e:
        ddb.import_table(S3BucketSource={"S3Bucket": bucket}, InputFormat="DYNAMODB_JSON",
                         TableCreationParameters=creation)
    assert e.value.response["Error"]["Code"] == "ResourceInUseException"
    with pytest.raises(ClientError) as e:
        ddb.describe_import(ImportArn=d["ImportArn"].rsplit("/", 1)[0] + "/01700000000000-deadbeef")
    assert e.value.response["Error"]["Code"] == "ImportNotFoundException"
    lost = dict(creation, TableName=f"imp{uuid.uuid4().hex[:8]}")
    d = ddb.import_table(S3BucketSource={"S3Bucket": "no-such-bucket-here"}, InputFormat="DYNAMODB_JSON",
                         TableCreationParameters=lost)["ImportTableDescription"]
    deadline = time.monotonic() + 60
    while (d := ddb.describe_import(ImportArn=d["ImportArn"])["ImportTableDescription"])["ImportStatus"] == \
            "IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert d["ImportStatus"] == "FAILED" and "no-such-bucket-here" in d["FailureMessage"]
    deadline = time.monotonic() + 60
    while lost["TableName"] in ddb.list_tables()["TableNames"]:
        assert time.monotonic() < deadline, "the failed import's table was left behind"
        time.sleep(0.2)
