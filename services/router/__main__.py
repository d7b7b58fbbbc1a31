"""``python -m services.router``: run a request router."""

from __future__ import annotations

import argparse

from dynamolog.service import add_common_args, run, settings_from

from .app import Router


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.router",
        description="Serve the DynamoDB JSON API over HTTP and route requests to the storage nodes. "
        "Usually started by `dynamolog up`.",
    )
    add_common_args(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument("--initial-partitions", type=int, default=2,
                        help="partitions of a new on-demand table (default 2)")
    args = parser.parse_args()
    settings = settings_from(args)

    async def start() -> Router:
        router = Router(settings, args.host, args.port, args.initial_partitions)
        await router.start()
        return router

    async def stop(router: Router) -> None:
        await router.close()

    run("router", args, start, stop)


if __name__ == "__main__":
    main()
