"""``python -m services.router``: run a request router."""

from __future__ import annotations

import argparse

from dynamolog.auth import systemkey
from dynamolog.service import add_common_args, run, settings_from

from .app import Router
from .http import HttpLimits


def main() -> None:
    defaults = HttpLimits()
    parser = argparse.ArgumentParser(
        prog="python -m services.router",
        description="Serve the DynamoDB JSON API over HTTP and route requests to the storage nodes. "
        "Usually started by `dynamolog up`.",
    )
    add_common_args(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument("--initial-partitions", type=int, default=1,
                        help="partitions of a new on-demand table (default 1; docs/decisions/0048-one-partition-"
                        "to-start.md)")
    parser.add_argument("--zone", default=None,
                        help="the availability zone this router runs in, e.g. a: an eventually consistent read "
                        "goes to the partition's replica in that zone when it has one (default: none, reads go "
                        "round robin over the replicas)")
    parser.add_argument("--no-auth", action="store_true",
                        help="serve every request without checking its signature or permissions (for measuring "
                        "the cost of authentication; never on a network others can reach)")
    parser.add_argument("--connections-max", type=int, default=defaults.connections_max,
                        help=f"open client connections at most; more are answered 503 and closed (default "
                        f"{defaults.connections_max})")
    parser.add_argument("--request-timeout", type=float, default=defaults.request_s_max,
                        help="seconds a client may take to send one whole request before the connection is "
                        f"closed (slow clients; default {defaults.request_s_max:g})")
    parser.add_argument("--idle-timeout", type=float, default=defaults.idle_s_max,
                        help=f"seconds an idle keep-alive connection stays open (default {defaults.idle_s_max:g})")
    args = parser.parse_args()
    settings = settings_from(args)
    try:
        key = None if args.no_auth else systemkey.from_env()
    except systemkey.SystemKeyError as e:
        parser.error(str(e))
    limits = HttpLimits(connections_max=args.connections_max, request_s_max=args.request_timeout,
                        idle_s_max=args.idle_timeout)

    async def start() -> Router:
        router = Router(settings, args.host, args.port, args.initial_partitions, auth=not args.no_auth,
                        system_key=key, limits=limits, zone=args.zone)
        await router.start()
        return router

    async def stop(router: Router) -> None:
        await router.close()

    run("router", args, start, stop)


if __name__ == "__main__":
    main()
