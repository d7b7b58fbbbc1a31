"""The brokers a Kafka cluster has registered, fenced (stopped, unreachable) ones included.

The Metadata answer, and aiokafka's ``describe_cluster`` built on it, lists only the brokers that
are up right now. Sizing a topic's replication from that count would create a table's log with two
replicas whenever one broker of three happens to be down, and it would stay that way. The cluster
size used for replication is therefore the controller's list of registered brokers, which
DescribeCluster v2 (Kafka 4.0+, KIP-1073) returns with ``IncludeFencedBrokers``. A broker leaves it
only when an operator unregisters it.

aiokafka 0.14 has no DescribeCluster request, so the two structs below describe version 2 of the
wire format (field order as in Kafka's ``DescribeClusterRequest.json`` / ``...Response.json``).
On a broker without v2, :func:`registered_brokers` falls back to the brokers that are up plus every
broker that holds a replica of some topic, which also counts a stopped broker that holds data.
"""

from __future__ import annotations

from typing import NamedTuple

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import IncompatibleBrokerVersion, KafkaError, for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Boolean,
    CompactArray,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

#: DescribeCluster's API key in the Kafka protocol
DESCRIBE_CLUSTER_KEY = 60
#: EndpointType 1: the brokers (2 would be the controllers)
_ENDPOINT_BROKERS = 1


class Broker(NamedTuple):
    """One broker the controller has registered."""

    #: the broker's ``node.id``
    node_id: int
    #: True when the controller has fenced it: stopped, or missing its heartbeats
    fenced: bool


class _DescribeClusterResponseV2(Response):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = DESCRIBE_CLUSTER_KEY
    API_VERSION = 2
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", CompactString("utf-8")),
        ("endpoint_type", Int8),
        ("cluster_id", CompactString("utf-8")),
        ("controller_id", Int32),
        (
            "brokers",
            CompactArray(
                ("broker_id", Int32),
                ("host", CompactString("utf-8")),
                ("port", Int32),
                ("rack", CompactString("utf-8")),
                ("is_fenced", Boolean),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_authorized_operations", Int32),
        ("tags", TaggedFields),
    )


class _DescribeClusterRequestV2(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = DESCRIBE_CLUSTER_KEY
    API_VERSION = 2
    RESPONSE_TYPE = _DescribeClusterResponseV2
    SCHEMA = Schema(
        ("include_cluster_authorized_operations", Boolean),
        ("endpoint_type", Int8),
        ("include_fenced_brokers", Boolean),
        ("tags", TaggedFields),
    )


class _DescribeCluster(Request[_DescribeClusterRequestV2]):  # type: ignore[misc]
    API_KEY = DESCRIBE_CLUSTER_KEY

    def build(self, request_struct_class: type[_DescribeClusterRequestV2]) -> _DescribeClusterRequestV2:
        return request_struct_class(False, _ENDPOINT_BROKERS, True, {})


async def registered_brokers(admin: AIOKafkaAdminClient) -> list[Broker]:
    """Every broker the cluster has registered, fenced or not, sorted by node id.

    Asks the brokers of the client's metadata one after the other: that metadata may still list
    a broker that has just stopped."""
    client = admin._client
    nodes = [b.nodeId for b in client.cluster.brokers()]
    last: Exception = KafkaError("the client's metadata lists no broker")
    for node_id in nodes:
        try:
            resp = await client.send(node_id, _DescribeCluster())
            break
        except (IncompatibleBrokerVersion, NotImplementedError):
            return await _brokers_from_metadata(admin)
        except KafkaError as e:
            if not e.retriable:
                raise
            last = e
    else:
        await client.force_metadata_update()
        raise last
    obj = resp.to_object()
    if obj["error_code"] != 0:
        raise for_code(obj["error_code"])(f"DescribeCluster: {obj['error_message']}")
    return sorted(Broker(b["broker_id"], bool(b["is_fenced"])) for b in obj["brokers"])


async def _brokers_from_metadata(admin: AIOKafkaAdminClient) -> list[Broker]:
    """Brokers that are up, plus the holders of any topic's replicas (for brokers before 4.0)."""
    info = await admin.describe_cluster()
    live = {int(b["node_id"]) for b in info["brokers"]}
    holders: set[int] = set()
    for topic in await admin.describe_topics():
        if topic["error_code"] != 0:
            continue
        for part in topic["partitions"]:
            holders.update(int(r) for r in part["replicas"])
    if not live:
        raise KafkaError("the cluster's metadata lists no broker")
    return sorted(Broker(n, n not in live) for n in live | holders)
