"""Prove the Kafka features the design relies on, with aiokafka against the broker we run.

Transactions (commit, abort, read_committed, fencing), the last stable offset, and the offsets
that send futures report inside a committed transaction. See docs/kafka-compat.md.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced

from dynamolog.config import Settings
from dynamolog.kafka import IDLE_FETCH_WAIT_MS
from dynamolog.kafka.admin import KafkaAdmin
from dynamolog.metadata import TopicView

pytestmark = pytest.mark.integration


@pytest.fixture
async def topic(kafka_bootstrap: str):
    name = f"test.features.{uuid.uuid4().hex[:10]}"
    async with KafkaAdmin(kafka_bootstrap) as admin:
        await admin.create_topic(name)
        await admin.wait_for_topics([name])
        yield name
        await admin.delete_topics([name])


def _producer(bootstrap: str, txn_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=txn_id, acks="all", enable_idempotence=True
    )


def _consumer(bootstrap: str, isolation: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level=isolation,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


async def _read_all(bootstrap: str, tp: TopicPartition, isolation: str, *, idle_s: float = 1.5):
    """Every record readable from the start of ``tp`` under ``isolation``, as (offset, value)."""
    consumer = _consumer(bootstrap, isolation)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        out: list[tuple[int, bytes]] = []
        loop = asyncio.get_running_loop()
        quiet_until = loop.time() + idle_s
        while loop.time() < quiet_until:
            batch = await consumer.getmany(tp, timeout_ms=200)
            for rec in batch.get(tp, []):
                out.append((rec.offset, rec.value))
                quiet_until = loop.time() + idle_s
        return out
    finally:
        await consumer.stop()


async def test_commit_is_visible_to_read_committed(kafka_bootstrap: str, topic: str) -> None:
    tp = TopicPartition(topic, 0)
    producer = _producer(kafka_bootstrap, f"txn-{topic}")
    await producer.start()
    try:
        async with producer.transaction():
            futs = [await producer.send(topic, key=b"k%d" % i, value=b"v%d" % i) for i in range(3)]
            metas = await asyncio.gather(*futs)
    finally:
        await producer.stop()

    # Send futures resolve (inside the transaction) with the records' final log offsets.
    assert [m.offset for m in metas] == [0, 1, 2]
    records = await _read_all(kafka_bootstrap, tp, "read_committed")
    assert records == [(0, b"v0"), (1, b"v1"), (2, b"v2")]
    # The commit marker takes offset 3, so the log end is 4.
    consumer = _consumer(kafka_bootstrap, "read_committed")
    await consumer.start()
    try:
        assert (await consumer.end_offsets([tp]))[tp] == 4
    finally:
        await consumer.stop()


async def test_abort_is_invisible_to_read_committed(kafka_bootstrap: str, topic: str) -> None:
    tp = TopicPartition(topic, 0)
    producer = _producer(kafka_bootstrap, f"txn-{topic}")
    await producer.start()
    try:
        await producer.begin_transaction()
        aborted = [await producer.send_and_wait(topic, value=b"aborted-%d" % i) for i in range(2)]
        await producer.abort_transaction()
        async with producer.transaction():
            kept = await producer.send_and_wait(topic, value=b"kept")
    finally:
        await producer.stop()

    # aborted records at 0, 1; abort marker at 2; committed record at 3; commit marker at 4.
    assert [m.offset for m in aborted] == [0, 1]
    assert kept.offset == 3
    assert await _read_all(kafka_bootstrap, tp, "read_committed") == [(3, b"kept")]
    assert await _read_all(kafka_bootstrap, tp, "read_uncommitted") == [
        (0, b"aborted-0"),
        (1, b"aborted-1"),
        (3, b"kept"),
    ]


# Fencing, as observed with aiokafka 0.14 against Kafka 4.4: once a second producer with the same
# transactional_id has run InitProducerId (its start()), the epoch is bumped and the old
# instance's open transaction is aborted. The old instance's next request that carries its epoch
# (Produce, AddPartitionsToTxn or EndTxn, all old versions) is answered with INVALID_PRODUCER_EPOCH
# (error 47: Kafka maps PRODUCER_FENCED to it for these request versions) and aiokafka raises
# exactly aiokafka.errors.ProducerFenced. That is terminal: the producer's transaction manager is
# then in FATAL_ERROR and later calls fail with AssertionError (begin/commit) or IllegalOperation
# (send), not ProducerFenced again. Callers must close a producer on the first ProducerFenced.


async def _fenced_pair(bootstrap: str, topic: str) -> tuple[AIOKafkaProducer, AIOKafkaProducer]:
    txn_id = f"txn-{topic}"
    old, new = _producer(bootstrap, txn_id), _producer(bootstrap, txn_id)
    await old.start()
    await old.begin_transaction()
    await old.send_and_wait(topic, value=b"old-open")
    await new.start()  # InitProducerId: bumps the epoch, aborts old's open transaction
    return old, new


async def _check_only_new_committed(bootstrap: str, new: AIOKafkaProducer, topic: str) -> None:
    async with new.transaction():
        await new.send_and_wait(topic, value=b"new")
    tp = TopicPartition(topic, 0)
    assert [v for _, v in await _read_all(bootstrap, tp, "read_committed")] == [b"new"]
    # The old instance's record was written and then aborted by the fencing InitProducerId.
    assert b"old-open" in [v for _, v in await _read_all(bootstrap, tp, "read_uncommitted")]


async def test_fenced_producer_fails_on_commit(kafka_bootstrap: str, topic: str) -> None:
    old, new = await _fenced_pair(kafka_bootstrap, topic)
    try:
        with pytest.raises(ProducerFenced):
            await old.commit_transaction()
        # FATAL_ERROR afterwards: not ProducerFenced any more (see the comment above).
        with pytest.raises(AssertionError, match="FATAL_ERROR"):
            await old.begin_transaction()
        await _check_only_new_committed(kafka_bootstrap, new, topic)
    finally:
        await old.stop()
        await new.stop()


async def test_fenced_producer_fails_on_next_send(kafka_bootstrap: str, topic: str) -> None:
    old, new = await _fenced_pair(kafka_bootstrap, topic)
    try:
        fut = await old.send(topic, value=b"old-after-fence")
        with pytest.raises(ProducerFenced):
            await fut
        await _check_only_new_committed(kafka_bootstrap, new, topic)
    finally:
        await old.stop()
        await new.stop()


async def test_last_stable_offset_under_read_committed(kafka_bootstrap: str, topic: str) -> None:
    tp = TopicPartition(topic, 0)
    producer = _producer(kafka_bootstrap, f"txn-{topic}")
    consumer = _consumer(kafka_bootstrap, "read_committed")
    await producer.start()
    await consumer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, value=b"a")  # offset 0, commit marker 1
        await producer.begin_transaction()
        pending = [await producer.send_and_wait(topic, value=b"p%d" % i) for i in range(3)]
        assert [m.offset for m in pending] == [2, 3, 4]

        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)

        async def fetch_until(pred) -> list[bytes]:
            seen: list[bytes] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while loop.time() < deadline:
                batch = await consumer.getmany(tp, timeout_ms=200)
                seen += [r.value for r in batch.get(tp, [])]
                if pred(seen):
                    return seen
            raise AssertionError(f"condition not met; lso={consumer.last_stable_offset(tp)} seen={seen}")

        # With a transaction open, the LSO stops at its first record (2) while the high
        # watermark is past it (5); read_committed delivers nothing beyond the LSO.
        seen = await fetch_until(lambda s: consumer.last_stable_offset(tp) is not None and s == [b"a"])
        assert consumer.last_stable_offset(tp) == 2
        assert consumer.highwater(tp) == 5
        assert (await consumer.end_offsets([tp]))[tp] == 2  # ListOffsets(read_committed) = LSO
        await asyncio.sleep(0.5)
        assert (await consumer.getmany(tp, timeout_ms=300)).get(tp, []) == []

        await producer.commit_transaction()
        seen = await fetch_until(lambda s: len(s) == 3)
        assert seen == [b"p0", b"p1", b"p2"]
        # After the commit marker (offset 5) the LSO and the high watermark meet at 6.
        await fetch_until(lambda s: consumer.last_stable_offset(tp) == 6)
        assert consumer.highwater(tp) == 6
        assert (await consumer.end_offsets([tp]))[tp] == 6
    finally:
        await consumer.stop()
        await producer.stop()


async def test_an_offsets_request_waits_behind_the_connections_pending_fetch(kafka_bootstrap: str,
                                                                              topic: str) -> None:
    """A broker answers one connection's requests in order: once a consumer has a fetch waiting
    on an idle partition, its ListOffsets waits until that fetch's max wait is over. The metadata
    views and the transactions' log therefore ask for their offsets before they are assigned
    (docs/decisions/0055-idle-fetches.md)."""
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=3000, auto_offset_reset="earliest")
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert (await consumer.end_offsets([tp]))[tp] == 0
        unassigned_s = loop.time() - t0
        consumer.assign([tp])
        assert await consumer.position(tp) == 0
        await asyncio.sleep(0.3)  # its first fetch is now waiting at the broker
        t0 = loop.time()
        assert (await consumer.end_offsets([tp]))[tp] == 0
        behind_fetch_s = loop.time() - t0
    finally:
        await consumer.stop()
    assert unassigned_s < 1.0
    assert behind_fetch_s > 1.5


async def test_a_view_of_an_empty_topic_starts_at_once_and_follows_at_once(kafka_bootstrap: str,
                                                                           topic: str) -> None:
    """A metadata view waits up to IDLE_FETCH_WAIT_MS per empty fetch, yet it starts on an empty
    topic without that wait, and a record written afterwards, in a transaction as the auto-admin
    writes them or without one, reaches it in well under that wait."""
    assert IDLE_FETCH_WAIT_MS >= 2000  # else this test would not tell a wait from none
    view: TopicView[bytes] = TopicView(Settings(bootstrap=kafka_bootstrap), topic, lambda b: b)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await view.start()
    started_s = loop.time() - t0
    txn = _producer(kafka_bootstrap, f"txn-{topic}")
    plain = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await txn.start()
    await plain.start()
    lags: list[float] = []
    try:
        for i in range(3):
            await asyncio.sleep(0.5)  # the view's fetch is waiting at the broker again
            t0 = loop.time()
            if i % 2 == 0:
                async with txn.transaction():
                    await txn.send(topic, key=b"k%d" % i, value=b"v%d" % i)
            else:
                await plain.send_and_wait(topic, key=b"k%d" % i, value=b"v%d" % i)
            assert await view.wait_until(lambda i=i: f"k{i}" in view.items, 10)
            lags.append(loop.time() - t0)
    finally:
        await txn.stop()
        await plain.stop()
        await view.close()
    assert started_s < 1.5
    assert view.items == {"k0": b"v0", "k1": b"v1", "k2": b"v2"}
    assert max(lags) < 1.0, lags
