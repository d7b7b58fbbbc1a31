"""The term rule (dynamolog/fencing.py): which records of a partition log count."""

from __future__ import annotations

from typing import Any

from dynamolog.fencing import ORIGIN, Term, TermGate


def rec(op: str, epoch: int, fence: int = -1) -> dict[str, Any]:
    return {"op": op, "leader_epoch": epoch, "fence_offset": fence}


def run(gate: TermGate, log: list[dict[str, Any]]) -> list[int]:
    """The offsets of the records that count."""
    return [offset for offset, r in enumerate(log) if gate.admit(r, offset)]


def test_a_deposed_leaders_records_after_a_newer_fence_do_not_count() -> None:
    log = [
        rec("FENCE", 1),        # 0: leader A opens term (1, 0)
        rec("PUT", 1, 0),       # 1: A's write
        rec("FENCE", 2),        # 2: leader B opens term (2, 2)
        rec("PUT", 1, 0),       # 3: A, deposed and unaware: never acknowledged, must not count
        rec("PUT", 2, 2),       # 4: B's write
        rec("FENCE", 1),        # 5: A's recovery tries a new term of its old epoch: older than B's
        rec("PUT", 1, 5),       # 6: and writes in it
        rec("PUT", 2, 2),       # 7: B again
    ]
    gate = TermGate()
    assert run(gate, log) == [0, 1, 2, 4, 7]
    assert gate.term == Term(2, 2) and gate.stale == 3


def test_a_leaders_new_term_voids_its_own_late_records() -> None:
    # the same leader's append failed with an unknown outcome; it opened a new term, and a
    # record of the old term landed only after that: it was evaluated before the re-read
    log = [rec("FENCE", 3), rec("PUT", 3, 0), rec("FENCE", 3), rec("PUT", 3, 0), rec("PUT", 3, 2)]
    assert run(TermGate(), log) == [0, 1, 2, 4]


def test_records_written_under_kafka_transactions_count_until_the_first_fence() -> None:
    log = [rec("PUT", 1), rec("PUT", 2), rec("FENCE", 2), rec("PUT", 2), rec("PUT", 2, 2)]
    assert run(TermGate(ORIGIN), log) == [0, 1, 2, 4]


def test_a_reader_starting_mid_log_adopts_the_first_term_and_then_follows_the_rule() -> None:
    log = [rec("PUT", 4, 10), rec("FENCE", 5), rec("PUT", 4, 10), rec("PUT", 5, 1)]
    gate = TermGate(None)
    assert run(gate, log) == [0, 1, 3]


def test_a_term_survives_its_encoding() -> None:
    t = Term(12, 3456)
    assert Term.decode(t.encode()) == t
    assert Term.decode("") is None and Term.decode("x") is None and Term.decode(None) is None
