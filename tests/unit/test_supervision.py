"""Pure rules of supervision and election: restart backoff, zone assignment, who stays active."""

from __future__ import annotations

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from dynamolog.launcher import zone_of
from dynamolog.singleton import _keep_owner_assignor, pick_owner
from dynamolog.supervisor import BACKOFF_S_MAX, BACKOFF_S_MIN, backoff_s


def test_restart_backoff_doubles_from_the_minimum_up_to_the_maximum() -> None:
    # a process that keeps crashing must not be restarted in a tight loop, nor given up on
    waits = [backoff_s(n) for n in range(1, 12)]
    assert waits[0] == BACKOFF_S_MIN and waits[1] == 2 * BACKOFF_S_MIN
    assert waits == sorted(waits) and waits[-1] == BACKOFF_S_MAX


def test_brokers_and_storage_nodes_get_zones_round_robin() -> None:
    # `dynamolog up --brokers 3 --storage-nodes 3`: one of each in a, b and c
    assert [zone_of(i) for i in range(4)] == ["a", "b", "c", "a"]


def test_the_current_active_keeps_the_partition() -> None:
    # a standby that joins (or rejoins after a restart) must not depose a healthy active, even
    # when its member id sorts first
    assert pick_owner({"a-member": b"", "z-member": b"1700000000000"}) == "z-member"
    # nobody active yet: the lowest member id
    assert pick_owner({"b": b"", "a": b""}) == "a"
    # two claims (an active cut off, then back): the newer one, elected since, wins
    assert pick_owner({"old": b"1700000000000", "new": b"1700000005000"}) == "new"


def test_the_elected_member_gets_the_partition_even_before_the_leader_sees_the_topic() -> None:
    # A group leader whose metadata does not list the election topic yet (created a moment ago)
    # must still give its one partition to the elected member: an owner given nothing would
    # leave the role without an active process until the group happened to rebalance.
    assignor = _keep_owner_assignor(lambda: b"")
    members = {m: ConsumerProtocolMemberMetadata(0, ["dyn.election.admin"], b"") for m in ("m-2", "m-1")}
    out = assignor.assign(ClusterMetadata(), members)
    assert out["m-1"].assignment == [("dyn.election.admin", [0])]
    assert out["m-2"].assignment == []
