"""PartiQL statements parsed and translated into DynamoDB requests (no broker)."""

from __future__ import annotations

from typing import Any

import pytest

from dynamolog import errors
from services.router.partiql import decode_token, encode_token
from services.router.partiql_parser import (
    Delete,
    Insert,
    Select,
    Update,
    check_parameters,
    parse,
    tokenize,
    translate,
)


def req(statement: str, *params: dict[str, Any], hk: str = "pk", rk: str | None = "sk",
        single_item: bool = False) -> tuple[str, dict[str, Any]]:
    st = parse(statement)
    r = translate(st, check_parameters(st, list(params)), hk, rk, single_item=single_item)
    return r.operation, r.params


def fails(statement: str, *params: dict[str, Any], **kw: Any) -> str:
    with pytest.raises(errors.ApiError) as e:
        req(statement, *params, **kw)
    assert e.value.type_name == "ValidationException"
    return e.value.message


def resolved(p: dict[str, Any], text: str) -> str:
    """An expression with its placeholders replaced by names and values (for readable asserts)."""
    for ph, name in sorted((p.get("ExpressionAttributeNames") or {}).items(), key=lambda x: -len(x[0])):
        text = text.replace(ph, name)
    for ph, v in sorted((p.get("ExpressionAttributeValues") or {}).items(), key=lambda x: -len(x[0])):
        text = text.replace(ph, repr(next(iter(v.values()))))
    return text


# -- tokens and parsing ---------------------------------------------------------------------
def test_tokens() -> None:
    kinds = [(t.kind, t.text) for t in tokenize("SELECT \"a\"\"b\", 'it''s' <<1.5e3>> <= ? -- note")]
    assert kinds == [("id", "SELECT"), ("qid", '"a""b"'), ("op", ","), ("str", "'it''s'"), ("op", "<<"),
                     ("num", "1.5e3"), ("op", ">>"), ("op", "<="), ("op", "?"), ("end", "")]


def test_parse_kinds_and_parameter_count() -> None:
    assert isinstance(parse('select * from "T"'), Select)
    assert isinstance(parse("INSERT INTO T VALUE {'pk': ?}"), Insert)
    assert isinstance(parse("UPDATE T SET a = ? WHERE pk = ?"), Update)
    assert isinstance(parse("delete from T where pk = ?;"), Delete)
    assert parse("UPDATE T SET a = ?, b = ? WHERE pk = ? AND sk = ?").params == 4
    assert parse('SELECT * FROM "my.table-1"').table == "my.table-1"


@pytest.mark.parametrize("statement", [
    "", "SELEC * FROM t", "SELECT * FROM", "SELECT FROM t", "SELECT * FROM t WHERE",
    "SELECT * FROM t WHERE a", "SELECT * FROM t WHERE a = ", "SELECT * FROM t extra",
    "INSERT INTO t VALUE {'a' 1}", "INSERT INTO t VALUE {'a': 1", "INSERT INTO t VALUE [1]",
    "INSERT INTO t VALUE {'a': 1, 'a': 2}", "INSERT INTO t VALUE {'s': <<>>}",
    "UPDATE t WHERE pk = 1", "UPDATE t SET a = 1", "UPDATE t SET a WHERE pk = 1",
    "DELETE FROM t", "DELETE t WHERE pk = 1", "SELECT * FROM t WHERE a = 'open",
    "SELECT * FROM t WHERE a # 1", "SELECT * FROM t WHERE begins_with(a)",
    "SELECT * FROM t WHERE a BETWEEN 1", "SELECT * FROM t WHERE a IN 1",
])
def test_syntax_errors(statement: str) -> None:
    with pytest.raises(errors.ApiError) as e:
        parse(statement)
    assert e.value.type_name == "ValidationException"
    assert e.value.message.startswith("Statement wasn't well formed, can't be processed: ")


def test_parameter_count() -> None:
    st = parse("SELECT * FROM t WHERE pk = ? AND sk = ?")
    for params in ([], [{"S": "a"}], [{"S": "a"}, {"N": "1"}, {"N": "2"}]):
        with pytest.raises(errors.ApiError) as e:
            check_parameters(st, params)
        assert e.value.message == "Number of parameters in request and statement don't match."
    assert check_parameters(st, [{"S": "a"}, {"N": "1"}]) == [{"S": "a"}, {"N": "1"}]
    assert check_parameters(parse("SELECT * FROM t"), None) == []


def test_parameters_are_validated() -> None:
    with pytest.raises(errors.ApiError):
        check_parameters(parse("SELECT * FROM t WHERE a = ?"), [{"X": "a"}])


# -- SELECT ---------------------------------------------------------------------------------
def test_select_partition_key_equality_is_a_query() -> None:
    op, p = req('SELECT * FROM "T" WHERE pk = ?', {"S": "a"})
    assert op == "Query"
    assert p["TableName"] == "T"
    assert resolved(p, p["KeyConditionExpression"]) == "pk = 'a'"
    assert "FilterExpression" not in p and "ProjectionExpression" not in p


@pytest.mark.parametrize("where, key, filt", [
    ("pk = 'a' AND sk = 1", "pk = 'a' AND sk = '1'", None),
    ("pk = 'a' AND sk < 1", "pk = 'a' AND sk < '1'", None),
    ("pk = 'a' AND sk <= 1", "pk = 'a' AND sk <= '1'", None),
    ("pk = 'a' AND sk > 1", "pk = 'a' AND sk > '1'", None),
    ("pk = 'a' AND sk >= 1", "pk = 'a' AND sk >= '1'", None),
    ("'a' = pk AND 1 < sk", "pk = 'a' AND sk > '1'", None),
    ("pk = 'a' AND sk BETWEEN 1 AND 2", "pk = 'a' AND sk BETWEEN '1' AND '2'", None),
    ("pk = 'a' AND begins_with(sk, 'x')", "pk = 'a' AND begins_with(sk, 'x')", None),
    ("sk > 1 AND pk = 'a' AND x = TRUE", "pk = 'a' AND sk > '1'", "x = True"),
    ("pk = 'a' AND sk > 1 AND sk < 5", "pk = 'a' AND sk > '1'", "sk < '5'"),
    ("pk = 'a' AND (x = 1 OR y = 2)", "pk = 'a'", "((x = '1') OR (y = '2'))"),
    ("pk = 'a' AND sk <> 1", "pk = 'a'", "sk <> '1'"),
])
def test_select_key_and_filter(where: str, key: str, filt: str | None) -> None:
    op, p = req(f"SELECT * FROM T WHERE {where}")
    assert op == "Query"
    assert resolved(p, p["KeyConditionExpression"]) == key
    assert (resolved(p, p["FilterExpression"]) if "FilterExpression" in p else None) == filt


@pytest.mark.parametrize("where, filt", [
    ("pk > 'a'", "pk > 'a'"),
    ("pk = 'a' OR sk = 1", "(pk = 'a') OR (sk = '1')"),
    ("NOT pk = 'a'", "NOT (pk = 'a')"),
    ("a.b[1].c <> 'x'", "a.b[1].c <> 'x'"),
    ("x IN [1, 2]", "x IN ('1', '2')"),
    ("x NOT IN (1)", "NOT (x IN ('1'))"),
    ("size(x) > 3", "size(x) > '3'"),
    ("x IS MISSING", "attribute_not_exists(x)"),
    ("x IS NOT MISSING", "attribute_exists(x)"),
    ("contains(x, 'q') AND attribute_type(y, 'S')", "(contains(x, 'q')) AND (attribute_type(y, 'S'))"),
    ("x != y", "x <> y"),
])
def test_select_other_where_is_a_scan(where: str, filt: str) -> None:
    op, p = req(f"SELECT * FROM T WHERE {where}")
    assert op == "Scan"
    assert resolved(p, p["FilterExpression"]) == filt


def test_select_without_where_is_a_scan() -> None:
    op, p = req('SELECT a, "b c".d, x[0] FROM "T"')
    assert op == "Scan"
    assert resolved(p, p["ProjectionExpression"]) == "a, b c.d, x[0]"
    assert "FilterExpression" not in p and "ExpressionAttributeValues" not in p


def test_hash_only_table_sort_like_conditions_are_filters() -> None:
    op, p = req("SELECT * FROM T WHERE pk = 'a' AND sk = 1", rk=None)
    assert op == "Query"
    assert resolved(p, p["KeyConditionExpression"]) == "pk = 'a'"
    assert resolved(p, p["FilterExpression"]) == "sk = '1'"


def test_names_reused_values_in_order() -> None:
    _, p = req("SELECT pk FROM T WHERE pk = ? AND x = ?", {"S": "a"}, {"N": "2"})
    assert p["ExpressionAttributeNames"] == {"#n0": "pk", "#n1": "x"}
    assert p["ExpressionAttributeValues"] == {":v0": {"S": "a"}, ":v1": {"N": "2"}}
    assert p["ProjectionExpression"] == "#n0"


def test_batch_select_is_a_get_item() -> None:
    op, p = req("SELECT a FROM T WHERE sk = ? AND pk = ?", {"N": "1"}, {"S": "a"}, single_item=True)
    assert op == "GetItem"
    assert p["Key"] == {"pk": {"S": "a"}, "sk": {"N": "1"}}
    assert resolved(p, p["ProjectionExpression"]) == "a"
    assert "mandatory equality" in fails("SELECT * FROM T WHERE pk = 'a'", single_item=True)
    assert "mandatory equality" in fails("SELECT * FROM T", single_item=True)
    assert "equality on all key attributes" in fails("SELECT * FROM T WHERE pk = 'a' AND sk = 1 AND x = 2",
                                                     single_item=True)


# -- literals -------------------------------------------------------------------------------
def test_insert_literals() -> None:
    op, p = req("INSERT INTO T VALUE {'pk': ?, 'n': -1.5e3, 's': 'it''s', 't': TRUE, 'f': false, 'z': NULL, "
                "'m': {'l': [1, 'a', <<'x', 'y', 'x'>>]}, 'ns': <<1, ?>>, \"q\": 'dq'}",
                {"S": "k"}, {"N": "2"}, rk=None)
    assert op == "PutItem"
    assert p["Item"] == {
        "pk": {"S": "k"}, "n": {"N": "-1.5e3"}, "s": {"S": "it's"}, "t": {"BOOL": True}, "f": {"BOOL": False},
        "z": {"NULL": True}, "m": {"M": {"l": {"L": [{"N": "1"}, {"S": "a"}, {"SS": ["x", "y"]}]}}},
        "ns": {"NS": ["1", "2"]}, "q": {"S": "dq"},
    }
    assert resolved(p, p["ConditionExpression"]) == "attribute_not_exists(pk)"


def test_mixed_set_is_refused() -> None:
    with pytest.raises(errors.ApiError) as e:
        req("INSERT INTO T VALUE {'pk': 'a', 's': <<1, 'a'>>}")
    assert e.value.type_name == "ValidationException"


# -- UPDATE and DELETE ----------------------------------------------------------------------
def test_update() -> None:
    op, p = req("UPDATE T SET a = ?, b = b + 1, c = list_append(c, [1]) REMOVE d, e.f SET g = if_not_exists(g, 0) "
                "WHERE pk = ? AND sk = 2 AND h > 1", {"S": "v"}, {"S": "k"})
    assert op == "UpdateItem"
    assert p["Key"] == {"pk": {"S": "k"}, "sk": {"N": "2"}}
    assert resolved(p, p["UpdateExpression"]) == ("SET a = 'v', b = b + '1', c = list_append(c, [{'N': '1'}]), "
                                                  "g = if_not_exists(g, '0') REMOVE d, e.f")
    assert resolved(p, p["ConditionExpression"]) == "attribute_exists(pk) AND h > '1'"


def test_update_and_delete_need_the_full_key() -> None:
    message = "Where clause does not contain a mandatory equality on all key attributes"
    assert fails("UPDATE T SET a = 1 WHERE pk = 'a'") == message
    assert fails("UPDATE T SET a = 1 WHERE sk = 1") == message
    assert fails("UPDATE T SET a = 1 WHERE pk = 'a' OR sk = 1") == message
    assert fails("DELETE FROM T WHERE pk > 'a' AND sk = 1") == message
    assert fails("DELETE FROM T WHERE pk = 'a'") == message
    assert fails("DELETE FROM T WHERE pk = x AND sk = 1") == message


def test_delete() -> None:
    op, p = req("DELETE FROM T WHERE pk = ?", {"S": "a"}, rk=None)
    assert op == "DeleteItem"
    assert p == {"TableName": "T", "Key": {"pk": {"S": "a"}}}
    op, p = req("DELETE FROM T WHERE pk = 'a' AND sk = 1 AND attribute_exists(x)")
    assert p["Key"] == {"pk": {"S": "a"}, "sk": {"N": "1"}}
    assert resolved(p, p["ConditionExpression"]) == "attribute_exists(x)"


@pytest.mark.parametrize("clause, rv", [
    ("RETURNING ALL OLD *", "ALL_OLD"),
    ("RETURNING MODIFIED OLD *", "UPDATED_OLD"),
    ("returning all new *", "ALL_NEW"),
    ("RETURNING Modified New *", "UPDATED_NEW"),
])
def test_update_returning(clause: str, rv: str) -> None:
    st = parse(f"UPDATE T SET a = 1 REMOVE b WHERE pk = ? AND sk = 2 {clause};")
    assert isinstance(st, Update)
    assert st.returning == rv
    assert st.params == 1
    # RETURNING is left to the caller: the request itself is the one without it
    plain = parse("UPDATE T SET a = 1 REMOVE b WHERE pk = ? AND sk = 2")
    assert isinstance(plain, Update) and plain.returning is None
    params = [{"S": "k"}]
    assert translate(st, params, "pk", "sk") == translate(plain, params, "pk", "sk")


def test_update_returning_after_a_full_where() -> None:
    st = parse("UPDATE T SET a = ? WHERE pk = ? AND sk = 2 AND (x > 1 OR begins_with(y, 'z')) RETURNING ALL NEW *")
    assert isinstance(st, Update) and st.returning == "ALL_NEW" and st.params == 2
    op, p = req("UPDATE T SET a = ? WHERE pk = ? AND sk = 2 AND x > 1 RETURNING ALL NEW *",
                {"S": "v"}, {"S": "k"})
    assert op == "UpdateItem" and "ReturnValues" not in p
    assert resolved(p, p["ConditionExpression"]) == "attribute_exists(pk) AND x > '1'"


def test_delete_returning() -> None:
    st = parse("DELETE FROM T WHERE pk = 'a' RETURNING ALL OLD *")
    assert isinstance(st, Delete) and st.returning == "ALL_OLD"
    assert parse("DELETE FROM T WHERE pk = 'a'").returning is None  # type: ignore[union-attr]
    op, p = req("DELETE FROM T WHERE pk = 'a' RETURNING ALL OLD *", rk=None)
    assert op == "DeleteItem" and p == {"TableName": "T", "Key": {"pk": {"S": "a"}}}


@pytest.mark.parametrize("statement", [
    "UPDATE T SET a = 1 WHERE pk = 'a' RETURNING",
    "UPDATE T SET a = 1 WHERE pk = 'a' RETURNING ALL",
    "UPDATE T SET a = 1 WHERE pk = 'a' RETURNING ALL NEW",
    "UPDATE T SET a = 1 WHERE pk = 'a' RETURNING NEW ALL *",
    "UPDATE T SET a = 1 WHERE pk = 'a' RETURNING SOME NEW *",
    "UPDATE T SET a = 1 WHERE pk = 'a' RETURNING ALL NEWER *",
    "UPDATE T SET a = 1 WHERE pk = 'a' RETURNING ALL NEW a",
    "UPDATE T SET a = 1 WHERE pk = 'a' RETURNING ALL NEW * *",
    "UPDATE T SET a = 1 RETURNING ALL NEW * WHERE pk = 'a'",
    "DELETE FROM T WHERE pk = 'a' RETURNING ALL NEW *",
    "DELETE FROM T WHERE pk = 'a' RETURNING MODIFIED OLD *",
    "DELETE FROM T WHERE pk = 'a' RETURNING ALL OLD",
    "SELECT * FROM T WHERE pk = 'a' RETURNING ALL OLD *",
    "INSERT INTO T VALUE {'pk': 'a'} RETURNING ALL OLD *",
])
def test_returning_syntax_errors(statement: str) -> None:
    with pytest.raises(errors.ApiError) as e:
        parse(statement)
    assert e.value.type_name == "ValidationException"
    assert e.value.message.startswith("Statement wasn't well formed, can't be processed: ")


def test_select_names_an_index_and_writes_cannot() -> None:
    st = parse('SELECT * FROM "T"."idx" WHERE g = 1')
    assert isinstance(st, Select) and (st.table, st.index) == ("T", "idx")
    req = translate(st, [], "g", None)
    assert req.operation == "Query" and req.params["IndexName"] == "idx"
    for statement in ('DELETE FROM "T"."idx" WHERE pk = 1', 'UPDATE "T"."idx" SET a = 1 WHERE pk = 1',
                      'INSERT INTO "T"."idx" VALUE {\'pk\': 1}'):
        with pytest.raises(errors.ApiError) as e:
            parse(statement)
        assert e.value.message.startswith("Statement wasn't well formed, can't be processed: Unexpected token")


# -- NextToken ------------------------------------------------------------------------------
def test_next_token_round_trip() -> None:
    key = {"pk": {"S": "a"}, "sk": {"N": "1"}}
    assert decode_token(encode_token(key)) == key
    for bad in ("not a token", "e30=", encode_token(key)[:-4]):
        with pytest.raises(errors.ApiError) as e:
            decode_token(bad)
        assert e.value.message == "Given NextToken is not valid"
