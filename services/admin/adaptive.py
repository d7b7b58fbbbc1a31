"""Adaptive capacity: the per-table PID controller that lets a hot partition use more than its
even share of the table's provisioned throughput (docs/decisions/0026-adaptive-capacity-controller.md).

A table provisioned at ``P`` units per second over ``N`` partitions gives each partition an even
share ``P / N``.  A partition's token bucket refills at ``rate = share × multiplier``; the
controller chooses the multipliers, one per partition, every sampling period, from what each
partition's leader measured over the last period (:class:`Observation`).

Glossary:

- *share*: ``provisioned / partitions``, the rate of a partition whose multiplier is 1;
- *demand*: what a partition was asked for: its consumed units plus its throttled requests
  (converted to units with the period's units per served request);
- *target multiplier*: ``demand × (1 + headroom) / share``, clamped to [1, per-partition cap / share];
- *budget*: what the table may hand out above the shares: ``provisioned × budget_fraction`` less
  what the other partitions consume (the table never grants more than it has).

One step (:meth:`AdaptiveController.step`):

1. **Reset rule** (the talk's): when the table's total consumption exceeds what it provisioned,
   every multiplier goes back to 1 and the controller forgets its history.
2. **PID** per partition, on the error ``e = target − current multiplier`` in velocity form
   (``Δm = Kp·Δe + Ki·T·e − (Kd/T)·Δ²m``, a faster ``Ki`` up than down), so the state is the multiplier itself, read back from
   the partition's current rate: no integral wind-up, and a restarted auto-admin resumes from
   the rates the leaders apply.
3. **Clamps**: the multiplier stays within [1, cap / share] (3,000 read / 1,000 write units per
   second per partition) and the extra above the shares of all hot partitions together stays
   within the budget (scaled down in proportion when it would not).

This module is pure: no I/O, no clock; the caller supplies observations and applies the rates
(:meth:`services.admin.capacity.AdaptiveCapacity.rates`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

#: a partition's hard limits, units per second (DynamoDB's per-partition maximum)
PARTITION_READ_UNITS_MAX = 3000.0
PARTITION_WRITE_UNITS_MAX = 1000.0

Kind = Literal["read", "write"]


def partition_cap(kind: Kind) -> float:
    """The per-partition rate limit of one kind of capacity, units per second."""
    return PARTITION_READ_UNITS_MAX if kind == "read" else PARTITION_WRITE_UNITS_MAX


@dataclass(frozen=True)
class Observation:
    """What a partition's leader measured over the last sampling period."""

    #: units consumed per second (served requests only)
    consumed_units_s: float
    #: requests refused with ProvisionedThroughputExceededException per second
    throttled_requests_s: float
    #: the rate its bucket refilled at during the period, units per second
    rate_units_s: float
    #: requests served per second (0: unknown; a throttled request then counts one unit)
    requests_s: float = 0.0


@dataclass(frozen=True)
class Gains:
    """The controller's tuning (docs/decisions/0026-adaptive-capacity-controller.md)."""

    #: proportional gain, on the change of the error (multiplier units).  0 by default: the plant
    #: is one period of delay with unit gain, for which any proportional gain adds a closed-loop
    #: pole at ``-kp`` (an alternating, if decaying, multiplier); see the decision
    kp: float = 0.0
    #: integral gain, per second, while the multiplier must rise (a partition is throttled):
    #: ``ki·T`` of the gap is closed each period, no overshoot while ``ki·T <= 1``
    ki: float = 0.8
    #: integral gain, per second, while the multiplier may fall (slower: a partition whose load
    #: flickers is not throttled on every dip)
    ki_down: float = 0.3
    #: derivative gain, seconds, on the multiplier's second difference (0 by default, as ``kp``)
    kd: float = 0.0
    #: the sampling period, seconds: how often the auto-admin reads counters and steps
    period_s: float = 1.0
    #: a partition's target rate is its demand plus this fraction
    headroom: float = 0.2
    #: the fraction of the provisioned rate the table hands out in all (a margin so that the
    #: table's measured consumption stays under what it provisioned, and the reset rule fires
    #: only on a real overdraw)
    budget_fraction: float = 0.95


@dataclass(frozen=True)
class Decision:
    """A partition's new setting."""

    multiplier: float
    #: share × multiplier, within the per-partition cap: what its bucket should refill at
    rate_units_s: float


@dataclass
class _History:
    """A partition's controller state: the last two errors and multipliers."""

    error: float = 0.0
    multiplier: float = 1.0
    multiplier_before: float = 1.0


@dataclass
class AdaptiveController:
    """One table's controller for one kind of capacity (read or write)."""

    kind: Kind
    gains: Gains = field(default_factory=Gains)
    _history: dict[str, _History] = field(default_factory=dict)
    #: how many times the reset rule fired (metrics, tests)
    resets: int = 0

    def step(self, provisioned_units_s: float, observations: Mapping[str, Observation]) -> dict[str, Decision]:
        """Every partition's new multiplier and rate, from the last period's observations (one
        per partition of the table, keyed by partition id)."""
        n = len(observations)
        if n == 0:
            return {}
        g = self.gains
        share = provisioned_units_s / n
        cap = partition_cap(self.kind)
        if share <= 0:
            self._history.clear()
            return {pid: Decision(1.0, 0.0) for pid in observations}
        m_max = max(1.0, cap / share)
        for gone in set(self._history) - set(observations):
            del self._history[gone]
        total = sum(o.consumed_units_s for o in observations.values())
        if total > provisioned_units_s:
            # the reset rule: the table consumes more than it has; back to even shares
            self._history.clear()
            self.resets += 1
            return {pid: Decision(1.0, min(share, cap)) for pid in observations}
        wanted: dict[str, float] = {}
        for pid, o in observations.items():
            h = self._history.setdefault(pid, _History())
            current = _clamp(o.rate_units_s / share if o.rate_units_s > 0 else 1.0, 1.0, m_max)
            target = _clamp(demand(o) * (1.0 + g.headroom) / share, 1.0, m_max)
            error = target - current
            ki = g.ki if error > 0 else g.ki_down
            m = current + g.kp * (error - h.error) + ki * g.period_s * error \
                - g.kd / g.period_s * (current - 2 * h.multiplier + h.multiplier_before)
            h.error = error
            h.multiplier_before, h.multiplier = h.multiplier, current
            wanted[pid] = _clamp(m, 1.0, m_max)
        out = _within_budget(wanted, observations, share, provisioned_units_s * g.budget_fraction)
        return {pid: Decision(m, min(share * m, cap)) for pid, m in out.items()}

    def forget(self) -> None:
        """Drop the history (the table's partitions or provisioning changed)."""
        self._history.clear()


def demand(o: Observation) -> float:
    """What the partition was asked for, units per second: consumed, plus throttled requests at
    the period's units per served request (1 when nothing was served)."""
    per_request = o.consumed_units_s / o.requests_s if o.requests_s > 0 else 1.0
    return o.consumed_units_s + o.throttled_requests_s * max(1.0, per_request)


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def _within_budget(wanted: Mapping[str, float], observations: Mapping[str, Observation], share: float,
                   budget: float) -> dict[str, float]:
    """Scale the hot partitions' extra (multiplier above 1) down in proportion so that the hot
    partitions' rates plus the others' consumption stay within ``budget``."""
    hot = {pid for pid, m in wanted.items() if m > 1.0}
    if not hot:
        return dict(wanted)
    cold_consumed = sum(min(share, o.consumed_units_s) for pid, o in observations.items() if pid not in hot)
    extra_wanted = sum(share * (wanted[pid] - 1.0) for pid in hot)
    extra_free = max(0.0, budget - cold_consumed - share * len(hot))
    if extra_wanted <= extra_free:
        return dict(wanted)
    scale = extra_free / extra_wanted
    return {pid: (1.0 + (m - 1.0) * scale if pid in hot else m) for pid, m in wanted.items()}
