"""Expression limits (4 KB, 300 operators) and number arithmetic at DynamoDB's range edges."""

from __future__ import annotations

import pytest

from dynamolog.errors import ApiError
from dynamolog.expr import parse_condition, parse_projection, parse_update
from dynamolog.expr.values import arith

BIG = "9.9999999999999999999999999999999999999E+125"


def _message(e: pytest.ExceptionInfo[ApiError]) -> str:
    return str(e.value.message if hasattr(e.value, "message") else e.value)


def test_expression_size_limit_counts_utf8_bytes() -> None:
    ok = "a = :v" + " " * (4096 - 6)
    parse_condition(ok)
    with pytest.raises(ApiError) as e:
        parse_condition(ok + " ")
    assert "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; " \
           "expression size: 4097" in _message(e)
    with pytest.raises(ApiError) as e:
        parse_projection("#" + "é" * 2048)
    assert "Invalid ProjectionExpression: Expression size has exceeded" in _message(e)


def test_operator_count_limit() -> None:
    parse_condition(" AND ".join(["a = :v"] * 150))  # 299
    with pytest.raises(ApiError) as e:
        parse_condition(" AND ".join(["a = :v"] * 151), "FilterExpression")
    assert "Invalid FilterExpression: The expression contains too many operators; operator count: 301" in _message(e)
    with pytest.raises(ApiError) as e:
        parse_condition(" OR ".join(["contains(a, :v)"] * 151))
    assert "operator count: 301" in _message(e)
    with pytest.raises(ApiError) as e:
        parse_update("SET " + ", ".join(f"a{i} = a{i} + :v" for i in range(200)))
    assert "Invalid UpdateExpression: The expression contains too many operators" in _message(e)


@pytest.mark.parametrize("a, b, phrase", [
    (BIG, BIG, "Number overflow"),
    ("-" + BIG, "-" + BIG, "Number overflow"),
    ("1E-130", "-1.1E-130", "Number underflow"),
    ("1", "1E-130", "more than 38 significant digits"),
    ("1" * 38, "0.1", "more than 38 significant digits"),
])
def test_arith_refusals(a: str, b: str, phrase: str) -> None:
    with pytest.raises(ApiError) as e:
        arith("+", a, b)
    assert phrase in _message(e)


def test_arith_exact_results() -> None:
    assert arith("+", "1.5", "2.5") == "4"
    assert arith("-", BIG, BIG) == "0"
    assert arith("+", "1E+125", "-1E+125") == "0"
    assert arith("+", "9" * 37, "1") == "1" + "0" * 37
    assert arith("-", "2E-130", "1E-130") == "0." + "0" * 129 + "1"
