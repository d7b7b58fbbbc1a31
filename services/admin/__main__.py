"""``python -m services.admin``: run the auto-admin."""

from __future__ import annotations

import argparse
import os

from dynamolog.service import add_common_args, settings_from
from dynamolog.singleton import run_singleton

from .admin import AutoAdmin


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.admin",
        description="Auto-admin: watch storage nodes (heartbeats over the internal RPC), elect a new leader "
        "for every partition whose leader stops answering, and rebuild replicas of nodes gone for longer than "
        "--repair-after on other nodes. Its state is in the metadata topics; restart it at any time. Runs as a "
        "fenced singleton: start several and one is active, the others stand by and take over when it dies "
        "(dynamolog/singleton.py). Usually started (twice) by `dynamolog up`.",
    )
    add_common_args(parser)
    parser.add_argument("--check-interval", type=float,
                        default=float(os.environ.get("DYNAMOLOG_ADMIN_CHECK_S", "0.25")),
                        help="seconds between heartbeats (default 0.25; $DYNAMOLOG_ADMIN_CHECK_S)")
    parser.add_argument("--dead-after", type=float, default=float(os.environ.get("DYNAMOLOG_DEAD_AFTER_S", "3")),
                        help="a node that has not answered for this many seconds is down: its partitions get new "
                        "leaders (default 3; $DYNAMOLOG_DEAD_AFTER_S)")
    parser.add_argument("--repair-after", type=float,
                        default=float(os.environ.get("DYNAMOLOG_REPAIR_AFTER_S", "30")),
                        help="a replica on a node down for this many seconds is rebuilt on another node "
                        "(default 30; $DYNAMOLOG_REPAIR_AFTER_S)")
    args = parser.parse_args()
    settings = settings_from(args)

    async def start() -> AutoAdmin:
        admin = AutoAdmin(settings, check_interval=args.check_interval, dead_after=args.dead_after,
                          repair_after=args.repair_after)
        await admin.start()
        return admin

    async def stop(admin: AutoAdmin) -> None:
        await admin.close()

    run_singleton("admin", args, settings, start, stop)


if __name__ == "__main__":
    main()
