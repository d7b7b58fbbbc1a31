"""Leader and follower roles of a partition replica, on a real Kafka broker (in-process).

docs/architecture.md invariants 2 and 3: a follower that folds the log ends identical to the leader, and a
new leader fences the old one with its term's FENCE record (dynamolog/fencing.py), so nothing the
old one appends after it counts or is acknowledged.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dynamolog import errors
from dynamolog.catalog import PartitionInfo
from dynamolog.config import Settings
from dynamolog.kafka.admin import KafkaAdmin
from dynamolog.kafka.local import LocalKafka
from dynamolog.keys import encode_item_key
from services.storage.follower import LogFollower
from services.storage.leader import LeaderSequencer
from services.storage.replica import Replica
from tests.conftest import ports_free

pytestmark = pytest.mark.integration


def _put(i: int, value: str) -> tuple[dict[str, Any], bytes]:
    key = {"pk": {"S": f"k{i}"}}
    req = {"kind": "put", "item": {**key, "v": {"S": value}}, "keyattrs": key}
    return req, encode_item_key(key["pk"])


async def _partition(kafka_bootstrap: str) -> tuple[Settings, PartitionInfo]:
    settings = Settings(bootstrap=kafka_bootstrap, namespace=f"lf{uuid.uuid4().hex[:8]}")
    pid = f"{uuid.uuid4().hex[:12]}-0"
    topic = settings.log_topic("roles", pid)
    async with KafkaAdmin(kafka_bootstrap) as admin:
        await admin.create_topic(topic)
        await admin.wait_for_topics([topic])
    part = PartitionInfo(partition_id=pid, table_name="roles", table_id="roles-id", hash_start=0,
                         hash_end=2**64 - 1, log_topic=topic, replicas=("n1",), leader="n1", leader_epoch=1,
                         state="ACTIVE")
    return settings, part


async def test_follower_converges_to_the_leader(kafka_bootstrap: str, tmp_path: Path) -> None:
    # Writes (including overwrites and a delete) go through the leader; a follower started from
    # nothing folds the log and ends with exactly the leader's items.
    settings, part = await _partition(kafka_bootstrap)
    leader = LeaderSequencer(settings, Replica(tmp_path / "leader"), part, "n1")
    await leader.start()
    follower_replica = Replica(tmp_path / "follower")
    follower = LogFollower(settings, follower_replica, part.log_topic)
    follower.start()
    try:
        await asyncio.gather(*(leader.submit(*_put(i, f"v{i}")) for i in range(50)))
        await asyncio.gather(*(leader.submit(*_put(i, f"w{i}")) for i in range(0, 50, 3)))
        key = {"pk": {"S": "k7"}}
        await leader.submit({"kind": "delete", "keyattrs": key}, encode_item_key(key["pk"]))
        for _ in range(200):
            if follower_replica.next_offset >= leader.replica.next_offset:
                break
            await asyncio.sleep(0.05)
        assert follower_replica.digest() == leader.replica.digest()
        assert follower_replica.digest()[1] == 49
        assert follower_replica.get(encode_item_key({"S": "k3"}))["v"] == {"S": "w3"}
    finally:
        await follower.close()
        await leader.close()


async def test_a_leader_lingers_for_larger_groups_only_where_appends_are_replicated(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    # A busy partition waits up to DYNAMOLOG_GROUP_LINGER_MS for a larger group where an append is
    # replicated (it costs the brokers more than the wait); on a one-broker cluster it does not
    # wait (DYNAMOLOG_GROUP_LINGER_ONE_BROKER_MS, 0).  Both clusters are real: the session's, and
    # one broker started here.
    async with KafkaAdmin(kafka_bootstrap) as admin:
        session_brokers = admin.brokers
    settings, part = await _partition(kafka_bootstrap)
    leader = LeaderSequencer(settings, Replica(tmp_path / "session"), part, "n1")
    await leader.start()
    try:
        await asyncio.gather(*(leader.submit(*_put(i, "v")) for i in range(20)))
        assert leader.status()["linger_ms"] == (0.0 if session_brokers == 1 else 6.0)
    finally:
        await leader.close()
    port = next(p for p in range(19392, 19592, 10) if ports_free(p))
    single = LocalKafka(tmp_path / "kafka", brokers=1, base_port=port)
    await asyncio.to_thread(single.start, 120)
    try:
        bootstrap = str(single.bootstrap_servers)
        settings, part = await _partition(bootstrap)
        leader = LeaderSequencer(settings, Replica(tmp_path / "single"), part, "n1")
        await leader.start()
        try:
            await asyncio.gather(*(leader.submit(*_put(i, "v")) for i in range(20)))
            assert leader.status()["linger_ms"] == 0.0
        finally:
            await leader.close()
        lingering = replace(settings, group_linger_one_broker_ms=2.0)
        leader = LeaderSequencer(lingering, Replica(tmp_path / "single2"), replace(part, leader_epoch=2), "n1")
        await leader.start()
        try:
            assert leader.status()["linger_ms"] == 2.0
        finally:
            await leader.close()
    finally:
        await asyncio.to_thread(single.stop)


async def test_new_leader_fences_the_old_one(kafka_bootstrap: str, tmp_path: Path) -> None:
    # A second leader for the same partition opens its term with a FENCE record: the first
    # leader's next write lands after it, is not acknowledged and counts for no reader of the log
    # (the first leader then reads the log, finds the newer term and steps down); the new leader
    # has every write the old one acknowledged.
    settings, part = await _partition(kafka_bootstrap)
    old = LeaderSequencer(settings, Replica(tmp_path / "old"), part, "n1")
    await old.start()
    new: LeaderSequencer | None = None
    try:
        acked = await asyncio.gather(*(old.submit(*_put(i, "old")) for i in range(10)))
        assert len(acked) == 10
        new = LeaderSequencer(settings, Replica(tmp_path / "new"), replace(part, leader="n2", leader_epoch=2), "n2")
        await new.start()
        assert new.replica.digest()[1] == 10, "the new leader misses acknowledged writes"

        with pytest.raises(errors.ApiError) as e:
            await old.submit(*_put(99, "zombie"))
        assert e.value.type_name in ("NotLeader", "InternalServerError")
        with pytest.raises(errors.ApiError) as e2:
            await old.submit(*_put(98, "zombie"))
        assert e2.value.type_name == "NotLeader"

        await new.submit(*_put(100, "new"))
        # a fresh replica rebuilt from the log sees the new leader's write and no zombie write
        rebuilt = Replica(tmp_path / "rebuilt")
        reader = LogFollower(settings, rebuilt, part.log_topic)
        try:
            await reader.catch_up()
        finally:
            await reader.close()
        assert reader.stale_records >= 1, "the zombie write was expected in the log, after the new FENCE"
        assert new.stale_skipped == reader.stale_records, "the new leader stepped over the zombie write"
        assert rebuilt.get(encode_item_key({"S": "k99"})) is None
        assert rebuilt.get(encode_item_key({"S": "k98"})) is None
        assert rebuilt.get(encode_item_key({"S": "k100"})) == {"pk": {"S": "k100"}, "v": {"S": "new"}}
        assert rebuilt.digest() == new.replica.digest()
    finally:
        await old.close()
        if new is not None:
            await new.close()
