"""``python -m services.repout``: ship this region's changes of global tables to the other regions."""

from __future__ import annotations

import argparse

from dynamolog.auth import systemkey
from dynamolog.service import add_common_args, settings_from
from dynamolog.singleton import run_singleton

from .repout import RepOut


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.repout",
        description="Follow the partition logs of global tables and mirror every change made in this region into "
        "the Kafka cluster of each other region with a replica (its RepIn applies them), with the positions in "
        "the same Kafka transaction, so a restart neither loses nor repeats a change. Changes that arrived by "
        "replication are never shipped again. Regions are linked with `dynamolog regions add`. Runs as a "
        "singleton (one active, others on standby); usually started twice by `dynamolog up`.",
    )
    add_common_args(parser)
    args = parser.parse_args()
    settings = settings_from(args)

    async def start() -> RepOut:
        service = RepOut(settings, systemkey.from_env())
        await service.start()
        return service

    async def stop(service: RepOut) -> None:
        await service.close()

    run_singleton("repout", args, settings, start, stop)


if __name__ == "__main__":
    main()
