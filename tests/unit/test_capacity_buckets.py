"""Token-bucket arithmetic of a partition's capacity (services/storage/capacity.py): refill,
burst up to 300 s, the per-partition hard caps, shares over partitions, the multiplier, and the
on-demand ceiling.  A fake clock (plain floats) drives every case."""

from __future__ import annotations

from dataclasses import replace

from dynamolog.catalog import AttributeDefinition, GlobalIndex, KeySchemaElement, TableDefinition
from services.storage.capacity import (
    BURST_S,
    PartitionCapacity,
    Rates,
    TokenBucket,
    partition_rates,
)


def _table(mode: str = "PROVISIONED", rcu: int = 100, wcu: int = 100, parts: int = 1) -> TableDefinition:
    return TableDefinition(
        table_name="t", table_id="id", key_schema=(KeySchemaElement("pk", "HASH"),),
        attribute_definitions=(AttributeDefinition("pk", "S"),), billing_mode=mode,
        read_capacity_units=rcu if mode == "PROVISIONED" else 0,
        write_capacity_units=wcu if mode == "PROVISIONED" else 0, status="ACTIVE", created_at_ms=0,
        partition_ids=tuple(f"p{i}" for i in range(parts)))


def _drain(limit_admits: object, charge: object, now: float, units: float = 1.0) -> int:
    """Admit-and-charge requests of ``units`` at ``now`` until one is refused; returns how many passed."""
    n = 0
    while limit_admits(now):  # type: ignore[operator]
        charge(units, now)  # type: ignore[operator]
        n += 1
        assert n < 10**7
    return n


def test_bucket_refills_continuously_and_keeps_at_most_its_depth() -> None:
    b = TokenBucket(100.0, BURST_S, now=0.0)
    assert b.balance == 100.0  # one second's worth at the start: nothing saved yet
    b.take(100.0)
    assert b.refill(0.5) == 50.0  # half a second refills half the rate
    assert b.refill(1000.0) == 100.0 * BURST_S  # never more than 300 s of capacity
    b.take(100.0 * BURST_S + 30)
    assert b.refill(1000.0) == -30.0  # a request may cost more than was left: a debt
    assert b.refill(1000.5) == 20.0


def test_a_write_bucket_admits_its_rate_then_refuses() -> None:
    cap = PartitionCapacity(partition_rates(_table(wcu=100)), now=0.0)
    assert _drain(cap.write.admits, cap.charge_write, 0.0) == 100
    assert not cap.write.admits(0.0)
    # one second later exactly one second of capacity came back
    assert _drain(cap.write.admits, cap.charge_write, 1.0) == 100
    # over ten seconds at the limit: 100 units a second pass, no more
    passed = sum(_drain(cap.write.admits, cap.charge_write, 1.0 + t / 10) for t in range(1, 101))
    assert 995 <= passed <= 1005


def test_burst_saves_unused_capacity_and_is_spent_first() -> None:
    cap = PartitionCapacity(partition_rates(_table(wcu=100)), now=0.0)
    # 60 idle seconds save 60 s of capacity (6,000 units besides the first second's 100); they
    # are spent before throttling starts, at most 1,000 units a second (the partition's hard cap)
    passed = [_drain(cap.write.admits, cap.charge_write, 60.0 + k) for k in range(20)]
    assert passed[0] == 1000 and passed[5] == 1000 and passed[-1] == 100
    assert sum(passed) == 6100 + 19 * 100
    # 1,000 idle seconds save only 300 s
    assert cap.write.bucket.refill(2000.0) == 100 * BURST_S


def test_hard_cap_holds_even_with_burst_saved() -> None:
    # 10,000 WCU on one partition: the partition still takes 1,000 write units a second at most
    cap = PartitionCapacity(partition_rates(_table(rcu=50_000, wcu=10_000)), now=0.0)
    assert cap.write.bucket.rate == 1000.0 and cap.read.bucket.rate == 3000.0
    small = PartitionCapacity(partition_rates(_table(wcu=10)), now=0.0)
    _drain(small.write.admits, small.charge_write, 1000.0)  # burst of 3,000 units saved...
    small2 = PartitionCapacity(partition_rates(_table(wcu=900)), now=0.0)
    # ...a 900 WCU partition with 300 s saved (270,000 units) passes 1,000 units in one second
    assert _drain(small2.write.admits, small2.charge_write, 1000.0) == 1000
    assert _drain(small2.write.admits, small2.charge_write, 1000.5) == 500


def test_capacity_is_divided_over_partitions_and_follows_their_number() -> None:
    r = partition_rates(_table(rcu=400, wcu=400, parts=4))
    assert (r.read, r.write, r.on_demand) == (100.0, 100.0, False)
    cap = PartitionCapacity(r, now=0.0)
    cap.update(partition_rates(_table(rcu=400, wcu=400, parts=2)), now=0.0)  # after a split of the map
    assert cap.write.bucket.rate == 200.0


def test_multiplier_scales_the_share_up_to_the_hard_cap() -> None:
    cap = PartitionCapacity(partition_rates(_table(wcu=400, parts=4)), now=0.0)
    cap.set_multiplier(2.5, now=0.0)
    assert cap.write.bucket.rate == 250.0
    cap.set_multiplier(50.0, now=0.0)
    assert cap.write.bucket.rate == 1000.0


def test_read_and_write_have_their_own_multiplier() -> None:
    # adaptive capacity raises a partition hot on writes without handing it more reads
    cap = PartitionCapacity(partition_rates(_table(rcu=400, wcu=400, parts=4)), now=0.0)
    cap.set_multiplier(3.0, now=0.0, kind="write")
    assert (cap.read.bucket.rate, cap.write.bucket.rate) == (100.0, 300.0)
    assert cap.status(0.0)["multipliers"] == {"read": 1.0, "write": 3.0}
    cap.set_multiplier(1.5, now=0.0, kind="read")
    assert (cap.read.bucket.rate, cap.write.bucket.rate) == (150.0, 300.0)


def test_on_demand_ceiling_starts_at_4000_12000_doubles_the_peak_and_obeys_the_maximum() -> None:
    t = _table("PAY_PER_REQUEST", parts=8)
    r = partition_rates(t)
    assert (r.read, r.write, r.on_demand) == (1500.0, 500.0, True)
    cap = PartitionCapacity(r, now=0.0)
    assert cap.write.bucket.depth == 500.0  # no burst on demand: one second
    # a peak of 500 units in a second raises the ceiling to twice that (hard cap 1,000)
    _drain(cap.write.admits, cap.charge_write, 0.0)
    assert cap.write.bucket.rate == 1000.0
    capped = replace(t, max_write_request_units=80, max_read_request_units=800)
    r = partition_rates(capped)
    assert (r.write, r.read, r.capped) == (10.0, 100.0, True)
    cap = PartitionCapacity(r, now=0.0)
    _drain(cap.write.admits, cap.charge_write, 0.0)
    assert cap.write.bucket.rate == 10.0  # the maximum is not doubled past


def test_global_index_share_blocks_base_writes_when_used_up() -> None:
    t = replace(_table(wcu=100, parts=2), global_indexes=(GlobalIndex(
        index_name="g", index_id="id#g", hash_key="x", range_key=None, projection_type="ALL",
        non_key_attributes=(), status="ACTIVE", partition_ids=("i0", "i1"), read_capacity_units=5,
        write_capacity_units=10),))
    cap = PartitionCapacity(partition_rates(t), now=0.0)
    cap.set_indexes({"g": partition_rates(t, t.global_indexes[0])}, now=0.0)
    limit, rates = cap.indexes["g"]
    assert rates.write == 5.0  # 10 WCU over the table's two partitions
    assert cap.blocked_index(0.0) is None
    limit.charge(5.0, 0.0)
    assert cap.blocked_index(0.0) == "g"
    assert cap.blocked_index(1.0) is None


def test_status_reports_rate_consumption_throttles_and_burst() -> None:
    cap = PartitionCapacity(Rates(10.0, 10.0, False), now=0.0)
    cap.charge_read(4.0, 0.0)
    cap.read.throttled += 1
    s = cap.status(0.0)
    assert s["multiplier"] == 1.0 and s["mode"] == "provisioned"
    assert s["read"] == {"rate": 10.0, "consumed": 4.0, "throttled": 1, "burst": 6.0, "peak": 4.0}


def test_index_writes_are_priced_per_index_the_item_is_or_was_in() -> None:
    from services.storage.capacity import index_write_units

    specs = [("all", "g", None, False), ("keys", "g", "h", True), ("other", "z", None, False)]
    small = {"pk": {"S": "a"}, "g": {"S": "x"}}
    big = small | {"d": {"S": "y" * 3000}}
    # a new item in the ALL index (3 KB: 3 units); not in the key-only one (no h), nor in `other`
    assert index_write_units(specs, None, big) == {"all": 3.0}
    # the index key changed: the old entry deleted and the new one put, twice the units
    assert index_write_units(specs, small, small | {"g": {"S": "w"}}) == {"all": 2.0}
    # a key-only index costs one unit whatever the item's size; a delete removes the entry
    both = big | {"h": {"S": "1"}}
    assert index_write_units(specs, both, None) == {"all": 3.0, "keys": 1.0}


def test_a_new_on_demand_table_on_fewer_partitions_still_takes_its_start_ceiling() -> None:
    # DynamoDB's new on-demand table serves 4,000 write / 12,000 read units a second at once; on
    # one partition (one storage node) that partition takes all of it, on two half each, and
    # from four partitions on DynamoDB's per-partition limits hold
    one = PartitionCapacity(partition_rates(_table("PAY_PER_REQUEST", parts=1)), now=0.0)
    assert (one.write.cap.rate, one.read.cap.rate) == (4000.0, 12000.0)
    assert _drain(one.write.admits, one.write.charge, 0.0) == 4000
    two = PartitionCapacity(partition_rates(_table("PAY_PER_REQUEST", parts=2)), now=0.0)
    assert (two.write.bucket.rate, two.write.cap.rate) == (2000.0, 2000.0)
    two.update(partition_rates(_table("PAY_PER_REQUEST", parts=8)), now=0.0)  # after splits
    assert (two.write.cap.rate, two.read.cap.rate) == (1000.0, 3000.0)
    # provisioned tables keep DynamoDB's per-partition limits
    prov = PartitionCapacity(partition_rates(_table(rcu=50_000, wcu=10_000)), now=0.0)
    assert (prov.write.cap.rate, prov.read.cap.rate) == (1000.0, 3000.0)


def test_a_warmed_table_s_partitions_take_its_warm_throughput_at_once() -> None:
    # WarmThroughput (decision 0056): an on-demand table warmed to 40,000 write units a second
    # serves them from its first second, on one partition all of them, on two half each; a
    # provisioned table keeps its rate, but its partitions' hard caps take the warmed share
    warmed = replace(_table("PAY_PER_REQUEST", parts=1), warm_write_units=40_000)
    one = PartitionCapacity(partition_rates(warmed), now=0.0)
    assert (one.write.bucket.rate, one.write.cap.rate) == (40_000.0, 40_000.0)
    assert (one.read.bucket.rate, one.read.cap.rate) == (12_000.0, 12_000.0)  # reads not warmed
    assert _drain(one.write.admits, one.write.charge, 0.0) == 40_000
    two = PartitionCapacity(partition_rates(replace(warmed, partition_ids=("p0", "p1"))), now=0.0)
    assert (two.write.bucket.rate, two.write.cap.rate) == (20_000.0, 20_000.0)
    # OnDemandThroughput's maximum still caps the ceiling
    capped = partition_rates(replace(warmed, max_write_request_units=500))
    assert (capped.write, capped.warm_write) == (500.0, 40_000.0)
    prov = PartitionCapacity(partition_rates(replace(_table(rcu=100, wcu=100), warm_write_units=5_000)), now=0.0)
    assert (prov.write.bucket.rate, prov.write.cap.rate, prov.read.cap.rate) == (100.0, 5_000.0, 3_000.0)


def test_warm_throughput_of_each_mode() -> None:
    from dynamolog.units import warm

    assert warm(None, None, on_demand=True) == (12_000, 4_000)
    assert warm(None, 9_000, on_demand=True) == (12_000, 9_000)
    assert warm(None, None, on_demand=False, read_capacity=5, write_capacity=7) == (5, 7)
    assert warm(12_000, 4_000, on_demand=False, read_capacity=5, write_capacity=7) == (12_000, 4_000)
