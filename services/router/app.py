"""The request router: DynamoDB JSON 1.0 over HTTP, dispatched to one method per operation.

Protocol (as DynamoDB): ``POST /`` with ``X-Amz-Target: DynamoDB_20120810.<Operation>`` and a
JSON body; the answer is JSON with ``x-amzn-RequestId`` and ``x-amz-crc32`` (the CRC-32 of the
body, which SDKs verify).  Errors are ``{"__type": "<namespace>#<Type>", "message": ...}``
with status 400, or 500 for server faults.  ``GET /``, other paths and CORS preflights are
answered by services/router/edge.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from dynamolog import errors
from dynamolog.aio import closing
from dynamolog.auth import systemkey
from dynamolog.auth.credentials import Credential
from dynamolog.backup_client import BackupClient
from dynamolog.catalog_client import CatalogClient
from dynamolog.config import Settings
from dynamolog.metadata import Metadata, ensure_metadata_topics
from dynamolog.metrics import Samples
from dynamolog.routing import Routing
from dynamolog.rpc import Raw
from dynamolog.stats import StatsView, add_table_samples
from dynamolog.txnlog import TxnLog

from . import edge
from .auth import Authenticator
from .auth import caller as current_caller
from .autoscaling import TARGET_PREFIX as SCALING_PREFIX
from .autoscaling import AutoScaling
from .backups import Backups
from .batch import Batch
from .control import request_host
from .freshness import IndexFreshness
from .gateway.web import WebSide
from .gateway.web import serves as web_path
from .http import Answer, Headers, HttpLimits, HttpServer, header_lines
from .items import Items
from .partiql import PartiQL
from .partiql_txn import PartiQLTransactions
from .policies import PolicyLookup, ResourcePolicies
from .replicas import GlobalTables
from .requests import members
from .streams import Streams
from .tables import Tables
from .transact import Transactions
from .ttl import TimeToLive
from .validate import raise_constraints

log = logging.getLogger(__name__)
#: the headers every answer carries (services/router/edge.py), made once
_CORS = tuple(edge.cors_headers())

TARGET_PREFIX = "DynamoDB_20120810."
STREAMS_PREFIX = "DynamoDBStreams_20120810."
JSON_TYPE = "application/x-amz-json-1.0"
#: the header lines every operation's answer starts with, made once (the request id and the
#: body's CRC32 follow)
_ANSWER_LINES = header_lines([("Content-Type", JSON_TYPE), *_CORS])

Operation = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
_GET_ITEM = TARGET_PREFIX + "GetItem"
#: the item writes answered without a task of their own, by target
_WRITES = {TARGET_PREFIX + name: name for name in ("PutItem", "UpdateItem", "DeleteItem")}
#: a replica's answers that the ordinary path retries (at the leader, or once the map changes)
_RETRIED = ("NotLeader", "ReplicaStale")


class Router:
    """One router process: metadata caches, storage clients and the HTTP front door."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 8000, initial_partitions: int = 2,
                 *, auth: bool = True, system_key: bytes | None = None, limits: HttpLimits | None = None,
                 zone: str | None = None):
        """``auth``: verify SigV4 and policies (needs ``system_key`` to decrypt the keys);
        ``zone``: the router's availability zone (its eventually consistent reads prefer it)."""
        self.settings = settings
        self.auth = Authenticator(settings, system_key, enabled=auth)
        self.metadata = Metadata(settings)
        self.catalog = CatalogClient(self.metadata)
        self.routing = Routing(self.metadata, zone)
        self.tables = Tables(settings, self.metadata, self.catalog, self.routing, initial_partitions)
        self.tables.stats = StatsView(settings)
        self.items = Items(self.tables, self.routing)
        self.freshness = self.items.freshness = IndexFreshness(settings, self.metadata)
        self.txnlog = TxnLog(settings, f"coordinator:router-{port}")
        self.transactions = Transactions(self.items, self.txnlog)
        self.http = HttpServer(self.handle_http, host, port, limits, quick=self.quick_http)
        #: the REST gateway (/v1/...) and the console (/console), on this same port
        self.web = WebSide(self, system_key)
        # request ids: a random per-process prefix and a counter (unique, and cheap to make)
        self._id_prefix = uuid.uuid4().hex[:20].upper()
        self._requests = 0
        self.operations: dict[str, Operation] = {
            "CreateTable": self.tables.create_table,
            "ListTables": self.tables.list_tables,
            "DeleteTable": self.tables.delete_table,
            "PutItem": self.items.put_item,
            "GetItem": self.items.get_item,
            "DeleteItem": self.items.delete_item,
            "UpdateItem": self.items.update_item,
            "Query": self.items.query,
            "Scan": self.items.scan,
            "TagResource": self.tables.control.tag_resource,
            "UntagResource": self.tables.control.untag_resource,
            "ListTagsOfResource": self.tables.control.list_tags_of_resource,
            "DescribeLimits": self.tables.control.describe_limits,
            "DescribeEndpoints": self.tables.control.describe_endpoints,
            "BatchWriteItem": Batch(self.items).batch_write_item,
            "BatchGetItem": Batch(self.items).batch_get_item,
            "ExecuteStatement": PartiQL(self.items).execute_statement,
            "BatchExecuteStatement": PartiQL(self.items).batch_execute_statement,
            "ExecuteTransaction": PartiQLTransactions(self.items, self.transactions).execute_transaction,
            "TransactWriteItems": self.transactions.transact_write_items,
            "TransactGetItems": self.transactions.transact_get_items,
            "UpdateTimeToLive": TimeToLive(self.tables).update_time_to_live,
            "DescribeTimeToLive": TimeToLive(self.tables).describe_time_to_live,
        }
        # global tables (services/router/replicas.py): UpdateTable's ReplicaUpdates, DescribeTable's
        # Replicas, and the operations another region calls with the replication key
        self.global_tables = GlobalTables(settings, self.tables, self.catalog, system_key)
        self.items.replicated = lambda name: self.global_tables.regions.replicas(name) is not None
        self.operations.update({
            "DescribeTable": self.global_tables.describe_table,
            "UpdateTable": self.global_tables.update_table,
            "CreateTableReplica": self.global_tables.create_table_replica,
            "DeleteTableReplica": self.global_tables.delete_table_replica,
            "DescribeReplicationEndpoint": self.describe_replication_endpoint,
            "CreateGlobalTable": self.global_tables.create_global_table,
            "DescribeGlobalTable": self.global_tables.describe_global_table,
            "UpdateGlobalTable": self.global_tables.update_global_table,
            "ListGlobalTables": self.global_tables.list_global_tables,
            "UpdateTableReplica": self.global_tables.replica_settings.update_table_replica,
            "UpdateTableReplicaAutoScaling": self.global_tables.replica_settings.update_table_replica_auto_scaling,
            "DescribeTableReplicaAutoScaling":
                self.global_tables.replica_settings.describe_table_replica_auto_scaling,
            "UpdateGlobalTableSettings": self.global_tables.replica_settings.update_global_table_settings,
            "DescribeGlobalTableSettings": self.global_tables.replica_settings.describe_global_table_settings,
        })
        self.backup_client = BackupClient(self.metadata)
        backups = Backups(settings, self.tables, self.backup_client)
        self.operations.update({
            "CreateBackup": backups.create_backup,
            "DescribeBackup": backups.describe_backup,
            "ListBackups": backups.list_backups,
            "DeleteBackup": backups.delete_backup,
            "RestoreTableFromBackup": backups.restore_table_from_backup,
            "UpdateContinuousBackups": backups.update_continuous_backups,
            "DescribeContinuousBackups": backups.describe_continuous_backups,
            "RestoreTableToPointInTime": backups.restore_table_to_point_in_time,
            "ExportTableToPointInTime": backups.export_table_to_point_in_time,
            "DescribeExport": backups.describe_export,
            "ListExports": backups.list_exports,
            "ImportTable": backups.import_table,
            "DescribeImport": backups.describe_import,
            "ListImports": backups.list_imports,
        })
        # resource-based policies (services/router/policies.py), enforced by self.auth (decision 0041)
        policies = ResourcePolicies(self.tables, self.auth)
        self.auth.resource_policy = PolicyLookup(self.tables)
        self.operations.update({
            "PutResourcePolicy": policies.put_resource_policy,
            "GetResourcePolicy": policies.get_resource_policy,
            "DeleteResourcePolicy": policies.delete_resource_policy,
        })
        self.streams = Streams(settings, self.tables)
        #: DynamoDB Streams (``DynamoDBStreams_20120810.*``), on the same endpoint
        self.stream_operations: dict[str, Operation] = {
            "ListStreams": self.streams.list_streams,
            "DescribeStream": self.streams.describe_stream,
            "GetShardIterator": self.streams.get_shard_iterator,
            "GetRecords": self.streams.get_records,
        }
        #: Application Auto Scaling (``AnyScaleFrontendService.*``, JSON 1.1), on the same endpoint
        self.scaling_operations: dict[str, Operation] = AutoScaling(self.catalog).operations()

    async def describe_replication_endpoint(self, _params: dict[str, Any]) -> dict[str, Any]:
        """This region's name and Kafka cluster, for a replication key (dynamolog/regions.py)."""
        return {"Region": self.settings.region, "KafkaBootstrap": self.settings.bootstrap,
                "Namespace": self.settings.namespace}

    async def start(self) -> None:
        await ensure_metadata_topics(self.settings)
        await self.metadata.start()
        assert self.tables.stats is not None
        await self.tables.stats.start()
        await self.txnlog.start()
        await self.auth.start()
        members.preload()
        await self.global_tables.start()
        await self.http.start()
        log.info("router listening on http://%s:%d", self.http.host, self.http.port)

    async def close(self) -> None:
        await self.http.close()
        await self.web.close()
        await self.routing.close()
        await self.streams.close()
        await self.freshness.close()
        await self.catalog.close()
        await self.backup_client.close()
        await self.metadata.close()
        if self.tables.stats is not None:
            await self.tables.stats.close()
        await self.txnlog.close()
        await self.auth.close()
        await self.global_tables.close()

    def metrics(self, samples: Samples) -> None:
        """Prometheus samples (dynamolog/metrics.py): requests answered, every table's provisioned
        units and published figures."""
        samples.add("dynamolog_router_requests", self._requests)
        samples.add("dynamolog_router_index_read_waits", self.freshness.waited)
        samples.add("dynamolog_router_index_read_wait_timeouts", self.freshness.timed_out)
        add_table_samples(samples, list(self.metadata.catalog.items.values()), self.tables.stats,
                          int(time.time() * 1000))

    # -- HTTP edge -------------------------------------------------------------------------
    def _request_id(self) -> str:
        self._requests += 1
        return f"{self._id_prefix}{self._requests:012X}"

    @staticmethod
    def _answer(status: int, out: bytes, request_id: str) -> Answer:
        return status, b"%bx-amzn-RequestId: %b\r\nx-amz-crc32: %d\r\n" % (
            _ANSWER_LINES, request_id.encode("latin-1"), zlib.crc32(out)), out

    def quick_http(self, method: str, path: str, headers: dict[str, str], body: bytes,
                   reply: Callable[[Answer | None], None]) -> bool:
        """A GetItem, answered without a task of its own (decision 0051): checked as
        :meth:`handle_http` checks it, sent to its replica, and answered from the replica's answer;
        a PutItem, UpdateItem or DeleteItem the same way, sent once to its leader (decision 0060).
        False for any other request, and for one that needs a wait before it can be sent (a
        table still being created, no connection yet to the node). ``reply(None)`` when the
        node's answer calls for a retry (not the leader, a stale follower, and for a GetItem a
        lost connection): :meth:`handle_http` then answers the request, retries included.  A
        write sent and then lost or timed out may have been carried out: it is answered with a
        retriable InternalServerError (outcome unknown), as the ordinary path answers it
        (Routing.call), and never sent again."""
        if method != "POST" or path != "/":
            return False
        target = headers.get("x-amz-target", "")
        op = "GetItem" if target == _GET_ITEM else _WRITES.get(target)
        if op is None:
            return False
        try:
            params = self._checked(op, method, path, headers, body)
            body_of: Callable[[Any], bytes]
            if op == "GetItem":
                got = self.items.get_item_now(params)
                if got is None:
                    return False
                get_req, sent = got

                def got_body(res: Any) -> bytes:  # the node's answer, raw or with its capacity
                    return res.json if isinstance(res, Raw) else orjson.dumps(self.items.got(get_req, res))
                body_of = got_body
            else:
                wrote = self.items.write_now(op, params)
                if wrote is None:
                    return False
                write_req, sent = wrote

                def written_body(res: Any) -> bytes:
                    return orjson.dumps(self.items.written(write_req, res))
                body_of = written_body
        except errors.ApiError as e:
            reply(self._refused(e))
            return True
        except Exception:  # noqa: BLE001 - handle_http does it again, and logs and answers the fault
            return False

        def answered(f: asyncio.Future[Any]) -> None:
            try:
                out = body_of(f.result())
            except errors.ApiError as e:
                if e.type_name in _RETRIED:  # the node ran nothing: handle_http retries
                    reply(None)
                    return
                reply(self._refused(e))
                return
            except Exception as e:  # noqa: BLE001 - a lost connection or a timeout
                if op == "GetItem":
                    reply(None)  # a read is retried by handle_http
                    return
                # a write was sent, so it may have been carried out: outcome unknown, never resent
                log.warning("router: %s sent, outcome unknown: %r", op, e)
                reply(self._refused(errors.internal("The write could not be confirmed; its outcome is unknown, "
                                                    "retry it")))
                return
            reply(self._answer(200, out, self._request_id()))

        sent.add_done_callback(answered)
        return True

    def _checked(self, op: str, method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        """The parameters of a request for ``op``, authenticated, authorized and with its required
        members present, as :meth:`dispatch` checks them; raises the ApiError otherwise."""
        caller = self.auth.authenticate(method, path, headers, body)
        params = _params(body)
        self.auth.authorize(caller, op, params)
        raise_constraints(members.missing(TARGET_PREFIX, op, params))
        return params

    def _refused(self, e: errors.ApiError) -> Answer:
        return self._answer(e.status, orjson.dumps(e.to_body()), self._request_id())

    async def handle_http(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Headers, bytes | AsyncIterator[bytes]]:
        request_id = self._request_id()
        if web_path(path):  # the REST gateway and the console
            return await self.web(method, path, headers, body)
        early = edge.answer(method, path, headers, f"{self.http.host}:{self.http.port}")
        if early is not None:
            status, extra, out = early
            return status, [*extra, ("x-amzn-RequestId", request_id), *edge.cors_headers()], out
        status = 200
        try:
            if method != "POST":
                raise errors.ApiError("UnknownOperationException", "", namespace="com.amazon.coral.service#")
            caller = self.auth.authenticate(method, path, headers, body)
            result = await self.dispatch(headers, body, caller)
            out = orjson.dumps(result)
        except errors.ApiError as e:
            status = e.status
            out = orjson.dumps(e.to_body())
        except Exception:
            log.exception("router: request %s failed", request_id)
            status = 500
            out = orjson.dumps(errors.internal().to_body())
        return self._answer(status, out, request_id)

    async def dispatch(self, headers: dict[str, str], body: bytes, caller: Credential | None = None) -> dict[str, Any]:
        target = headers.get("x-amz-target", "")
        if target.startswith(TARGET_PREFIX):
            name = target[len(TARGET_PREFIX):]
            op = self.operations.get(name)
        elif target.startswith(STREAMS_PREFIX):
            name = target[len(STREAMS_PREFIX):]
            op = self.stream_operations.get(name)
        elif target.startswith(SCALING_PREFIX):
            name = target[len(SCALING_PREFIX):]
            op = self.scaling_operations.get(name)
            if op is None:
                raise errors.ApiError("UnknownOperationException", "", namespace="")
        else:
            raise errors.unknown_operation()
        if op is None:
            raise errors.unknown_operation()
        params = _params(body)
        self.auth.authorize(caller, name, params)
        current_caller.set(caller)
        raise_constraints(members.missing(target[:len(target) - len(name)], name, params))
        request_host.set(headers.get("host"))  # for DescribeEndpoints (the task's own context)
        return await op(params)


def _params(body: bytes) -> dict[str, Any]:
    """A request's parameters: its body, a JSON object."""
    try:
        params = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        raise errors.serialization("Start of structure or map found where not expected.") from None
    if not isinstance(params, dict):
        raise errors.serialization("Start of structure or map found where not expected.")
    return params


async def serve(settings: Settings, host: str, port: int, initial_partitions: int) -> None:
    router = Router(settings, host, port, initial_partitions, system_key=systemkey.from_env())
    await router.start()
    # (closed by a helper: no await in a finally block of a compiled module, dynamolog/aio.py)
    await closing(asyncio.Event().wait(), router.close)
