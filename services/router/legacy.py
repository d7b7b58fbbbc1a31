"""DynamoDB's legacy (pre-expression) parameters, translated into expressions.

``Expected`` (+ ``ConditionalOperator``) becomes a ConditionExpression, ``AttributeUpdates`` an
UpdateExpression, ``AttributesToGet`` a ProjectionExpression, ``KeyConditions`` a
KeyConditionExpression and ``QueryFilter``/``ScanFilter`` (+ ``ConditionalOperator``) a
FilterExpression.  The translation is plain expression text plus generated ``#names`` and
``:values`` whose placeholders cannot collide with the request's own, so the rest of the
pipeline (resolution, the storage node's evaluation) is the same as for expressions.

Validation follows DynamoDB: the legacy parameters are checked (with DynamoDB's messages)
before they are translated, and a request may not mix a legacy parameter with an expression
parameter, except ``KeyConditions`` with a FilterExpression or ProjectionExpression.  The
translation runs while a request is parsed (services/router/requests/expressions.py).
"""

from __future__ import annotations

from typing import Any

from dynamolog import errors
from dynamolog.attrs import validate_value
from dynamolog.expr.values import compare

from .validate import raise_constraints

#: legacy parameters, in the order DynamoDB lists them when they are mixed with expressions
LEGACY = ("AttributeUpdates", "AttributesToGet", "Expected", "QueryFilter", "ScanFilter", "ConditionalOperator",
          "KeyConditions")
#: expression parameters, in the order DynamoDB lists them
EXPRESSIONS = ("UpdateExpression", "ProjectionExpression", "ConditionExpression", "FilterExpression",
               "KeyConditionExpression")

COMPARISON_OPERATORS = ("IN", "NULL", "BETWEEN", "LT", "NOT_CONTAINS", "EQ", "GT", "NOT_NULL", "NE", "LE",
                        "BEGINS_WITH", "GE", "CONTAINS")
KEY_OPERATORS = frozenset({"EQ", "LE", "LT", "GE", "GT", "BEGINS_WITH", "BETWEEN"})
ACTIONS = ("ADD", "PUT", "DELETE")
CONDITIONAL_OPERATORS = ("AND", "OR")

_ARGS = {"NULL": (0, 0), "NOT_NULL": (0, 0), "IN": (1, None), "BETWEEN": (2, 2)}  # default: exactly one
_SCALAR = frozenset({"S", "N", "B"})
_TYPES: dict[str, frozenset[str] | None] = {  # allowed AttributeValueList types; None = any
    "EQ": None, "NE": None,
    "LE": _SCALAR, "LT": _SCALAR, "GE": _SCALAR, "GT": _SCALAR, "IN": _SCALAR, "BETWEEN": _SCALAR,
    "CONTAINS": frozenset({"S", "N", "B", "BOOL", "NULL"}), "NOT_CONTAINS": frozenset({"S", "N", "B", "BOOL", "NULL"}),
    "BEGINS_WITH": frozenset({"S", "B"}),
}
_COMPARE = {"EQ": "=", "NE": "<>", "LE": "<=", "LT": "<", "GE": ">=", "GT": ">"}
_SET_TYPES = frozenset({"SS", "NS", "BS"})
_ADD_TYPES = frozenset({"N", "SS", "NS", "BS", "L"})
_INVALID = "One or more parameter values were invalid: "


def _type(av: dict[str, Any]) -> str:
    return next(iter(av))


class Placeholders:
    """Generated ``#names`` and ``:values`` under a prefix that none of the request's own uses."""

    def __init__(self, names: dict[str, str] | None, values: dict[str, Any] | None) -> None:
        taken = list(names or {}) + list(values or {})
        prefix = "legacy"
        while any(k[1:].startswith(prefix) for k in taken):
            prefix += "x"
        self.prefix = prefix
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._by_attr: dict[str, str] = {}

    def name(self, attr: str) -> str:
        """The ``#placeholder`` of a top-level attribute name (one per name)."""
        if attr not in self._by_attr:
            ph = f"#{self.prefix}{len(self._by_attr)}"
            self._by_attr[attr] = ph
            self.names[ph] = attr
        return self._by_attr[attr]

    def value(self, av: dict[str, Any]) -> str:
        ph = f":{self.prefix}{len(self.values)}"
        self.values[ph] = av
        return ph


# ---------------------------------------------------------------- shapes


def _map(p: dict[str, Any], param: str) -> dict[str, Any] | None:
    m = p.get(param)
    if m is None:
        return None
    if not isinstance(m, dict):
        raise errors.serialization("Unexpected value type in payload")
    for v in m.values():
        if v is not None and not isinstance(v, dict):
            raise errors.serialization("Unexpected value type in payload")
    return m


def _value_list(cond: dict[str, Any]) -> list[Any] | None:
    avl = cond.get("AttributeValueList")
    if avl is not None and not isinstance(avl, list):
        raise errors.serialization("Unexpected value type in payload")
    return avl


def _field(param: str) -> str:
    return param[0].lower() + param[1:]


def _check_enums(p: dict[str, Any], applicable: list[str]) -> None:
    """The constraint errors (``1 validation error detected: ...``) of the legacy parameters."""
    problems: list[str] = []
    op = p.get("ConditionalOperator")
    if op is not None and op not in CONDITIONAL_OPERATORS:
        problems.append(f"Value '{op}' at 'conditionalOperator' failed to satisfy constraint: "
                        f"Member must satisfy enum value set: [{', '.join(CONDITIONAL_OPERATORS)}]")
    for param in ("Expected", "KeyConditions", "QueryFilter", "ScanFilter"):
        conds = _map(p, param) if param in applicable else None
        for attr, cond in (conds or {}).items():
            where = f"{_field(param)}.{attr}.member.comparisonOperator"
            cop = (cond or {}).get("ComparisonOperator")
            if cop is None:
                if param != "Expected":
                    problems.append(f"Value null at '{where}' failed to satisfy constraint: Member must not be null")
            elif cop not in COMPARISON_OPERATORS:
                problems.append(f"Value '{cop}' at '{where}' failed to satisfy constraint: Member must satisfy enum "
                                f"value set: [{', '.join(COMPARISON_OPERATORS)}]")
    updates = _map(p, "AttributeUpdates") if "AttributeUpdates" in applicable else None
    for attr, upd in (updates or {}).items():
        action = (upd or {}).get("Action")
        if action is not None and action not in ACTIONS:
            problems.append(f"Value '{action}' at 'attributeUpdates.{attr}.member.action' failed to satisfy "
                            f"constraint: Member must satisfy enum value set: [{', '.join(ACTIONS)}]")
    atg = p.get("AttributesToGet") if "AttributesToGet" in applicable else None
    if atg is not None:
        if not isinstance(atg, list) or not all(isinstance(a, str) for a in atg):
            raise errors.serialization("Unexpected value type in payload")
        if not atg:
            problems.append("Value '[]' at 'attributesToGet' failed to satisfy constraint: "
                            "Member must have length greater than or equal to 1")
    raise_constraints(problems[:10])


# ---------------------------------------------------------------- conditions


def check_arguments(op: str, args: list[Any]) -> list[dict[str, Any]]:
    """Validate the AttributeValueList of one ComparisonOperator; returns the normalized values."""
    lo, hi = _ARGS.get(op, (1, 1))
    if len(args) < lo or (hi is not None and len(args) > hi):
        raise errors.validation(f"{_INVALID}Invalid number of argument(s) for the {op} ComparisonOperator")
    values = [validate_value(a) for a in args]
    if values and any(_type(v) != _type(values[0]) for v in values):
        raise errors.validation(f"{_INVALID}AttributeValues inside AttributeValueList must be of same type")
    allowed = _TYPES.get(op)
    for v in values:
        if allowed is not None and _type(v) not in allowed:
            raise errors.validation(f"{_INVALID}ComparisonOperator {op} is not valid for {_type(v)} AttributeValue type")
    if op == "BETWEEN":
        order = compare(values[0], values[1])
        if order is not None and order > 0:
            raise errors.validation("The BETWEEN condition was provided a range where the lower bound is greater "
                                    "than the upper bound")
    return values


def condition_text(ph: Placeholders, attr: str, op: str, values: list[dict[str, Any]]) -> str:
    """The expression text of ``attr <op> values`` (arguments already checked)."""
    n = ph.name(attr)
    if op in _COMPARE:
        return f"{n} {_COMPARE[op]} {ph.value(values[0])}"
    if op == "NOT_NULL":
        return f"attribute_exists({n})"
    if op == "NULL":
        return f"attribute_not_exists({n})"
    if op == "CONTAINS":
        return f"contains({n}, {ph.value(values[0])})"
    if op == "NOT_CONTAINS":  # a missing attribute does not satisfy NOT_CONTAINS
        return f"attribute_exists({n}) AND NOT contains({n}, {ph.value(values[0])})"
    if op == "BEGINS_WITH":
        return f"begins_with({n}, {ph.value(values[0])})"
    if op == "IN":
        return f"{n} IN ({', '.join(ph.value(v) for v in values)})"
    assert op == "BETWEEN"
    return f"{n} BETWEEN {ph.value(values[0])} AND {ph.value(values[1])}"


def _join(parts: list[str], op: str) -> str | None:
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return f" {op} ".join(f"({part})" for part in parts)


def _conditional_operator(p: dict[str, Any], conds: dict[str, Any] | None) -> str:
    op = p.get("ConditionalOperator")
    if op is None:
        return "AND"
    if not conds:
        raise errors.validation("ConditionalOperator cannot be used without Filter or Expected")
    if len(conds) == 1:
        raise errors.validation("ConditionalOperator can only be used when Filter or Expected has two or more "
                                "elements")
    return str(op)


def expected_condition(ph: Placeholders, expected: dict[str, Any], conditional_operator: str) -> str | None:
    """``Expected`` as a ConditionExpression."""
    parts = []
    for attr, ev in expected.items():
        if ev is None:
            raise errors.validation(f"{_INVALID}ExpectedAttributeValue must not be null for Attribute: {attr}")
        op, exists, value, avl = ev.get("ComparisonOperator"), ev.get("Exists"), ev.get("Value"), _value_list(ev)
        if exists is not None and not isinstance(exists, bool):
            raise errors.serialization("Unexpected value type in payload")
        if exists is not None and op is not None:
            raise errors.validation(f"{_INVALID}Exists and ComparisonOperator cannot be used together for "
                                    f"Attribute: {attr}")
        if value is not None and avl is not None:
            raise errors.validation(f"{_INVALID}Value and AttributeValueList cannot be used together for "
                                    f"Attribute: {attr}")
        if op is None and avl is not None:
            raise errors.validation(f"{_INVALID}AttributeValueList can only be used with a ComparisonOperator "
                                    f"for Attribute: {attr}")
        if exists is False and value is not None:
            raise errors.validation(f"{_INVALID}Value cannot be used when Exists is false for Attribute: {attr}")
        if value is None and avl is None:
            if op is not None and op not in ("NULL", "NOT_NULL"):
                raise errors.validation(f"{_INVALID}Value or AttributeValueList must be used with "
                                        f"ComparisonOperator: {op} for Attribute: {attr}")
            if op is None and exists is not False:
                raise errors.validation(f"{_INVALID}Value must be provided when Exists is "
                                        f"{'null' if exists is None else 'true'} for Attribute: {attr}")
        if op is None:
            if exists is False:
                parts.append(condition_text(ph, attr, "NULL", []))
            else:
                parts.append(condition_text(ph, attr, "EQ", [validate_value(value)]))
            continue
        args = [value] if value is not None else (avl or [])
        parts.append(condition_text(ph, attr, op, check_arguments(op, args)))
    return _join(parts, conditional_operator)


def filter_condition(ph: Placeholders, conds: dict[str, Any], conditional_operator: str) -> str | None:
    """``QueryFilter``/``ScanFilter`` as a FilterExpression."""
    parts = []
    for attr, cond in conds.items():
        if cond is None:
            raise errors.validation(f"The filter condition for an attribute cannot be null: {attr}")
        op = cond["ComparisonOperator"]
        parts.append(condition_text(ph, attr, op, check_arguments(op, _value_list(cond) or [])))
    return _join(parts, conditional_operator)


def key_condition(ph: Placeholders, conds: dict[str, Any]) -> str:
    """``KeyConditions`` as a KeyConditionExpression (the key schema is checked afterwards)."""
    if not 1 <= len(conds) <= 2:
        raise errors.validation("Conditions can be of length 1 or 2 only")
    parts = []
    for attr, cond in conds.items():
        if cond is None:
            raise errors.validation(f"The filter condition for an attribute cannot be null: {attr}")
        op = cond["ComparisonOperator"]
        values = check_arguments(op, _value_list(cond) or [])
        if op not in KEY_OPERATORS:
            raise errors.validation("Attempted conditional constraint is not an indexable operation")
        parts.append(condition_text(ph, attr, op, values))
    return " AND ".join(parts)


# ---------------------------------------------------------------- updates and projections


def update_text(ph: Placeholders, updates: dict[str, Any]) -> str | None:
    """``AttributeUpdates`` as an UpdateExpression."""
    clauses: dict[str, list[str]] = {"SET": [], "REMOVE": [], "ADD": [], "DELETE": []}
    for attr, upd in updates.items():
        if upd is None:
            raise errors.validation("Supplied AttributeValueUpdate is empty, must contain one of the supported "
                                    f"actions: {attr} is null")
        action = upd.get("Action") or "PUT"
        value = validate_value(upd["Value"]) if upd.get("Value") is not None else None
        if value is None and action != "DELETE":
            raise errors.validation(f"{_INVALID}Only DELETE action is allowed when no attribute value is specified")
        if action == "DELETE" and value is not None and _type(value) not in _SET_TYPES:
            raise errors.validation(f"{_INVALID}DELETE action with value is not supported for the type {_type(value)}")
        if action == "ADD" and value is not None and _type(value) not in _ADD_TYPES:
            raise errors.validation(f"{_INVALID}ADD action is not supported for the type {_type(value)}")
        n = ph.name(attr)
        if action == "PUT":
            assert value is not None
            clauses["SET"].append(f"{n} = {ph.value(value)}")
        elif action == "DELETE":
            if value is None:
                clauses["REMOVE"].append(n)
            else:
                clauses["DELETE"].append(f"{n} {ph.value(value)}")
        else:
            assert value is not None
            if _type(value) == "L":  # ADD of a list appends to the list (or creates it)
                empty = ph.value({"L": []})
                clauses["SET"].append(f"{n} = list_append(if_not_exists({n}, {empty}), {ph.value(value)})")
            else:
                clauses["ADD"].append(f"{n} {ph.value(value)}")
    text = " ".join(f"{clause} {', '.join(actions)}" for clause, actions in clauses.items() if actions)
    return text or None


def projection_text(ph: Placeholders, attrs: list[str], select: Any) -> str:
    """``AttributesToGet`` as a ProjectionExpression."""
    seen: set[str] = set()
    for a in attrs:
        if not a:
            raise errors.validation("Empty attribute name")
        if a in seen:
            raise errors.validation(f"{_INVALID}Duplicate value in attribute name: {a}")
        seen.add(a)
    if select == "COUNT":
        raise errors.counted("Cannot specify the AttributesToGet when choosing to get only the Count")
    if select in ("ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES"):
        raise errors.counted(f"Cannot specify the AttributesToGet when choosing to get {select}")
    return ", ".join(ph.name(a) for a in attrs)


# ---------------------------------------------------------------- the request


def _applicable(kinds: dict[str, str]) -> list[str]:
    """The legacy parameters of the operation whose expressions are ``kinds``."""
    out = []
    if "update" in kinds:
        out.append("AttributeUpdates")
    if "projection" in kinds:
        out.append("AttributesToGet")
    if "condition" in kinds:
        out.append("Expected")
    if "filter" in kinds:
        out.append("QueryFilter" if "key_condition" in kinds else "ScanFilter")
    if "condition" in kinds or "filter" in kinds:
        out.append("ConditionalOperator")
    if "key_condition" in kinds:
        out.append("KeyConditions")
    return out


def translate(p: dict[str, Any], kinds: dict[str, str], texts: dict[str, Any], names: dict[str, str] | None,
              values: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, str] | None, dict[str, Any] | None]:
    """Add the expressions equivalent to the request's legacy parameters.

    ``kinds`` maps expression kinds (``condition``, ``update``, ...) to their parameter names,
    ``texts`` holds the request's own expression texts by kind, ``names``/``values`` its
    ExpressionAttributeNames/Values.  Returns them with the translations added; raises
    DynamoDB's ValidationException for invalid or mixed legacy parameters.
    """
    applicable = _applicable(kinds)
    present = [param for param in applicable if p.get(param) is not None]
    if not present:
        return texts, names, values
    expressions = [param for param in EXPRESSIONS if param in kinds.values() and p.get(param) is not None]
    mixed = [param for param in present if param != "KeyConditions" or "KeyConditionExpression" in expressions]
    if expressions and mixed:
        raise errors.validation("Can not use both expression and non-expression parameters in the same request: "
                                f"Non-expression parameters: {{{', '.join(mixed)}}} "
                                f"Expression parameters: {{{', '.join(expressions)}}}")
    _check_enums(p, applicable)
    ph = Placeholders(names, values)
    out = dict(texts)
    filter_param = "QueryFilter" if "key_condition" in kinds else "ScanFilter"
    conds_param = "Expected" if "condition" in kinds else filter_param
    conditional_operator = _conditional_operator(p, _map(p, conds_param))
    generated: dict[str, str | None] = {}
    if "key_condition" in kinds and p.get("KeyConditions") is not None:
        generated["key_condition"] = key_condition(ph, _map(p, "KeyConditions") or {})
    if "condition" in kinds and p.get("Expected") is not None:
        generated["condition"] = expected_condition(ph, _map(p, "Expected") or {}, conditional_operator)
    if "filter" in kinds and p.get(filter_param) is not None:
        generated["filter"] = filter_condition(ph, _map(p, filter_param) or {}, conditional_operator)
    if "update" in kinds and p.get("AttributeUpdates") is not None:
        generated["update"] = update_text(ph, _map(p, "AttributeUpdates") or {})
    if "projection" in kinds and p.get("AttributesToGet") is not None:
        generated["projection"] = projection_text(ph, p["AttributesToGet"], p.get("Select"))
    out.update({kind: text for kind, text in generated.items() if text is not None})
    new_names = (names or {}) | ph.names
    new_values = (values or {}) | ph.values
    return out, new_names or None, new_values or None
