"""``dynamolog split``: split a table partition now (the auto-admin's ``split`` RPC).

The auto-admin splits partitions by itself when they grow past ``DYNAMOLOG_SPLIT_BYTES`` or stay
hot (docs/decisions/0039-partition-splits.md); this command asks it to split one at once and
prints what it did, for an operator who wants to spread a table before a load, and for the
split benchmark (bench/splits.py).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

SPLIT_EPILOG = """\
The partition is sealed (its writes wait, for well under a second on an idle machine), its two
children copy their share of its data on the nodes that hold it, and then serve; nothing is lost
and the table's stream shows the parent shard closed and two child shards.

examples:
  dynamolog split Music                         # the table's widest partition
  dynamolog split Music --partition 3f2a...-0   # one partition (ids: dynamolog status)
  dynamolog split Music --by heat               # cut at the median key of its recent requests
"""


async def _split(system: Any, table: str, pid: str | None, by: str) -> dict[str, Any]:
    from .catalog_client import CatalogClient
    from .metadata import Metadata

    metadata = Metadata(system.settings())
    await metadata.start()
    client = CatalogClient(metadata, key=system.rpc_key())
    try:
        t = metadata.catalog.items.get(table)
        if t is None:
            raise ValueError(f"no table {table!r} in this system")
        parts = metadata.table_partitions(t.table_id)
        if pid is None:
            if not parts:
                raise ValueError(f"table {table!r} has no partitions yet")
            pid = max(parts, key=lambda p: p.hash_end - p.hash_start).partition_id
        elif pid not in {p.partition_id for p in parts}:
            raise ValueError(f"{pid!r} is not a partition of {table!r} now "
                             f"(they are: {', '.join(p.partition_id for p in parts)})")
        answer: dict[str, Any] = await client.admin_call("split", pid=pid, by=by)
        return answer
    finally:
        await client.close()
        await metadata.close()


def _cmd_split(args: argparse.Namespace) -> int:
    from .launcher import System

    system = System(args.data_dir)
    if system.state() is None:
        print(f"dynamolog split: no system is running from {args.data_dir} (start one with `dynamolog up`)",
              file=sys.stderr)
        return 1
    try:
        done = asyncio.run(_split(system, args.table, args.partition, args.by))
    except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
        print(f"dynamolog split: {e}", file=sys.stderr)
        return 1
    print(f"partition {done['parent']} split into {', '.join(done['children'])} at hash {done['at_hash']:016x}: "
          f"sealed at offset {done['cut_offset']} in {done['seal_s'] * 1000:.0f} ms, children serving "
          f"{done['open_s'] * 1000:.0f} ms later ({done['total_s']:.2f} s in all)")
    return 0


def add_split_parser(sub: Any, data_dir_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("split", help="split a table partition in two now",
                       description="Ask the auto-admin to split one partition of TABLE in two now.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SPLIT_EPILOG)
    p.add_argument("table", metavar="TABLE", help="the table")
    p.add_argument("--partition", default=None, help="the partition id (default: the table's widest partition)")
    p.add_argument("--by", choices=("size", "heat"), default="size",
                   help="where to cut: size, the key that halves its bytes (default); heat, the median key of "
                   "its recent requests")
    data_dir_arg(p)
    p.set_defaults(func=_cmd_split)
