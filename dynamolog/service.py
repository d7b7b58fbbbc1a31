"""Running a service process: logging, uvloop, and a clean stop on SIGTERM / SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from .config import Settings


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Options every service takes (each defaults to its environment variable)."""
    parser.add_argument("--bootstrap", default=None,
                        help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092)")
    parser.add_argument("--namespace", default=None,
                        help="prefix of topics and transactional ids (default: $DYNAMOLOG_NAMESPACE or dyn)")
    parser.add_argument("--region", default=None, help="region name (default: $DYNAMOLOG_REGION or us-east-1)")
    parser.add_argument("--log-level", default=os.environ.get("DYNAMOLOG_LOG_LEVEL", "INFO"),
                        help="DEBUG, INFO, WARNING or ERROR (default: INFO)")


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings.from_env(bootstrap=args.bootstrap, namespace=args.namespace, region=args.region)


def run(name: str, args: argparse.Namespace, start: Callable[[], Awaitable[Any]],
        stop: Callable[[Any], Awaitable[None]]) -> None:
    """Start a service, run until SIGTERM or SIGINT, then stop it cleanly."""
    logging.basicConfig(level=args.log_level.upper(), format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency, but keep running without it
        pass

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        service = await start()
        await done.wait()
        logging.getLogger(name).info("stopping")
        await stop(service)

    asyncio.run(main())
