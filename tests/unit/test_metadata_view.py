"""The metadata views keep read-your-writes: a record read back from its compacted topic never
replaces a newer value the same process has already published and applied."""

from __future__ import annotations

from dynamolog.config import Settings
from dynamolog.metadata import TopicView


def _view() -> TopicView[str]:
    return TopicView(Settings(), "t", lambda b: b.decode())


def test_echo_of_an_older_own_write_does_not_undo_a_newer_one() -> None:
    # The router tags a table twice (offsets 5 and 6); the echo of offset 5 arriving from the
    # topic afterwards must not bring the old value back.
    v = _view()
    v.put_local("T", "old", 5)
    v.put_local("T", "new", 6)
    v._apply(b"T", b"old", 5)
    assert v.items["T"] == "new"
    v._apply(b"T", b"new", 6)
    assert v.items["T"] == "new"


def test_newer_records_from_the_topic_apply() -> None:
    # Another router's later write (a higher offset) replaces ours; a tombstone removes the key.
    v = _view()
    v.put_local("T", "ours", 5)
    v._apply(b"T", b"theirs", 9)
    assert v.items["T"] == "theirs"
    v._apply(b"T", None, 10)
    assert "T" not in v.items


def test_out_of_order_local_publishes_keep_the_latest() -> None:
    # Two concurrent publishes can resume in either order; the higher offset wins.
    v = _view()
    v.put_local("T", "second", 8)
    v.put_local("T", "first", 7)
    assert v.items["T"] == "second"
