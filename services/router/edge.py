"""What the router answers at the HTTP edge without an operation: the health line of ``GET /``,
a 404 for any other path it does not serve, CORS preflights, and the CORS headers every answer
carries so that browser SDKs can call the endpoint.

DynamoDB answers ``GET /`` with ``healthy: <endpoint host>``; here the host is the one the client
addressed (its ``Host`` header), else the router's own ``host:port``.  Paths are served by
:func:`answer`, one table of them: a new route is one more entry there.
"""

from __future__ import annotations

#: (status, headers, body) of an HTTP answer
Answer = tuple[int, list[tuple[str, str]], bytes]

#: what a browser may send: the headers SDKs sign and send with DynamoDB's JSON protocol
ALLOW_HEADERS = ("authorization, content-type, x-amz-target, x-amz-date, x-amz-security-token, x-amz-user-agent, "
                 "x-amz-content-sha256, x-amz-client-context, amz-sdk-invocation-id, amz-sdk-request")
#: what a browser script may read from an answer
EXPOSE_HEADERS = "x-amzn-RequestId, x-amzn-ErrorType, x-amz-crc32, Date"
#: seconds a browser may keep a preflight's answer
PREFLIGHT_MAX_AGE_S = 172800

_NOT_FOUND = (b'{"__type":"com.amazon.coral.service#UnknownOperationException",'
              b'"message":"The requested resource was not found"}')


def cors_headers() -> list[tuple[str, str]]:
    """The headers every answer carries (any origin may call; requests are signed, not cookies)."""
    return [("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", EXPOSE_HEADERS)]


def answer(method: str, path: str, headers: dict[str, str], own_address: str) -> Answer | None:
    """The answer to a request that names no operation, or None for a ``POST`` the operations take."""
    route = path.split("?", 1)[0]
    if method == "OPTIONS":
        wanted = headers.get("access-control-request-headers")
        return 200, [
            ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
            ("Access-Control-Allow-Headers", wanted if wanted else ALLOW_HEADERS),
            ("Access-Control-Max-Age", str(PREFLIGHT_MAX_AGE_S)),
            ("Content-Type", "text/plain"),
        ], b""
    if method in ("GET", "HEAD"):
        if route == "/":
            body = f"healthy: {headers.get('host') or own_address}".encode()
            return 200, [("Content-Type", "text/plain")], b"" if method == "HEAD" else body
        return 404, [("Content-Type", "application/x-amz-json-1.0")], b"" if method == "HEAD" else _NOT_FOUND
    return None
