"""AWS Signature Version 4 (``Authorization`` header form): the one implementation, used by the
router to verify (as DynamoDB does), by ``dynamolog.client`` and by the load generator to sign.

Verifying: :func:`parse` reads the ``Authorization`` header and the request date without any
secret; :func:`verify` then recomputes the signature with the caller's signing key and compares
it in constant time.  Every refusal is an :class:`~dynamolog.errors.ApiError` with DynamoDB's
``__type`` and message.

Signing: :func:`sign` returns the ``Authorization`` header of one request, built from the same
canonical request, string to sign and signing key as the verifier.  Because signer and verifier
share this code, the tests check both against an independent implementation, botocore's signer
(tests/unit/test_auth_sigv4.py, tests/unit/test_client.py), so that a shared bug cannot cancel out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from urllib.parse import quote, unquote

from dynamolog.errors import ApiError

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "dynamodb"
#: how far a request's date may be from the server's clock, either way
SKEW = timedelta(minutes=15)
SKEW_S = SKEW.total_seconds()
#: longest Authorization header echoed back in an error message
_ECHO_CHARS_MAX = 1024
_CORAL = "com.amazon.coral.service#"
_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")


def missing_token() -> ApiError:
    return ApiError("MissingAuthenticationTokenException", "Request is missing Authentication Token",
                    namespace=_CORAL)


def unrecognized_client() -> ApiError:
    return ApiError("UnrecognizedClientException", "The security token included in the request is invalid.",
                    namespace=_CORAL)


def incomplete(message: str) -> ApiError:
    return ApiError("IncompleteSignatureException", message, namespace=_CORAL)


def invalid_signature(message: str) -> ApiError:
    return ApiError("InvalidSignatureException", message, namespace=_CORAL)


class Parsed(NamedTuple):
    """What the Authorization header and the date header say (nothing checked against a key yet)."""

    #: the access key id of the Credential
    access_key_id: str
    #: the credential scope ``date/region/service/aws4_request``
    scope: str
    #: the date (``YYYYMMDD``) of the scope
    scope_date: str
    #: the region of the scope
    region: str
    #: lower-case names of the signed headers, in the order given
    signed_headers: tuple[str, ...]
    #: the signature, lower-case hex
    signature: str
    #: the request time, ``YYYYMMDDTHHMMSSZ``
    amz_date: str


def _echo(header: str) -> str:
    return header if len(header) <= _ECHO_CHARS_MAX else header[:_ECHO_CHARS_MAX] + "..."


_epochs: dict[str, int] = {}


def epoch_of(amz_date: str) -> int | None:
    """Seconds since the epoch of ``YYYYMMDDTHHMMSSZ``, or None when it is not such a time
    (parsed by hand and cached: strptime would be most of the cost of verifying a request)."""
    t = _epochs.get(amz_date)
    if t is not None:
        return t
    if not _AMZ_DATE.match(amz_date):
        return None
    try:
        when = datetime(int(amz_date[0:4]), int(amz_date[4:6]), int(amz_date[6:8]), int(amz_date[9:11]),
                        int(amz_date[11:13]), int(amz_date[13:15]), tzinfo=UTC)
    except ValueError:
        return None
    if len(_epochs) > 4096:
        _epochs.clear()
    t = _epochs[amz_date] = int(when.timestamp())
    return t


# the form every SDK sends, matched in one step; anything else takes the general path below
_SDK_FORM = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^,\s]+), ?SignedHeaders=([^,\s]+), ?Signature=([0-9a-f]{64})$")


def parse(headers: dict[str, str], region: str, service: str = SERVICE) -> Parsed:
    """Parse and check the form of the Authorization header (headers: lower-case names), signed
    for ``service`` (``dynamodb``; Application Auto Scaling's requests: ``application-autoscaling``)."""
    auth = headers.get("authorization")
    if auth is None:
        raise missing_token()
    m = _SDK_FORM.match(auth)
    amz_date = headers.get("x-amz-date")
    if m is not None and amz_date is not None and epoch_of(amz_date) is not None:
        credential, signed_text, signature = m.groups()
        scoped = _scopes.get((credential, amz_date[:8], region, service)) or _scope(credential, amz_date, region,
                                                                                    service)
        signed = _signed.get(signed_text) or _signed_headers(signed_text)
        _check_signed(headers, signed)
        return Parsed(*scoped, signed, signature, amz_date)
    return _parse_general(auth, headers, region, service)


def _check_signed(headers: dict[str, str], signed: tuple[str, ...]) -> None:
    """The headers that choose what the request does or who makes it must be signed too."""
    for name in ("x-amz-date", "x-amz-target", "x-amz-security-token"):
        if name in headers and name not in signed:
            raise invalid_signature(f"'{name}' must be a 'SignedHeader' in the AWS Authorization.")


def _parse_general(auth: str, headers: dict[str, str], region: str, service: str) -> Parsed:
    algorithm, _, rest = auth.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise incomplete(f"Unsupported AWS 'algorithm': '{algorithm[:64]}'")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, value = part.strip().partition("=")
        if eq:
            fields[name] = value.strip()
    problems = [f"Authorization header requires '{name}' parameter."
                for name in ("Credential", "Signature", "SignedHeaders") if not fields.get(name)]
    amz_date = headers.get("x-amz-date")
    if amz_date is None and "date" in headers:
        try:  # an HTTP Date header (RFC 7231) instead of X-Amz-Date
            from email.utils import parsedate_to_datetime
            amz_date = parsedate_to_datetime(headers["date"]).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        except (TypeError, ValueError, IndexError, OverflowError):
            amz_date = headers["date"]
    if amz_date is None:
        problems.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if problems:
        raise incomplete(" ".join(problems) + f" Authorization={_echo(auth)}")
    assert amz_date is not None
    amz_date = amz_date.strip()
    if epoch_of(amz_date) is None:
        raise incomplete(f"Date must be in ISO-8601 'basic format'. Got '{amz_date[:64]}'. "
                         "See http://en.wikipedia.org/wiki/ISO_8601")
    scoped = _scopes.get((fields["Credential"], amz_date[:8], region, service))
    if scoped is None:
        scoped = _scope(fields["Credential"], amz_date, region, service)
    signed = _signed.get(fields["SignedHeaders"])
    if signed is None:
        signed = _signed_headers(fields["SignedHeaders"])
    _check_signed(headers, signed)
    return Parsed(*scoped, signed, fields["Signature"].lower(), amz_date)


# the parts of an Authorization header that repeat from request to request, checked once
_scopes: dict[tuple[str, str, str, str], tuple[str, str, str, str]] = {}
_signed: dict[str, tuple[str, ...]] = {}
_CACHE_MAX = 4096


def _scope(credential: str, amz_date: str, region: str, expected: str) -> tuple[str, str, str, str]:
    """(key id, scope, date, region) of a valid Credential field."""
    cred = credential.split("/")
    if len(cred) != 5:
        raise incomplete("Credential must have exactly 5 slash-delimited elements, e.g. "
                         f"keyid/date/region/service/term, got '{credential[:256]}'")
    key_id, date, cred_region, service, term = cred
    if date != amz_date[:8]:
        raise invalid_signature(f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                                f"from HTTP: '{date[:16]}' != '{amz_date[:8]}', from '{amz_date}'.")
    if cred_region != region:
        raise invalid_signature(f"Credential should be scoped to a valid region, not '{cred_region[:64]}'. ")
    if service != expected:
        raise invalid_signature(f"Credential should be scoped to correct service: '{expected}'. ")
    if term != "aws4_request":
        raise invalid_signature(f"Credential should be scoped with a valid terminator: 'aws4_request', "
                                f"not '{term[:64]}'. ")
    if len(_scopes) > _CACHE_MAX:
        _scopes.clear()
    out = _scopes[(credential, amz_date[:8], region, expected)] = (key_id, f"{date}/{cred_region}/{service}/{term}", date,
                                                         cred_region)
    return out


def _signed_headers(text: str) -> tuple[str, ...]:
    signed = tuple(h.strip().lower() for h in text.split(";"))
    if "host" not in signed:
        raise invalid_signature("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    if len(_signed) > _CACHE_MAX:
        _signed.clear()
    _signed[text] = signed
    return signed


def canonical_uri(path: str) -> str:
    """The canonical URI: the path as sent with dot segments and empty segments removed (RFC 3986
    5.2.4, as AWS services require), then URI-encoded once more (all services but S3 do this)."""
    if path == "/" or not path:
        return "/"
    out: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if out:
                out.pop()
        elif seg and seg != ".":
            out.append(seg)
    norm = ("/" if path[0] == "/" else "") + "/".join(out) + ("/" if path[-1] == "/" and out else "")
    return quote(norm, safe="/~")


def canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        pairs.append((quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_request(method: str, target: str, headers: dict[str, str], signed: tuple[str, ...],
                      body: bytes) -> str:
    """The canonical request of the signature's specification; ``target`` is the request target
    (path and query) as sent; ``headers`` have lower-case names."""
    path, _, query = target.partition("?")
    lines = [method, canonical_uri(path), canonical_query(query)]
    for name in signed:
        # values trimmed and inner runs of whitespace collapsed to one space (as SDK signers do)
        v = headers.get(name, "")
        if "  " in v or "\t" in v or v[:1] == " " or v[-1:] == " ":
            v = " ".join(v.split())
        lines.append(f"{name}:{v}")
    lines.append("")
    lines.append(";".join(signed))
    lines.append(hashlib.sha256(body).hexdigest())
    return "\n".join(lines)


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


def derive_signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    k = hmac.new(k, region.encode(), hashlib.sha256).digest()
    k = hmac.new(k, service.encode(), hashlib.sha256).digest()
    return hmac.new(k, b"aws4_request", hashlib.sha256).digest()


def scope_of(date: str, region: str, service: str = SERVICE) -> str:
    """The credential scope ``date/region/service/aws4_request``."""
    return f"{date}/{region}/{service}/aws4_request"


def signature(signing_key: bytes, amz_date: str, scope: str, canonical: str) -> str:
    """The signature (lower-case hex) of a canonical request."""
    return hmac.digest(signing_key, string_to_sign(amz_date, scope, canonical).encode(), "sha256").hex()


def authorization(access_key: str, scope: str, signed: tuple[str, ...], sig: str) -> str:
    """The ``Authorization`` header value, in the form every SDK sends."""
    return f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={';'.join(signed)}, Signature={sig}"


def amz_date(now: datetime | None = None) -> str:
    """``YYYYMMDDTHHMMSSZ`` of ``now`` (default: the current UTC time)."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def sign(*, method: str, path: str, query: str = "", headers: Mapping[str, str], body: bytes, access_key: str,
         secret_key: str, region: str, service: str = SERVICE, timestamp: str) -> str:
    """The ``Authorization`` header value of a request.  Every header in ``headers`` is signed
    (names lower-cased, values trimmed and inner runs of whitespace collapsed), so pass exactly
    the headers that go on the wire, ``host`` and ``x-amz-date`` (equal to ``timestamp``)
    included; ``path`` and ``query`` as sent."""
    norm = {name.strip().lower(): " ".join(value.split()) for name, value in headers.items()}
    signed = tuple(sorted(norm))
    canonical = canonical_request(method.upper(), (path or "/") + (f"?{query}" if query else ""), norm, signed,
                                  body)
    date = timestamp[:8]
    scope = scope_of(date, region, service)
    sig = signature(derive_signing_key(secret_key, date, region, service), timestamp, scope, canonical)
    return authorization(access_key, scope, signed, sig)


def _fmt(t: datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%SZ")


def verify(p: Parsed, signing_key: bytes, method: str, target: str, headers: dict[str, str], body: bytes,
           now: datetime | None = None) -> None:
    """Check the signature with the caller's signing key, then the clock skew; raises ApiError."""
    canonical = canonical_request(method, target, headers, p.signed_headers, body)
    expected = signature(signing_key, p.amz_date, p.scope, canonical)
    if not (p.signature.isascii() and hmac.compare_digest(expected, p.signature)):
        sts = string_to_sign(p.amz_date, p.scope, canonical)
        raise invalid_signature(
            "The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.\n\n"
            f"The Canonical String for this request should have been\n'{canonical}'\n\n"
            f"The String-to-Sign should have been\n'{sts}'\n")
    when = epoch_of(p.amz_date)
    assert when is not None  # parse() checked it
    now_s = now.timestamp() if now is not None else time.time()
    if abs(when - now_s) <= SKEW_S:
        return
    now = now or datetime.now(UTC)
    if when < now_s:
        raise invalid_signature(f"Signature expired: {p.amz_date} is now earlier than {_fmt(now - SKEW)} "
                                f"({_fmt(now)} - 15 min.)")
    else:
        raise invalid_signature(f"Signature not yet current: {p.amz_date} is still later than {_fmt(now + SKEW)} "
                                f"({_fmt(now)} + 15 min.)")
