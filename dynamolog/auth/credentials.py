"""Access keys: the compacted ``<ns>.credentials`` topic, its view, and the files that hand a
key to a user (``credentials.env``, AWS profiles).

A key is an access key id (``DKIA`` + 16 characters, public) and a secret access key (40
characters).  The topic holds one :class:`Credential` per key id, the secret encrypted with the
system key; revoking writes the record again with ``revoked_ms`` set, so a revoked key stays
known as revoked (and ``dynamolog up`` never brings it back).  Every router follows the topic,
so a new or revoked key takes effect on every router within about a second.
"""

from __future__ import annotations

import asyncio
import configparser
import hashlib
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import fastavro

from dynamolog.config import Settings
from dynamolog.kafka.admin import KafkaAdmin

from . import systemkey
from .policy import Policy

log = logging.getLogger(__name__)

_SCHEMA = fastavro.parse_schema(json.loads(
    (Path(__file__).resolve().parent.parent.parent / "schemas" / "Credential.avsc").read_text()))
_KEY_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
CREDENTIALS_ENV = "credentials.env"
ADMIN_USER = "admin"


def topic(settings: Settings) -> str:
    return f"{settings.namespace}.credentials"


@dataclass(frozen=True)
class Credential:
    """One access key, as a router holds it (secret decrypted)."""

    #: the public access key id
    access_key_id: str
    #: the user the key belongs to (IAM-style name)
    user_name: str
    #: the secret access key
    secret: str
    #: the IAM-like policy document
    policy_document: dict[str, Any]
    #: when the key was made (ms since the epoch)
    created_ms: int
    #: when it was revoked, or None
    revoked_ms: int | None = None
    #: hex SHA-256 of the session token the key requires, or None
    session_token_sha256: str | None = None
    #: the parsed policy
    policy: Policy = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "policy", Policy(self.policy_document))


def new(user_name: str, policy_document: dict[str, Any], *, session_token: bool = False) -> tuple[Credential, str | None]:
    """A fresh key (and its session token when asked for)."""
    key_id = "DKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
    secret = secrets.token_urlsafe(30)  # 40 characters
    token = secrets.token_urlsafe(48) if session_token else None
    cred = Credential(key_id, user_name, secret, policy_document, int(time.time() * 1000),
                      session_token_sha256=hashlib.sha256(token.encode()).hexdigest() if token else None)
    return cred, token


def encode(cred: Credential, master: bytes) -> bytes:
    out = BytesIO()
    fastavro.schemaless_writer(out, _SCHEMA, {
        "access_key_id": cred.access_key_id,
        "user_name": cred.user_name,
        "secret_ciphertext": systemkey.encrypt(master, cred.secret.encode(), cred.access_key_id.encode()),
        "session_token_sha256": cred.session_token_sha256,
        "policy_json": json.dumps(cred.policy_document, separators=(",", ":")),
        "created_ms": cred.created_ms,
        "revoked_ms": cred.revoked_ms,
    })
    return out.getvalue()


def decode(data: bytes, master: bytes) -> Credential:
    d: Any = fastavro.schemaless_reader(BytesIO(data), _SCHEMA, _SCHEMA)
    secret = systemkey.decrypt(master, d["secret_ciphertext"], d["access_key_id"].encode()).decode()
    return Credential(d["access_key_id"], d["user_name"], secret, json.loads(d["policy_json"]), d["created_ms"],
                      d["revoked_ms"], d["session_token_sha256"])


def decoder(master: bytes) -> Any:
    """A decode function for a TopicView: a record that does not decrypt counts as absent."""
    def dec(data: bytes) -> Credential | None:
        try:
            return decode(data, master)
        except (systemkey.SystemKeyError, ValueError, KeyError, EOFError) as e:
            log.warning("credentials: a record could not be read and is ignored: %s", e)
            return None
    return dec


async def ensure_topic(settings: Settings) -> None:
    async with KafkaAdmin(settings.bootstrap) as admin:
        await admin.ensure_compacted_topic(topic(settings))
        await admin.wait_for_topics([topic(settings)])


async def publish(settings: Settings, master: bytes, cred: Credential) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic(settings), key=cred.access_key_id.encode(), value=encode(cred, master))
    finally:
        await producer.stop()


async def read_all(settings: Settings, master: bytes) -> dict[str, Credential]:
    """Every key in the topic now (revoked ones included)."""
    from dynamolog.metadata import TopicView

    await ensure_topic(settings)
    view: Any = TopicView(settings, topic(settings), decoder(master))
    await view.start()
    await view.close()
    return {k: v for k, v in view.items.items() if v is not None}


async def revoke(settings: Settings, master: bytes, key_id: str) -> Credential | None:
    """Mark a key revoked; None when there is no such key."""
    current = (await read_all(settings, master)).get(key_id)
    if current is None:
        return None
    if current.revoked_ms is None:
        current = Credential(current.access_key_id, current.user_name, current.secret, current.policy_document,
                             current.created_ms, int(time.time() * 1000), current.session_token_sha256)
        await publish(settings, master, current)
    return current


# -- handing keys to users ------------------------------------------------------------------
def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (created 0600, never wider)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def write_env_file(path: Path, key_id: str, secret: str, region: str, endpoint: str) -> None:
    """``credentials.env``: ``set -a; . credentials.env`` makes boto3 and the AWS CLI use the key."""
    _write_private(path, "# Dynamolog administrator key (written by `dynamolog up`). Use it with:\n"
                         f"#   set -a; . {path}; set +a\n"
                         f"AWS_ACCESS_KEY_ID={key_id}\nAWS_SECRET_ACCESS_KEY={secret}\n"
                         f"AWS_DEFAULT_REGION={region}\nAWS_ENDPOINT_URL={endpoint}\n")


def read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def write_aws_profile(name: str, key_id: str, secret: str, region: str, endpoint: str) -> tuple[Path, Path]:
    """Add or replace profile ``name`` in the AWS shared credentials and config files
    (``$AWS_SHARED_CREDENTIALS_FILE`` / ``$AWS_CONFIG_FILE``, default ``~/.aws/``)."""
    cred_path = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    conf_path = Path(os.environ.get("AWS_CONFIG_FILE") or Path.home() / ".aws" / "config")
    for path, section, values in (
        (cred_path, name, {"aws_access_key_id": key_id, "aws_secret_access_key": secret}),
        (conf_path, name if name == "default" else f"profile {name}", {"region": region, "endpoint_url": endpoint}),
    ):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        cp = configparser.RawConfigParser()
        cp.read(path)
        if not cp.has_section(section):
            cp.add_section(section)
        for k, v in values.items():
            cp.set(section, k, v)
        buf = []
        for s in cp.sections():
            buf.append(f"[{s}]")
            buf.extend(f"{k} = {v}" for k, v in cp.items(s))
            buf.append("")
        _write_private(path, "\n".join(buf))
    return cred_path, conf_path


async def ensure_admin_key(settings: Settings, master: bytes, env_path: Path, endpoint: str) -> tuple[str, bool]:
    """Make sure the administrator key of ``env_path`` exists in the topic, creating the key
    (and the file) on a fresh data directory.  Returns (access key id, whether it is new).

    The file is rewritten with the current endpoint; a key that was revoked stays revoked.
    """
    await ensure_topic(settings)
    current = read_env_file(env_path)
    key_id, secret = current.get("AWS_ACCESS_KEY_ID"), current.get("AWS_SECRET_ACCESS_KEY")
    created = False
    if key_id and secret:
        known = await read_all(settings, master)
        if key_id not in known:  # e.g. the same data directory pointed at an empty Kafka cluster
            cred = Credential(key_id, ADMIN_USER, secret, _admin_policy(), int(time.time() * 1000))
            await publish(settings, master, cred)
    else:
        cred, _ = new(ADMIN_USER, _admin_policy())
        await publish(settings, master, cred)
        key_id, secret, created = cred.access_key_id, cred.secret, True
    write_env_file(env_path, key_id, secret, settings.region, endpoint)
    return key_id, created


def _admin_policy() -> dict[str, Any]:
    from .policy import ADMIN

    doc: dict[str, Any] = json.loads(json.dumps(ADMIN))
    return doc


def run(coro: Any) -> Any:
    """Run a coroutine from synchronous code (the launcher and the CLI)."""
    return asyncio.run(coro)
