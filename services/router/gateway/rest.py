"""The REST gateway: plain JSON over REST for clients that do not speak DynamoDB's typed JSON.

    POST   /v1/session                            sign in: {"accessKeyId", "secretAccessKey"} -> token
    GET    /v1/tables                             table names
    GET    /v1/tables/{table}                     the table as DescribeTable gives it
    GET    /v1/tables/{table}/items/{pk}[/{sk}]   one item (404 when there is none)
    PUT    /v1/tables/{table}/items/{pk}[/{sk}]   write the JSON object in the body as the item
    DELETE /v1/tables/{table}/items/{pk}[/{sk}]   delete it; answers the old item
    GET    /v1/tables/{table}/items?...           Query (the partition key given) or Scan

Query string of the last: ``ATTR=VALUE`` is equality; ``ATTR=OP:VALUE`` with OP one of ``eq``,
``lt``, ``le``, ``gt``, ``ge``, ``begins_with``, ``between`` (``between:LOW,HIGH``); on the
partition key (equality) and the sort key these are the key condition, on other attributes a
filter.  Values are read as the key attribute's type, else as a number when they look like one
(``N``), else as strings.  ``limit``, ``index``, ``order=desc``, ``consistent=true`` and
``start`` (the ``next`` token of the previous page) steer it.  Every request runs as the
DynamoDB operation it names (GetItem, PutItem, DeleteItem, Query, Scan), with that operation's
permission check and validation; errors answer ``{"error": TYPE, "message": ...}`` with a
status that says what happened (400, 401, 403, 404, 409 for a failed condition, 429 when
throttled, 500).
"""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from dynamolog import __version__, errors
from dynamolog.auth.credentials import Credential
from dynamolog.catalog import TableDefinition

from . import values
from .webauth import COOKIE, SESSION_S, WebAuth

if TYPE_CHECKING:
    from ..app import Router

_STATUS = {
    "ResourceNotFoundException": 404, "AccessDeniedException": 403, "UnrecognizedClientException": 401,
    "ConditionalCheckFailedException": 409, "ProvisionedThroughputExceededException": 429,
    "ThrottlingException": 429, "RequestLimitExceeded": 429, "ItemNotFound": 404,
}
_OPS = {"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_RESERVED = {"limit", "index", "order", "consistent", "start"}


class SignIn(BaseModel):
    accessKeyId: str = Field(description="the access key id (AKIA...)")
    secretAccessKey: str = Field(description="its secret")


class Session(BaseModel):
    token: str = Field(description="send as `Authorization: Bearer TOKEN` (the console keeps it in a cookie)")
    user: str | None
    expiresIn: int


class Page(BaseModel):
    items: list[dict[str, Any]]
    count: int
    next: str | None = Field(description="pass as `start` for the next page; null on the last page")


def error_response(e: errors.ApiError) -> JSONResponse:
    return JSONResponse({"error": e.type_name, "message": e.message}, status_code=_STATUS.get(e.type_name, e.status))


def _encode_start(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_start(token: str) -> dict[str, Any]:
    try:
        out = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise errors.validation("start is not a token this gateway gave (use the previous page's next)") from None
    if not isinstance(out, dict):
        raise errors.validation("start is not a token this gateway gave (use the previous page's next)")
    return out


def _query_value(text: str, attribute_type: str | None) -> dict[str, Any]:
    if attribute_type is not None:
        return values.key_value(text, attribute_type, "")
    try:
        if text.strip() and Decimal(text).is_finite():
            return {"N": text}
    except InvalidOperation:
        pass
    return {"S": text}


class Gateway:
    """The REST routes, on a router's operations (no second code path for any operation)."""

    def __init__(self, router: Router, web: WebAuth) -> None:
        self.router = router
        self.web = web

    def caller(self, request: Request) -> Credential | None:
        return self.web.caller(request.headers.get("authorization"), request.cookies.get(COOKIE))

    async def call(self, caller: Credential | None, op: str, params: dict[str, Any]) -> dict[str, Any]:
        """One DynamoDB operation for a caller: its permission check, then the operation itself."""
        self.router.auth.authorize(caller, op, params)
        return await self.router.operations[op](params)

    def table(self, name: str) -> TableDefinition:
        table = self.router.metadata.catalog.items.get(name)
        if table is None:
            raise errors.resource_not_found(f"Requested resource not found: Table: {name} not found")
        return table

    def key_of(self, table: TableDefinition, parts: str) -> dict[str, Any]:
        hash_name, range_name = table.key_names()
        types = table.attribute_types()
        given = parts.split("/") if parts else []
        want = 2 if range_name else 1
        if len(given) != want:
            shape = f"{{{hash_name}}}/{{{range_name}}}" if range_name else f"{{{hash_name}}}"
            raise errors.validation(f"the item's key in the path is .../items/{shape} ({want} part(s)), "
                                    f"not {len(given)}")
        key = {hash_name: values.key_value(given[0], types[hash_name], hash_name)}
        if range_name:
            key[range_name] = values.key_value(given[1], types[range_name], range_name)
        return key

    async def query(self, caller: Credential | None, table_name: str, args: list[tuple[str, str]]) -> Page:
        table = self.table(table_name)
        params: dict[str, Any] = {"TableName": table_name}
        conditions: list[tuple[str, str]] = []
        for name, value in args:
            if name == "limit":
                if not value.isdigit() or int(value) < 1:
                    raise errors.validation("limit must be a whole number of 1 or more")
                params["Limit"] = int(value)
            elif name == "index":
                params["IndexName"] = value
            elif name == "order":
                if value not in ("asc", "desc"):
                    raise errors.validation("order is asc or desc")
                if value == "desc":
                    params["ScanIndexForward"] = False
            elif name == "consistent":
                params["ConsistentRead"] = value.lower() in ("1", "true", "yes")
            elif name == "start":
                params["ExclusiveStartKey"] = _decode_start(value)
            else:
                conditions.append((name, value))
        hash_name, range_name = table.key_names()
        index = params.get("IndexName")
        if index is not None:
            gsi = next((i for i in table.global_indexes if i.index_name == index), None)
            lsi = next((i for i in table.local_indexes if i.index_name == index), None)
            if gsi is not None:
                hash_name, range_name = gsi.hash_key, gsi.range_key
            elif lsi is not None:
                range_name = lsi.range_key
        types = table.attribute_types()
        names: dict[str, str] = {}
        vals: dict[str, Any] = {}
        key_parts: list[str] = []
        filters: list[str] = []
        keyed = any(n == hash_name for n, _ in conditions)
        for i, (name, raw) in enumerate(conditions):
            op, sep, rest = raw.partition(":")
            if not sep or op not in (*_OPS, "begins_with", "between"):
                op, rest = "eq", raw
            n, v = f"#a{i}", f":v{i}"
            names[n] = name
            typ = types.get(name) if name in (hash_name, range_name) else None
            if op == "between":
                low, comma, high = rest.partition(",")
                if not comma:
                    raise errors.validation(f"{name}=between:LOW,HIGH needs two values")
                vals[f"{v}a"], vals[f"{v}b"] = _query_value(low, typ), _query_value(high, typ)
                expr = f"{n} BETWEEN {v}a AND {v}b"
            elif op == "begins_with":
                vals[v] = _query_value(rest, typ)
                expr = f"begins_with({n}, {v})"
            else:
                vals[v] = _query_value(rest, typ)
                expr = f"{n} {_OPS[op]} {v}"
            if keyed and name in (hash_name, range_name):
                if name == hash_name and op != "eq":
                    raise errors.validation(f"the partition key {name} takes equality only")
                key_parts.append(expr)
            else:
                filters.append(expr)
        if names:
            params["ExpressionAttributeNames"] = names
            params["ExpressionAttributeValues"] = vals
        if filters:
            params["FilterExpression"] = " AND ".join(filters)
        if keyed:
            params["KeyConditionExpression"] = " AND ".join(key_parts)
            out = await self.call(caller, "Query", params)
        else:
            params.pop("ScanIndexForward", None)
            out = await self.call(caller, "Scan", params)
        items = [values.item_from_typed(i) for i in out.get("Items", [])]
        return Page(items=items, count=len(items), next=_encode_start(out.get("LastEvaluatedKey")))


def build_app(router: Router, web: WebAuth) -> FastAPI:
    """The REST gateway's routes (the console adds its own, services/router/gateway/console.py)."""
    gw = Gateway(router, web)
    app = FastAPI(title="Dynamolog REST gateway", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/v1/openapi.json",
                  description="Plain JSON over REST on Dynamolog's tables: items by key, queries and scans "
                  "by query-string conditions. Authenticate with `Authorization: Basic base64(ACCESS_KEY_ID:SECRET)` "
                  "or with the token of `POST /v1/session` as `Authorization: Bearer TOKEN`.")
    app.state.gateway = gw

    @app.exception_handler(errors.ApiError)
    async def _api_error(request: Request, e: errors.ApiError) -> JSONResponse:
        return error_response(e)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, e: RequestValidationError) -> JSONResponse:
        what = "; ".join(f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}" for err in e.errors())
        return error_response(errors.validation(f"the request does not fit this route: {what}"))

    @app.get("/v1/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/v1/openapi.json", title="Dynamolog REST gateway",
                                   swagger_js_url="/console/static/vendor/swagger-ui-bundle-5.35.0.js",
                                   swagger_css_url="/console/static/vendor/swagger-ui-5.35.0.css",
                                   swagger_favicon_url="/console/static/favicon.svg")

    @app.post("/v1/session", response_model=Session, tags=["session"])
    async def sign_in(body: SignIn, response: Response) -> Session:
        """Sign in with an access key; the token is also set as the console's cookie."""
        token, cred = web.sign_in(body.accessKeyId, body.secretAccessKey)
        response.set_cookie(COOKIE, token, max_age=SESSION_S, httponly=True, samesite="strict", path="/")
        return Session(token=token, user=cred.user_name if cred else None, expiresIn=SESSION_S)

    @app.delete("/v1/session", tags=["session"], status_code=204)
    async def sign_out(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/")

    @app.get("/v1/tables", tags=["tables"])
    async def list_tables(request: Request) -> dict[str, list[str]]:
        caller = gw.caller(request)
        names: list[str] = []
        params: dict[str, Any] = {}
        while True:
            out = await gw.call(caller, "ListTables", params)
            names += out.get("TableNames", [])
            if not out.get("LastEvaluatedTableName"):
                return {"tables": names}
            params = {"ExclusiveStartTableName": out["LastEvaluatedTableName"]}

    @app.get("/v1/tables/{table}", tags=["tables"])
    async def describe_table(table: str, request: Request) -> dict[str, Any]:
        """The table as DynamoDB's DescribeTable describes it."""
        out = await gw.call(gw.caller(request), "DescribeTable", {"TableName": table})
        return dict(out["Table"])

    @app.get("/v1/tables/{table}/items", response_model=Page, tags=["items"])
    async def query(table: str, request: Request) -> Page:
        """Query when the partition key (of the table, or of `index`) is given, else Scan.
        `ATTR=VALUE`, `ATTR=OP:VALUE` (eq, lt, le, gt, ge, begins_with, between:LOW,HIGH)."""
        return await gw.query(gw.caller(request), table, list(request.query_params.multi_items()))

    @app.get("/v1/tables/{table}/items/{key:path}", tags=["items"])
    async def get_item(table: str, key: str, request: Request, consistent: bool = False) -> dict[str, Any]:
        """The item with this key: partition key value, then sort key value, as path segments."""
        caller = gw.caller(request)
        typed = gw.key_of(gw.table(table), key)
        out = await gw.call(caller, "GetItem", {"TableName": table, "Key": typed, "ConsistentRead": consistent})
        if "Item" not in out:
            raise errors.ApiError("ItemNotFound", f"no item with this key in {table}", status=404)
        return values.item_from_typed(out["Item"])

    @app.put("/v1/tables/{table}/items/{key:path}", tags=["items"])
    async def put_item(table: str, key: str, request: Request) -> dict[str, Any]:
        """Write the JSON object in the body as the item (key attributes come from the path; when the
        body has them too they must agree). Answers the item as written."""
        caller = gw.caller(request)
        typed_key = gw.key_of(gw.table(table), key)
        body = values.parse_json(await request.body())
        if not isinstance(body, dict):
            raise errors.validation("the body is a JSON object: the item's attributes")
        item = values.item_to_typed(body)
        for name, v in typed_key.items():
            if name in item and item[name] != v:
                raise errors.validation(f"the body's {name} differs from the key in the path")
            item[name] = v
        await gw.call(caller, "PutItem", {"TableName": table, "Item": item})
        return values.item_from_typed(item)

    @app.delete("/v1/tables/{table}/items/{key:path}", tags=["items"])
    async def delete_item(table: str, key: str, request: Request) -> dict[str, Any]:
        """Delete the item; answers {"deleted": the old item or null}."""
        caller = gw.caller(request)
        typed = gw.key_of(gw.table(table), key)
        out = await gw.call(caller, "DeleteItem", {"TableName": table, "Key": typed, "ReturnValues": "ALL_OLD"})
        old = out.get("Attributes")
        return {"deleted": values.item_from_typed(old) if old else None}

    return app
