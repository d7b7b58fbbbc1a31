"""``python -m services.admin``: run the auto-admin."""

from __future__ import annotations

import argparse

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
    parser.add_argument("--check-interval", type=float, default=None,
                        help="seconds between heartbeats (default: $DYNAMOLOG_ADMIN_CHECK_S or 0.25)")
    parser.add_argument("--dead-after", type=float, default=None,
                        help="a node that has not answered for this many seconds is down: its partitions get new "
                        "leaders (default: $DYNAMOLOG_DEAD_AFTER_S or 3)")
    parser.add_argument("--repair-after", type=float, default=None,
                        help="a replica on a node down for this many seconds is rebuilt on another node "
                        "(default: $DYNAMOLOG_REPAIR_AFTER_S or 30)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address the catalog writer's internal RPC server binds to and publishes for routers "
                        "and the indexer (default: 127.0.0.1; in containers, this service's host name)")
    parser.add_argument("--port", type=int, default=0,
                        help="its port (default: 0, any free port; the address is published in the nodes topic)")
    args = parser.parse_args()
    settings = settings_from(args, admin_check_s=args.check_interval, dead_after_s=args.dead_after,
                             repair_after_s=args.repair_after)

    async def start() -> AutoAdmin:
        admin = AutoAdmin(settings, check_interval=settings.admin_check_s, dead_after=settings.dead_after_s,
                          repair_after=settings.repair_after_s, rpc_host=args.host, rpc_port=args.port)
        await admin.start()
        return admin

    async def stop(admin: AutoAdmin) -> None:
        await admin.close()

    run_singleton("admin", args, settings, start, stop)


if __name__ == "__main__":
    main()
