"""Which access key a benchmark signs with.

In order: ``$AWS_ACCESS_KEY_ID`` / ``$AWS_SECRET_ACCESS_KEY`` (e.g. after
``set -a; . .data/credentials.env; set +a``), else the administrator key in
``<data-dir>/credentials.env`` (``--data-dir``, default ``$DYNAMOLOG_DATA_DIR`` or ``.data``),
else a placeholder key that servers which check no signature (dynalite) accept.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from dynamolog import config
from dynamolog.auth.credentials import read_env_file

PLACEHOLDER = ("AKIDBENCHPLACEHOLDER", "bench-placeholder-secret")


def default_data_dir() -> Path:
    return Path(config.settings().data_dir)


def credentials(data_dir: Path | None = None) -> tuple[str, str]:
    """(access key id, secret access key)."""
    env = os.environ
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    found = read_env_file((data_dir or default_data_dir()) / "credentials.env")
    if found.get("AWS_ACCESS_KEY_ID") and found.get("AWS_SECRET_ACCESS_KEY"):
        return found["AWS_ACCESS_KEY_ID"], found["AWS_SECRET_ACCESS_KEY"]
    return PLACEHOLDER


def use_system_key(data_dir: Path) -> None:
    """Let this process speak the internal RPC to the system in ``data_dir``."""
    key = data_dir / "system.key"
    if key.exists():
        config.use(dataclasses.replace(config.settings(), system_key_file=str(key.resolve())))
