"""PartiQL: ExecuteStatement, BatchExecuteStatement and ExecuteTransaction, black-box through boto3."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from .helpers import unique

pytestmark = pytest.mark.api


def _error(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def run(ddb: Any, statement: str, *params: dict[str, Any], **kw: Any) -> dict[str, Any]:
    if params:
        kw["Parameters"] = list(params)
    return ddb.execute_statement(Statement=statement, **kw)


def S(v: str) -> dict[str, Any]:
    return {"S": v}


def N(v: float) -> dict[str, Any]:
    return {"N": str(v)}


@pytest.fixture
def pk() -> str:
    return unique("pq")


# -- INSERT ---------------------------------------------------------------------------------
def test_insert_with_literals_and_parameters(ddb: Any, hash_table: str, pk: str) -> None:
    out = run(ddb, f"INSERT INTO \"{hash_table}\" VALUE {{'pk': ?, 'n': 1.5, 's': 'it''s', 'b': TRUE, "
                   "'z': NULL, 'm': {'x': [1, 'two']}, 'ss': <<'a', 'b'>>, 'ns': <<1, 2>>, 'p': ?}",
              S(pk), {"L": [S("q")]})
    assert out["Items"] == []
    item = ddb.get_item(TableName=hash_table, Key={"pk": S(pk)})["Item"]
    assert item == {"pk": S(pk), "n": N(1.5), "s": S("it's"), "b": {"BOOL": True}, "z": {"NULL": True},
                    "m": {"M": {"x": {"L": [N(1), S("two")]}}}, "ss": {"SS": ["a", "b"]},
                    "ns": {"NS": ["1", "2"]}, "p": {"L": [S("q")]}}


def test_insert_existing_item_is_a_duplicate(ddb: Any, hash_table: str, pk: str) -> None:
    run(ddb, f'INSERT INTO "{hash_table}" VALUE {{\'pk\': ?, \'v\': 1}}', S(pk))
    with pytest.raises(ClientError) as e:
        run(ddb, f'INSERT INTO "{hash_table}" VALUE {{\'pk\': ?, \'v\': 2}}', S(pk))
    code, message = _error(e)
    assert code == "DuplicateItemException"
    assert "Duplicate primary key exists in table" in message
    assert ddb.get_item(TableName=hash_table, Key={"pk": S(pk)})["Item"]["v"] == N(1)


def test_insert_without_the_key_is_refused(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        run(ddb, f"INSERT INTO \"{hash_table}\" VALUE {{'other': 1}}")
    code, message = _error(e)
    assert code == "ValidationException"
    assert "Missing the key pk" in message


# -- SELECT ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def songs(ddb: Any, create_table: Any) -> tuple[str, str]:
    """A table (pk S, sk N) with ten items under one partition key and two under another."""
    table = create_table(range=("sk", "N"))
    pk = unique("songs")
    for i in range(10):
        ddb.put_item(TableName=table, Item={"pk": S(pk), "sk": N(i), "name": S(f"song{i}"),
                                            "info": {"M": {"len": N(100 + i)}}, "odd": {"BOOL": i % 2 == 1}})
    for i in range(2):
        ddb.put_item(TableName=table, Item={"pk": S(pk + "x"), "sk": N(i), "name": S(f"other{i}")})
    return table, pk


def _sks(items: list[dict[str, Any]]) -> list[int]:
    return [int(i["sk"]["N"]) for i in items]


def test_select_with_partition_key_is_a_query(ddb: Any, songs: tuple[str, str]) -> None:
    table, pk = songs
    out = run(ddb, f'SELECT * FROM "{table}" WHERE pk = ?', S(pk), ConsistentRead=True)
    assert _sks(out["Items"]) == list(range(10))
    assert "NextToken" not in out
    out = run(ddb, f"SELECT * FROM \"{table}\" WHERE pk = '{pk}'")
    assert len(out["Items"]) == 10


@pytest.mark.parametrize("where, params, expected", [
    ("sk = ?", [N(3)], [3]),
    ("sk < 3", [], [0, 1, 2]),
    ("sk <= 3", [], [0, 1, 2, 3]),
    ("sk > ?", [N(7)], [8, 9]),
    ("sk >= 7", [], [7, 8, 9]),
    ("sk BETWEEN ? AND ?", [N(2), N(4)], [2, 3, 4]),
    ("7 < sk", [], [8, 9]),
    ("sk > 2 AND odd = TRUE", [], [3, 5, 7, 9]),
    ("info.len >= 105", [], [5, 6, 7, 8, 9]),
    ("sk IN [1, 4]", [], [1, 4]),
    ("(sk = 1 OR sk = 2)", [], [1, 2]),
])
def test_select_sort_key_conditions(ddb: Any, songs: tuple[str, str], where: str, params: list[Any],
                                    expected: list[int]) -> None:
    table, pk = songs
    out = run(ddb, f'SELECT * FROM "{table}" WHERE pk = ? AND {where}', S(pk), *params)
    assert _sks(out["Items"]) == expected


def test_select_begins_with_on_string_sort_key(ddb: Any, create_table: Any) -> None:
    table = create_table(range=("sk", "S"))
    for sk in ("a1", "a2", "b1"):
        ddb.put_item(TableName=table, Item={"pk": S("p"), "sk": S(sk)})
    out = run(ddb, f'SELECT sk FROM "{table}" WHERE pk = \'p\' AND begins_with(sk, ?)', S("a"))
    assert out["Items"] == [{"sk": S("a1")}, {"sk": S("a2")}]


def test_select_projection(ddb: Any, songs: tuple[str, str]) -> None:
    table, pk = songs
    out = run(ddb, f'SELECT name, info.len, "sk" FROM "{table}" WHERE pk = ? AND sk = 2', S(pk))
    assert out["Items"] == [{"name": S("song2"), "info": {"M": {"len": N(102)}}, "sk": N(2)}]


def test_select_without_partition_key_is_a_scan(ddb: Any, songs: tuple[str, str]) -> None:
    table, pk = songs
    out = run(ddb, f"SELECT name FROM \"{table}\" WHERE begins_with(name, 'other')")
    assert sorted(i["name"]["S"] for i in out["Items"]) == ["other0", "other1"]
    out = run(ddb, f'SELECT * FROM "{table}" WHERE pk = ? OR sk = 100', S(pk + "x"))
    assert len(out["Items"]) == 2
    out = run(ddb, f'SELECT * FROM "{table}"')
    assert len(out["Items"]) == 12


def test_select_pages_with_next_token(ddb: Any, songs: tuple[str, str]) -> None:
    table, pk = songs
    seen: list[int] = []
    token = None
    pages = 0
    while True:
        kw: dict[str, Any] = {"Limit": 3}
        if token:
            kw["NextToken"] = token
        out = run(ddb, f'SELECT * FROM "{table}" WHERE pk = ?', S(pk), **kw)
        pages += 1
        seen += _sks(out["Items"])
        token = out.get("NextToken")
        if not token:
            break
        assert len(out["Items"]) == 3
    assert seen == list(range(10))
    assert pages in (4, 5)


def test_scan_pages_with_next_token(ddb: Any, songs: tuple[str, str]) -> None:
    table, _ = songs
    names: list[str] = []
    token = None
    for _ in range(20):
        kw: dict[str, Any] = {"Limit": 5}
        if token:
            kw["NextToken"] = token
        out = run(ddb, f'SELECT name FROM "{table}"', **kw)
        names += [i["name"]["S"] for i in out["Items"]]
        token = out.get("NextToken")
        if not token:
            break
    assert sorted(names) == sorted([f"song{i}" for i in range(10)] + ["other0", "other1"])


def test_consumed_capacity(ddb: Any, songs: tuple[str, str]) -> None:
    table, pk = songs
    out = run(ddb, f'SELECT * FROM "{table}" WHERE pk = ?', S(pk), ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"]["TableName"] == table
    assert out["ConsumedCapacity"]["CapacityUnits"] > 0


def test_bad_next_token(ddb: Any, songs: tuple[str, str]) -> None:
    table, pk = songs
    with pytest.raises(ClientError) as e:
        run(ddb, f'SELECT * FROM "{table}" WHERE pk = ?', S(pk), NextToken="not a token")
    code, message = _error(e)
    assert code == "ValidationException"
    assert "NextToken" in message


# -- UPDATE ---------------------------------------------------------------------------------
def test_update_set_arithmetic_and_remove(ddb: Any, range_table: str, pk: str) -> None:
    ddb.put_item(TableName=range_table, Item={"pk": S(pk), "sk": N(1), "a": S("old"), "b": N(5), "c": S("gone"),
                                              "l": {"L": [N(1)]}})
    out = run(ddb, f'UPDATE "{range_table}" SET a = ?, b = b + 1 SET l = list_append(l, [2]) REMOVE c '
                   "WHERE pk = ? AND sk = 1", S("new"), S(pk))
    assert out["Items"] == []
    item = ddb.get_item(TableName=range_table, Key={"pk": S(pk), "sk": N(1)})["Item"]
    assert item == {"pk": S(pk), "sk": N(1), "a": S("new"), "b": N(6), "l": {"L": [N(1), N(2)]}}


def test_update_missing_item_fails_the_condition(ddb: Any, range_table: str, pk: str) -> None:
    with pytest.raises(ClientError) as e:
        run(ddb, f'UPDATE "{range_table}" SET a = 1 WHERE pk = ? AND sk = 1', S(pk))
    assert _error(e)[0] == "ConditionalCheckFailedException"
    assert "Item" not in ddb.get_item(TableName=range_table, Key={"pk": S(pk), "sk": N(1)})


def test_update_with_extra_condition(ddb: Any, hash_table: str, pk: str) -> None:
    ddb.put_item(TableName=hash_table, Item={"pk": S(pk), "v": N(1)})
    with pytest.raises(ClientError) as e:
        run(ddb, f'UPDATE "{hash_table}" SET v = 2 WHERE pk = ? AND v = 5', S(pk))
    assert _error(e)[0] == "ConditionalCheckFailedException"
    run(ddb, f'UPDATE "{hash_table}" SET v = 2 WHERE pk = ? AND v = 1', S(pk))
    assert ddb.get_item(TableName=hash_table, Key={"pk": S(pk)})["Item"]["v"] == N(2)


@pytest.mark.parametrize("where", ["pk = ?", "sk = 1", "pk > ? AND sk = 1", "pk = ? OR sk = 1"])
def test_update_without_full_key(ddb: Any, range_table: str, where: str) -> None:
    params = [S("x")] if "?" in where else []
    with pytest.raises(ClientError) as e:
        run(ddb, f'UPDATE "{range_table}" SET a = 1 WHERE {where}', *params)
    code, message = _error(e)
    assert code == "ValidationException"
    assert "Where clause does not contain a mandatory equality on all key attributes" in message


def test_update_of_a_key_attribute(ddb: Any, hash_table: str, pk: str) -> None:
    with pytest.raises(ClientError) as e:
        run(ddb, f'UPDATE "{hash_table}" SET pk = \'x\' WHERE pk = ?', S(pk))
    code, message = _error(e)
    assert code == "ValidationException"
    assert "This attribute is part of the key" in message


def test_update_returning(ddb: Any, range_table: str, pk: str) -> None:
    # RETURNING ALL OLD / ALL NEW / MODIFIED OLD / MODIFIED NEW: the item (or its changed
    # attributes) before or after the update, as the one element of Items.
    key = {"pk": S(pk), "sk": N(1)}
    old = key | {"a": S("old"), "b": N(5), "c": S("gone"), "keep": S("k")}
    ddb.put_item(TableName=range_table, Item=old)
    out = run(ddb, f'UPDATE "{range_table}" SET a = ?, b = b + 1 REMOVE c WHERE pk = ? AND sk = 1 '
                   "RETURNING ALL OLD *", S("new"), S(pk))
    assert out["Items"] == [old]
    new = key | {"a": S("new"), "b": N(6), "keep": S("k")}
    assert ddb.get_item(TableName=range_table, Key=key, ConsistentRead=True)["Item"] == new

    out = run(ddb, f'UPDATE "{range_table}" SET b = b + 1 WHERE pk = ? AND sk = 1 RETURNING ALL NEW *', S(pk))
    new = new | {"b": N(7)}
    assert out["Items"] == [new]

    out = run(ddb, f'update "{range_table}" set a = \'newer\', d = 1 where pk = ? and sk = 1 returning modified old *',
              S(pk))
    assert out["Items"] == [{"a": S("new")}]

    out = run(ddb, f'UPDATE "{range_table}" SET a = \'newest\' WHERE pk = ? AND sk = 1 RETURNING MODIFIED NEW *',
              S(pk))
    assert out["Items"] == [{"a": S("newest")}]
    assert ddb.get_item(TableName=range_table, Key=key, ConsistentRead=True)["Item"] == new | {
        "a": S("newest"), "d": N(1)}


def test_update_returning_condition_failure(ddb: Any, range_table: str, pk: str) -> None:
    # a failed condition returns nothing and changes nothing
    with pytest.raises(ClientError) as e:
        run(ddb, f'UPDATE "{range_table}" SET a = 1 WHERE pk = ? AND sk = 1 RETURNING ALL OLD *', S(pk))
    assert _error(e)[0] == "ConditionalCheckFailedException"
    assert "Item" not in ddb.get_item(TableName=range_table, Key={"pk": S(pk), "sk": N(1)})


# -- DELETE ---------------------------------------------------------------------------------
def test_delete(ddb: Any, range_table: str, pk: str) -> None:
    ddb.put_item(TableName=range_table, Item={"pk": S(pk), "sk": N(2)})
    out = run(ddb, f'DELETE FROM "{range_table}" WHERE pk = ? AND sk = ?', S(pk), N(2))
    assert out["Items"] == []
    assert "Item" not in ddb.get_item(TableName=range_table, Key={"pk": S(pk), "sk": N(2)})


def test_delete_returning_all_old(ddb: Any, range_table: str, pk: str) -> None:
    # DELETE ... RETURNING ALL OLD *: the deleted item in Items; nothing for a missing item.
    item = {"pk": S(pk), "sk": N(3), "v": S("bye"), "m": {"M": {"x": N(1)}}}
    ddb.put_item(TableName=range_table, Item=item)
    out = run(ddb, f'DELETE FROM "{range_table}" WHERE pk = ? AND sk = 3 RETURNING ALL OLD *', S(pk))
    assert out["Items"] == [item]
    assert "Item" not in ddb.get_item(TableName=range_table, Key={"pk": S(pk), "sk": N(3)}, ConsistentRead=True)
    out = run(ddb, f'DELETE FROM "{range_table}" WHERE pk = ? AND sk = 3 RETURNING ALL OLD *', S(pk))
    assert out["Items"] == []


@pytest.mark.parametrize("clause", ["RETURNING ALL NEW *", "RETURNING MODIFIED OLD *", "RETURNING ALL OLD"])
def test_delete_returning_other_than_all_old_is_refused(ddb: Any, range_table: str, pk: str, clause: str) -> None:
    ddb.put_item(TableName=range_table, Item={"pk": S(pk), "sk": N(4)})
    with pytest.raises(ClientError) as e:
        run(ddb, f'DELETE FROM "{range_table}" WHERE pk = ? AND sk = 4 {clause}', S(pk))
    assert _error(e)[0] == "ValidationException"
    assert "Item" in ddb.get_item(TableName=range_table, Key={"pk": S(pk), "sk": N(4)}, ConsistentRead=True)


def test_delete_without_full_key(ddb: Any, range_table: str, pk: str) -> None:
    with pytest.raises(ClientError) as e:
        run(ddb, f'DELETE FROM "{range_table}" WHERE pk = ?', S(pk))
    code, message = _error(e)
    assert code == "ValidationException"
    assert "mandatory equality on all key attributes" in message


# -- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("statement", [
    "SELEC * FROM t",
    "SELECT * FROM",
    "SELECT * FROM \"t\" WHERE",
    "INSERT INTO t VALUE {'a' 1}",
    "UPDATE t WHERE pk = 1",
    "DELETE FROM t",
    "SELECT * FROM t WHERE a = 'unterminated",
])
def test_syntax_errors(ddb: Any, statement: str) -> None:
    with pytest.raises(ClientError) as e:
        run(ddb, statement)
    code, message = _error(e)
    assert code == "ValidationException"
    assert message.startswith("Statement wasn't well formed, can't be processed:")


@pytest.mark.parametrize("n", [0, 2])
def test_parameter_count_mismatch(ddb: Any, hash_table: str, n: int) -> None:
    with pytest.raises(ClientError) as e:
        run(ddb, f'SELECT * FROM "{hash_table}" WHERE pk = ?', *[S("a")] * n)
    code, message = _error(e)
    assert code == "ValidationException"
    assert "Number of parameters in request and statement don't match" in message


def test_unknown_table(ddb: Any) -> None:
    for statement in ('SELECT * FROM "no_such_table_pq"', "INSERT INTO no_such_table_pq VALUE {'pk': 'a'}"):
        with pytest.raises(ClientError) as e:
            run(ddb, statement)
        assert _error(e)[0] == "ResourceNotFoundException"


def test_key_type_mismatch(ddb: Any, range_table: str) -> None:
    with pytest.raises(ClientError) as e:
        run(ddb, f'DELETE FROM "{range_table}" WHERE pk = 1 AND sk = 1')
    assert _error(e)[0] == "ValidationException"


def test_execute_transaction_select_needs_the_whole_key(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.execute_transaction(TransactStatements=[{"Statement": f'SELECT * FROM "{hash_table}"'}])
    assert _error(e)[0] == "ValidationException"


def test_execute_transaction_refuses_returning(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.execute_transaction(TransactStatements=[
            {"Statement": f'UPDATE "{hash_table}" SET a = 1 WHERE pk = \'x\' RETURNING ALL NEW *'}])
    assert _error(e)[0] == "ValidationException"


# -- BatchExecuteStatement ------------------------------------------------------------------
def test_batch_writes_with_per_statement_errors(ddb: Any, range_table: str, pk: str) -> None:
    ddb.put_item(TableName=range_table, Item={"pk": S(pk), "sk": N(9), "v": N(1)})
    t = range_table
    out = ddb.batch_execute_statement(Statements=[
        {"Statement": f"INSERT INTO \"{t}\" VALUE {{'pk': ?, 'sk': 1}}", "Parameters": [S(pk)]},
        {"Statement": f"INSERT INTO \"{t}\" VALUE {{'pk': ?, 'sk': 9}}", "Parameters": [S(pk)]},
        {"Statement": f'UPDATE "{t}" SET v = v + 1 WHERE pk = ? AND sk = 9', "Parameters": [S(pk)]},
        {"Statement": f'UPDATE "{t}" SET v = 1 WHERE pk = ? AND sk = 5', "Parameters": [S(pk)]},
        {"Statement": f'DELETE FROM "{t}" WHERE pk = ?', "Parameters": [S(pk)]},
        {"Statement": f'INSERT INTO "{t}" VALUE {{\'pk\': ?}}'},
        {"Statement": "INSERT INTO \"no_such_table_pq\" VALUE {'pk': 'a'}"},
    ])["Responses"]
    assert len(out) == 7
    assert "Error" not in out[0] and "Error" not in out[2]
    assert out[1]["Error"]["Code"] == "DuplicateItem"
    assert out[3]["Error"]["Code"] == "ConditionalCheckFailed"
    assert out[4]["Error"]["Code"] == "ValidationError"
    assert "mandatory equality" in out[4]["Error"]["Message"]
    assert out[5]["Error"]["Code"] == "ValidationError"
    assert "Number of parameters" in out[5]["Error"]["Message"]
    assert out[6]["Error"]["Code"] == "ResourceNotFound"
    assert ddb.get_item(TableName=t, Key={"pk": S(pk), "sk": N(1)})["Item"] == {"pk": S(pk), "sk": N(1)}
    assert ddb.get_item(TableName=t, Key={"pk": S(pk), "sk": N(9)})["Item"]["v"] == N(2)


def test_batch_reads(ddb: Any, range_table: str, pk: str) -> None:
    t = range_table
    ddb.put_item(TableName=t, Item={"pk": S(pk), "sk": N(1), "a": S("x"), "b": S("y")})
    out = ddb.batch_execute_statement(Statements=[
        {"Statement": f'SELECT * FROM "{t}" WHERE pk = ? AND sk = 1', "Parameters": [S(pk)], "ConsistentRead": True},
        {"Statement": f'SELECT a FROM "{t}" WHERE sk = ? AND pk = ?', "Parameters": [N(1), S(pk)]},
        {"Statement": f'SELECT * FROM "{t}" WHERE pk = ? AND sk = 2', "Parameters": [S(pk)]},
        {"Statement": f'SELECT * FROM "{t}" WHERE pk = ?', "Parameters": [S(pk)]},
        {"Statement": "SELECT * FROM"},
    ])["Responses"]
    assert out[0]["Item"] == {"pk": S(pk), "sk": N(1), "a": S("x"), "b": S("y")}
    assert out[0]["TableName"] == t
    assert out[1]["Item"] == {"a": S("x")}
    assert "Item" not in out[2] and "Error" not in out[2]
    assert out[3]["Error"]["Code"] == "ValidationError"
    assert out[4]["Error"]["Code"] == "ValidationError"
    assert "wasn't well formed" in out[4]["Error"]["Message"]


def test_batch_of_reads_and_writes_is_refused(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.batch_execute_statement(Statements=[
            {"Statement": f"SELECT * FROM \"{hash_table}\" WHERE pk = 'a'"},
            {"Statement": f"DELETE FROM \"{hash_table}\" WHERE pk = 'a'"},
        ])
    code, message = _error(e)
    assert code == "ValidationException"
    assert "read or write" in message


def test_batch_too_many_statements(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.batch_execute_statement(Statements=[
            {"Statement": f"SELECT * FROM \"{hash_table}\" WHERE pk = 'k{i}'"} for i in range(26)])
    code, message = _error(e)
    assert code == "ValidationException"
    assert "less than or equal to 25" in message
