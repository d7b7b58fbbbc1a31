"""Who calls the web side (REST gateway and console): the same access keys as the DynamoDB
protocol, presented without SigV4 (decision 0036).

- ``Authorization: Basic base64(ACCESS_KEY_ID:SECRET)`` (``curl -u``), checked on every request;
- ``Authorization: Bearer TOKEN`` or the console's ``dynamolog_session`` cookie: a session token
  from ``POST /v1/session`` (key id and secret in, token out), valid for :data:`SESSION_S`,
  signed with a key derived from the system key so that every router of the system accepts it,
  and refused as soon as its access key is revoked.

Keys that need a session token (temporary credentials) are refused here: they sign with SigV4.
Permissions are the key's policy, checked per DynamoDB action as on the DynamoDB endpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time

from dynamolog import errors
from dynamolog.auth import sigv4
from dynamolog.auth.credentials import Credential

from ..auth import Authenticator

#: how long a session token is valid (seconds)
SESSION_S = 12 * 3600
COOKIE = "dynamolog_session"


def unauthorized(message: str = "The security token included in the request is invalid.") -> errors.ApiError:
    return errors.ApiError("UnrecognizedClientException", message, status=401)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class WebAuth:
    """Signs in with a key and recognises the caller of each web request."""

    def __init__(self, auth: Authenticator, system_key: bytes | None) -> None:
        self.auth = auth
        self.enabled = auth.enabled
        self._token_key = hashlib.sha256(b"dynamolog web session\0" + (system_key or b"")).digest()

    def sign_in(self, access_key_id: str, secret: str) -> tuple[str, Credential | None]:
        """(a session token, the key); UnrecognizedClientException (401) for a wrong pair."""
        if not self.enabled:
            return "", None
        cred = self._check_secret(access_key_id, secret)
        body = _b64(json.dumps({"k": cred.access_key_id, "e": int(time.time()) + SESSION_S}).encode())
        return f"{body}.{self._sign(body)}", cred

    def _check_secret(self, access_key_id: str, secret: str) -> Credential:
        cred = self.auth.live_key(access_key_id)
        if cred is None or not hmac.compare_digest(cred.secret.encode(), secret.encode()):
            raise unauthorized("The access key id or the secret is not valid (or the key was revoked).")
        if cred.session_token_sha256 is not None:
            raise unauthorized("This key needs a session token; sign its requests with SigV4 on the DynamoDB "
                               "endpoint instead.")
        return cred

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._token_key, body.encode(), hashlib.sha256).digest()[:24])

    def caller(self, authorization: str | None, cookie_token: str | None) -> Credential | None:
        """The key behind a request (None with authentication off), else 401."""
        if not self.enabled:
            return None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "basic":
                try:
                    key_id, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
                except (binascii.Error, ValueError):
                    raise unauthorized("Malformed Basic credentials: give base64(ACCESS_KEY_ID:SECRET).") from None
                if not sep:
                    raise unauthorized("Malformed Basic credentials: give base64(ACCESS_KEY_ID:SECRET).")
                return self._check_secret(key_id, secret)
            if scheme.lower() == "bearer":
                return self._from_token(value.strip())
            if scheme == sigv4.ALGORITHM:
                raise unauthorized("The REST gateway takes Basic or Bearer credentials, not SigV4 (decision 0036).")
            raise unauthorized(f"Unsupported authorization scheme {scheme!r}: use Basic or Bearer.")
        if cookie_token:
            return self._from_token(cookie_token)
        raise unauthorized("Missing credentials: sign in (POST /v1/session) or send Authorization: Basic/Bearer.")

    def _from_token(self, token: str) -> Credential:
        body, _, sig = token.partition(".")
        if not body or not hmac.compare_digest(self._sign(body), sig):
            raise unauthorized("The session token is not valid; sign in again.")
        try:
            claims = json.loads(_unb64(body))
            key_id, expires = str(claims["k"]), int(claims["e"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise unauthorized("The session token is not valid; sign in again.") from None
        if expires < time.time():
            raise unauthorized("The session has expired; sign in again.")
        cred = self.auth.live_key(key_id)
        if cred is None:
            raise unauthorized("The session's access key was revoked.")
        return cred
