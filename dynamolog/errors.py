"""The one error type of the DynamoDB API, built by named factories.

An :class:`ApiError` carries the HTTP status, the DynamoDB ``__type`` short name and the
message that boto3 shows.  Code raises it anywhere; it becomes JSON only at the HTTP edge.
"""

from __future__ import annotations

from typing import Any

_PREFIX = "com.amazonaws.dynamodb.v20120810#"
_COYOTE = "com.amazon.coral.validate#"


class ApiError(Exception):
    """An error answered to the client as ``{"__type": ..., "message": ...}``."""

    def __init__(
        self,
        type_name: str,
        message: str,
        status: int = 400,
        *,
        namespace: str = _PREFIX,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.message = message
        self.status = status
        self.namespace = namespace
        #: extra top-level fields of the error body (e.g. ``Item`` or ``CancellationReasons``)
        self.extra = extra or {}

    @property
    def retriable(self) -> bool:
        """Whether a client may retry the same request unchanged."""
        return self.status >= 500 or self.type_name in _RETRIABLE

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"__type": self.namespace + self.type_name, "message": self.message}
        body.update(self.extra)
        return body

    def to_wire(self) -> dict[str, Any]:
        """Compact form used between services (see :func:`from_wire`)."""
        return {"t": self.type_name, "m": self.message, "s": self.status, "n": self.namespace, "x": self.extra}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> ApiError:
        return cls(d["t"], d["m"], d["s"], namespace=d.get("n", _PREFIX), extra=d.get("x") or None)

    def __repr__(self) -> str:
        return f"ApiError({self.type_name!r}, {self.message!r}, {self.status})"


_RETRIABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "TransactionConflictException",
    "RequestLimitExceeded",
}


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", message, namespace=_COYOTE)


def counted(*problems: str) -> ApiError:
    """A ValidationException in DynamoDB's counted form, ``1 validation error detected: <problem>``
    or ``N validation errors detected: <p1>; <p2>``: the form of every constraint message, and of
    the semantic messages DynamoDB gives it too (unused expression attribute names or values, the
    Select rules, an empty set, an empty update expression).  The one place the prefix is made."""
    n = len(problems)
    return validation(f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(problems))


def serialization(message: str) -> ApiError:
    return ApiError("SerializationException", message, namespace="com.amazon.coral.service#")


def unknown_operation(message: str = "") -> ApiError:
    return ApiError("UnknownOperationException", message, namespace="com.amazon.coral.service#")


def resource_not_found(message: str = "Requested resource not found") -> ApiError:
    return ApiError("ResourceNotFoundException", message)


def resource_in_use(message: str) -> ApiError:
    return ApiError("ResourceInUseException", message)


def conditional_check_failed(item: dict[str, Any] | None = None) -> ApiError:
    extra = {"Item": item} if item is not None else None
    return ApiError("ConditionalCheckFailedException", "The conditional request failed", extra=extra)


def item_collection_size_limit() -> ApiError:
    """A write would grow an item collection (one partition key value of a table with local
    secondary indexes) past its size limit."""
    return ApiError("ItemCollectionSizeLimitExceededException", "Collection size exceeded.")


def transaction_conflict() -> ApiError:
    """A single-item write or a read in a transaction met an item that an unfinished transaction holds."""
    return ApiError("TransactionConflictException", "Transaction is ongoing for the item")


def transaction_canceled(reasons: list[dict[str, Any]]) -> ApiError:
    """TransactionCanceledException with one CancellationReason per item, in request order."""
    codes = ", ".join(r["Code"] for r in reasons)
    return ApiError("TransactionCanceledException",
                    f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
                    extra={"CancellationReasons": reasons})


def limit_exceeded(message: str) -> ApiError:
    return ApiError("LimitExceededException", message)


def internal(message: str = "Internal server error") -> ApiError:
    return ApiError("InternalServerError", message, status=500)


def unavailable(message: str = "The service is currently unavailable or busy.") -> ApiError:
    return ApiError("ServiceUnavailable", message, status=503, namespace="com.amazon.coral.availability#")


#: the message of a provisioned table (or its own read) over its capacity
THROUGHPUT_TABLE = ("The level of configured provisioned throughput for the table was exceeded. Consider increasing "
                    "your provisioning level with the UpdateTable API.")
#: the message of a base-table write refused because a global index is over its write capacity
THROUGHPUT_INDEX = ("The level of configured provisioned throughput for one or more global secondary indexes of the "
                    "table was exceeded. Consider increasing your provisioning level for the under-provisioned global "
                    "secondary indexes with the UpdateTable API")
#: an on-demand table past its current ceiling
THROUGHPUT_ON_DEMAND = ("Throughput exceeds the current capacity of your table or index. DynamoDB is automatically "
                        "scaling your table or index so please try again shortly. If exceptions persist, check if you "
                        "have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
                        "bp-partition-key-design.html.")
#: an on-demand table past the maximum its OnDemandThroughput sets
THROUGHPUT_ON_DEMAND_MAX = "Throughput exceeds the maximum OnDemandThroughput configured on table or index"


def throughput_exceeded(message: str, reason: str, resource: str) -> ApiError:
    """ProvisionedThroughputExceededException (HTTP 400; SDKs back off and retry) with one
    ThrottlingReason: ``reason`` as ResourceType+OperationType+LimitType (e.g.
    ``TableWriteProvisionedThroughputExceeded``), ``resource`` the table's or index's ARN."""
    return ApiError("ProvisionedThroughputExceededException", message,
                    extra={"ThrottlingReasons": [{"reason": reason, "resource": resource}]})


def throttling(message: str, reason: str, resource: str) -> ApiError:
    """ThrottlingException (HTTP 400, retried by SDKs): an on-demand table past its ceiling or
    its OnDemandThroughput maximum, with its ThrottlingReason (this shape spells the member
    ``throttlingReasons``)."""
    return ApiError("ThrottlingException", message, namespace="com.amazon.coral.availability#",
                    extra={"throttlingReasons": [{"reason": reason, "resource": resource}]})
