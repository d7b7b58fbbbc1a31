"""Condition, filter, update and projection expressions: one test per documented behaviour.

What ``test_items.py`` already covers (simple comparisons, AND/OR, if_not_exists and
list_append at the top level, unused/undefined names and values in PutItem/UpdateItem/DeleteItem)
is not repeated here.  Items live in the session's shared ``hash_table`` (key ``pk`` S).
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from .helpers import B, N, S, all_items, assert_error, get, key, put_new, sets_sorted, unique

pytestmark = pytest.mark.api




# One item with an attribute of every type, read (never written) by the condition tests.
EVERY_TYPE: dict[str, Any] = {
    "s": S("hello world"),
    "n": N("5"),
    "b": B(b"\x01\x02\x03"),
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b"\x01", b"\x02"]},
    "t": {"BOOL": True},
    "z": {"NULL": True},
    "l": {"L": [S("x"), N("1"), {"M": {"b": S("deep")}}]},
    "m": {"M": {"x": N("1"), "k.dot": S("v"), "lst": {"L": [N("7"), N("8")]}}},
    "status": S("on"),
}

# Every :value a condition below may use; each test passes only the ones its expression names.
POOL: dict[str, Any] = {
    ":str5": S("5"), ":n1": N("1"), ":n2": N("2"), ":n3": N("3"), ":n5": N("5"), ":n7": N("7"),
    ":n8": N("8"), ":n11": N("11"), ":sa": S("a"), ":sh": S("h"), ":si": S("i"), ":sz": S("z"),
    ":b01": B(b"\x01"), ":b0103": B(b"\x01\x03"), ":b02": B(b"\x02"), ":b0102": B(b"\x01\x02"),
    ":x": S("x"), ":deep": S("deep"), ":sub": S("lo wo"), ":hel": S("hel"), ":nope": S("nope"),
    ":v": S("v"), ":on": S("on"), ":ssab": {"SS": ["a", "b"]}, ":true": {"BOOL": True},
    ":mapb": {"M": {"b": S("deep")}}, ":b0203": B(b"\x02\x03"), ":ssba": {"SS": ["b", "a"]},
    ":lst78": {"L": [N("7"), N("8")]}, ":lst87": {"L": [N("8"), N("7")]},
}


@pytest.fixture(scope="module")
def every_type(ddb: Any, hash_table: str) -> dict[str, Any]:
    k, _ = put_new(ddb, hash_table, **EVERY_TYPE)
    return k


def matches(ddb: Any, table: str, k: dict[str, Any], condition: str,
            names: dict[str, str] | None = None, values: dict[str, Any] | None = None) -> bool:
    """Whether ``condition``, as a Query FilterExpression, keeps the item with key ``k``."""
    used = {name: v for name, v in POOL.items() if name in _tokens(condition)}
    args: dict[str, Any] = dict(TableName=table, KeyConditionExpression="pk = :pk", FilterExpression=condition,
                                ExpressionAttributeValues={":pk": k["pk"]} | used | (values or {}),
                                ConsistentRead=True)
    if names:
        args["ExpressionAttributeNames"] = names
    return int(ddb.query(**args)["Count"]) == 1


def _tokens(expression: str) -> list[str]:
    """The identifiers and :values of an expression."""
    out, cur = [], ""
    for ch in expression:
        if ch.isalnum() or ch in ":_":
            cur += ch
        else:
            if cur:
                out.append(cur)
            cur = ""
    if cur:
        out.append(cur)
    return out


# -- condition / filter semantics -----------------------------------------------------------------
@pytest.mark.parametrize("condition, holds", [
    # a comparison between different types is false, never an error
    ("n = :str5", False),
    ("n <> :str5", True),
    ("n < :sz", False),
    ("n > :sz", False),
    ("n >= :str5", False),
    ("s BETWEEN :n1 AND :n8", False),
    # a missing attribute: <> holds, every other comparison is false
    ("absent <> :n1", True),
    ("absent = :n1", False),
    ("absent < :n1", False),
    ("absent >= :n1", False),
    ("absent BETWEEN :n1 AND :n8", False),
    ("absent = nothere", False),
    ("absent <> nothere", True),
    ("absent < nothere", False),
    # lists and maps are not ordered: an ordering comparison with one read from the item is false
    ("l < s", False),
    ("m > :n1", False),
    # equality of sets ignores order; of maps and lists compares the whole structure
    ("ss = :ssba", True),
    ("m.lst = :lst78", True),
    ("m.lst = :lst87", False),
    # both operands may be paths
    ("n > m.x", True),
    ("l[1] = m.x", True),
    # size() of a constant
    ("size(:hel) = :n3", True),
    # BETWEEN on strings and binaries (bytewise, inclusive)
    ("s BETWEEN :sh AND :si", True),
    ("s BETWEEN :si AND :sz", False),
    ("s BETWEEN :sa AND :sh", False),
    ("b BETWEEN :b01 AND :b02", True),
    ("b BETWEEN :b0103 AND :b02", False),
    ("b > :b0102", True),
    ("n BETWEEN :n5 AND :n5", True),
    # contains on strings, every set type and lists
    ("contains(s, :sub)", True),
    ("contains(s, :nope)", False),
    ("contains(ss, :sa)", True),
    ("contains(ss, :sz)", False),
    ("contains(ns, :n2)", True),
    ("contains(ns, :str5)", False),
    ("contains(bs, :b02)", True),
    ("contains(l, :x)", True),
    ("contains(l, :n1)", True),
    ("contains(l, :deep)", False),
    ("contains(l, :mapb)", True),
    ("contains(b, :b0203)", True),
    ("contains(ss, :ssab)", False),
    ("contains(absent, :x)", False),
    # size of S (characters), B (bytes), sets, L and M (entries) inside comparisons
    ("size(s) = :n11", True),
    ("size(b) = :n3", True),
    ("size(ss) = :n2", True),
    ("size(bs) < :n3", True),
    ("size(l) = :n3", True),
    ("size(m) = :n3", True),
    ("size(m.lst) BETWEEN :n1 AND :n2", True),
    ("size(s) > :n11", False),
    ("size(absent) < :n11", False),
    # begins_with on strings and binaries
    ("begins_with(s, :hel)", True),
    ("begins_with(b, :b0102)", True),
    ("begins_with(b, :b02)", False),
    ("begins_with(n, :str5)", False),
    # NOT binds tighter than AND, AND tighter than OR; parentheses override
    ("n = :n5 OR n = :n1 AND s = :nope", True),
    ("(n = :n5 OR n = :n1) AND s = :nope", False),
    ("NOT n = :n1 AND n = :n1", False),
    ("NOT (n = :n1 AND n = :n1)", True),
    ("NOT NOT n = :n5", True),
    ("((n = :n5) AND n <> :n1)", True),
    # nested paths and list indexes
    ("l[2].b = :deep", True),
    ("l[0] = :x", True),
    ("m.x = :n1", True),
    ("m.lst[1] = :n8", True),
    ("l[5] = :x", False),
    ("s[0] = :x", False),
    ("n.x = :n1", False),
    ("attribute_exists(l[2].b)", True),
    ("attribute_not_exists(l[3])", True),
    ("attribute_exists(m.nope)", False),
    ("t = :true", True),
])
def test_filter_semantics(ddb: Any, hash_table: str, every_type: dict[str, Any], condition: str,
                          holds: bool) -> None:
    # Each documented operator and function on each type it applies to; a type mismatch or a
    # missing attribute makes the comparison false (the item is filtered out), not an error.
    assert matches(ddb, hash_table, every_type, condition) is holds


@pytest.mark.parametrize("attr, type_letter", [
    ("s", "S"), ("n", "N"), ("b", "B"), ("ss", "SS"), ("ns", "NS"), ("bs", "BS"),
    ("t", "BOOL"), ("z", "NULL"), ("l", "L"), ("m", "M"),
])
def test_attribute_type_every_type(ddb: Any, hash_table: str, every_type: dict[str, Any], attr: str,
                                   type_letter: str) -> None:
    # attribute_type recognises every type letter, and only the attribute's own.
    assert matches(ddb, hash_table, every_type, f"attribute_type({attr}, :t)", values={":t": S(type_letter)})
    other = "S" if type_letter != "S" else "N"
    assert not matches(ddb, hash_table, every_type, f"attribute_type({attr}, :t)", values={":t": S(other)})


def test_in_with_many_values(ddb: Any, hash_table: str, every_type: dict[str, Any]) -> None:
    # IN takes up to 100 operands; the match may be any of them, of any type mix.
    values = {f":v{i}": N(str(100 + i)) for i in range(99)}
    listed = ", ".join(values)
    assert not matches(ddb, hash_table, every_type, f"n IN ({listed})", values=values)
    assert matches(ddb, hash_table, every_type, f"n IN ({listed}, :n5)", values=values)
    assert not matches(ddb, hash_table, every_type, "n IN (:str5, :sa)")
    assert not matches(ddb, hash_table, every_type, "absent IN (:str5, :sa)")


def test_names_in_every_position(ddb: Any, hash_table: str, every_type: dict[str, Any]) -> None:
    # #names substitute a whole path element anywhere: first, after a dot, before an index,
    # and a name holding a dot is one attribute, not a path.
    names = {"#l": "l", "#b": "b", "#m": "m", "#li": "lst", "#kd": "k.dot", "#st": "status"}
    assert matches(ddb, hash_table, every_type, "#l[2].#b = :deep AND #m.#li[0] = :n7 AND m.#kd = :v "
                                                "AND #st = :on AND size(#m.#li) = :n2", names=names)
    assert not matches(ddb, hash_table, every_type, "attribute_exists(#kd)", names={"#kd": "m.x"})


def test_condition_type_mismatch_fails_condition(ddb: Any, hash_table: str) -> None:
    # In a ConditionExpression a comparison between different types fails the condition
    # (ConditionalCheckFailed), it is not a validation error.
    k, item = put_new(ddb, hash_table, a=N("1"))
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET a = :two",
                        ConditionExpression="a < :s", ExpressionAttributeValues={":two": N("2"), ":s": S("9")})
    assert_error(e, "ConditionalCheckFailedException", "The conditional request failed")
    assert get(ddb, hash_table, k) == item


@pytest.mark.parametrize("condition, values, phrase", [
    ("attribute_type(s, :t)", {":t": S("STRING")}, "Invalid attribute type name found; type: STRING"),
    ("s BETWEEN :hi AND :lo", {":hi": S("z"), ":lo": S("a")},
     "BETWEEN operator requires upper bound to be greater than or equal to lower bound"),
    ("status = :v", {":v": S("on")}, "Attribute name is a reserved keyword; reserved keyword: status"),
    ("s = :v AND Size = :v", {":v": S("on")}, "Attribute name is a reserved keyword; reserved keyword: "),
    # an ordering comparison with a constant of a type that has no order
    ("s < :v", {":v": {"L": [S("a")]}}, "Incorrect operand type for operator or function"),
    ("s BETWEEN :v AND :v", {":v": {"M": {}}}, "Incorrect operand type for operator or function"),
    # size() of a constant that has no size
    ("size(:v) > :w", {":v": N("1"), ":w": N("0")},
     "Incorrect operand type for operator or function; operator or function: size, operand type: N"),
    # one group directly inside another is refused; "((a) AND b)" above is not
    ("((s = :v))", {":v": S("m")}, "The expression has redundant parentheses"),
    ("NOT ((s = :v)) OR s = :v", {":v": S("m")}, "The expression has redundant parentheses"),
])
def test_condition_refused(ddb: Any, hash_table: str, condition: str, values: dict[str, Any],
                           phrase: str) -> None:
    # Errors DynamoDB finds in the expression itself, before reading the item: the request is
    # refused and nothing changes.
    k, item = put_new(ddb, hash_table, s=S("m"))
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=k | {"s": S("changed")}, ConditionExpression=condition,
                     ExpressionAttributeValues=values)
    assert_error(e, "ValidationException", "Invalid ConditionExpression: ")
    assert_error(e, "ValidationException", phrase)
    assert get(ddb, hash_table, k) == item


# -- projection expressions -----------------------------------------------------------------------
def test_projection_nested_elements(ddb: Any, hash_table: str, every_type: dict[str, Any]) -> None:
    # A projection of list elements and map keys returns them at their place in the item's
    # structure (list elements compacted, in list order); paths that do not exist are left out.
    got = ddb.get_item(TableName=hash_table, Key=every_type, ConsistentRead=True,
                       ProjectionExpression="l[2].b, l[0], #m.#li[1], m.x, l[9], m.nope, s[0], #kd",
                       ExpressionAttributeNames={"#m": "m", "#li": "lst", "#kd": "k.dot"})["Item"]
    assert got == {"l": {"L": [S("x"), {"M": {"b": S("deep")}}]},
                   "m": {"M": {"x": N("1"), "lst": {"L": [N("8")]}}}}


def test_projection_overlapping_paths(ddb: Any, hash_table: str, every_type: dict[str, Any]) -> None:
    # Two projected paths where one contains the other are refused.
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=hash_table, Key=every_type, ProjectionExpression="m, m.x")
    assert_error(e, "ValidationException", "Invalid ProjectionExpression: Two document paths overlap")


def test_projection_nothing_found(ddb: Any, hash_table: str, every_type: dict[str, Any]) -> None:
    # When no projected path exists in an existing item the answer holds an empty Item (a map
    # indexed as a list, a list as a map, a number as either, all count as absent); for a missing
    # item there is no Item at all.
    for projection in ("nope", "m[0]", "l.x", "n[0]", "n.x", "l[2].b[0]", "m.x.y"):
        got = ddb.get_item(TableName=hash_table, Key=every_type, ConsistentRead=True, ProjectionExpression=projection)
        assert got["Item"] == {}, projection
    assert "Item" not in ddb.get_item(TableName=hash_table, Key=key(unique()), ProjectionExpression="l[0]")


def test_projection_in_query_and_scan(ddb: Any, hash_table: str, every_type: dict[str, Any]) -> None:
    # Query and Scan apply nested projections the same way, after a filter on other paths.
    want = [{"l": {"L": [{"M": {"b": S("deep")}}]}, "m": {"M": {"lst": {"L": [N("7")]}}}}]
    got = ddb.query(TableName=hash_table, KeyConditionExpression="pk = :pk", FilterExpression="size(#s) > :z",
                    ProjectionExpression="l[2].b, m.lst[0]", ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":pk": every_type["pk"], ":z": N("0")}, ConsistentRead=True)["Items"]
    assert got == want
    got = all_items(ddb.scan, TableName=hash_table, FilterExpression="pk = :pk", ProjectionExpression="l[2].b, m.lst[0]",
                    ExpressionAttributeValues={":pk": every_type["pk"]}, ConsistentRead=True)
    assert got == want


@pytest.mark.parametrize("projection, phrase", [
    ("m.x, m[1]", "Invalid ProjectionExpression: Two document paths conflict with each other"),
    ("l[0], l[0]", "Invalid ProjectionExpression: Two document paths overlap with each other"),
    ("s,", "Invalid ProjectionExpression: Syntax error"),
    ("s,,n", "Invalid ProjectionExpression: Syntax error"),
    ("l[-1]", "Invalid ProjectionExpression: Syntax error"),
    ("size", "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: size"),
])
def test_projection_refused(ddb: Any, hash_table: str, every_type: dict[str, Any], projection: str,
                            phrase: str) -> None:
    # ProjectionExpression errors found before reading anything.
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=hash_table, Key=every_type, ProjectionExpression=projection)
    assert_error(e, "ValidationException", phrase)


# -- update expressions ---------------------------------------------------------------------------
def test_if_not_exists_nested(ddb: Any, hash_table: str) -> None:
    # if_not_exists works on nested map paths and list elements.
    k, _ = put_new(ddb, hash_table, m={"M": {"x": N("1")}}, l={"L": [N("1")]})
    ddb.update_item(TableName=hash_table, Key=k,
                    UpdateExpression="SET m.x = if_not_exists(m.x, :d), m.y = if_not_exists(#m.#y, :d), "
                                     "l[0] = if_not_exists(l[0], :d), l[1] = if_not_exists(l[1], :d)",
                    ExpressionAttributeNames={"#m": "m", "#y": "y"}, ExpressionAttributeValues={":d": N("0")})
    assert get(ddb, hash_table, k) == k | {"m": {"M": {"x": N("1"), "y": N("0")}}, "l": {"L": [N("1"), N("0")]}}


def test_set_list_index_past_end_appends(ddb: Any, hash_table: str) -> None:
    # SET of a list index beyond the end appends the value at the end of the list.
    k, _ = put_new(ddb, hash_table, l={"L": [N("0"), N("1")]})
    ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET l[10] = :v, l[1] = :w",
                    ExpressionAttributeValues={":v": S("end"), ":w": S("one")})
    assert get(ddb, hash_table, k) == k | {"l": {"L": [N("0"), S("one"), S("end")]}}


def test_remove_several_list_elements(ddb: Any, hash_table: str) -> None:
    # REMOVE of several list indexes in one expression refers to the indexes before the update;
    # an index past the end is ignored.
    k, _ = put_new(ddb, hash_table, l={"L": [N("0"), N("1"), N("2"), N("3"), N("4")]})
    ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="REMOVE l[3], l[0], l[1], l[9]")
    assert get(ddb, hash_table, k) == k | {"l": {"L": [N("2"), N("4")]}}


def test_set_several_indexes_past_end(ddb: Any, hash_table: str) -> None:
    # Several elements appended past the end in one SET are placed in the order of their indexes.
    k, _ = put_new(ddb, hash_table, l={"L": [S("one")]})
    ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET l[84] = :a, l[37] = :b, l[17] = :c",
                    ExpressionAttributeValues={":a": S("a1"), ":b": S("a2"), ":c": S("a3")})
    assert get(ddb, hash_table, k) == k | {"l": {"L": [S("one"), S("a3"), S("a2"), S("a1")]}}


def test_remove_leaves_empty_documents(ddb: Any, hash_table: str) -> None:
    # Removing the only element of a list or map leaves an empty list or map; removing a missing
    # map key, a list index past the end or a missing attribute changes nothing.
    k, _ = put_new(ddb, hash_table, l={"L": [N("1")]}, m={"M": {"b": N("1")}}, keep={"M": {"x": N("3")}},
                   keep_list={"L": [S("hi")]})
    ddb.update_item(TableName=hash_table, Key=k,
                    UpdateExpression="REMOVE l[0], m.b, keep.y, keep_list[7], absent")
    assert get(ddb, hash_table, k) == k | {"l": {"L": []}, "m": {"M": {}}, "keep": {"M": {"x": N("3")}},
                                           "keep_list": {"L": [S("hi")]}}


def test_remove_invalid_parent_refused(ddb: Any, hash_table: str) -> None:
    # REMOVE of a nested path whose parent is missing or not a document is refused on an existing
    # item, as SET is, and the item is left as it was; a missing leaf under an existing map is not.
    k, item = put_new(ddb, hash_table, s=S("text"), l={"L": [N("1"), S("x")]},
                      m={"M": {"x": N("1"), "sub": {"M": {"y": N("2")}}}})
    for update in ("REMOVE a.b.c", "REMOVE m.nope.c", "REMOVE m.x.c", "REMOVE s.b", "REMOVE s[0]",
                   "REMOVE a.b[1]", "REMOVE m.#sub[1]", "REMOVE l.b", "REMOVE l[1].b", "REMOVE m.x, s.b"):
        args: dict[str, Any] = dict(TableName=hash_table, Key=k, UpdateExpression=update)
        if "#sub" in update:
            args["ExpressionAttributeNames"] = {"#sub": "sub"}
        with pytest.raises(ClientError) as e:
            ddb.update_item(**args)
        assert_error(e, "ValidationException",
                     "The document path provided in the update expression is invalid for update")
        assert get(ddb, hash_table, k) == item, update
    ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="REMOVE m.#sub.nope, l[5], absent",
                    ExpressionAttributeNames={"#sub": "sub"})
    assert get(ddb, hash_table, k) == item


def test_update_function_nesting(ddb: Any, hash_table: str) -> None:
    # if_not_exists may sit inside list_append and inside another if_not_exists, and its result
    # may be an operand of + ; clause keywords are case-insensitive.
    k, _ = put_new(ddb, hash_table, c=N("3"))
    ddb.update_item(TableName=hash_table, Key=k,
                    UpdateExpression="set l = list_append(if_not_exists(l, :start), :more), "
                                     "x = if_not_exists(b, if_not_exists(c, :one)), y = if_not_exists(y, :one) + :one "
                                     "Remove c",
                    ExpressionAttributeValues={":start": {"L": [S("a")]}, ":more": {"L": [S("b")]}, ":one": N("1")})
    assert get(ddb, hash_table, k) == k | {"l": {"L": [S("a"), S("b")]}, "x": N("3"), "y": N("2")}


def test_add_numbers_and_sets(ddb: Any, hash_table: str) -> None:
    # ADD adds to a number, unions into a set, and creates a missing number or set.
    k, _ = put_new(ddb, hash_table, n=N("5"), ss={"SS": ["a"]})
    ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="ADD n :n, ss :ss, new_n :n, new_ns :ns",
                    ExpressionAttributeValues={":n": N("-1.5"), ":ss": {"SS": ["a", "b"]}, ":ns": {"NS": ["7"]}})
    assert sets_sorted(get(ddb, hash_table, k)) == k | {"n": N("3.5"), "ss": {"SS": ["a", "b"]}, "new_n": N("-1.5"),
                                                        "new_ns": {"NS": ["7"]}}


def test_delete_from_sets(ddb: Any, hash_table: str) -> None:
    # DELETE removes members from a set; removing every member removes the attribute; members
    # that are not there and a missing attribute are ignored.
    k, _ = put_new(ddb, hash_table, ss={"SS": ["a", "b", "c"]}, ns={"NS": ["1", "2"]})
    ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="DELETE ss :ss, ns :ns, absent :ss",
                    ExpressionAttributeValues={":ss": {"SS": ["a", "z"]}, ":ns": {"NS": ["1", "2"]}})
    assert sets_sorted(get(ddb, hash_table, k)) == k | {"ss": {"SS": ["b", "c"]}}


@pytest.mark.parametrize("update, values, phrase", [
    # operand types checked before the item is read
    ("ADD s :v", {":v": S("x")}, "Incorrect operand type for operator or function; operator: ADD, operand type: STRING"),
    ("ADD l :v", {":v": {"L": [N("1")]}}, "Incorrect operand type for operator or function; operator: ADD, operand type: LIST"),
    ("DELETE ss :v", {":v": N("1")}, "Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER"),
    # operand types that clash with the stored attribute
    ("ADD s :v", {":v": N("1")}, "An operand in the update expression has an incorrect data type"),
    ("ADD n :v", {":v": {"SS": ["a"]}}, "An operand in the update expression has an incorrect data type"),
    ("ADD ss :v", {":v": {"NS": ["1"]}}, "An operand in the update expression has an incorrect data type"),
    ("DELETE ss :v", {":v": {"NS": ["1"]}}, "An operand in the update expression has an incorrect data type"),
    ("DELETE n :v", {":v": {"NS": ["1"]}}, "An operand in the update expression has an incorrect data type"),
    # paths that overlap, within a clause or across clauses
    ("SET a = :v REMOVE a", {":v": N("1")}, "Invalid UpdateExpression: Two document paths overlap with each other"),
    ("SET m = :v, m.x = :v", {":v": N("1")}, "Two document paths overlap with each other"),
    ("SET a = :v, a = :v", {":v": N("1")}, "Two document paths overlap with each other"),
    ("SET #s = :v, s = :v", {":v": N("1")}, "Two document paths overlap with each other"),
    ("SET l[1][0] = :v, l[1] = :v", {":v": N("1")}, "Two document paths overlap with each other"),
    ("SET m.b = :v, m[1] = :v", {":v": N("1")}, "Two document paths conflict with each other"),
    ("REMOVE n ADD n :v", {":v": N("1")}, "Two document paths overlap with each other"),
    # the same clause twice
    ("SET a = :v SET b = :v", {":v": N("1")}, 'The "SET" section can only be used once in an update expression'),
    ("REMOVE a REMOVE b", {}, 'The "REMOVE" section can only be used once in an update expression'),
    # a nested path whose parent is missing or not a document
    ("SET nope.x = :v", {":v": N("1")}, "The document path provided in the update expression is invalid for update"),
    ("SET s[0] = :v", {":v": N("1")}, "The document path provided in the update expression is invalid for update"),
    # a set operand may not be empty
    ("DELETE ss :v", {":v": {"SS": []}}, "may not be empty"),
    # functions: nesting rules, unknown names, missing operands
    ("SET a = list_append(list_append(l, :v), :v)", {":v": {"L": []}},
     "The function is not allowed to be used this way in an expression; function: list_append"),
    ("SET a = if_not_exists(a, :v + :v)", {":v": N("1")}, "Invalid UpdateExpression: Syntax error"),
    ("SET a = f(n)", {}, "Invalid UpdateExpression: Invalid function name; function: f"),
    ("SET a = list_append(absent, :v)", {":v": {"L": []}},
     "The provided expression refers to an attribute that does not exist in the item"),
    ("SET a = list_append(m, :v)", {":v": {"L": []}}, "An operand in the update expression has an incorrect data type"),
    # a reserved word used as a name without #
    ("SET #s = :v, name = :v", {":v": N("1")}, "Attribute name is a reserved keyword; reserved keyword: name"),
])
def test_update_refused(ddb: Any, hash_table: str, update: str, values: dict[str, Any], phrase: str) -> None:
    # Each documented UpdateExpression error: ValidationException with DynamoDB's phrase, and the
    # item is left as it was.
    k, item = put_new(ddb, hash_table, s=S("text"), n=N("1"), ss={"SS": ["a"]}, l={"L": [N("1")]},
                      m={"M": {"x": N("1")}})
    args: dict[str, Any] = dict(TableName=hash_table, Key=k, UpdateExpression=update)
    if values:
        args["ExpressionAttributeValues"] = values
    if "#s" in update:
        args["ExpressionAttributeNames"] = {"#s": "s"}
    with pytest.raises(ClientError) as e:
        ddb.update_item(**args)
    assert_error(e, "ValidationException", phrase)
    assert get(ddb, hash_table, k) == item


# -- ExpressionAttributeNames / ExpressionAttributeValues in every operation ----------------------
def test_unused_and_undefined_in_reads(ddb: Any, hash_table: str, every_type: dict[str, Any]) -> None:
    # Unused and undefined names and values are refused in GetItem, Query and Scan too.
    pk = every_type["pk"]
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (ddb.get_item, dict(Key=every_type, ProjectionExpression="s", ExpressionAttributeNames={"#n": "n"}),
         "Value provided in ExpressionAttributeNames unused in expressions: keys: {#n}"),
        (ddb.get_item, dict(Key=every_type, ProjectionExpression="#n"),
         "An expression attribute name used in the document path is not defined; attribute name: #n"),
        (ddb.query, dict(KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": pk, ":x": N("1")}),
         "Value provided in ExpressionAttributeValues unused in expressions: keys: {:x}"),
        (ddb.query, dict(KeyConditionExpression="pk = :pk", FilterExpression="n = :x",
                         ExpressionAttributeValues={":pk": pk}),
         "An expression attribute value used in expression is not defined; attribute value: :x"),
        (ddb.scan, dict(FilterExpression="n = :x", ExpressionAttributeValues={":x": N("1")},
                        ExpressionAttributeNames={"#n": "n"}),
         "Value provided in ExpressionAttributeNames unused in expressions: keys: {#n}"),
        (ddb.scan, dict(ProjectionExpression="#a.#b", ExpressionAttributeNames={"#a": "m"}),
         "An expression attribute name used in the document path is not defined; attribute name: #b"),
    ]
    for call, args, phrase in cases:
        with pytest.raises(ClientError) as e:
            call(TableName=hash_table, **args)
        assert_error(e, "ValidationException", phrase)


def test_names_and_values_without_expression(ddb: Any, hash_table: str) -> None:
    # ExpressionAttributeNames / ExpressionAttributeValues given with no expression at all are
    # refused, in reads and in writes, and nothing is written.
    k, item = put_new(ddb, hash_table, a=N("1"))
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (ddb.get_item, dict(Key=k, ExpressionAttributeNames={"#a": "a"}),
         "ExpressionAttributeNames can only be specified when using expressions"),
        (ddb.put_item, dict(Item=k | {"a": N("2")}, ExpressionAttributeNames={"#a": "a"}),
         "ExpressionAttributeNames can only be specified when using expressions"),
        (ddb.update_item, dict(Key=k, ExpressionAttributeValues={":a": N("2")}),
         "ExpressionAttributeValues can only be specified when using expressions"),
        (ddb.delete_item, dict(Key=k, ExpressionAttributeNames={"#a": "a"}),
         "ExpressionAttributeNames can only be specified when using expressions"),
        (ddb.scan, dict(ExpressionAttributeValues={":a": N("1")}),
         "ExpressionAttributeValues can only be specified when using expressions"),
    ]
    for call, args, phrase in cases:
        with pytest.raises(ClientError) as e:
            call(TableName=hash_table, **args)
        assert_error(e, "ValidationException", phrase)
    assert get(ddb, hash_table, k) == item


def test_unused_name_in_update(ddb: Any, hash_table: str) -> None:
    # A name used only by the ConditionExpression counts as used by the request; one used by
    # neither expression is refused, and nothing is written.
    k, item = put_new(ddb, hash_table, a=N("1"))
    ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET b = :v", ConditionExpression="#a = :one",
                    ExpressionAttributeNames={"#a": "a"}, ExpressionAttributeValues={":v": N("2"), ":one": N("1")})
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET b = :v",
                        ExpressionAttributeNames={"#a": "a"}, ExpressionAttributeValues={":v": N("3")})
    assert_error(e, "ValidationException", "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a}")
    assert get(ddb, hash_table, k) == item | {"b": N("2")}
