"""``python -m services.indexer``: run the indexer (log propagator of global secondary indexes)."""

from __future__ import annotations

import argparse

from dynamolog.service import add_common_args, settings_from
from dynamolog.singleton import run_singleton

from .indexer import Indexer


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.indexer",
        description="Keep global secondary indexes up to date: read every table partition log that feeds an "
        "index, turn each change into index writes (put the new entry, delete the old one when the index key "
        "changed) and send them to the index partitions' leaders; backfill indexes added by UpdateTable from the "
        "beginning of the logs. Restart it at any time: it resumes from its committed offsets. Runs as a singleton: "
        "start several and one is active, the others stand by and take over when it dies (dynamolog/singleton.py). "
        "Usually started (twice) by `dynamolog up`.",
    )
    add_common_args(parser)
    args = parser.parse_args()
    settings = settings_from(args)

    async def start() -> Indexer:
        indexer = Indexer(settings)
        await indexer.start()
        return indexer

    async def stop(indexer: Indexer) -> None:
        await indexer.close()

    run_singleton("indexer", args, settings, start, stop)


if __name__ == "__main__":
    main()
