"""Parsing and resolution of DynamoDB expressions: grammar, precedence, errors, placeholders."""

from __future__ import annotations

import pytest

from dynamolog.errors import ApiError
from dynamolog.expr import (
    RESERVED,
    Resolver,
    is_reserved,
    parse_condition,
    parse_key_condition,
    parse_projection,
    parse_update,
)
from dynamolog.expr.ast import (
    And,
    Arith,
    Between,
    Compare,
    Function,
    IfNotExists,
    In,
    ListAppend,
    NameRef,
    Not,
    Or,
    Path,
    Size,
    Value,
)


def err(fn, *args) -> str:
    with pytest.raises(ApiError) as e:
        fn(*args)
    assert e.value.type_name == "ValidationException"
    return e.value.message


# ---------------------------------------------------------------- paths


def test_nested_path():
    c = parse_condition("a.b[2].c = :v")
    assert c == Compare("=", Path(("a", "b", 2, "c")), Value(":v"))


def test_multi_index_path_and_name_placeholder():
    c = parse_condition("#n.x[0][1] = :v")
    assert c.left == Path((NameRef("#n"), "x", 0, 1))


def test_projection_paths():
    assert parse_projection("a, b.c, d[1]") == [Path(("a",)), Path(("b", "c")), Path(("d", 1))]


def test_projection_syntax_error():
    assert err(parse_projection, "a,") == 'Invalid ProjectionExpression: Syntax error; token: "<EOF>", near: ","'


# ---------------------------------------------------------------- conditions


@pytest.mark.parametrize("op", ["=", "<>", "<", "<=", ">", ">="])
def test_comparators(op):
    assert parse_condition(f"a {op} :v") == Compare(op, Path(("a",)), Value(":v"))


def test_between():
    assert parse_condition("a BETWEEN :lo AND :hi") == Between(Path(("a",)), Value(":lo"), Value(":hi"))


def test_in():
    c = parse_condition("a IN (:x, :y, b)")
    assert c == In(Path(("a",)), (Value(":x"), Value(":y"), Path(("b",))))


def test_in_too_many():
    text = "a IN (" + ", ".join(f":v{i}" for i in range(101)) + ")"
    assert "The IN operator is provided with too many operands" in err(parse_condition, text)


def test_keywords_case_insensitive():
    c = parse_condition("not a = :v and b between :x and :y or c in (:z)")
    assert isinstance(c, Or) and isinstance(c.left, And) and isinstance(c.left.left, Not)


def test_precedence_and_over_or():
    c = parse_condition("a = :a OR b = :b AND c = :c")
    assert isinstance(c, Or) and isinstance(c.right, And)


def test_precedence_not_over_and():
    c = parse_condition("NOT a = :a AND b = :b")
    assert isinstance(c, And) and isinstance(c.left, Not)


def test_parentheses_override_precedence():
    c = parse_condition("(a = :a OR b = :b) AND c = :c")
    assert isinstance(c, And) and isinstance(c.left, Or)


@pytest.mark.parametrize("name,nargs", [("attribute_exists", 1), ("attribute_not_exists", 1),
                                        ("attribute_type", 2), ("begins_with", 2), ("contains", 2)])
def test_boolean_functions(name, nargs):
    args = ", ".join(["a", ":v"][:nargs])
    c = parse_condition(f"{name}({args})")
    assert isinstance(c, Function) and c.name == name and len(c.args) == nargs


def test_size_operand():
    assert parse_condition("size(a) > :n") == Compare(">", Size(Path(("a",))), Value(":n"))


def test_size_as_condition_rejected():
    assert err(parse_condition, "size(a)") == ("Invalid ConditionExpression: The function is not allowed "
                                               "to be used this way in an expression; function: size")


def test_boolean_function_as_operand_rejected():
    assert err(parse_condition, "attribute_exists(a) = :v").endswith("function: attribute_exists")
    assert err(parse_condition, "a = contains(b, :v)").endswith("function: contains")


def test_unknown_function():
    assert err(parse_condition, "foo(a)") == "Invalid ConditionExpression: Invalid function name; function: foo"


def test_update_function_in_condition():
    assert "not allowed" in err(parse_condition, "if_not_exists(a, :v)")


def test_wrong_arity():
    assert err(parse_condition, "begins_with(a)") == (
        "Invalid ConditionExpression: Incorrect number of operands for operator or function; "
        "operator or function: begins_with, number of operands: 1")


def test_function_requires_path():
    assert err(parse_condition, "attribute_exists(:v)") == (
        "Invalid ConditionExpression: Operator or function requires a document path; "
        "operator or function: attribute_exists")


def test_syntax_error_wording():
    assert err(parse_condition, "a = = :v") == 'Invalid ConditionExpression: Syntax error; token: "=", near: "= = :v"'


def test_syntax_error_eof():
    assert err(parse_condition, "a = :v AND") == (
        'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "AND"')


def test_syntax_error_bad_character():
    assert err(parse_condition, "a @ b").startswith('Invalid ConditionExpression: Syntax error; token: "@"')


def test_kind_names_parameter():
    assert err(parse_condition, "a =", "FilterExpression").startswith("Invalid FilterExpression: Syntax error")


def test_empty_expression():
    assert err(parse_condition, "  ") == "Invalid ConditionExpression: The expression can not be empty;"
    assert err(parse_update, "") == "1 validation error detected: Invalid UpdateExpression: The expression can not be empty;"


def test_reserved_word():
    assert err(parse_condition, "status = :v") == (
        "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status")


def test_reserved_word_nested_and_projection():
    assert err(parse_projection, "a.Name").endswith("reserved keyword: Name")


def test_reserved_list():
    assert len(RESERVED) > 550
    for w in ("status", "name", "data", "size", "count", "timestamp", "user", "date", "year"):
        assert is_reserved(w)
    assert not is_reserved("foo")


def test_placeholder_avoids_reserved():
    parse_condition("#status = :v")


def test_parse_is_memoized():
    assert parse_condition("a = :v") is parse_condition("a = :v")
    assert parse_update("SET a = :v") is parse_update("SET a = :v")


# ---------------------------------------------------------------- updates


def test_update_clauses_any_order():
    u = parse_update("DELETE d :s ADD c :n REMOVE b SET a = :v")
    assert len(u.set) == len(u.remove) == len(u.add) == len(u.delete) == 1


def test_update_set_forms():
    u = parse_update("SET a = b + :n, c = :x - d, e = if_not_exists(e, :z), f = list_append(f, :l)")
    vals = [a.value for a in u.set]
    assert isinstance(vals[0], Arith) and vals[0].op == "+"
    assert isinstance(vals[1], Arith) and vals[1].op == "-"
    assert isinstance(vals[2], IfNotExists)
    assert isinstance(vals[3], ListAppend)


def test_update_nested_functions():
    u = parse_update("SET a = list_append(if_not_exists(a, :empty), :v)")
    assert isinstance(u.set[0].value, ListAppend) and isinstance(u.set[0].value.first, IfNotExists)


def test_update_clause_twice():
    assert err(parse_update, "SET a = :v SET b = :w") == (
        'Invalid UpdateExpression: The "SET" section can only be used once in an update expression;')


def test_update_chained_arithmetic_rejected():
    assert "Syntax error" in err(parse_update, "SET a = b + c + d")


def test_update_function_not_allowed():
    assert err(parse_update, "SET a = size(b)") == (
        "Invalid UpdateExpression: The function is not allowed in an update expression; function: size")


def test_update_if_not_exists_requires_path():
    assert "requires a document path" in err(parse_update, "SET a = if_not_exists(:v, :w)")


def test_update_add_needs_value():
    assert "Syntax error" in err(parse_update, "ADD a b")


def test_update_bad_clause():
    assert err(parse_update, "PUT a = :v").startswith('Invalid UpdateExpression: Syntax error; token: "PUT"')


# ---------------------------------------------------------------- key conditions


def test_key_condition_forms():
    parse_key_condition("pk = :v")
    parse_key_condition("pk = :v AND sk BETWEEN :a AND :b")
    parse_key_condition("(pk = :v) AND (begins_with(sk, :p))")


@pytest.mark.parametrize("text,bad", [("pk = :v OR sk = :w", "OR"), ("NOT pk = :v", "NOT"),
                                      ("pk = :v AND sk <> :w", "<>"), ("pk IN (:v)", "IN"),
                                      ("pk = :v AND contains(sk, :w)", "contains")])
def test_key_condition_bad_operator(text, bad):
    assert err(parse_key_condition, text) == (
        f"Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: {bad}")


# ---------------------------------------------------------------- resolution


def test_resolve_names_and_values():
    r = Resolver({"#n": "status"}, {":v": {"S": "x"}})
    c = r.condition(parse_condition("#n.a = :v"), "ConditionExpression")
    assert c == Compare("=", Path(("status", "a")), Value(":v", {"S": "x"}))
    r.finish()


def test_undefined_value():
    r = Resolver(None, {":w": {"S": "x"}})
    assert err(r.condition, parse_condition("a = :v"), "ConditionExpression") == (
        "Invalid ConditionExpression: An expression attribute value used in expression is not defined; "
        "attribute value: :v")


def test_undefined_name():
    r = Resolver(None, None)
    assert err(r.projection, parse_projection("#n")) == (
        "Invalid ProjectionExpression: An expression attribute name used in the document path is not "
        "defined; attribute name: #n")


def test_unused_value():
    r = Resolver(None, {":v": {"S": "x"}, ":w": {"S": "y"}})
    r.condition(parse_condition("a = :w"), "ConditionExpression")
    assert err(r.finish) == "1 validation error detected: Value provided in ExpressionAttributeValues unused in expressions: keys: {:v}"


def test_unused_name_reported_before_values():
    r = Resolver({"#n": "a"}, {":v": {"S": "x"}})
    assert err(r.finish) == "1 validation error detected: Value provided in ExpressionAttributeNames unused in expressions: keys: {#n}"


def test_usage_shared_across_expressions():
    r = Resolver({"#a": "a", "#b": "b"}, {":v": {"N": "1"}})
    r.condition(parse_condition("attribute_exists(#a)"), "ConditionExpression")
    r.update(parse_update("SET #b = :v"))
    r.finish()


def test_empty_maps_rejected():
    assert err(Resolver, {}, None) == "ExpressionAttributeNames must not be empty"
    assert err(Resolver, None, {}) == "ExpressionAttributeValues must not be empty"


def test_invalid_placeholder_keys():
    assert err(Resolver, {"n": "a"}, None) == 'ExpressionAttributeNames contains invalid key: Syntax error; key: "n"'
    assert "ExpressionAttributeValues contains invalid key" in err(Resolver, None, {"v": {"S": "a"}})


def test_begins_with_literal_type():
    r = Resolver(None, {":v": {"N": "1"}})
    assert err(r.condition, parse_condition("begins_with(a, :v)"), "FilterExpression") == (
        "Invalid FilterExpression: Incorrect operand type for operator or function; "
        "operator or function: begins_with, operand type: N")


def test_ordering_literal_type():
    r = Resolver(None, {":v": {"BOOL": True}})
    assert "operator or function: <, operand type: BOOL" in err(
        r.condition, parse_condition("a < :v"), "ConditionExpression")


def test_attribute_type_invalid_type():
    r = Resolver(None, {":t": {"S": "X"}})
    assert "Invalid attribute type name found; type: X" in err(
        r.condition, parse_condition("attribute_type(a, :t)"), "ConditionExpression")


def test_between_bounds_order():
    r = Resolver(None, {":a": {"N": "5"}, ":b": {"N": "1"}})
    assert err(r.condition, parse_condition("x BETWEEN :a AND :b"), "ConditionExpression") == (
        "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal "
        "to lower bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:1}")


def test_projection_overlap():
    r = Resolver(None, None)
    assert err(r.projection, parse_projection("a, a.b")) == (
        "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite "
        "one of these paths; path one: [a], path two: [a, b]")
