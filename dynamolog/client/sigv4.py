"""AWS Signature Version 4 (header form), with ``hashlib`` and ``hmac`` only.

:func:`sign` returns the ``Authorization`` header for one request; every header handed to it is
signed (names lowercased, values trimmed and inner runs of spaces collapsed), so pass exactly the
headers that go on the wire (``host`` and ``x-amz-date`` included).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

__all__ = ["ALGORITHM", "amz_date", "canonical_request", "sign", "signing_key", "string_to_sign"]

ALGORITHM = "AWS4-HMAC-SHA256"
_SPACES = re.compile(r"\s+")


def amz_date(now: datetime | None = None) -> str:
    """``YYYYMMDDTHHMMSSZ`` of ``now`` (default: the current UTC time)."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    norm: dict[str, str] = {}
    for name, value in headers.items():
        norm[name.strip().lower()] = _SPACES.sub(" ", value.strip())
    names = sorted(norm)
    return "".join(f"{n}:{norm[n]}\n" for n in names), ";".join(names)


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for part in query.split("&"):
        k, _, v = part.partition("=")
        pairs.append((quote(k, safe="-_.~"), quote(v, safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_request(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> tuple[str, str]:
    """(canonical request, signed header names)."""
    canon_headers, signed = _canonical_headers(headers)
    text = "\n".join((
        method.upper(),
        quote(path or "/", safe="/-_.~"),
        _canonical_query(query),
        canon_headers,
        signed,
        hashlib.sha256(body).hexdigest(),
    ))
    return text, signed


def string_to_sign(timestamp: str, scope: str, canonical: str) -> str:
    return "\n".join((ALGORITHM, timestamp, scope, hashlib.sha256(canonical.encode()).hexdigest()))


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    k = _hmac(("AWS4" + secret_key).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def sign(*, method: str, path: str, query: str = "", headers: Mapping[str, str], body: bytes,
         access_key: str, secret_key: str, region: str, service: str, timestamp: str) -> str:
    """The ``Authorization`` header value. ``timestamp`` must equal the ``X-Amz-Date`` header."""
    date = timestamp[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    canonical, signed = canonical_request(method, path, query, headers, body)
    sts = string_to_sign(timestamp, scope, canonical)
    signature = hmac.new(signing_key(secret_key, date, region, service), sts.encode(), hashlib.sha256).hexdigest()
    return f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
