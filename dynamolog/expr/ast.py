"""AST of DynamoDB expressions: plain frozen dataclasses.

A parsed (unresolved) tree holds :class:`NameRef` path elements and :class:`Value` nodes
without a value; :class:`~dynamolog.expr.resolve.Resolver` returns a copy where path elements
are plain ``str`` (attribute names) / ``int`` (list indexes) and every ``Value`` carries its
attribute value in wire form (``{"S": "x"}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class NameRef:
    """An ``#name`` placeholder inside a document path (before resolution)."""

    name: str


PathElement = str | int | NameRef


@dataclass(frozen=True, slots=True)
class Path:
    """A document path such as ``a.b[2].c``; ints are list indexes."""

    elements: tuple[PathElement, ...]

    def __str__(self) -> str:
        out = ""
        for e in self.elements:
            if isinstance(e, int):
                out += f"[{e}]"
            else:
                name = e.name if isinstance(e, NameRef) else e
                out += f".{name}" if out else name
        return out

    def describe(self) -> str:
        """DynamoDB's rendering in overlap messages, e.g. ``[a, b, [0]]``."""
        parts = [f"[{e}]" if isinstance(e, int) else (e.name if isinstance(e, NameRef) else e)
                 for e in self.elements]
        return "[" + ", ".join(parts) + "]"


@dataclass(frozen=True, slots=True)
class Value:
    """An ``:value`` placeholder; ``value`` is filled in by the resolver."""

    ref: str
    value: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Size:
    """``size(path)`` used as an operand; DynamoDB also takes ``size(:value)``."""

    path: Path | Value


Operand = Path | Value | Size


# ---------------------------------------------------------------- conditions


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op right`` with ``op`` one of ``= <> < <= > >=``."""

    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class Between:
    """``operand BETWEEN low AND high``."""

    operand: Operand
    low: Operand
    high: Operand


@dataclass(frozen=True, slots=True)
class In:
    """``operand IN (options...)``."""

    operand: Operand
    options: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class Function:
    """A boolean function: attribute_exists, attribute_not_exists, attribute_type,
    begins_with or contains (lower-case ``name``)."""

    name: str
    args: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class And:
    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Or:
    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Not:
    operand: Condition


Condition = Compare | Between | In | Function | And | Or | Not


# ---------------------------------------------------------------- updates


@dataclass(frozen=True, slots=True)
class IfNotExists:
    """``if_not_exists(path, default)``."""

    path: Path
    default: SetValue


@dataclass(frozen=True, slots=True)
class ListAppend:
    """``list_append(first, second)``."""

    first: SetValue
    second: SetValue


@dataclass(frozen=True, slots=True)
class Arith:
    """``left + right`` or ``left - right``."""

    op: str
    left: SetValue
    right: SetValue


SetValue = Path | Value | IfNotExists | ListAppend | Arith


@dataclass(frozen=True, slots=True)
class SetAction:
    path: Path
    value: SetValue


@dataclass(frozen=True, slots=True)
class AddAction:
    path: Path
    value: Value


@dataclass(frozen=True, slots=True)
class DeleteAction:
    path: Path
    value: Value


@dataclass(frozen=True, slots=True)
class Update:
    """A whole update expression, clause by clause (each clause appears at most once)."""

    set: tuple[SetAction, ...] = ()
    remove: tuple[Path, ...] = ()
    add: tuple[AddAction, ...] = ()
    delete: tuple[DeleteAction, ...] = ()

    def paths(self) -> list[Path]:
        """Every path written by the update, in clause order."""
        return ([a.path for a in self.set] + list(self.remove)
                + [a.path for a in self.add] + [a.path for a in self.delete])
