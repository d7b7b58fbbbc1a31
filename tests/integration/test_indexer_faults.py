"""The indexer killed (kill -9) under write load and restarted: at the end the index holds
exactly the table's items — no entry missing, none stale (an old index key left behind, or an
old image).  The indexer resumes from its committed offsets and repeats at most a batch, whose
writes are idempotent."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import make_client, start_system, wait_active
from tests.integration.faults import assert_index_matches_table

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    sysm, url = start_system(kafka_bootstrap, Path(tmp_path_factory.mktemp("indexer-faults")))
    try:
        yield sysm, url
    finally:
        sysm.down()


def test_indexer_killed_under_load_index_matches_table(system: Any) -> None:
    sysm, url = system
    ddb = make_client(url)
    table = "indexer_faults"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "grp", "AttributeType": "S"}],
                     GlobalSecondaryIndexes=[{"IndexName": "byGrp",
                                              "KeySchema": [{"AttributeName": "grp", "KeyType": "HASH"}],
                                              "Projection": {"ProjectionType": "ALL"}}])
    wait_active(ddb, table)
    stop = threading.Event()
    written = [0]

    def writer(seed: int) -> None:
        c = make_client(url)
        rnd = random.Random(seed)
        while not stop.is_set():
            k = f"k{rnd.randrange(60)}"
            try:
                if rnd.random() < 0.15:
                    c.delete_item(TableName=table, Key={"pk": {"S": k}})
                elif rnd.random() < 0.2:  # an item without the index key (sparse)
                    c.put_item(TableName=table, Item={"pk": {"S": k}, "v": {"N": str(rnd.randrange(10**6))}})
                else:
                    c.put_item(TableName=table, Item={"pk": {"S": k}, "grp": {"S": f"g{rnd.randrange(5)}"},
                                                      "v": {"N": str(rnd.randrange(10**6))}})
                written[0] += 1
            except Exception:
                time.sleep(0.05)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    for name in ("indexer", "indexer-2"):  # the active one and its standby
        sysm.kill_service(name)
    time.sleep(2.0)  # writes go on while no indexer runs
    for name in ("indexer", "indexer-2"):
        sysm.start_service(name)
    time.sleep(3.0)
    stop.set()
    for t in threads:
        t.join(30)
    assert written[0] > 30  # a real load (the machine may be slow under CI)

    assert_index_matches_table(ddb, table, "byGrp", "grp")
