"""The system key: one random 256-bit key per system, in ``<data-dir>/system.key`` (mode 0600).

Two keys are derived from it (HMAC-SHA256 with a purpose label), so neither use can be turned
against the other:

- ``credentials``: AES-256-GCM key that encrypts secret access keys at rest in the credentials
  topic (SigV4 needs the secret itself on the server, so a one-way hash cannot work);
- ``internal-rpc``: the shared key with which the system's services prove themselves to each
  other on every internal RPC connection (:mod:`dynamolog.rpc`).

Services find the file through ``$DYNAMOLOG_SYSTEM_KEY_FILE`` (``dynamolog up`` sets it).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dynamolog import config

FILE_NAME = "system.key"
ENV = "DYNAMOLOG_SYSTEM_KEY_FILE"


class SystemKeyError(RuntimeError):
    """The system key is missing, unreadable or wrong (the message says what to do)."""


def ensure(data_dir: Path) -> Path:
    """Create ``<data_dir>/system.key`` (0600) if missing; return its path."""
    path = data_dir / FILE_NAME
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o600)  # readable by its owner only, whatever made it otherwise
        return path
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path


def load(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
        key = bytes.fromhex(text)
    except (OSError, ValueError) as e:
        raise SystemKeyError(f"cannot read the system key {path}: {e}") from None
    if len(key) != 32:
        raise SystemKeyError(f"{path} does not hold a 256-bit key (64 hex digits)")
    return key


def from_env() -> bytes:
    """The system key named by ``$DYNAMOLOG_SYSTEM_KEY_FILE`` (this process's settings)."""
    name = config.settings().system_key_file
    if not name:
        raise SystemKeyError(f"no system key: set {ENV} to the system's key file "
                             f"(`dynamolog up` creates <data-dir>/{FILE_NAME} and sets it for the services it starts)")
    return load(Path(name))


def derive(master: bytes, purpose: str) -> bytes:
    return hmac.new(master, b"dynamolog/" + purpose.encode(), hashlib.sha256).digest()


def internal_rpc_key(master: bytes) -> bytes:
    return derive(master, "internal-rpc")


def encrypt(master: bytes, plaintext: bytes, associated: bytes) -> bytes:
    """12-byte random nonce + AES-256-GCM ciphertext and tag."""
    nonce = os.urandom(12)
    return nonce + AESGCM(derive(master, "credentials")).encrypt(nonce, plaintext, associated)


def decrypt(master: bytes, blob: bytes, associated: bytes) -> bytes:
    try:
        return AESGCM(derive(master, "credentials")).decrypt(blob[:12], blob[12:], associated)
    except (InvalidTag, ValueError):
        raise SystemKeyError("a credential does not decrypt with this system key (another system's key, "
                             "or the record was altered)") from None
