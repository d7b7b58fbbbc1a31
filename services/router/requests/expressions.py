"""The expressions of one request: parsed and resolved once, unused names and values rejected,
legacy parameters translated into expressions first (services/router/legacy.py)."""

from __future__ import annotations

from typing import Any

from dynamolog import errors, expr
from dynamolog.attrs import validate_value

from .. import legacy

#: request parameters that make Expressions do any work (besides the expression parameters)
_EXPRESSION_KEYS = ("ExpressionAttributeNames", "ExpressionAttributeValues", "Expected", "AttributeUpdates",
                    "AttributesToGet", "KeyConditions", "QueryFilter", "ScanFilter", "ConditionalOperator")


def parse_values(values: Any) -> dict[str, Any] | None:
    """ExpressionAttributeValues, each value checked."""
    if values is None:
        return None
    if not isinstance(values, dict):
        raise errors.serialization("Unexpected value type in payload")
    return {k: validate_value(v) for k, v in values.items()}


class Expressions:
    """The expressions of one request.

    ``kinds`` maps the expression kinds the operation takes (``condition``, ``update``,
    ``filter``, ``key_condition``, ``projection``) to their parameter names.  The attributes are
    set once here and not changed afterwards.
    """

    __slots__ = ("condition", "filter", "key_condition", "names", "projection", "texts", "update", "values")

    def __init__(self, p: dict[str, Any], **kinds: str) -> None:
        #: ExpressionAttributeNames, with the names of translated legacy parameters added
        self.names: dict[str, str] | None = None
        #: ExpressionAttributeValues, checked, with the values of translated legacy parameters added
        self.values: dict[str, Any] | None = None
        #: each expression's text by kind (what the storage node parses again)
        self.texts: dict[str, Any] = {}
        #: the resolved expressions (None when the request has none of that kind)
        self.condition: expr.Condition | None = None
        self.filter: expr.Condition | None = None
        self.key_condition: expr.Condition | None = None
        self.update: expr.Update | None = None
        self.projection: list[expr.Path] | None = None
        if not any(k in p for k in _EXPRESSION_KEYS) and not any(param in p for param in kinds.values()):
            return  # the common case of a request without any expression: nothing to parse or check
        names = p.get("ExpressionAttributeNames")
        values = parse_values(p.get("ExpressionAttributeValues"))
        texts = {kind: p.get(param) for kind, param in kinds.items() if p.get(param) is not None}
        if names is not None and not isinstance(names, dict):
            raise errors.serialization("Unexpected value type in payload")
        if any(not isinstance(t, str) for t in texts.values()) or (
                names is not None and any(not isinstance(v, str) for v in names.values())):
            raise errors.serialization("Unexpected value type in payload")  # found by tests/fuzz
        if names == {}:
            raise errors.validation("ExpressionAttributeNames must not be empty")
        if values == {}:
            raise errors.validation("ExpressionAttributeValues must not be empty")
        if not texts:
            if names is not None:
                raise errors.validation("ExpressionAttributeNames can only be specified when using expressions")
            if values is not None:
                raise errors.validation("ExpressionAttributeValues can only be specified when using expressions")
        texts, names, values = legacy.translate(p, kinds, texts, names, values)
        self.names = names
        self.values = values
        self.texts = texts
        r = expr.Resolver(names, values)
        if "condition" in texts:
            self.condition = r.condition(expr.parse_condition(texts["condition"]), "ConditionExpression")
        if "key_condition" in texts:
            self.key_condition = r.condition(expr.parse_key_condition(texts["key_condition"]), "KeyConditionExpression")
        if "filter" in texts:
            self.filter = r.condition(expr.parse_condition(texts["filter"], "FilterExpression"), "FilterExpression")
        if "update" in texts:
            self.update = r.update(expr.parse_update(texts["update"]))
        if "projection" in texts:
            self.projection = r.projection(expr.parse_projection(texts["projection"]))
        r.finish()

    def wire(self) -> dict[str, Any]:
        """What the storage node needs to evaluate them again."""
        return {
            "cond": self.texts.get("condition"),
            "update": self.texts.get("update"),
            "filter": self.texts.get("filter"),
            "proj": self.texts.get("projection"),
            "names": self.names,
            "values": self.values,
        }
