"""Running a service process: logging, uvloop, and a clean stop on SIGTERM / SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from . import config, native
from .config import Settings
from .metrics import MetricsEndpoint, collect_of


class HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions as usual but keeps text that has its own line breaks (the settings
    epilog) as it is."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Options every service takes (each overrides its environment variable), and the list of
    every setting at the end of ``--help``."""
    parser.formatter_class = HelpFormatter
    parser.epilog = config.help_epilog()
    parser.add_argument("--bootstrap", default=None,
                        help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092)")
    parser.add_argument("--namespace", default=None,
                        help="prefix of topics and transactional ids (default: $DYNAMOLOG_NAMESPACE or dyn)")
    parser.add_argument("--region", default=None, help="region name (default: $DYNAMOLOG_REGION or us-east-1)")
    parser.add_argument("--log-level", default=None,
                        help="DEBUG, INFO, WARNING or ERROR (default: $DYNAMOLOG_LOG_LEVEL or INFO)")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="serve Prometheus metrics on http://HOST:PORT/metrics (0: any free port; default: "
                        "none; docs/metrics.md)")
    parser.add_argument("--metrics-host", default="127.0.0.1",
                        help="address the metrics endpoint binds to (default: 127.0.0.1)")


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    """This process's settings: the environment, overridden by the common options and by
    ``overrides`` (a service's own options, by setting name); installed as ``config.settings()``."""
    return config.use(Settings.from_env(bootstrap=args.bootstrap, namespace=args.namespace, region=args.region,
                                        log_level=args.log_level, **overrides))


def run(name: str, args: argparse.Namespace, start: Callable[[], Awaitable[Any]],
        stop: Callable[[Any], Awaitable[None]]) -> None:
    """Start a service, run until SIGTERM or SIGINT, then stop it cleanly."""
    logging.basicConfig(level=config.settings().log_level.upper(), format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    compiled, why = native.state()
    logging.getLogger(name).log(logging.INFO if compiled else logging.WARNING,
                                "compiled modules %s: %s", "in use" if compiled else "not in use", why)
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
        endpoint = None
        collect = collect_of(service)
        if getattr(args, "metrics_port", None) is not None and collect is not None:
            endpoint = MetricsEndpoint(collect, args.metrics_host, args.metrics_port)
            await endpoint.start()
        await done.wait()
        logging.getLogger(name).info("stopping")
        if endpoint is not None:
            await endpoint.close()
        await stop(service)

    asyncio.run(main())
