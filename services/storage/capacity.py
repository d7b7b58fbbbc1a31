"""Capacity of one partition: a read and a write token bucket, refilled continuously, with burst.

Pure arithmetic on a clock the caller passes (monotonic seconds), no I/O, so that the unit tests
drive it with a fake clock.  The storage node keeps one :class:`PartitionCapacity` per partition
it leads (decision 0024: where capacity is counted) and derives its rates from the table's
definition in the catalog (:func:`partition_rates`).

Glossary

| term | meaning |
|---|---|
| rate | units per second a bucket refills with: the table's capacity / its partitions × multiplier, at most the per-partition cap |
| balance | the units a bucket holds now; a request is admitted while it is above zero, then charged what it really cost (the balance may go below zero: the debt is paid back by refill before the next request passes) |
| burst | unused capacity kept for up to ``burst_s`` (DynamoDB: 300 s): a bucket holds at most ``rate × burst_s`` |
| hard cap | DynamoDB's per-partition limit (3,000 read / 1,000 write units a second): a second bucket of one second's depth that even burst cannot pass |
| multiplier | the adaptive-capacity factor on a partition's share (1.0 until the auto-admin sets another) |
| ceiling | an on-demand table's limit: its warm throughput (4,000 write / 12,000 read request units a second at creation unless ``WarmThroughput`` raised it), twice the highest peak seen since, capped by ``OnDemandThroughput`` |
| warm throughput | what a table serves at once (``WarmThroughput``, dynamolog/units.py ``warm``): a partition's hard cap is at least its share of it |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from dynamolog.attrs import item_size
from dynamolog.catalog import GlobalIndex, TableDefinition
from dynamolog.units import ON_DEMAND_READ_START as _READ_START
from dynamolog.units import ON_DEMAND_WRITE_START as _WRITE_START
from dynamolog.units import warm, write_units

#: DynamoDB's per-partition limits (units per second), which no multiplier or burst passes
PARTITION_READ_MAX = 3000.0
PARTITION_WRITE_MAX = 1000.0
#: what an on-demand table serves at once (request units per second, the whole table) unless
#: its WarmThroughput is more
ON_DEMAND_READ_START = float(_READ_START)
ON_DEMAND_WRITE_START = float(_WRITE_START)
#: DynamoDB keeps unused capacity this long (seconds)
BURST_S = 300.0
#: an on-demand table's bucket holds one second: its ceiling is a rate, not a budget
ON_DEMAND_BURST_S = 1.0


class TokenBucket:
    """Units that refill at ``rate`` a second up to ``rate × depth_s``.  Starts holding one
    second's worth (a new bucket has saved nothing yet)."""

    __slots__ = ("at", "balance", "depth_s", "rate")

    def __init__(self, rate: float, depth_s: float, now: float) -> None:
        self.rate = rate
        self.depth_s = depth_s
        self.balance = min(rate, rate * depth_s)
        self.at = now

    @property
    def depth(self) -> float:
        """The most the bucket holds."""
        return self.rate * self.depth_s

    def refill(self, now: float) -> float:
        """Bring the balance up to ``now``; returns it."""
        if now > self.at:
            self.balance = min(self.depth, self.balance + (now - self.at) * self.rate)
            self.at = now
        return self.balance

    def set_rate(self, rate: float, now: float) -> None:
        """A new rate from now on (what was saved stays, up to the new depth)."""
        self.refill(now)
        self.rate = rate
        self.balance = min(self.balance, self.depth)

    def take(self, units: float) -> None:
        """Charge ``units`` (may leave the balance below zero)."""
        self.balance -= units


@dataclass
class Limit:
    """A bucket pair (the rate with burst, and the hard cap) and what went through it."""

    bucket: TokenBucket
    """Refilled at the partition's rate, ``burst_s`` deep."""
    cap: TokenBucket
    """Refilled at the per-partition hard cap, one second deep."""
    consumed: float = 0.0
    """Units charged since the partition was opened here."""
    throttled: int = 0
    """Requests refused since then."""
    window_start: float = 0.0
    """Start of the current one-second window (for the peak)."""
    window_units: float = 0.0
    """Units charged in it."""
    peak: float = 0.0
    """The most units charged in one second window."""

    def admits(self, now: float) -> bool:
        """Whether a request may pass now (both buckets above zero)."""
        return self.bucket.refill(now) > 0 and self.cap.refill(now) > 0

    def charge(self, units: float, now: float) -> None:
        self.bucket.take(units)
        self.cap.take(units)
        self.consumed += units
        if now - self.window_start >= 1.0:
            self.window_start, self.window_units = now, 0.0
        self.window_units += units
        if self.window_units > self.peak:
            self.peak = self.window_units

    def status(self, now: float) -> dict[str, float | int]:
        return {"rate": round(self.bucket.rate, 3), "consumed": round(self.consumed, 1), "throttled": self.throttled,
                "burst": round(self.bucket.refill(now), 1), "peak": round(self.peak, 1)}


@dataclass(frozen=True)
class Rates:
    """What a table (or one of its global indexes) allows each of its partitions."""

    read: float
    """Read units a second (before the multiplier)."""
    write: float
    """Write units a second (before the multiplier)."""
    on_demand: bool
    """Whether these are on-demand ceilings (no burst; throttles say MaxOnDemandThroughput or
    the account limit) rather than provisioned capacity."""
    capped: bool = False
    """On demand: whether OnDemandThroughput set these (its maximum, not the start ceiling)."""
    warm_read: float = 0.0
    """The partition's share of the table's (or index's) warm read throughput."""
    warm_write: float = 0.0
    """The partition's share of the warm write throughput."""


def partition_caps(rates: Rates) -> tuple[float, float]:
    """A partition's hard caps (read, write units a second): DynamoDB's per-partition limits, or
    its share of the table's warm throughput when that is more. A DynamoDB table serves its warm
    throughput at once (a new on-demand table 4,000 write / 12,000 read units, a provisioned
    one its highest provisioned capacity, more when WarmThroughput raised it), on as many
    partitions as that takes; a Dynamolog table with fewer partitions (one per storage node by
    default) stands for that many, so its partitions take the whole warm throughput between
    them."""
    return max(PARTITION_READ_MAX, rates.warm_read), max(PARTITION_WRITE_MAX, rates.warm_write)


def _share(total: float, partitions: int) -> float:
    return total / max(1, partitions)


def partition_rates(table: TableDefinition, index: GlobalIndex | None = None) -> Rates:
    """The rates of one partition of ``table`` (or of its global index ``index``): the capacity
    divided over the current number of partitions (a split changes the count, so the share
    follows).  On demand: the warm throughput (at least the start ceiling), or
    OnDemandThroughput's maximum when lower."""
    unit = index if index is not None else table
    n = len(unit.partition_ids)
    on_demand = table.billing_mode != "PROVISIONED"
    if not on_demand:
        # what the catalog recorded as warmed (WarmThroughput, or a capacity raised earlier): a
        # provisioned table's partitions are made for its capacity when it is created
        return Rates(_share(unit.read_capacity_units, n), _share(unit.write_capacity_units, n), False,
                     warm_read=_share(unit.warm_read_units or 0, n), warm_write=_share(unit.warm_write_units or 0, n))
    warm_r, warm_w = warm(unit.warm_read_units, unit.warm_write_units, on_demand=True)
    warm_r_share, warm_w_share = _share(warm_r, n), _share(warm_w, n)
    max_r = unit.max_read_request_units
    max_w = unit.max_write_request_units
    read = float(warm_r) if max_r is None or max_r < 1 else min(float(warm_r), float(max_r))
    write = float(warm_w) if max_w is None or max_w < 1 else min(float(warm_w), float(max_w))
    capped = (max_r is not None and max_r >= 1) or (max_w is not None and max_w >= 1)
    return Rates(_share(read, n), _share(write, n), True, capped, warm_r_share, warm_w_share)


def index_shares(table: TableDefinition) -> dict[str, Rates]:
    """What each base-table partition may write into each global index: the index's write
    capacity over the *table's* partitions (every index write is caused by a base-table write,
    which passes one of them; decision 0024)."""
    n = len(table.partition_ids)
    out: dict[str, Rates] = {}
    for g in table.global_indexes:
        if g.status == "DELETING":
            continue
        r = partition_rates(table, g)
        scale = len(g.partition_ids) / max(1, n)
        out[g.index_name] = replace(r, read=r.read * scale, write=r.write * scale,
                                    warm_read=r.warm_read * scale, warm_write=r.warm_write * scale)
    return out


#: what the leader needs to price a write's index writes: (index name, hash key, range key or
#: None, whether only keys are projected, a multi-attribute key's other attributes)
IndexSpec = tuple[str, str, str | None, bool, tuple[str, ...]]


def index_specs(table: TableDefinition) -> list[IndexSpec]:
    return [(g.index_name, g.hash_key, g.range_key, g.projection_type == "KEYS_ONLY",
             (*g.more_hash_keys, *g.more_range_keys))
            for g in table.global_indexes if g.status != "DELETING"]


def index_write_units(specs: Sequence[Sequence[Any]], old: dict[str, Any] | None,
                      new: dict[str, Any] | None) -> dict[str, float]:
    """The write units a changed item costs each global index it is (or was) in: one entry
    written or deleted per KB of the item (a key-only index: one unit), twice when the index
    key changed (the old entry deleted, the new one put)."""
    out: dict[str, float] = {}
    for name, hk, rk, keys_only, *more in specs:
        others = tuple(more[0]) if more else ()
        ko = _index_key(old, hk, rk, others)
        kn = _index_key(new, hk, rk, others)
        if ko is None and kn is None:
            continue
        size = 0 if keys_only else max(item_size(old) if ko is not None and old is not None else 0,
                                       item_size(new) if kn is not None and new is not None else 0)
        units = write_units(size)
        out[name] = 2 * units if ko is not None and kn is not None and ko != kn else units
    return out


def _index_key(item: dict[str, Any] | None, hk: str, rk: str | None,
               others: tuple[str, ...] = ()) -> tuple[Any, ...] | None:
    if item is None or hk not in item or (rk is not None and rk not in item) or any(a not in item for a in others):
        return None
    return (str(item[hk]), str(item[rk]) if rk is not None else None, *(str(item[a]) for a in others))


class PartitionCapacity:
    """The read and write limits of one partition, and of its share of each global index's write
    capacity (a base-table write that an index cannot take is refused, decision 0024)."""

    def __init__(self, rates: Rates, now: float, *, burst_s: float = BURST_S) -> None:
        self.burst_s = burst_s
        #: adaptive capacity's factor on each kind's share (read, write)
        self.multipliers = {"read": 1.0, "write": 1.0}
        self.rates = rates
        depth = self._depth()
        hard_r, hard_w = partition_caps(rates)
        self.read = Limit(TokenBucket(self._rate("read", rates.read, hard_r), depth, now),
                          TokenBucket(hard_r, 1.0, now), window_start=now)
        self.write = Limit(TokenBucket(self._rate("write", rates.write, hard_w), depth, now),
                           TokenBucket(hard_w, 1.0, now), window_start=now)
        #: index name -> (its share's limit, its rates)
        self.indexes: dict[str, tuple[Limit, Rates]] = {}

    def _depth(self) -> float:
        return ON_DEMAND_BURST_S if self.rates.on_demand else self.burst_s

    @property
    def multiplier(self) -> float:
        """The larger of the two multipliers (1.0: even shares)."""
        return max(self.multipliers.values())

    def _rate(self, kind: str, share: float, hard: float, peak: float = 0.0) -> float:
        """The refill rate of a share: times the kind's multiplier; on demand at least twice the
        peak (unless OnDemandThroughput caps it); never past the hard cap."""
        rate = share * self.multipliers[kind]
        if self.rates.on_demand and not self.rates.capped:
            rate = max(rate, 2.0 * peak)
        return min(rate, hard)

    def update(self, rates: Rates, now: float) -> None:
        """New rates (the table's capacity, mode or partition count changed)."""
        self.rates = rates
        depth = self._depth()
        hard_r, hard_w = partition_caps(rates)
        for kind, limit, share, hard in (("read", self.read, rates.read, hard_r),
                                         ("write", self.write, rates.write, hard_w)):
            limit.bucket.depth_s = depth
            limit.bucket.set_rate(self._rate(kind, share, hard, limit.peak), now)
            if limit.cap.rate != hard:
                limit.cap.set_rate(hard, now)

    def set_multiplier(self, multiplier: float, now: float, kind: str | None = None) -> None:
        """Adaptive capacity's factor on this partition's share of ``kind`` (read or write; None:
        both); the hard cap still holds."""
        for k in (kind,) if kind is not None else ("read", "write"):
            self.multipliers[k] = multiplier
        self.update(self.rates, now)

    def set_indexes(self, shares: dict[str, Rates], now: float) -> None:
        """This partition's share of each global index's write capacity."""
        kept: dict[str, tuple[Limit, Rates]] = {}
        for name, rates in shares.items():
            depth = ON_DEMAND_BURST_S if rates.on_demand else self.burst_s
            hard = partition_caps(rates)[1]
            rate = min(rates.write, hard)
            old = self.indexes.get(name)
            if old is None:
                limit = Limit(TokenBucket(rate, depth, now), TokenBucket(hard, 1.0, now),
                              window_start=now)
            else:
                limit = old[0]
                limit.bucket.depth_s = depth
                limit.bucket.set_rate(rate, now)
                if limit.cap.rate != hard:
                    limit.cap.set_rate(hard, now)
            kept[name] = (limit, rates)
        self.indexes = kept

    def _grow_on_demand(self, limit: Limit, share: float, hard: float, now: float, kind: str) -> None:
        if self.rates.on_demand and not self.rates.capped and 2.0 * limit.peak > limit.bucket.rate:
            limit.bucket.set_rate(self._rate(kind, share, hard, limit.peak), now)

    def charge_read(self, units: float, now: float) -> None:
        self.read.charge(units, now)
        self._grow_on_demand(self.read, self.rates.read, self.read.cap.rate, now, "read")

    def charge_write(self, units: float, now: float) -> None:
        self.write.charge(units, now)
        self._grow_on_demand(self.write, self.rates.write, self.write.cap.rate, now, "write")

    def blocked_index(self, now: float) -> str | None:
        """A global index whose share is used up (a write to the table waits for it), or None."""
        for name, (limit, _) in self.indexes.items():
            if not limit.admits(now):
                return name
        return None

    def status(self, now: float) -> dict[str, object]:
        out: dict[str, object] = {"mode": "on_demand" if self.rates.on_demand else "provisioned",
                                  "multiplier": self.multiplier, "multipliers": dict(self.multipliers),
                                  "read": self.read.status(now), "write": self.write.status(now)}
        if self.indexes:
            out["indexes"] = {name: limit.status(now) for name, (limit, _) in self.indexes.items()}
        return out
