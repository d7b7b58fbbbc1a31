"""``python -m services.repin``: apply other regions' changes of global tables here."""

from __future__ import annotations

import argparse

from dynamolog.auth import systemkey
from dynamolog.service import add_common_args, settings_from
from dynamolog.singleton import run_singleton

from .repin import RepIn


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.repin",
        description="Apply the changes other regions' RepOuts mirrored into this region's Kafka cluster: check each "
        "batch's signature with the replication key, then write each change through the partition leaders, applied "
        "only if it is newer than the item (last writer wins); the position is committed after the batch is "
        "acknowledged (a repeated batch changes nothing). Runs as a singleton (one active, others on standby); "
        "usually started twice by `dynamolog up`.",
    )
    add_common_args(parser)
    args = parser.parse_args()
    settings = settings_from(args)

    async def start() -> RepIn:
        service = RepIn(settings, systemkey.from_env())
        await service.start()
        return service

    async def stop(service: RepIn) -> None:
        await service.close()

    run_singleton("repin", args, settings, start, stop)


if __name__ == "__main__":
    main()
