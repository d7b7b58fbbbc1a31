"""Evaluation of resolved expressions against items.

* :func:`evaluate` — a condition/filter against an item (``None`` = no item);
* :func:`apply_update` — an update, returning a new item;
* :func:`project` — a projection, keeping the nested structure;
* :func:`updated_paths`, :func:`expression_paths` — which attributes an expression touches.

All inputs must come from :class:`~dynamolog.expr.resolve.Resolver` (no placeholders left).
"""

from __future__ import annotations

from typing import Any

from dynamolog.errors import validation
from dynamolog.expr.ast import (
    And,
    Arith,
    Between,
    Compare,
    Condition,
    Function,
    IfNotExists,
    In,
    ListAppend,
    Not,
    Operand,
    Or,
    Path,
    SetValue,
    Size,
    Update,
    Value,
)
from dynamolog.expr.values import (
    SET_TYPES,
    AttrValue,
    arith,
    compare,
    copy_value,
    equal,
    set_key,
    size,
    type_of,
)

Item = dict[str, AttrValue]

_BAD_TYPE = "An operand in the update expression has an incorrect data type"
_BAD_PATH = "The document path provided in the update expression is invalid for update"
_MISSING = "The provided expression refers to an attribute that does not exist in the item"


# ---------------------------------------------------------------- reading


def lookup(item: Item | None, path: Path) -> AttrValue | None:
    """The value at ``path`` in ``item``, or ``None`` when absent."""
    if item is None:
        return None
    elements = path.elements
    cur: AttrValue | None = item.get(elements[0])  # type: ignore[arg-type]
    for e in elements[1:]:
        if cur is None:
            return None
        if isinstance(e, int):
            lst = cur.get("L")
            cur = lst[e] if lst is not None and e < len(lst) else None
        else:
            m = cur.get("M")
            cur = m.get(e) if m is not None else None
    return cur


def _operand(o: Operand, item: Item | None) -> AttrValue | None:
    if isinstance(o, Value):
        return o.value
    if isinstance(o, Size):
        n = size(o.path.value if isinstance(o.path, Value) else lookup(item, o.path))
        return None if n is None else {"N": str(n)}
    return lookup(item, o)


# ---------------------------------------------------------------- conditions


def evaluate(cond: Condition, item: Item | None) -> bool:
    """Whether ``item`` satisfies ``cond``; comparisons across types are simply false."""
    if isinstance(cond, And):
        return evaluate(cond.left, item) and evaluate(cond.right, item)
    if isinstance(cond, Or):
        return evaluate(cond.left, item) or evaluate(cond.right, item)
    if isinstance(cond, Not):
        return not evaluate(cond.operand, item)
    if isinstance(cond, Compare):
        a, b = _operand(cond.left, item), _operand(cond.right, item)
        if cond.op == "=":
            return equal(a, b)
        if cond.op == "<>":
            return not equal(a, b)
        c = compare(a, b)
        if c is None:
            return False
        return {"<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[cond.op]
    if isinstance(cond, Between):
        x = _operand(cond.operand, item)
        lo, hi = compare(x, _operand(cond.low, item)), compare(x, _operand(cond.high, item))
        return lo is not None and hi is not None and lo >= 0 and hi <= 0
    if isinstance(cond, In):
        x = _operand(cond.operand, item)
        return any(equal(x, _operand(o, item)) for o in cond.options)
    return _function(cond, item)


def _function(f: Function, item: Item | None) -> bool:
    name = f.name
    target = _operand(f.args[0], item)
    if name == "attribute_exists":
        return target is not None
    if name == "attribute_not_exists":
        return target is None
    arg = _operand(f.args[1], item)
    if target is None or arg is None:
        return False
    tt, ta = type_of(target), type_of(arg)
    if name == "attribute_type":
        return ta == "S" and tt == arg["S"]
    if name == "begins_with":
        if tt != ta or tt not in ("S", "B"):
            return False
        if tt == "S":
            return bool(target["S"].startswith(arg["S"]))
        return bool(set_key("BS", target["B"]).startswith(set_key("BS", arg["B"])))
    # contains
    if tt == "S" and ta == "S":
        return arg["S"] in target["S"]
    if tt == "B" and ta == "B":
        return set_key("BS", arg["B"]) in set_key("BS", target["B"])
    if tt in SET_TYPES:
        if ta != tt[0]:
            return False
        k = set_key(tt, arg[ta])
        return any(set_key(tt, e) == k for e in target[tt])
    if tt == "L":
        return any(equal(e, arg) for e in target["L"])
    return False


def expression_paths(cond: Condition) -> list[Path]:
    """The document paths a condition reads, in order of appearance."""
    out: list[Path] = []

    def add(o: Operand) -> None:
        if isinstance(o, Path):
            out.append(o)
        elif isinstance(o, Size) and isinstance(o.path, Path):
            out.append(o.path)

    def walk(c: Condition) -> None:
        if isinstance(c, (And, Or)):
            walk(c.left)
            walk(c.right)
        elif isinstance(c, Not):
            walk(c.operand)
        elif isinstance(c, Compare):
            add(c.left)
            add(c.right)
        elif isinstance(c, Between):
            for o in (c.operand, c.low, c.high):
                add(o)
        elif isinstance(c, In):
            add(c.operand)
            for o in c.options:
                add(o)
        else:
            for o in c.args:
                add(o)

    walk(cond)
    return out


# ---------------------------------------------------------------- updates


def _set_value(v: SetValue, item: Item) -> AttrValue:
    if isinstance(v, Value):
        assert v.value is not None
        return v.value
    if isinstance(v, Path):
        found = lookup(item, v)
        if found is None:
            raise validation(_MISSING)
        return found
    if isinstance(v, IfNotExists):
        found = lookup(item, v.path)
        return found if found is not None else _set_value(v.default, item)
    if isinstance(v, ListAppend):
        a, b = _set_value(v.first, item), _set_value(v.second, item)
        if type_of(a) != "L" or type_of(b) != "L":
            raise validation(_BAD_TYPE)
        return {"L": a["L"] + b["L"]}
    assert isinstance(v, Arith)
    a, b = _set_value(v.left, item), _set_value(v.right, item)
    if type_of(a) != "N" or type_of(b) != "N":
        raise validation(_BAD_TYPE)
    return {"N": arith(v.op, a["N"], b["N"])}


def _parent(item: Item, path: Path, strict: bool = True) -> tuple[Any, Any] | None:
    """The container (dict of a map or list) holding the last element of ``path``.

    Returns ``(container, key)``. When a parent on the path is absent or of the wrong type (not a
    map before ``.name``, not a list before ``[i]``): a ValidationException when ``strict`` is
    set, else ``None``. Only the parents are checked: the last element itself may be absent.
    """
    container: Any = item
    elements = path.elements
    for i, e in enumerate(elements):
        last = i == len(elements) - 1
        if i > 0:
            # container currently is an attribute value: descend into its M or L
            want = "L" if isinstance(e, int) else "M"
            if container is None or type_of(container) != want:
                if strict:
                    raise validation(_BAD_PATH)
                return None
            container = container[want]
        if last:
            return container, e
        if isinstance(e, int):
            container = container[e] if e < len(container) else None
        else:
            container = container.get(e)
    return None


def _write(item: Item, path: Path, value: AttrValue) -> None:
    found = _parent(item, path)
    assert found is not None
    container, key = found
    if isinstance(key, int):
        if key >= len(container):
            container.append(value)
        else:
            container[key] = value
    else:
        container[key] = value


def _remove(item: Item, path: Path, strict: bool = True) -> None:
    """Remove ``path`` from ``item``. A missing last element (top-level attribute, map key, list
    index past the end) is no error; a missing or mistyped parent is one when ``strict`` is set
    (as DynamoDB: "REMOVE a.b" needs ``a`` to be a map, "REMOVE a[1]" needs ``a`` to be a list).
    """
    found = _parent(item, path, strict)
    if found is None:
        return
    container, key = found
    if isinstance(key, int):
        if key < len(container):
            del container[key]
    else:
        container.pop(key, None)


def _sort_key(path: Path) -> tuple[tuple[int, Any], ...]:
    return tuple((0, e) if isinstance(e, int) else (1, e) for e in path.elements)


def apply_update(upd: Update, item: Item | None, *, exists: bool | None = None) -> Item:
    """Apply a resolved update to ``item`` (``None`` = new item) and return the new item.

    SET values are computed from the item as it was before the update.

    ``exists`` says whether the item was stored before this update (default: ``item is not
    None``); a caller that passes a new item's key attributes as ``item`` passes
    ``exists=False``. It matters for REMOVE of a nested path whose parent is missing or not a
    document (``REMOVE a.b`` with no map ``a``): DynamoDB refuses it on an existing item
    ("The document path provided in the update expression is invalid for update") but ignores
    it when the item does not exist.
    """
    if exists is None:
        exists = item is not None
    original = item or {}
    new: Item = copy_value(original)
    values = [(a.path, _set_value(a.value, original)) for a in upd.set]
    # in path order, so that several list elements set past the end are appended in index order
    for path, value in sorted(values, key=lambda pv: _sort_key(pv[0])):
        _write(new, path, copy_value(value))
    for path in sorted(upd.remove, key=_sort_key, reverse=True):
        _remove(new, path, strict=exists)
    for add in upd.add:
        assert add.value.value is not None
        v = add.value.value
        current = lookup(new, add.path)
        if current is None:
            _write(new, add.path, copy_value(v))
            continue
        t = type_of(current)
        if t != type_of(v):
            raise validation(_BAD_TYPE)
        if t == "N":
            _write(new, add.path, {"N": arith("+", current["N"], v["N"])})
        elif t in SET_TYPES:
            have = {set_key(t, e) for e in current[t]}
            merged = list(current[t])
            for e in v[t]:
                k = set_key(t, e)
                if k not in have:
                    have.add(k)
                    merged.append(e)
            _write(new, add.path, {t: merged})
        else:
            raise validation(_BAD_TYPE)
    for delete in upd.delete:
        assert delete.value.value is not None
        v = delete.value.value
        current = lookup(new, delete.path)
        if current is None:
            continue
        t = type_of(current)
        if t != type_of(v):
            raise validation(_BAD_TYPE)
        drop = {set_key(t, e) for e in v[t]}
        kept = [e for e in current[t] if set_key(t, e) not in drop]
        if kept:
            _write(new, delete.path, {t: kept})
        else:
            _remove(new, delete.path)
    return new


def updated_paths(upd: Update) -> list[str]:
    """Top-level attribute names an update writes, without duplicates, in clause order."""
    out: list[str] = []
    for p in upd.paths():
        name = p.elements[0]
        if isinstance(name, str) and name not in out:
            out.append(name)
    return out


# ---------------------------------------------------------------- projection


def _tree(paths: list[Path]) -> dict[Any, Any]:
    root: dict[Any, Any] = {}
    for p in paths:
        node = root
        for e in p.elements:
            node = node.setdefault(e, {})
    return root


def _project_value(v: AttrValue, tree: dict[Any, Any]) -> AttrValue | None:
    if not tree:
        return dict(copy_value(v))
    t = type_of(v)
    if t == "M":
        m: dict[str, AttrValue] = {}
        for k, sub in tree.items():
            if isinstance(k, str) and k in v["M"]:
                got = _project_value(v["M"][k], sub)
                if got is not None:
                    m[k] = got
        return {"M": m} if m else None
    if t == "L":
        lst = []
        for k in sorted(k for k in tree if isinstance(k, int)):
            if k < len(v["L"]):
                got = _project_value(v["L"][k], tree[k])
                if got is not None:
                    lst.append(got)
        return {"L": lst} if lst else None
    return None


def project(item: Item, paths: list[Path]) -> Item:
    """The parts of ``item`` named by resolved ``paths``; ``a.b[1]`` keeps the map/list nesting."""
    out: Item = {}
    for name, sub in _tree(paths).items():
        if isinstance(name, str) and name in item:
            got = _project_value(item[name], sub)
            if got is not None:
                out[name] = got
    return out
