"""SigV4 verification (dynamolog.auth.sigv4) against botocore's signer, an independent implementation:
whatever botocore signs verifies, and any change to a signed part of the request does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamolog.auth import sigv4
from dynamolog.errors import ApiError

KEY, SECRET = "DKIAEXAMPLEEXAMPLE01", "s3cret/with+odd=chars"


def botocore_signed(body: bytes, path: str = "/", query: str = "", extra: dict[str, str] | None = None,
                    region: str = "us-east-1", token: str | None = None) -> tuple[str, dict[str, str]]:
    """(request target, lower-case headers) as a server receives them from botocore."""
    url = "http://127.0.0.1:8000" + path + (f"?{query}" if query else "")
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.GetItem"}
    headers.update(extra or {})
    req = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials(KEY, SECRET, token), "dynamodb", region).add_auth(req)
    prepared = req.prepare()
    out = {k.lower(): v for k, v in prepared.headers.items()}
    out["host"] = "127.0.0.1:8000"
    target = prepared.url.split("127.0.0.1:8000", 1)[1]
    return target, out


def check(target: str, headers: dict[str, str], body: bytes, secret: str = SECRET,
          now: datetime | None = None) -> None:
    p = sigv4.parse(headers, "us-east-1")
    assert p.access_key_id == KEY
    sigv4.verify(p, sigv4.derive_signing_key(secret, p.scope_date, p.region), "POST", target, headers, body, now)


def error(fn: Any) -> tuple[str, str]:
    with pytest.raises(ApiError) as e:
        fn()
    return e.value.type_name, e.value.message


# header values as HTTP carries them: printable ASCII, spaces and tabs
_text = st.text(st.characters(min_codepoint=32, max_codepoint=126) | st.just("\t"), max_size=40)


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=300),
       path=st.lists(st.text("abcXYZ019-_.~ %+=é", min_size=1, max_size=8), max_size=3).map(lambda p: "/" + "/".join(p)),
       query=st.lists(st.tuples(st.text("abc=_-+ ", max_size=5), st.text("xyz/-=+ ", max_size=5)), max_size=3),
       header=_text.map(lambda t: t.strip() or "v"))
def test_what_botocore_signs_verifies(body: bytes, path: str, query: list[tuple[str, str]], header: str) -> None:
    from urllib.parse import quote

    q = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    target, headers = botocore_signed(body, quote(path, safe="/%"), q,
                                      {"X-Custom": header})
    check(target, headers, body)


@settings(max_examples=60, deadline=None)
@given(body=st.binary(min_size=1, max_size=100), flip=st.integers(min_value=0))
def test_any_changed_body_byte_is_refused(body: bytes, flip: int) -> None:
    target, headers = botocore_signed(body)
    i = flip % len(body)
    changed = body[:i] + bytes([body[i] ^ 1]) + body[i + 1:]
    code, message = error(lambda: check(target, headers, changed))
    assert code == "InvalidSignatureException"
    assert "The Canonical String for this request should have been\n'POST\n/\n" in message


def test_changed_target_header_or_wrong_secret_is_refused() -> None:
    target, headers = botocore_signed(b"{}")
    assert error(lambda: check(target, headers | {"x-amz-target": "DynamoDB_20120810.DeleteTable"},
                               b"{}"))[0] == "InvalidSignatureException"
    assert error(lambda: check(target, headers, b"{}", secret="other"))[0] == "InvalidSignatureException"


def test_session_token_must_be_signed() -> None:
    target, headers = botocore_signed(b"{}", token="tok")
    check(target, headers, b"{}")
    signed = headers["authorization"].replace("x-amz-security-token;", "").replace(";x-amz-security-token", "")
    code, message = error(lambda: sigv4.parse(headers | {"authorization": signed}, "us-east-1"))
    assert code == "InvalidSignatureException" and "x-amz-security-token" in message


def test_clock_skew() -> None:
    target, headers = botocore_signed(b"{}")
    signed_at = datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    check(target, headers, b"{}", now=signed_at + timedelta(minutes=14))
    check(target, headers, b"{}", now=signed_at - timedelta(minutes=14))
    code, message = error(lambda: check(target, headers, b"{}", now=signed_at + timedelta(minutes=16)))
    later = signed_at + timedelta(minutes=16)
    assert (code, message) == ("InvalidSignatureException",
                               f"Signature expired: {headers['x-amz-date']} is now earlier than "
                               f"{(later - timedelta(minutes=15)):%Y%m%dT%H%M%SZ} ({later:%Y%m%dT%H%M%SZ} - 15 min.)")
    code, message = error(lambda: check(target, headers, b"{}", now=signed_at - timedelta(minutes=16)))
    assert code == "InvalidSignatureException" and message.startswith("Signature not yet current: ")


@pytest.mark.parametrize(("change", "code", "phrase"), [
    (lambda h: h.pop("authorization"), "MissingAuthenticationTokenException", "Request is missing Authentication Token"),
    (lambda h: h.__setitem__("authorization", "AWS4-HMAC-SHA256 Credential=a"), "IncompleteSignatureException",
     "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter."),
    (lambda h: h.__setitem__("authorization", "Basic dXNlcjpwYXNz"), "IncompleteSignatureException",
     "Unsupported AWS 'algorithm': 'Basic'"),
    (lambda h: h.pop("x-amz-date"), "IncompleteSignatureException",
     "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."),
    (lambda h: h.__setitem__("x-amz-date", "20251399T000000Z"), "IncompleteSignatureException",
     "Date must be in ISO-8601 'basic format'"),
    (lambda h: h.__setitem__("authorization", h["authorization"].replace("/dynamodb/", "/s3/")),
     "InvalidSignatureException", "Credential should be scoped to correct service: 'dynamodb'."),
    (lambda h: h.__setitem__("authorization", h["authorization"].replace("/aws4_request", "/aws5_request")),
     "InvalidSignatureException", "Credential should be scoped with a valid terminator: 'aws4_request'"),
    (lambda h: h.__setitem__("authorization", h["authorization"].replace(f"{KEY}/", f"{KEY}/x/")),
     "IncompleteSignatureException", "Credential must have exactly 5 slash-delimited elements"),
    (lambda h: h.__setitem__("authorization", h["authorization"].replace("SignedHeaders=", "SignedHeaders=x;")
                             .replace(";host;", ";")), "InvalidSignatureException",
     "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."),
])
def test_malformed_authorization_is_refused_with_dynamodb_errors(change: Any, code: str, phrase: str) -> None:
    target, headers = botocore_signed(b"{}")
    change(headers)
    got, message = error(lambda: check(target, headers, b"{}"))
    assert got == code and phrase in message, message


def test_region_must_be_the_systems() -> None:
    _, headers = botocore_signed(b"{}", region="eu-west-1")
    assert error(lambda: sigv4.parse(headers, "us-east-1")) == (
        "InvalidSignatureException", "Credential should be scoped to a valid region, not 'eu-west-1'. ")


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=300), header=_text.map(lambda t: t.strip() or "v"),
       token=st.none() | st.just("session/token+="))
def test_sign_matches_botocore_and_verifies(body: bytes, header: str, token: str | None) -> None:
    # the one signer (client, load generator) against an independent one: a bug shared by the
    # signer and the verifier, which share the canonical request, cannot cancel out here
    _, by_botocore = botocore_signed(body, extra={"X-Custom": header}, token=token)
    stamp = by_botocore["x-amz-date"]
    wire = {k: v for k, v in by_botocore.items() if k not in ("authorization", "content-length")}
    ours = sigv4.sign(method="POST", path="/", headers=wire, body=body, access_key=KEY, secret_key=SECRET,
                      region="us-east-1", timestamp=stamp)
    assert ours == by_botocore["authorization"]
    check("/", wire | {"authorization": ours}, body, now=datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC))
