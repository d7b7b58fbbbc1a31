"""The linearizability checker (dynamolog.testing.checker) and the HTTP-free parts of dynamolog.testing.workload."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynamolog.testing.checker import (
    CAS,
    FAIL,
    OK,
    READ,
    REJECTED,
    UNKNOWN,
    WRITE,
    History,
    Op,
    _search,
    check_history,
    check_key,
    problems,
)
from dynamolog.testing.workload import (
    Classification,
    acknowledged_final_check,
    classify,
    error_type,
    item_value,
    ok_rate,
    put_request,
)

_ids = iter(range(10**9))


def w(v, t0, t1, outcome=OK, client="a", key="k"):
    return Op(client=client, key=key, kind=WRITE, value=v, invoke=t0, complete=t1, outcome=outcome, id=next(_ids))


def cas(exp, v, t0, t1, outcome=OK, client="a", key="k"):
    return Op(client=client, key=key, kind=CAS, expected=exp, value=v, invoke=t0, complete=t1, outcome=outcome,
              id=next(_ids))


def r(v, t0, t1, outcome=OK, client="b", key="k"):
    return Op(client=client, key=key, kind=READ, observed=v, invoke=t0, complete=t1, outcome=outcome, id=next(_ids))


def lin(ops, initial=None, **kw):
    return check_key(ops, initial, **kw).linearizable


# --------------------------------------------------------------------------------------------
# accepted
# --------------------------------------------------------------------------------------------


def test_empty_and_sequential():
    assert lin([]) is True
    assert lin([r(None, 0, 1)]) is True
    assert lin([r("x0", 0, 1)], initial="x0") is True
    ops = [w("A", 0, 1), r("A", 2, 3), cas("A", "B", 4, 5), r("B", 6, 7), w(None, 8, 9), r(None, 10, 11),
           cas(None, "C", 12, 13), r("C", 14, 15)]
    res = check_key(ops)
    assert res.linearizable is True and res.explanation == "" and res.status == "linearizable"


@pytest.mark.parametrize("seen", ["A", "B"])
def test_concurrent_writes_then_read_of_either(seen):
    assert lin([w("A", 0, 10, client="a"), w("B", 1, 9, client="c"), r(seen, 11, 12)]) is True


@pytest.mark.parametrize("seen", [None, "A"])
def test_read_concurrent_with_write_sees_old_or_new(seen):
    assert lin([w("A", 0, 10), r(seen, 1, 2)]) is True


def test_read_order_across_concurrent_write_is_monotonic():
    # both reads overlap the write, but once a read saw the new value a later one may not see the old
    assert lin([w("A", 0, 10), r("A", 1, 2), r(None, 3, 4, client="c")]) is False
    assert lin([w("A", 0, 10), r(None, 1, 2), r("A", 3, 4, client="c")]) is True


@pytest.mark.parametrize("seen", [None, "A"])
def test_unknown_write_that_did_or_did_not_happen(seen):
    assert lin([w("A", 0, None, outcome=UNKNOWN), r(seen, 5, 6)]) is True
    assert lin([w("A", 0, 1, outcome=UNKNOWN), r(seen, 5, 6)]) is True  # recorded give-up time is ignored


def test_unknown_write_may_take_effect_after_later_ops():
    ops = [w("A", 0, 1, outcome=UNKNOWN), w("B", 2, 3), r("B", 4, 5), r("A", 6, 7)]
    assert lin(ops) is True
    # ... but only once: A cannot come back after being overwritten again
    assert lin([*ops, w("C", 8, 9), r("C", 10, 11), r("A", 12, 13)]) is False


def test_unknown_read_and_failed_write_are_ignored():
    assert lin([w("A", 0, 1), r("Z", 2, None, outcome=UNKNOWN), w("B", 2, 3, outcome=FAIL), r("A", 4, 5)]) is True


def test_failed_cas_consistent():
    assert lin([w("A", 0, 1), cas(None, "X", 2, 3, outcome=FAIL), r("A", 4, 5)]) is True
    assert lin([cas("A", "X", 0, 1, outcome=FAIL)]) is True  # initial None != "A"
    # concurrent with the write that made it fail: it must be placed after that write
    assert lin([w("A", 0, 10), cas(None, "X", 1, 2, outcome=FAIL, client="c"), r("A", 11, 12)]) is True
    # a failed cas explained only by an unknown write that did happen
    assert lin([w("A", 0, 1), w("Q", 1.5, None, outcome=UNKNOWN, client="c"), cas("A", "X", 2, 3, outcome=FAIL)]) is True


def test_rejected_cas_says_nothing():
    assert lin([w("A", 0, 1), cas("A", "X", 2, 3, outcome=REJECTED), r("A", 4, 5)]) is True


def test_concurrent_creates_one_wins():
    ops = [cas(None, "x", 0, 5, client="a"), cas(None, "y", 1, 4, outcome=FAIL, client="c"), r("x", 6, 7)]
    assert lin(ops) is True


# --------------------------------------------------------------------------------------------
# rejected
# --------------------------------------------------------------------------------------------


def test_stale_read_after_completed_write():
    bad = r("A", 4, 5, client="c")
    res = check_key([w("A", 0, 1), w("B", 2, 3), bad])
    assert res.linearizable is False and res.status == "not linearizable"
    assert res.failing_op == bad
    assert res.prefix_end == 5
    assert f"#{bad.id}" in res.explanation and "read() -> 'A'" in res.explanation


def test_lost_acknowledged_write():
    assert lin([w("A", 0, 1), r("x0", 2, 3)], initial="x0") is False
    assert lin([w("A", 0, 1), r(None, 2, 3)]) is False


def test_read_of_value_never_written():
    res = check_key([w("A", 0, 1), r("Z", 2, 3)])
    assert res.linearizable is False and "no operation wrote" in res.explanation
    assert lin([r("Z", 0, 1)]) is False


def test_cas_succeeded_though_expected_not_current():
    assert lin([w("A", 0, 1), w("B", 2, 3), cas("A", "C", 4, 5)]) is False
    assert lin([cas("A", "C", 0, 1)], initial="x0") is False


def test_failed_cas_whose_expected_was_current():
    assert lin([w("A", 0, 1), cas("A", "C", 2, 3, outcome=FAIL)]) is False
    assert lin([cas(None, "C", 0, 1, outcome=FAIL)]) is False  # attribute_not_exists on an absent item


def test_both_creates_succeed():
    ops = [cas(None, "x", 0, 1, client="a"), cas(None, "y", 0.5, 2, client="c")]
    assert lin(ops) is False
    assert lin([cas(None, "x", 0, 1), cas(None, "y", 2, 3, client="c")]) is False


def test_value_reappears_after_overwrite():
    res = check_key([w("A", 0, 1), w("B", 2, 3), r("B", 4, 5), r("A", 6, 7, client="c")])
    assert res.linearizable is False
    assert res.failing_op is not None and res.failing_op.observed == "A" and res.prefix_end == 7


def test_smallest_failing_prefix_ignores_later_ops():
    ops = [w("A", 0, 1), r(None, 2, 3)] + [w(f"v{i}", 10 + 2 * i, 11 + 2 * i) for i in range(20)]
    res = check_key(ops)
    assert res.linearizable is False and res.prefix_end == 3 and res.ops_in_prefix == 2


def test_many_unknown_writes_of_unread_values_stay_cheap():
    # unknown writes whose values nobody reads are interchangeable: the search tries one, not 2**200 subsets
    ops = [w(f"u{i}", 0, None, outcome=UNKNOWN, client=f"c{i}") for i in range(200)]
    ops += [w("A", 0, 1), r("A", 2, 3), w("B", 4, 5), r("A", 6, 7)]
    res = check_key(ops, max_steps=200_000)
    assert res.linearizable is False and res.failing_op == ops[-1]
    assert check_key(ops[:-1], max_steps=200_000).linearizable is True
    # ... while a failed cas can still be explained by one of them having happened
    ops2 = [w(f"u{i}", 0, None, outcome=UNKNOWN, client=f"c{i}") for i in range(200)]
    ops2 += [w("A", 0, 1), cas("A", "C", 2, 3, outcome=FAIL), r("A", 4, 5)]
    assert check_key(ops2, max_steps=200_000).linearizable is False  # the read of A pins it
    assert check_key(ops2[:-1], max_steps=200_000).linearizable is True


def test_step_budget_gives_unknown_not_false():
    # 14 concurrent writes, each read once, in any order: ~14 * 2**14 configurations before the contradiction
    ops = [w(f"u{i}", 0, 100, client=f"c{i}") for i in range(14)]
    ops += [r(f"u{i}", 0, 100, client=f"r{i}") for i in range(14)]
    ops += [w("A", 101, 102), w("B", 103, 104), r("A", 105, 106)]
    res = check_key(ops, max_steps=1000)
    assert res.linearizable is None and res.status == "unknown (too hard)" and "gave up" in res.explanation
    assert "unknown" in str(res)
    assert check_key(ops[:-1], max_steps=1000).linearizable is True
    small = ops[:4] + ops[14:18] + ops[-3:]
    assert check_key(small).linearizable is False


def test_check_history_per_key():
    ops = [w("A", 0, 1, key="k1"), r("A", 2, 3, key="k1"), w("A", 0, 1, key="k2"), r("x", 2, 3, key="k2")]
    res = check_history(ops, {"k2": "x"})
    assert res["k1"].linearizable is True and res["k2"].linearizable is False
    assert len(problems(res)) == 1 and "k2" in problems(res)[0]
    with pytest.raises(ValueError):
        check_key(ops)


def test_op_validation():
    with pytest.raises(ValueError):
        Op(client="a", key="k", kind="delete", invoke=0, complete=1, outcome=OK)
    with pytest.raises(ValueError):
        Op(client="a", key="k", kind=READ, invoke=0, complete=1, outcome="maybe")
    with pytest.raises(ValueError):
        Op(client="a", key="k", kind=READ, invoke=0, complete=None, outcome=OK)
    with pytest.raises(ValueError):
        Op(client="a", key="k", kind=READ, invoke=2, complete=1, outcome=OK)


# --------------------------------------------------------------------------------------------
# the recorder
# --------------------------------------------------------------------------------------------


def test_history_threads_json_round_trip(tmp_path):
    h = History(initial={"k0": "init"})

    def worker(n):
        for i in range(50):
            key = f"k{i % 3}"
            hw = h.invoke(f"t{n}", key, WRITE, value=f"t{n}-{i}")
            h.complete(hw, OK)
            hr = h.invoke(f"t{n}", key, READ)
            h.complete(hr, OK, observed=f"t{n}-{i}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pending = h.invoke("t9", "k1", CAS, value="p", expected="q")
    assert len(h) == 101 and h.pending == 1
    ops = h.ops()
    assert [o.id for o in ops] == list(range(101))
    assert ops[-1].id == pending and ops[-1].outcome == UNKNOWN and ops[-1].complete is None
    assert all(r.linearizable for r in h.check().values())

    h2 = History.from_json(h.to_json())
    assert h2.ops() == ops and h2.initial == {"k0": "init"}
    h.save(tmp_path / "h.json")
    assert History.load(tmp_path / "h.json").ops() == ops
    assert json.loads(h.to_json())["format"] == "dynamolog-history"
    with pytest.raises(ValueError):
        History.from_json('{"ops": []}')


def test_history_concurrent_threads_are_checked():
    h = History()
    lock = threading.Lock()
    register: list[str | None] = [None]

    def worker(n):
        for i in range(100):
            if i % 2:
                hd = h.invoke(f"t{n}", "k", WRITE, value=f"t{n}-{i}")
                with lock:
                    register[0] = f"t{n}-{i}"
                h.complete(hd, OK)
            else:
                hd = h.invoke(f"t{n}", "k", READ)
                with lock:
                    seen = register[0]
                h.complete(hd, OK, observed=seen)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    res = h.check()["k"]
    assert res.linearizable is True, str(res)


def test_history_asyncio_tasks():
    async def main():
        h = History()
        state: dict[str, str | None] = {"k": None}

        async def client(n):
            for i in range(20):
                hd = h.invoke(f"c{n}", "k", CAS, value=f"c{n}-{i}", expected=state["k"])
                exp = state["k"]
                await asyncio.sleep(0)
                if state["k"] == exp:
                    state["k"] = f"c{n}-{i}"
                    h.complete(hd, OK)
                else:
                    h.complete(hd, FAIL, error="ConditionalCheckFailedException")

        await asyncio.gather(*(client(n) for n in range(5)))
        return h

    h = asyncio.run(main())
    assert h.pending == 0 and h.check()["k"].linearizable is True


# --------------------------------------------------------------------------------------------
# property: sequential histories simulated on a register
# --------------------------------------------------------------------------------------------

_VALUES = ["a", "b", "c", None]

_step_st = st.tuples(
    st.sampled_from([WRITE, CAS, READ]),
    st.sampled_from(_VALUES),  # value written
    st.sampled_from(_VALUES),  # cas expected
    st.sampled_from(["applied", "lost", "known"]),  # unknown-outcome fate of writes and cas
)


def _simulate(steps, initial, unknowns):
    """A sequential history of ``steps`` on a simulated register."""
    state = initial
    ops = []
    t = 0.0
    for i, (kind, value, expected, fate) in enumerate(steps):
        t0, t1 = t, t + 0.5
        t += 1.0
        base = {"client": f"c{i % 3}", "key": "k", "kind": kind, "invoke": t0, "complete": t1, "id": i}
        if kind == READ:
            ops.append(Op(**base, outcome=OK, observed=state))
            continue
        if unknowns and fate != "known":
            if fate == "applied" and (kind == WRITE or state == expected):
                state = value
            ops.append(Op(**base, outcome=UNKNOWN, value=value, expected=expected if kind == CAS else None))
            continue
        if kind == WRITE:
            state = value
            ops.append(Op(**base, outcome=OK, value=value))
        elif state == expected:
            state = value
            ops.append(Op(**base, outcome=OK, value=value, expected=expected))
        else:
            ops.append(Op(**base, outcome=FAIL, value=value, expected=expected))
    return ops


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(_step_st, min_size=1, max_size=40), initial=st.sampled_from(_VALUES),
       unknowns=st.booleans(), which=st.integers(min_value=0, max_value=10**6))
def test_property_sequential_histories(steps, initial, unknowns, which):
    ops = _simulate(steps, initial, unknowns)
    assert check_key(ops, initial).linearizable is True

    reads = [i for i, o in enumerate(ops) if o.kind == READ]
    if not reads:
        return
    i = reads[which % len(reads)]
    mutated = list(ops)
    mutated[i] = Op(**{**ops[i].__dict__, "observed": "never-written"})
    res = check_key(mutated, initial)
    assert res.linearizable is False and res.failing_op == mutated[i]
    # the search itself (not only the never-written shortcut) rejects it
    assert _search([o for o in mutated if o.required or o.optional], initial, 10**6).outcome is False

    if not unknowns:
        # without unknown ops the order is forced: any other value in that read is wrong too
        other = next(v for v in _VALUES if v != ops[i].observed)
        mutated[i] = Op(**{**ops[i].__dict__, "observed": other})
        assert check_key(mutated, initial).linearizable is False


# --------------------------------------------------------------------------------------------
# workload: classification and the final check (no HTTP)
# --------------------------------------------------------------------------------------------

_PFX = "com.amazonaws.dynamodb.v20120810#"


def test_ok_rate_counts_acknowledged_operations_completed_in_the_window():
    # the fault tests' availability floors rest on this count: only ok, only completions inside
    ops = [
        w("a", 0.0, 1.5),  # completes inside [1, 3)
        r("a", 1.0, 2.0),  # inside
        w("b", 2.0, 3.0),  # completes at the window's end: outside
        cas("a", "c", 1.0, 2.5, outcome=FAIL),  # not acknowledged
        w("d", 1.0, 2.0, outcome=UNKNOWN),
        Op(client="x", key="k", kind=WRITE, value="e", invoke=1.0, complete=None, outcome=UNKNOWN, id=next(_ids)),
    ]
    assert ok_rate(ops, 1.0, 3.0) == pytest.approx(1.0)
    assert ok_rate(ops, 0.0, 4.0) == pytest.approx(0.75)
    assert ok_rate(ops, 3.0, 3.0) == 0.0


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b"{}", Classification(OK)),
        (200, b'{"Item":{"pk":{"S":"k"},"v":{"S":"x"}}}', Classification(OK)),
        (200, b"<html>", Classification(UNKNOWN, "BadResponseBody", unexpected=True)),
        (400, json.dumps({"__type": _PFX + "ConditionalCheckFailedException"}).encode(),
         Classification(FAIL, "ConditionalCheckFailedException")),
        (400, {"__type": _PFX + "TransactionConflictException"}, Classification(REJECTED, "TransactionConflictException")),
        (400, {"__type": _PFX + "ThrottlingException"}, Classification(REJECTED, "ThrottlingException")),
        (400, {"__type": _PFX + "ProvisionedThroughputExceededException"},
         Classification(REJECTED, "ProvisionedThroughputExceededException")),
        (400, {"__type": "com.amazon.coral.validate#ValidationException"},
         Classification(REJECTED, "ValidationException", unexpected=True)),
        (400, {"__type": _PFX + "ResourceNotFoundException"},
         Classification(UNKNOWN, "ResourceNotFoundException", unexpected=True)),
        (400, b"", Classification(UNKNOWN, "HTTP400", unexpected=True)),
        (500, {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError"},
         Classification(UNKNOWN, "InternalServerError")),
        (503, b"", Classification(UNKNOWN, "HTTP503")),
        (502, b"not json", Classification(UNKNOWN, "HTTP502")),
    ],
)
def test_classify(status, body, expected):
    assert classify(status, body) == expected


def test_request_and_item_helpers():
    assert error_type(b'{"__type":"a.b#X"}') == "X" and error_type(b"junk") == "" and error_type(None) == ""
    assert item_value({}) == (True, None)
    assert item_value({"Item": {"pk": {"S": "k"}, "v": {"S": "x"}}}) == (True, "x")
    assert item_value({"Item": {"pk": {"S": "k"}}}) == (False, None)
    assert "ConditionExpression" not in put_request("t", "k", "v")
    assert put_request("t", "k", "v", None, conditional=True)["ConditionExpression"] == "attribute_not_exists(pk)"
    body = put_request("t", "k", "v", "old", conditional=True)
    assert body["ConditionExpression"] == "v = :expected"
    assert body["ExpressionAttributeValues"] == {":expected": {"S": "old"}}


def test_acknowledged_final_check():
    h = History(initial={"k2": "init"})
    for op in [w("A", 0, 1, key="k1"), w("B", 2, None, outcome=UNKNOWN, key="k1"), w("F", 2, 3, outcome=FAIL, key="k1"),
               cas("init", "C", 0, 1, outcome=FAIL, key="k3")]:
        h.add(op)
    assert acknowledged_final_check(h, {"k1": "A", "k2": "init", "k3": None}) == []
    assert acknowledged_final_check(h, {"k1": "B"}) == []  # the unknown write happened
    lost = acknowledged_final_check(h, {"k1": None})
    assert len(lost) == 1 and "does not fit" in lost[0]
    failed = acknowledged_final_check(h, {"k1": "F"})
    assert len(failed) == 1 and "no op that may have taken effect" in failed[0]
    assert len(acknowledged_final_check(h, {"k2": None})) == 1  # initial value vanished
    assert len(acknowledged_final_check(h.ops(), {"k2": "init"})) == 1  # no initial given: "init" unknown
    assert acknowledged_final_check(h.ops(), {"k2": "init"}, {"k2": "init"}) == []
    h.add(r("Z", 10, 11, key="k4"))
    h.add(w("Z", 0, 1, key="k4"))
    h.add(w("Y", 2, 3, key="k4"))
    before = acknowledged_final_check(h, {"k4": "Y"})
    assert len(before) == 1 and "even before the final read" in before[0]


# --------------------------------------------------------------------------------------------
# differential: the search against brute force on small concurrent histories
# --------------------------------------------------------------------------------------------


def _brute_force(ops, initial):
    """Tries every subset of the optional ops and every order: linearizable or not."""
    import itertools

    rel = [o for o in ops if o.required or o.optional]
    req = [o for o in rel if o.required]
    opt = [o for o in rel if o.optional]
    for k in range(len(opt) + 1):
        for chosen in itertools.combinations(opt, k):
            for order in itertools.permutations(req + list(chosen)):
                if any(order[j].effective_complete < order[i].invoke
                       for i in range(len(order)) for j in range(i + 1, len(order))):
                    continue
                state, good = initial, True
                for o in order:
                    if o.kind == READ:
                        good = state == o.observed
                    elif o.kind == WRITE:
                        state = o.value
                    elif o.outcome == FAIL:
                        good = state != o.expected
                    elif state == o.expected:
                        state = o.value
                    else:
                        good = False
                    if not good:
                        break
                if good:
                    return True
    return False


_small_vals = st.sampled_from(["a", "b", None])
_op_st = st.tuples(
    st.sampled_from([WRITE, CAS, READ]),
    _small_vals, _small_vals, _small_vals,
    st.integers(0, 8), st.integers(0, 4),
    st.sampled_from([OK, OK, OK, FAIL, UNKNOWN]),
)


@settings(max_examples=250, deadline=None)
@given(spec=st.lists(_op_st, min_size=1, max_size=6), initial=_small_vals)
def test_search_agrees_with_brute_force(spec, initial):
    ops = []
    for i, (kind, value, expected, observed, t0, dt, outcome) in enumerate(spec):
        if kind != CAS and outcome == FAIL:
            outcome = OK
        ops.append(Op(client=f"c{i}", key="k", kind=kind, invoke=float(t0), complete=float(t0 + dt),
                      outcome=outcome, value=None if kind == READ else value,
                      expected=expected if kind == CAS else None, observed=observed if kind == READ else None, id=i))
    res = check_key(ops, initial)
    assert res.linearizable is _brute_force(ops, initial), str(res)
