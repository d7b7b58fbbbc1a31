"""``python -m services.storage``: run a storage node."""

from __future__ import annotations

import argparse
from pathlib import Path

from dynamolog.service import add_common_args, run, settings_from

from .node import StorageNode


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.storage",
        description="Host partition replicas: materialize RocksDB views from the partition logs, sequence "
        "writes for the partitions this node leads, serve reads. Usually started by `dynamolog up`.",
    )
    add_common_args(parser)
    parser.add_argument("--node-id", required=True, help="stable id of this node, e.g. n1")
    parser.add_argument("--data-dir", required=True, type=Path, help="where the RocksDB views live")
    parser.add_argument("--host", default="127.0.0.1", help="address of the internal RPC server")
    parser.add_argument("--port", type=int, default=0, help="internal RPC port (default: any free port)")
    parser.add_argument("--zone", default=None,
                        help="the availability zone this node runs in, e.g. a (registered with the node; a "
                        "partition's replicas go to distinct zones when there are enough)")
    parser.add_argument("--advertise", default=None, metavar="HOST:PORT",
                        help="the RPC address other services are told to use (default: --host and the bound port); "
                        "fault tests put a proxy there")
    args = parser.parse_args()
    settings = settings_from(args)

    async def start() -> StorageNode:
        node = StorageNode(settings, args.node_id, args.data_dir, args.host, args.port, zone=args.zone,
                           advertise=args.advertise)
        await node.start()
        return node

    async def stop(node: StorageNode) -> None:
        await node.close()

    run(f"storage-{args.node_id}", args, start, stop)


if __name__ == "__main__":
    main()
