"""Transactions under contention at a partition leader, without Kafka (docs/transactions.md,
decision 0022): the sequencer's evaluation of transaction steps is driven directly, group by
group, on a real RocksDB replica.

- a TransactGetItems read of a held item waits for the decision and is served in the decision's
  group, with the committed image; a prepare of its items waits behind it;
- a read that waited long enough answers the conflict, naming the held item only;
- a one-partition transaction is applied in one step: TXN_COMMIT records, no lock;
- a read across partitions holds its items until it is checked; the check names what changed.
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import pytest

from dynamolog.catalog import PartitionInfo
from dynamolog.codec import decode_log_record
from dynamolog.config import Settings
from dynamolog.keys import encode_item_key
from services.storage.leader import LeaderSequencer, _Group, _Pending
from services.storage.replica import Replica

WAIT_MS = 200
#: a transaction id as routers make them (32 hex characters: the replica's pending keys need it)
T1 = "1" * 32


def key(name: str) -> bytes:
    return encode_item_key({"S": name})


def b64(k: bytes) -> str:
    return base64.b64encode(k).decode()


def put(name: str, v: int) -> dict[str, Any]:
    keyattrs = {"pk": {"S": name}}
    return {"kind": "put", "item": {**keyattrs, "v": {"N": str(v)}}, "keyattrs": keyattrs}


@pytest.fixture
async def leader(tmp_path: Path) -> Any:
    part = PartitionInfo(partition_id="p-0", table_name="t", table_id="t-id", hash_start=0, hash_end=2**64 - 1,
                         log_topic="x.t.t.p-0", replicas=("n1",), leader="n1", leader_epoch=1, state="ACTIVE")
    seq = LeaderSequencer(Settings(txn_read_wait_ms=WAIT_MS), Replica(tmp_path / "r"), part, "n1")
    seq._task = asyncio.ensure_future(asyncio.sleep(3600))  # a sequencer "running": requeued requests wait
    yield seq
    seq._task.cancel()


def step(seq: LeaderSequencer, *reqs: dict[str, Any]) -> tuple[_Group, list[_Pending]]:
    pend = [_Pending(r, key(r["keyattrs"]["pk"]["S"]) if r["kind"] == "put" else b"") for r in reqs]
    return seq._evaluate(pend), pend


def answers(group: _Group) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    return [(p.req, result) for p, result, _ in group.answers]


def ops(group: _Group) -> list[tuple[str, str | None]]:
    out = []
    for _, raw, _ in group.records:
        rec = decode_log_record(raw)
        out.append((rec["op"], rec["txn_action"]))
    return out


def prepare(txn: str, *items: tuple[str, int], **extra: Any) -> dict[str, Any]:
    return {"kind": "txn_prepare", "txn": txn, "deadline": 2**62,
            "items": [{"key": b64(key(n)), "req": put(n, v)} for n, v in items], **extra}


def read(*names: str, wait_ms: int = WAIT_MS, hold: bool = False) -> dict[str, Any]:
    return {"kind": "txn_read", "keys": [b64(key(n)) for n in names], "wait_ms": wait_ms, "hold": hold}


def decide(txn: str, commit: bool = True) -> dict[str, Any]:
    return {"kind": "txn_decide", "txn": txn, "commit": commit}


async def test_a_read_waits_for_the_decision_and_a_prepare_waits_behind_it(leader: LeaderSequencer) -> None:
    g, _ = step(leader, prepare("t1", ("a", 1), ("b", 2)))
    assert answers(g)[0][1]["ok"] and ops(g) == [("PREPARE", "PUT")] * 2
    g, (r,) = step(leader, read("a", "b", "c"))
    assert g.answers == [] and not r.future.done()  # waiting, not cancelled
    g, _ = step(leader, prepare("t2", ("c", 3)))
    assert g.answers == [] and g.records == []  # parked behind the read: c is not locked yet
    g, _ = step(leader, decide("t1"))
    # one group: the decision's records, the read (after them: it sees t1), then t2's prepare
    assert ops(g) == [("TXN_COMMIT", "PUT")] * 2 + [("PREPARE", "PUT")]
    got = answers(g)
    assert [req["kind"] for req, _ in got] == ["txn_decide", "txn_read", "txn_prepare"]
    images = got[1][1]["items"]
    assert [i["v"]["N"] if i else None for i in images] == ["1", "2", None]
    assert got[1][1]["conflicts"] == [] and got[2][1]["ok"]


async def test_a_read_that_waited_long_enough_names_the_held_item(leader: LeaderSequencer) -> None:
    step(leader, prepare("t1", ("b", 1)))
    g, (r,) = step(leader, read("a", "b", "c", wait_ms=20))
    assert g.answers == []
    await asyncio.sleep(0.05)
    again = leader._queue.get_nowait()  # handed back to the sequencer
    assert again is r and again.req["wait_ms"] == 0
    g = leader._evaluate([again])
    assert answers(g)[0][1] == {"items": [None, None, None], "conflicts": [1], "hold": None}


async def test_a_lock_past_its_deadline_is_not_waited_for(leader: LeaderSequencer) -> None:
    step(leader, dict(prepare("t1", ("a", 1)), deadline=1))  # its coordinator is presumed gone
    g, _ = step(leader, read("a"))
    assert answers(g)[0][1]["conflicts"] == [0]


async def test_a_parked_prepare_goes_ahead_after_a_while(leader: LeaderSequencer) -> None:
    step(leader, prepare("t1", ("a", 1)))
    step(leader, read("a", "b", wait_ms=3 * WAIT_MS))  # waits for t1 longer than a prepare waits behind it
    g, (p2,) = step(leader, prepare("t2", ("b", 2)))
    assert g.answers == []
    await asyncio.sleep(WAIT_MS / 1000 / 2)
    assert leader._queue.empty()  # still parked
    await asyncio.sleep(WAIT_MS / 1000 / 2 + 0.03)  # txn_read_wait_ms in all
    again = leader._queue.get_nowait()
    assert again is p2 and again.req["nopark"]
    g = leader._evaluate([again])
    assert answers(g)[0][1]["ok"] and ops(g) == [("PREPARE", "PUT")]


async def test_one_partition_transactions_commit_in_one_step(leader: LeaderSequencer) -> None:
    g, _ = step(leader, prepare("t1", ("a", 1), ("b", 2), one_phase=True))
    assert answers(g)[0][1]["committed"] and ops(g) == [("PREPARE", "PUT")] * 2 + [("TXN_COMMIT", "PUT")] * 2
    assert leader._locks == {} and leader._held == {}  # nothing held: the group commits both
    g, _ = step(leader, read("a", "b"))
    assert [i["v"]["N"] for i in answers(g)[0][1]["items"]] == ["1", "2"]
    # a failed condition: nothing written, the reason on its item
    bad = prepare("t2", ("a", 5), ("c", 6), one_phase=True)
    bad["items"][1]["req"]["cond"] = "attribute_exists(pk)"
    g, _ = step(leader, bad)
    res = answers(g)[0][1]
    assert res is not None and not res["ok"] and g.records == []
    assert res["reasons"][0] is None and res["reasons"][1]["Code"] == "ConditionalCheckFailed"


def commit_group(seq: LeaderSequencer, group: _Group) -> None:
    """Apply the group to the replica and answer it, as its commit does."""
    seq.replica.apply_raw((m for _, _, muts in group.records for m in muts), seq.replica.next_offset + len(group.records),
                          len(group.records))
    for p, result, err in group.answers:
        if err is not None:
            p.future.set_exception(err)
        else:
            p.future.set_result(result or {})


async def test_a_one_phase_token_is_kept_by_the_partition(leader: LeaderSequencer) -> None:
    g, _ = step(leader, prepare("t1", ("a", 1), one_phase=True, token="tok", digest="d1"))
    rec = decode_log_record(g.records[1][1])  # the first TXN_COMMIT (after the PREPARE)
    assert rec["request_id"] == "token+purge:d1:tok"  # the first token of a window purges older ones
    # the same request again before the first is applied: in progress
    g2, _ = step(leader, prepare("t2", ("a", 1), one_phase=True, token="tok", digest="d1"))
    assert answers(g2)[0][1] == {"ok": False, "committed": False, "repeat": True} and g2.records == []
    commit_group(leader, g)
    await asyncio.sleep(0)
    assert leader.replica.token("tok", int(time.time() * 1000))["t"] == "t1"
    g, _ = step(leader, prepare("t3", ("a", 1), one_phase=True, token="tok", digest="d1"))
    assert answers(g)[0][1] == {"ok": True, "committed": True, "repeat": True} and g.records == []
    g, _ = step(leader, prepare("t4", ("a", 9), one_phase=True, token="tok", digest="d2"))
    assert answers(g)[0][1] == {"ok": False, "mismatch": True}
    # two phases, another request with the token: refused too
    g, _ = step(leader, prepare("t5", ("b", 9), token="tok", digest="d3"))
    assert answers(g)[0][1] == {"ok": False, "mismatch": True} and leader._locks == {}
    # another token in the same window: no purge
    g, _ = step(leader, prepare("t6", ("c", 1), one_phase=True, token="tok2", digest="d4"))
    assert decode_log_record(g.records[1][1])["request_id"] == "token:d4:tok2"


@pytest.mark.parametrize("landed,commit", [(4, True), (3, False), (2, False)])
async def test_a_one_step_group_that_reached_the_log_in_part_is_finished_alike(
        leader: LeaderSequencer, landed: int, commit: bool) -> None:
    # a one-step transaction of three items is 3 PREPARE then 3 TXN_COMMIT records; a leader
    # that finds a prefix of them in the log (a failed append) finishes it at once: committed if
    # a TXN_COMMIT reached the log (landed 4: the first item's), else aborted
    g, _ = step(leader, prepare(T1, ("a", 1), ("b", 2), ("c", 3), one_phase=True, token="tok", digest="d"))
    muts = [m for _, _, ms in g.records[:landed] for m in ms]
    leader.replica.apply_raw(muts, leader.replica.next_offset + landed, landed)
    leader._overlay.clear()
    leader._load_locks()
    assert set(leader._held) == {T1} and leader._deadlines == {}  # not the reaper's
    leader.ready.set()
    for _ in range(3):
        await asyncio.sleep(0)
    decide_req = leader._queue.get_nowait()
    assert decide_req.req == {"kind": "txn_decide", "txn": T1, "commit": commit}
    g = leader._evaluate([decide_req])
    done = "TXN_COMMIT" if commit else "TXN_ABORT"
    assert [op for op, _ in ops(g)] == [done] * (3 if landed == 3 else 6 - landed if commit else landed)
    commit_group(leader, g)
    await asyncio.sleep(0)
    items = [leader.replica.get(key(n)) for n in ("a", "b", "c")]
    assert items == ([put(n, v)["item"] for n, v in (("a", 1), ("b", 2), ("c", 3))] if commit else [None] * 3)
    assert leader._held == {} and list(leader.replica.pending()) == []
    now = int(time.time() * 1000)
    assert (leader.replica.token("tok", now) is not None) == commit  # with the first TXN_COMMIT, or not at all


def answered(group: _Group) -> None:
    """Answer the group's requests, as its commit does."""
    for p, result, _ in group.answers:
        p.future.set_result(result or {})


async def test_a_read_across_partitions_holds_its_items_until_checked(leader: LeaderSequencer) -> None:
    g, _ = step(leader, read("a", "b", hold=True))
    hold = answers(g)[0][1]["hold"]
    assert hold
    answered(g)
    g, (p2,) = step(leader, prepare("t1", ("a", 1)))
    assert g.answers == []  # parked behind the held read
    assert leader.check_read(hold) == {"changed": []}
    assert leader._queue.get_nowait() is p2  # handed back to the sequencer
    # checked again (or after a change of leader): unknown
    assert leader.check_read(hold) == {"changed": None}


async def test_the_check_names_items_changed_or_held_since_the_read(leader: LeaderSequencer) -> None:
    g, _ = step(leader, read("a", "b", "c", hold=True))
    hold = answers(g)[0][1]["hold"]
    answered(g)
    step(leader, put("b", 7))  # a single write (in the overlay: not committed yet, but it counts)
    await asyncio.sleep(WAIT_MS / 2000 + 0.03)  # the hold expires: prepares no longer wait
    g, _ = step(leader, prepare("t1", ("c", 1)))
    assert answers(g)[0][1]["ok"]
    assert leader.check_read(hold) == {"changed": [1, 2]}
