"""The auto-admin's adaptive-capacity loop around :mod:`services.admin.adaptive`.

Every ``Gains.period_s`` the auto-admin (1) reads each provisioned table's per-partition counters
from its partitions' leaders, (2) asks :meth:`AdaptiveCapacity.rates` for every partition's new
rate and (3) sets those rates on the leaders' token buckets.  Steps 1 and 3 belong to the token
buckets (they live at the partition leaders); they reach this module as two callables of
:meth:`AdaptiveCapacity.run_once`, so wiring the loop into the auto-admin is one call per period.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .adaptive import AdaptiveController, Gains, Kind, Observation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableObservations:
    """One table's counters for one kind of capacity over the last period."""

    table_id: str
    kind: Kind
    provisioned_units_s: float
    #: partition id -> what its leader measured
    partitions: Mapping[str, Observation]


#: (table id, kind, partition id -> rate in units per second) -> applied
ApplyRates = Callable[[str, Kind, dict[str, float]], Awaitable[None]]


@dataclass
class AdaptiveCapacity:
    """One controller per table and kind of capacity, and the multipliers last decided (metrics)."""

    gains: Gains = field(default_factory=Gains)
    _controllers: dict[tuple[str, Kind], AdaptiveController] = field(default_factory=dict)
    #: (partition id, kind) -> multiplier last decided
    multipliers: dict[tuple[str, Kind], float] = field(default_factory=dict)

    def rates(self, table_id: str, kind: Kind, provisioned_units_s: float,
              observations: Mapping[str, Observation]) -> dict[str, float]:
        """The narrow interface: a table's per-partition observations and provisioned units in,
        each partition's new rate (units per second) out."""
        c = self._controllers.get((table_id, kind))
        if c is None:
            c = self._controllers[(table_id, kind)] = AdaptiveController(kind, self.gains)
        decisions = c.step(provisioned_units_s, observations)
        for pid, d in decisions.items():
            self.multipliers[(pid, kind)] = d.multiplier
        return {pid: d.rate_units_s for pid, d in decisions.items()}

    def keep_only(self, table_ids: Iterable[str]) -> None:
        """Forget the controllers of tables that are gone (or no longer provisioned)."""
        keep = set(table_ids)
        for key in [k for k in self._controllers if k[0] not in keep]:
            del self._controllers[key]

    async def run_once(self, observed: Iterable[TableObservations], apply: ApplyRates) -> int:
        """One period: new rates for every observed table, applied; returns how many tables were
        set.  A table whose rates could not be applied is retried next period (its controller
        reads the rates the leaders really apply)."""
        tables = list(observed)
        self.keep_only(t.table_id for t in tables)
        done = 0
        for t in tables:
            new = self.rates(t.table_id, t.kind, t.provisioned_units_s, t.partitions)
            try:
                await apply(t.table_id, t.kind, new)
                done += 1
            except Exception as e:  # noqa: BLE001 - a leader may be moving; next period again
                log.info("adaptive capacity: setting the %s rates of table %s failed (%r)", t.kind, t.table_id, e)
        return done


@dataclass
class _Sample:
    """A leader's cumulative counters of one kind, when the auto-admin heard them."""

    at: float
    consumed: float
    throttled: float
    rate: float


@dataclass
class CounterDeltas:
    """Observations from the counters partition leaders report in their ping answers
    (``capacity``: {pid: {"read" | "write": {"consumed", "throttled", "rate"}}}): per partition
    and kind, the consumed units and throttled requests per second between two periods, and the
    rate its bucket refills at now."""

    _latest: dict[tuple[str, Kind], _Sample] = field(default_factory=dict)
    _last: dict[tuple[str, Kind], _Sample] = field(default_factory=dict)

    def heard(self, capacity: Mapping[str, object], now: float) -> None:
        for pid, c in capacity.items():
            if not isinstance(c, dict):
                continue
            for kind in ("read", "write"):
                k = c.get(kind)
                if isinstance(k, dict) and "consumed" in k:
                    self._latest[(pid, kind)] = _Sample(now, float(k["consumed"]), float(k.get("throttled", 0)),
                                                        float(k.get("rate", 0.0)))

    def observations(self, pids: Iterable[str], kind: Kind) -> dict[str, Observation] | None:
        """Each partition's observation since the previous call, or None when one of them has no
        complete one yet (a new leader, no answer): the table waits a period."""
        out: dict[str, Observation] = {}
        complete = True
        for pid in pids:
            cur = self._latest.get((pid, kind))
            prev = self._last.get((pid, kind))
            if cur is None:
                complete = False
                continue
            self._last[(pid, kind)] = cur
            if prev is None or cur.at <= prev.at or cur.consumed < prev.consumed or cur.throttled < prev.throttled:
                complete = False  # first sight, nothing new, or a new leader counting from zero
                continue
            dt = cur.at - prev.at
            out[pid] = Observation((cur.consumed - prev.consumed) / dt, (cur.throttled - prev.throttled) / dt,
                                   cur.rate)
        return out if complete and out else None
