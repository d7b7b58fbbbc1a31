"""``python -m services.backup``: run the backup service (backups, restores, recovery snapshots)."""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import sys

from dynamolog.service import add_common_args, settings_from
from dynamolog.singleton import run_singleton

from .service import BackupService

#: glibc's mallopt parameters: the number of malloc arenas; the size from which a block is mapped
#: on its own (and unmapped when freed)
_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3


def _few_arenas() -> None:
    """Two malloc arenas for the whole process (glibc; elsewhere nothing): the service's threads
    (the CPU thread, the store's I/O threads) would otherwise each keep an arena of their own,
    and large items freed in one are not reused by another, so a restore's resident memory grew
    with the number of threads rather than with its bounded buffers.  And blocks of 1 MB or more
    (an object read from the store, a chunk) mapped on their own: glibc otherwise raises that
    threshold after the first such block is freed, and later ones fragment the heap."""
    if not sys.platform.startswith("linux"):
        return
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(_M_ARENA_MAX, 2)
        libc.mallopt(_M_MMAP_THRESHOLD, 1024 * 1024)
    except (OSError, AttributeError):
        pass  # not glibc


def main() -> None:
    _few_arenas()
    parser = argparse.ArgumentParser(
        prog="python -m services.backup",
        description="Take on-demand backups (each partition's snapshot at an offset plus its log up to the "
        "backup's cut, with a manifest), restore them and points in time into new tables, and, for tables "
        "with point-in-time recovery on, copy each partition's state to the backup store periodically. "
        "Backups live in an object store: a directory (default DATA/backups) or s3://bucket/prefix on any "
        "S3-compatible endpoint. Routers hand it their validated requests over the internal RPC. Runs as a "
        "singleton: start several and one is active (dynamolog/singleton.py). Usually started (twice) by "
        "`dynamolog up`. Example: python -m services.backup --store s3://my-bucket/dynamolog "
        "--s3-endpoint-url http://127.0.0.1:9000",
    )
    add_common_args(parser)
    parser.add_argument("--store", default=None,
                        help="where backups live: a directory, file:///path or s3://bucket/prefix "
                        "(default: $DYNAMOLOG_BACKUP_STORE, else DATA/backups)")
    parser.add_argument("--s3-endpoint-url", default=None,
                        help="the S3 API endpoint of an s3:// store (default: $AWS_ENDPOINT_URL_S3, else AWS)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address its internal RPC listens on and routers reach it at (published in the nodes topic)")
    parser.add_argument("--port", type=int, default=0, help="its internal RPC port (0: any free port)")
    args = parser.parse_args()
    settings = settings_from(args, backup_store=args.store, s3_endpoint_url=args.s3_endpoint_url)

    async def start() -> BackupService:
        service = BackupService(settings, rpc_host=args.host, rpc_port=args.port)
        await service.start()
        return service

    async def stop(service: BackupService) -> None:
        await service.close()

    run_singleton("backup", args, settings, start, stop)


if __name__ == "__main__":
    main()
