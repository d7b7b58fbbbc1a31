"""Adaptive capacity's controller (services/admin/adaptive.py) against a simulated plant.

The plant is a table's partitions: each offered a demand (units per second, one unit a
request), each with a token bucket refilled at the rate the controller set in the previous period;
a partition serves ``min(demand, rate)`` and throttles the rest, which clients retry (a retry
factor above 1 makes the throttled count overstate the real shortfall, as retried requests do).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping

import pytest

from services.admin.adaptive import (
    PARTITION_WRITE_UNITS_MAX,
    AdaptiveController,
    Gains,
    Observation,
    demand,
)
from services.admin.capacity import AdaptiveCapacity, TableObservations


class Plant:
    """A table's partitions under a given demand, one sampling period per :meth:`period`."""

    def __init__(self, provisioned: float, demands: Mapping[str, float], retry: float = 1.0) -> None:
        self.provisioned = provisioned
        self.demands = dict(demands)
        self.retry = retry
        self.rates = {p: provisioned / len(demands) for p in demands}

    def period(self) -> dict[str, Observation]:
        out = {}
        for p, d in self.demands.items():
            served = min(d, self.rates[p])
            out[p] = Observation(consumed_units_s=served, throttled_requests_s=(d - served) * self.retry,
                                 rate_units_s=self.rates[p], requests_s=served)
        return out


def simulate(c: AdaptiveController, plant: Plant, periods: int) -> list[dict[str, Observation]]:
    """Run the loop; the history of observations (what the leaders measured each period)."""
    history = []
    for _ in range(periods):
        obs = plant.period()
        history.append(obs)
        decisions = c.step(plant.provisioned, obs)
        plant.rates = {p: d.rate_units_s for p, d in decisions.items()}
    return history


def skewed(retry: float = 1.0) -> Plant:
    # the figure: 4 partitions at 400 WCU, 70 % of 350 writes/s on one partition
    return Plant(400, {"hot": 245, "a": 35, "b": 35, "c": 35}, retry)


@pytest.mark.parametrize("retry", [1.0, 3.0])
def test_a_step_of_skewed_load_settles_and_stops_throttling(retry: float) -> None:
    # the hot partition gets enough within a few periods and keeps it; the table stays within
    # what it provisioned all along
    c = AdaptiveController("write")
    history = simulate(c, skewed(retry), 30)
    throttled = [sum(o.throttled_requests_s for o in obs.values()) for obs in history]
    assert throttled[0] > 0  # the step: the hot partition's even share (100) is too little
    assert all(t == 0 for t in throttled[3:]), throttled
    for obs in history:
        assert sum(o.consumed_units_s for o in obs.values()) <= 400
    assert history[-1]["hot"].consumed_units_s == 245
    assert c.resets == 0


def test_no_oscillation_rates_move_one_way_then_stay() -> None:
    # a demand the budget does not limit: the multiplier approaches its target from one side and
    # settles; its changes never alternate in sign
    c = AdaptiveController("write")
    plant = Plant(400, {"hot": 150, "a": 35, "b": 35, "c": 35}, retry=3.0)
    rates = []
    for _ in range(40):
        simulate(c, plant, 1)
        rates.append(plant.rates["hot"])
    steps = [b - a for a, b in itertools.pairwise(rates) if abs(b - a) > 1e-6]
    signs = [s > 0 for s in steps]
    assert sum(1 for x, y in itertools.pairwise(signs) if x != y) <= 1, rates
    final = 150 * 1.2  # demand plus the headroom
    assert abs(rates[-1] - final) / final < 0.01
    assert all(r >= 150 for r in rates)  # never throttled again once it had enough


def test_the_multiplier_falls_back_when_the_load_moves_away() -> None:
    c = AdaptiveController("write")
    plant = skewed()
    simulate(c, plant, 10)
    assert plant.rates["hot"] > 200
    plant.demands = {"hot": 35, "a": 35, "b": 35, "c": 35}
    simulate(c, plant, 30)
    assert plant.rates["hot"] == pytest.approx(100, rel=0.01)


def test_the_reset_rule_back_to_even_shares_when_the_table_overdraws() -> None:
    # the hot partition was granted more than its share; then the cold partitions' load rises so
    # that the table consumes more than it provisioned: every multiplier goes back to 1 at once
    c = AdaptiveController("write")
    plant = skewed()
    simulate(c, plant, 10)
    assert plant.rates["hot"] > 200
    obs = {"hot": Observation(245, 0, plant.rates["hot"], 245),
           **{p: Observation(60, 0, 100, 60) for p in ("a", "b", "c")}}  # 425 > 400
    decisions = c.step(400, obs)
    assert {d.multiplier for d in decisions.values()} == {1.0}
    assert {d.rate_units_s for d in decisions.values()} == {100.0}
    assert c.resets == 1


def test_a_hot_partition_never_exceeds_the_per_partition_cap() -> None:
    # 2,000 WCU over 4 partitions (share 500); one partition asked for 3,000: it gets 1,000, the cap
    c = AdaptiveController("write")
    plant = Plant(2000, {"hot": 3000, "a": 0, "b": 0, "c": 0})
    history = simulate(c, plant, 20)
    assert all(obs["hot"].rate_units_s <= PARTITION_WRITE_UNITS_MAX for obs in history)
    assert plant.rates["hot"] == pytest.approx(PARTITION_WRITE_UNITS_MAX)
    read = AdaptiveController("read")
    plant = Plant(8000, {"hot": 9000, "a": 0, "b": 0, "c": 0})
    history = simulate(read, plant, 20)
    assert all(obs["hot"].rate_units_s <= 3000 for obs in history)
    assert plant.rates["hot"] == pytest.approx(3000)


def test_the_table_never_hands_out_more_than_it_has() -> None:
    # two hot partitions both asking for 300 of a 400-unit table with 4 partitions: the extra
    # above their shares is what the table has left (95 % of it, the margin), split evenly
    c = AdaptiveController("write")
    plant = Plant(400, {"h1": 300, "h2": 300, "a": 0, "b": 0})
    simulate(c, plant, 20)
    assert plant.rates["h1"] == pytest.approx(plant.rates["h2"])
    assert plant.rates["h1"] + plant.rates["h2"] == pytest.approx(400 * Gains().budget_fraction)
    assert c.resets == 0


def test_demand_counts_throttled_requests_at_the_served_size() -> None:
    assert demand(Observation(100, 10, 100, requests_s=50)) == 120  # 2 units a request
    assert demand(Observation(0, 10, 100)) == 10  # nothing served: a unit each


def test_the_auto_admin_loop_applies_every_tables_rates() -> None:
    # the wiring surface: observations in, rates out through the apply callable, one call a period
    loop = AdaptiveCapacity()
    plant = skewed()
    applied: list[tuple[str, str, dict[str, float]]] = []

    async def apply(table_id: str, kind: str, rates: dict[str, float]) -> None:
        applied.append((table_id, kind, rates))
        plant.rates = rates

    for _ in range(5):
        n = asyncio.run(loop.run_once([TableObservations("t1", "write", 400, plant.period())], apply))
        assert n == 1
    assert applied[-1][0:2] == ("t1", "write")
    assert applied[-1][2]["hot"] >= 245
    assert loop.multipliers[("hot", "write")] > 2
