"""PartiQL operations of a router: ExecuteStatement, BatchExecuteStatement, ExecuteTransaction.

A statement is parsed and translated (``partiql_parser``) into the DynamoDB request that does
the same thing, which then runs through the router's own single-item, Query and Scan operations
(so validation, routing and conditions are exactly theirs).  ``NextToken`` is the base64 of the
previous page's LastEvaluatedKey.  ``RETURNING`` of an UPDATE or DELETE becomes the request's
``ReturnValues``; the attributes returned come back as the one element of ``Items`` (none when
there are none, e.g. DELETE of a missing item).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

import orjson

from dynamolog import errors
from dynamolog.catalog import GlobalIndex, index_key_names, key_names

from .items import Items
from .partiql_parser import Delete, Request, Select, Statement, Update, check_parameters, parse, translate
from .validate import check_enum, raise_constraints

STATEMENT_MAX = 8192
BATCH_MAX = 25
CONCURRENCY = 16

#: ApiError type -> the BatchStatementError code of DynamoDB
_BATCH_CODES = {
    "ValidationException": "ValidationError",
    "ConditionalCheckFailedException": "ConditionalCheckFailed",
    "DuplicateItemException": "DuplicateItem",
    "ResourceNotFoundException": "ResourceNotFound",
    "ProvisionedThroughputExceededException": "ProvisionedThroughputExceeded",
    "ThrottlingException": "ThrottlingError",
    "RequestLimitExceeded": "RequestLimitExceeded",
    "TransactionConflictException": "TransactionConflict",
    "ItemCollectionSizeLimitExceededException": "ItemCollectionSizeLimitExceeded",
    "AccessDeniedException": "AccessDenied",
}


def duplicate_item() -> errors.ApiError:
    return errors.ApiError("DuplicateItemException", "Duplicate primary key exists in table")


def encode_token(last_key: dict[str, Any]) -> str:
    return base64.b64encode(orjson.dumps({"k": last_key})).decode()


def decode_token(token: Any) -> dict[str, Any]:
    if not isinstance(token, str):
        raise errors.serialization("Unexpected value type in payload")
    try:
        key = orjson.loads(base64.b64decode(token, validate=True))["k"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise errors.validation("Given NextToken is not valid") from None
    if not isinstance(key, dict):
        raise errors.validation("Given NextToken is not valid")
    return key


def _return_values(st: Any) -> dict[str, Any]:
    """The ReturnValues of a statement's RETURNING clause, as extra request parameters."""
    if isinstance(st, Update | Delete) and st.returning is not None:
        return {"ReturnValues": st.returning}
    return {}


def statement_problems(problems: list[str], statement: Any, field: str) -> None:
    if statement is None:
        problems.append(f"Value null at '{field}' failed to satisfy constraint: Member must not be null")
    elif not isinstance(statement, str):
        raise errors.serialization("Unexpected value type in payload")
    elif not 1 <= len(statement) <= STATEMENT_MAX:
        bound = "greater than or equal to 1" if not statement else f"less than or equal to {STATEMENT_MAX}"
        problems.append(f"Value '{statement}' at '{field}' failed to satisfy constraint: Member must have length "
                        + bound)


class PartiQL:
    """ExecuteStatement and BatchExecuteStatement on top of a router's ``Items``."""

    def __init__(self, items: Items) -> None:
        self.items = items
        self.tables = items.tables

    async def _plan(self, text: str, parameters: Any, *, single_item: bool = False) -> tuple[Statement, Request]:
        st = parse(text)
        params = check_parameters(st, parameters)
        table = await self.tables.get_active(st.table)
        hk, rk = key_names(table)
        multi = None
        if isinstance(st, Select) and st.index is not None:  # its key takes the table's place
            from .gsi import find_index

            index = find_index(table, st.index)
            hk, rk = index_key_names(table, index)
            if isinstance(index, GlobalIndex) and (index.more_hash_keys or index.more_range_keys):
                multi = (index.hash_keys, index.range_keys)
        return st, translate(st, params, hk, rk, single_item=single_item, multi=multi)

    async def _run(self, req: Request, extra: dict[str, Any]) -> dict[str, Any]:
        p = req.params | extra
        try:
            if req.operation == "PutItem":
                return await self.items.put_item(p)
            if req.operation == "UpdateItem":
                return await self.items.update_item(p)
            if req.operation == "DeleteItem":
                return await self.items.delete_item(p)
            if req.operation == "GetItem":
                return await self.items.get_item(p)
            if req.operation == "Query":
                return await self.items.query(p, key_filters=True)  # a WHERE's sort-key conditions
            return await self.items.scan(p)
        except errors.ApiError as e:
            if req.operation == "PutItem" and e.type_name == "ConditionalCheckFailedException":
                raise duplicate_item() from None
            raise

    # -- ExecuteStatement ----------------------------------------------------------------------
    async def execute_statement(self, p: dict[str, Any]) -> dict[str, Any]:
        problems: list[str] = []
        statement_problems(problems, p.get("Statement"), "statement")
        check_enum(problems, p, "ReturnConsumedCapacity", "returnConsumedCapacity", ("INDEXES", "TOTAL", "NONE"))
        limit = p.get("Limit")
        if limit is not None and isinstance(limit, int) and not isinstance(limit, bool) and limit < 1:
            problems.append(f"Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value "
                            "greater than or equal to 1")
        raise_constraints(problems)
        cr = p.get("ConsistentRead")
        if cr is not None and not isinstance(cr, bool):
            raise errors.serialization("Unexpected value type in payload")
        st, req = await self._plan(p["Statement"], p.get("Parameters"))
        extra: dict[str, Any] = {}
        if p.get("ReturnConsumedCapacity") is not None:
            extra["ReturnConsumedCapacity"] = p["ReturnConsumedCapacity"]
        if isinstance(st, Select):
            if cr is not None:
                extra["ConsistentRead"] = cr
            if limit is not None:
                extra["Limit"] = limit
            if p.get("NextToken") is not None:
                extra["ExclusiveStartKey"] = decode_token(p["NextToken"])
        elif p.get("NextToken") is not None or limit is not None:
            raise errors.validation("NextToken and Limit are supported only for a SELECT statement")
        extra |= _return_values(st)
        res = await self._run(req, extra)
        out: dict[str, Any] = {"Items": res.get("Items", [])}
        if res.get("Attributes"):  # RETURNING: the item's attributes as the one element of Items
            out["Items"] = [res["Attributes"]]
        if "LastEvaluatedKey" in res:
            out["NextToken"] = encode_token(res["LastEvaluatedKey"])
            out["LastEvaluatedKey"] = res["LastEvaluatedKey"]
        if "ConsumedCapacity" in res:
            out["ConsumedCapacity"] = res["ConsumedCapacity"]
        return out

    # -- BatchExecuteStatement -----------------------------------------------------------------
    async def batch_execute_statement(self, p: dict[str, Any]) -> dict[str, Any]:
        problems: list[str] = []
        check_enum(problems, p, "ReturnConsumedCapacity", "returnConsumedCapacity", ("INDEXES", "TOTAL", "NONE"))
        statements = p.get("Statements")
        if statements is None:
            problems.append("Value null at 'statements' failed to satisfy constraint: Member must not be null")
        elif not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
            raise errors.serialization("Unexpected value type in payload")
        elif not 1 <= len(statements) <= BATCH_MAX:
            bound = "greater than or equal to 1" if not statements else f"less than or equal to {BATCH_MAX}"
            problems.append(f"Value '[{', '.join('BatchStatementRequest(...)' for _ in statements)}]' at 'statements' "
                            f"failed to satisfy constraint: Member must have length {bound}")
        else:
            for i, s in enumerate(statements, 1):
                statement_problems(problems, s.get("Statement"), f"statements.{i}.member.statement")
        raise_constraints(problems)
        assert isinstance(statements, list)

        # every statement parsed first: all reads or all writes, else the whole call is refused
        parsed: list[Any] = []
        for s in statements:
            try:
                parsed.append(parse(s["Statement"]))
            except errors.ApiError as e:
                parsed.append(e)
        kinds = {isinstance(st, Select) for st in parsed if not isinstance(st, errors.ApiError)}
        if len(kinds) > 1:
            raise errors.validation("Supports only read or write operations in a batch, but not both")
        reads = kinds == {True}

        mode = p.get("ReturnConsumedCapacity")
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one(s: dict[str, Any], st: Any) -> dict[str, Any]:
            table = st.table if not isinstance(st, errors.ApiError) else None
            try:
                if isinstance(st, errors.ApiError):
                    raise st
                params = check_parameters(st, s.get("Parameters"))
                tdef = await self.tables.get_active(st.table)
                hk, rk = key_names(tdef)
                req = translate(st, params, hk, rk, single_item=reads)
                extra: dict[str, Any] = {}
                if reads and s.get("ConsistentRead") is not None:
                    extra["ConsistentRead"] = bool(s["ConsistentRead"])
                if mode is not None:
                    extra["ReturnConsumedCapacity"] = mode
                extra |= _return_values(st)
                async with limit:
                    res = await self._run(req, extra)
            except errors.ApiError as e:
                if e.status >= 500:
                    code = "InternalServerError"
                else:
                    code = _BATCH_CODES.get(e.type_name, "ValidationError")
                err: dict[str, Any] = {"Error": {"Code": code, "Message": e.message}}
                return err | ({"TableName": table} if table else {})
            out: dict[str, Any] = {"TableName": table}
            if "Item" in res:
                out["Item"] = res["Item"]
            elif res.get("Attributes"):  # RETURNING
                out["Item"] = res["Attributes"]
            return out

        responses = await asyncio.gather(*(one(s, st) for s, st in zip(statements, parsed, strict=True)))
        return {"Responses": list(responses)}

    # -- ExecuteTransaction --------------------------------------------------------------------
    async def execute_transaction(self, p: dict[str, Any]) -> dict[str, Any]:
        raise errors.validation("ExecuteTransaction is not supported by this Dynamolog version yet: transactions "
                                "are not supported")
