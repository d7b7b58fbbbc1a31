"""Auto scaling's alarms, evaluated period by period (services/admin/scaling.py ``decide``).

The decision is a function of the consumption the meter saw, the targets, the catalog and the
alarm counters; these tests drive it with the typed records the auto-admin holds, period by
period, and check DynamoDB's documented behaviour: two periods above the target scale out to
consumption over target, fifteen periods 20 points below scale in, cooldowns, MinCapacity /
MaxCapacity, DisableScaleIn, and the meter's handling of a new leader's counters.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from dynamolog.catalog import AttributeDefinition, GlobalIndex, KeySchemaElement, TableDefinition
from dynamolog.config import Settings
from dynamolog.scaling import ScalableTarget, ScalingPolicy
from dynamolog.units import warm
from services.admin.scaling import ConsumptionMeter, Scaling

PERIOD_S = 60.0
WRITE = "dynamodb:table:WriteCapacityUnits"


def table(wcu: int = 100) -> TableDefinition:
    return TableDefinition(
        table_name="orders", table_id="t1", key_schema=(KeySchemaElement("pk", "HASH"),),
        attribute_definitions=(AttributeDefinition("pk", "S"),), billing_mode="PROVISIONED",
        read_capacity_units=10, write_capacity_units=wcu, status="ACTIVE", created_at_ms=0, partition_ids=("p1",))


def scaling(target: ScalableTarget, tbl: TableDefinition, **settings: Any) -> Scaling:
    s = Scaling(Settings.from_env({}, **settings), SimpleNamespace(catalog=SimpleNamespace(items={"orders": tbl})),  # type: ignore[arg-type]
                writer=None, catalog=None)  # type: ignore[arg-type]
    s.targets.items[target.key] = target
    return s


def target(**kw: Any) -> ScalableTarget:
    p = ScalingPolicy("w", "pid", "DynamoDBWriteCapacityUtilization", 70.0)
    base = ScalableTarget(resource_id="table/orders", dimension=WRITE, table_id="t1", target_id="x",
                          min_capacity=50, max_capacity=1000, created_ms=0, policies=(p,))
    return replace(base, **kw)


def run(s: Scaling, rates: list[float], start_ms: int = 10**12) -> list[list[tuple[str, int]]]:
    """Each period's decisions for the given write rates (units a second)."""
    out = []
    for i, rate in enumerate(rates):
        ds = s.decide({("t1", "write"): rate * PERIOD_S}, PERIOD_S, start_ms + i * 60_000)
        out.append([(d.direction, d.capacity) for d in ds])
    return out


def test_two_periods_above_the_target_scale_out_to_consumption_over_target() -> None:
    s = scaling(target(), table(100))
    # 95 units/s on 100 provisioned = 95 % > 70 %: one period is not enough, the second acts
    assert run(s, [95, 95]) == [[], [("out", 136)]]  # ceil(95 / 0.70)


def test_a_breach_must_be_consecutive() -> None:
    s = scaling(target(), table(100))
    assert run(s, [95, 50, 95, 60]) == [[], [], [], []]


def test_scale_out_stops_at_max_capacity_and_honours_the_cooldown() -> None:
    pol = replace(target().policies[0], scale_out_cooldown_s=300)
    s = scaling(target(max_capacity=120, policies=(pol,)), table(100))
    assert run(s, [95, 95]) == [[], [("out", 120)]]
    s2 = scaling(target(policies=(pol,), last_scale_out_ms=10**12), table(100))
    assert run(s2, [95, 95]) == [[], []]  # the last scale-out was 1 minute ago, cooldown 5 minutes


def test_fifteen_periods_20_points_below_the_target_scale_in() -> None:
    s = scaling(target(), table(400))
    # 100 units/s on 400 = 25 % < 70 - 20: the fifteenth period acts, to ceil(100 / 0.7)
    decisions = run(s, [100] * 15)
    assert decisions[:14] == [[]] * 14
    assert decisions[14] == [("in", 143)]


def test_scale_in_respects_min_capacity_and_disable_scale_in() -> None:
    s = scaling(target(min_capacity=300), table(400))
    assert run(s, [10] * 15)[14] == [("in", 300)]
    pol = replace(target().policies[0], disable_scale_in=True)
    s2 = scaling(target(policies=(pol,)), table(400))
    assert run(s2, [10] * 15)[14] == []


def test_between_the_alarms_nothing_happens() -> None:
    s = scaling(target(), table(100))
    assert run(s, [60] * 20) == [[]] * 20  # 60 %: below 70, above 50


def test_suspended_scale_out_and_on_demand_tables_do_nothing() -> None:
    s = scaling(target(scale_out_suspended=True), table(100))
    assert run(s, [95, 95]) == [[], []]
    s2 = scaling(target(), replace(table(100), billing_mode="PAY_PER_REQUEST"))
    assert run(s2, [95, 95]) == [[], []]


def test_a_newer_table_of_the_same_name_is_not_scaled() -> None:
    s = scaling(target(table_id="old"), table(100))
    assert run(s, [95, 95]) == [[], []]


@pytest.mark.parametrize("totals, expected", [
    ([10.0, 25.0, 40.0], 30.0),  # 15 + 15 after the first sight
    ([10.0, 25.0, 5.0], 20.0),   # a new leader counts from zero: 15, then 5
])
def test_the_meter_sums_counter_increases(totals: list[float], expected: float) -> None:
    m = ConsumptionMeter()
    for t in totals:
        m.observe("t1", "p1", "write", t)
    assert m.take() == {("t1", "write"): expected}
    assert m.take() == {}


def test_a_scale_in_keeps_the_highest_capacity_as_warm_throughput() -> None:
    # decision 0056: the table's and each index's warm throughput never falls with its capacity
    index = GlobalIndex(index_name="g", index_id="id#g", hash_key="x", range_key=None, projection_type="ALL",
                        non_key_attributes=(), status="ACTIVE", partition_ids=("i0",), read_capacity_units=40,
                        write_capacity_units=30)
    table = TableDefinition(table_name="t", table_id="id", key_schema=(KeySchemaElement("pk", "HASH"),),
                            attribute_definitions=(AttributeDefinition("pk", "S"),), billing_mode="PROVISIONED",
                            read_capacity_units=50, write_capacity_units=20, status="ACTIVE", created_at_ms=0,
                            partition_ids=("p0",), global_indexes=(index,))
    down = Scaling._with_capacity(table, None, "read", 10, 0)
    assert down is not None and down.read_capacity_units == 10
    assert warm(down.warm_read_units, down.warm_write_units, on_demand=False, read_capacity=10,
                write_capacity=20) == (50, 20)
    down = Scaling._with_capacity(table, "g", "write", 5, 0)
    assert down is not None
    g = down.global_indexes[0]
    assert g.write_capacity_units == 5
    assert warm(g.warm_read_units, g.warm_write_units, on_demand=False, read_capacity=40,
                write_capacity=5) == (40, 30)
    assert Scaling._with_capacity(table, "g", "write", 30, 0) is None  # nothing to change
