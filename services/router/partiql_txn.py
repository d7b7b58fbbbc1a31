"""ExecuteTransaction: PartiQL statements run as one TransactWriteItems or TransactGetItems.

Each statement is parsed and translated as ExecuteStatement does (a SELECT must name a whole
primary key, as in BatchExecuteStatement), then the statements become the items of one
transaction, so they commit all-or-nothing through the transaction protocol
(docs/transactions.md).  An INSERT whose item exists cancels the transaction with the
cancellation reason DuplicateItem, as DynamoDB answers.
"""

from __future__ import annotations

from typing import Any

from dynamolog import errors
from dynamolog.catalog import key_names

from .items import Items
from .partiql import statement_problems
from .partiql_parser import Insert, Select, check_parameters, parse, translate
from .requests.transact import ITEMS_MAX
from .transact import Transactions
from .validate import check_enum, raise_constraints

_ENTRY = {"GetItem": "Get", "PutItem": "Put", "UpdateItem": "Update", "DeleteItem": "Delete"}


class PartiQLTransactions:
    """ExecuteTransaction on top of a router's transactions."""

    def __init__(self, items: Items, transactions: Transactions) -> None:
        self.tables = items.tables
        self.transactions = transactions

    async def execute_transaction(self, p: dict[str, Any]) -> dict[str, Any]:
        problems: list[str] = []
        check_enum(problems, p, "ReturnConsumedCapacity", "returnConsumedCapacity", ("INDEXES", "TOTAL", "NONE"))
        statements = p.get("TransactStatements")
        if statements is None:
            problems.append("Value null at 'transactStatements' failed to satisfy constraint: Member must not be null")
        elif not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
            raise errors.serialization("Unexpected value type in payload")
        elif not 1 <= len(statements) <= ITEMS_MAX:
            bound = "greater than or equal to 1" if not statements else f"less than or equal to {ITEMS_MAX}"
            problems.append(f"Value '[{', '.join('ParameterizedStatement(...)' for _ in statements)}]' at "
                            f"'transactStatements' failed to satisfy constraint: Member must have length {bound}")
        else:
            for i, s in enumerate(statements, 1):
                statement_problems(problems, s.get("Statement"), f"transactStatements.{i}.member.statement")
        raise_constraints(problems)
        assert isinstance(statements, list)
        parsed = [parse(s["Statement"]) for s in statements]
        reads = {isinstance(st, Select) for st in parsed}
        if len(reads) > 1:
            raise errors.validation("Transaction must contain either all reads or all writes")
        if any(getattr(st, "returning", None) for st in parsed):
            raise errors.validation("RETURNING is not supported in a transaction")
        entries: list[dict[str, Any]] = []
        for s, st in zip(statements, parsed, strict=True):
            params = check_parameters(st, s.get("Parameters"))
            table = await self.tables.get_active(st.table)
            hk, rk = key_names(table)
            req = translate(st, params, hk, rk, single_item=True)
            entries.append({_ENTRY[req.operation]: req.params})
        request: dict[str, Any] = {"TransactItems": entries}
        if p.get("ReturnConsumedCapacity") is not None:
            request["ReturnConsumedCapacity"] = p["ReturnConsumedCapacity"]
        if reads == {True}:
            res = await self.transactions.transact_get_items(request)
            return res
        if p.get("ClientRequestToken") is not None:
            request["ClientRequestToken"] = p["ClientRequestToken"]
        try:
            return await self.transactions.transact_write_items(request)
        except errors.ApiError as e:
            reasons = e.extra.get("CancellationReasons") if e.type_name == "TransactionCanceledException" else None
            if not reasons:
                raise
            for st, r in zip(parsed, reasons, strict=True):
                if isinstance(st, Insert) and r.get("Code") == "ConditionalCheckFailed":
                    r.clear()
                    r.update({"Code": "DuplicateItem", "Message": "Duplicate primary key exists in table"})
            raise errors.transaction_canceled(reasons) from None
