"""The effect of one write: a pure function of the request and the previous item.

The leader sequencer calls :func:`compute` for each request of a group commit, against the
state plus the overlay of the writes before it in the same group.  It does no I/O and may run
more than once for the same request (a retried group), so it must not mutate its inputs.

Global tables (docs/decisions/0031-last-writer-wins.md): every item carries the :class:`Stamp`
of its last write (when, in which region), and a deleted item leaves one as a tombstone.
:func:`local_stamp` stamps a write made here (never older than what it overwrites, so that
every region orders it after it); :func:`compute` with ``kind`` ``replicate`` applies a change
that arrived from another region only if its stamp is newer than the item's (:func:`newer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dynamolog import errors, expr
from dynamolog.attrs import MAX_ITEM_BYTES, item_size

Item = dict[str, Any]


@dataclass(frozen=True)
class Effect:
    """What a write does to its item."""

    #: the item after the write; None when the write deletes it (or it stays absent)
    new: Item | None
    #: whether the item changed at all (an unchanged item writes no log record)
    changed: bool
    #: the answer's fields (``Attributes``), already shaped by ReturnValues
    result: dict[str, Any]


def _condition_holds(req: dict[str, Any], old: Item | None, resolver: expr.Resolver) -> None:
    text = req.get("cond")
    if not text:
        return
    cond = resolver.condition(expr.parse_condition(text), "ConditionExpression")
    if not expr.evaluate(cond, old):
        item = old if (req.get("rvf") == "ALL_OLD" and old is not None) else None
        raise errors.conditional_check_failed(item)


def _returned(rv: str, old: Item | None, new: Item | None, touched: list[Any] | None) -> dict[str, Any]:
    """ReturnValues: UPDATED_* keep only the updated document paths, nested as DynamoDB does."""
    if rv == "ALL_OLD":
        src = old
    elif rv == "ALL_NEW":
        src = new
    elif rv == "UPDATED_OLD":
        src = expr.project(old, touched) if old and touched else None
    elif rv == "UPDATED_NEW":
        src = expr.project(new, touched) if new and touched else None
    else:
        return {}
    return {"Attributes": src} if src else {}


@dataclass(frozen=True, order=True)
class Stamp:
    """When and where an item was last written: ordered by time, then by region name (the tie
    breaker every region applies alike)."""

    ts: int
    region: str


def newer(stamp: Stamp, than: Stamp | None, *, than_deleted: bool = False, now_ms: int = 0,
          tombstone_ms: int = 0) -> bool:
    """Whether a change stamped ``stamp`` wins over the item's stamp ``than`` (None: the item was
    never written, or nothing is known of it).  A tombstone (``than_deleted``) older than
    ``tombstone_ms`` at ``now_ms`` is forgotten: it no longer refuses older changes."""
    if than is None:
        return True
    if than_deleted and tombstone_ms and now_ms - than.ts > tombstone_ms:
        return True
    return stamp > than


def local_stamp(now_ms: int, region: str, old: Stamp | None) -> Stamp:
    """The stamp of a write made in ``region`` at ``now_ms``: after ``old`` (a clock behind
    another region's must not make a local write lose in the other regions while it won here)."""
    if old is not None and now_ms <= old.ts:
        return Stamp(old.ts + 1, region)
    return Stamp(now_ms, region)


def compute(req: dict[str, Any], old: Item | None) -> Effect:
    """Evaluate one PutItem / DeleteItem / UpdateItem request against ``old``.

    Raises :class:`~dynamolog.errors.ApiError` (ConditionalCheckFailedException, or a
    ValidationException found only now, such as an update operand of the wrong type).
    """
    eff = _compute(req, old)
    if req.get("cap"):
        # the size the write is charged for: the larger of the old and the new item
        size = max(item_size(old) if old is not None else 0, item_size(eff.new) if eff.new is not None else 0)
        return Effect(eff.new, eff.changed, eff.result | {"size": size})
    return eff


def _compute(req: dict[str, Any], old: Item | None) -> Effect:
    resolver = expr.Resolver(req.get("names"), req.get("values"))
    _condition_holds(req, old, resolver)
    kind = req["kind"]
    rv = req.get("rv") or "NONE"
    if kind == "put":
        new: Item | None = req["item"]
        return Effect(new, new != old, _returned(rv, old, new, None))
    if kind == "check":  # a transaction's ConditionCheck: the condition only
        return Effect(old, False, {})
    if kind == "delete":
        # ``tomb`` (a table with replicas in other regions): a delete of an absent item is still
        # a change, so that it leaves its tombstone and ships; a put of the item made before it
        # in another region and still on its way then loses everywhere (decision 0031)
        return Effect(None, old is not None or bool(req.get("tomb")), _returned(rv, old, None, None))
    if kind == "update":
        upd = resolver.update(expr.parse_update(req["update"])) if req.get("update") else None
        base = dict(old) if old is not None else dict(req["keyattrs"])
        new = expr.apply_update(upd, base, exists=old is not None) if upd is not None else base
        for k, v in req["keyattrs"].items():  # key attributes cannot change (the router checks)
            new[k] = v
        if new != old and item_size(new) > MAX_ITEM_BYTES:
            raise errors.validation("Item size to update has exceeded the maximum allowed size")
        touched = list(upd.paths()) if upd is not None else []
        return Effect(new, new != old, _returned(rv, old, new, touched))
    raise errors.validation(f"unknown write kind {kind!r}")


def replicated(req: dict[str, Any], old: Item | None, stamp: Stamp | None, *, deleted: bool, now_ms: int,
               tombstone_ms: int) -> Effect:
    """A change that arrived from another region (``kind`` ``replicate``: ``item``, the new
    image or None for a delete, ``ts`` and ``region``, its stamp) against the item ``old`` whose
    stamp is ``stamp`` (``deleted``: a tombstone's).  Applied only if its stamp is newer; an
    older or equal one (a late change, or one applied already) changes nothing."""
    if not newer(Stamp(int(req["ts"]), str(req["region"])), stamp, than_deleted=deleted, now_ms=now_ms,
                 tombstone_ms=tombstone_ms):
        return Effect(old, False, {"applied": False})
    # newer: always recorded, even when the image is the same, so the item takes the newer stamp
    # (and a delete of an absent item leaves its tombstone), as in the region that made it
    return Effect(req.get("item"), True, {"applied": True})
