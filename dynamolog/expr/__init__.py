"""DynamoDB's expression language: tokenize → parse → resolve → evaluate.

Typical use for one request::

    r = Resolver(names, values)
    cond = r.condition(parse_condition(text), "ConditionExpression")
    upd = r.update(parse_update(update_text))
    r.finish()
    if evaluate(cond, old_item):
        new_item = apply_update(upd, old_item)
"""

from dynamolog import native as _native

_native.use(__name__, __path__)  # before any submodule is imported: the compiled ones, while they match their sources


from dynamolog.expr.ast import Condition, Path, Update, Value
from dynamolog.expr.evaluate import apply_update, evaluate, expression_paths, lookup, project, updated_paths
from dynamolog.expr.keycond import key_condition_parts, multi_key_condition_parts
from dynamolog.expr.parser import parse_condition, parse_key_condition, parse_projection, parse_update
from dynamolog.expr.reserved import RESERVED, is_reserved
from dynamolog.expr.resolve import Resolver

__all__ = [
    "RESERVED",
    "Condition",
    "Path",
    "Resolver",
    "Update",
    "Value",
    "apply_update",
    "evaluate",
    "expression_paths",
    "is_reserved",
    "key_condition_parts",
    "lookup",
    "multi_key_condition_parts",
    "parse_condition",
    "parse_key_condition",
    "parse_projection",
    "parse_update",
    "project",
    "updated_paths",
]
