"""``python -m dynamolog.auth DIR``: make DIR/system.key and the administrator key (DIR/credentials.env)
for services that are not started by ``dynamolog up`` (docker-compose.yml), using
``$KAFKA_BOOTSTRAP_SERVERS``, ``$DYNAMOLOG_NAMESPACE`` and ``$DYNAMOLOG_REGION``. Idempotent."""

from __future__ import annotations

import argparse
from pathlib import Path

from dynamolog.config import Settings

from . import credentials, systemkey


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m dynamolog.auth", description=__doc__)
    p.add_argument("dir", type=Path, help="where system.key and credentials.env go (a volume the services share)")
    p.add_argument("--endpoint", default="http://127.0.0.1:8000", help="endpoint written into credentials.env")
    a = p.parse_args()
    key = systemkey.load(systemkey.ensure(a.dir))
    key_id, new = credentials.run(credentials.ensure_admin_key(Settings.from_env(), key, a.dir / "credentials.env",
                                                               a.endpoint))
    print(f"administrator key {key_id} {'created' if new else 'present'}; see {a.dir / 'credentials.env'}")


if __name__ == "__main__":
    main()
