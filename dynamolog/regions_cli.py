"""``dynamolog regions``: link this region with other regions for global tables.

``regions add`` writes a record to the system's ``<ns>.regions`` topic (dynamolog/regions.py)
and the replication key to its credentials topic; run it on each side, the second time with
the key the first printed, so that both regions hold the same replication key.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import config, regions
from .auth import credentials, systemkey
from .auth.systemkey import SystemKeyError
from .launcher import System

REGIONS_EPILOG = """\
Linking two regions (run each command against its own region's data directory):
  dynamolog regions add us-west-2 http://127.0.0.1:8001 --data-dir .data
      makes a replication key and prints the command to run in us-west-2, e.g.
  dynamolog regions add us-east-1 http://127.0.0.1:8000 --data-dir .data-west --key DKIA...:SECRET
Then a table gets a replica in the other region with UpdateTable ReplicaUpdates (version 2019.11.21)
or CreateGlobalTable (2017.11.29). The replication key permits only replication
(dynamodb:DescribeReplicationEndpoint); both regions hold it.
"""

_REGION_NAME = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


def _check_name(name: str) -> str | None:
    if not _REGION_NAME.match(name):
        return f"{name!r} is not a region name (like us-west-2)"
    return None


async def _describe(endpoint: str, region: str, key_id: str, secret: str) -> dict[str, Any]:
    from .client.core import Client

    async with Client(endpoint, region=region, access_key=key_id, secret_key=secret, timeout=5.0,
                      max_retries=1) as c:
        return await c.call("DescribeReplicationEndpoint", {})


def _cmd_add(args: argparse.Namespace) -> int:
    bad = _check_name(args.name)
    if bad:
        print(f"dynamolog regions add: {bad}", file=sys.stderr)
        return 2
    if not re.match(r"^https?://[^/\s]+/?$", args.endpoint):
        print(f"dynamolog regions add: {args.endpoint!r} is not an endpoint URL (http://HOST:PORT)", file=sys.stderr)
        return 2
    system = None if args.from_env else System(args.data_dir)
    # a container of docker-compose.yml has no data directory: its settings and system key are
    # in its environment, as every service's are
    settings = system.settings() if system else config.Settings.from_env()
    master = system.system_key() if system else systemkey.from_env()
    if args.name == settings.region:
        print(f"dynamolog regions add: {args.name} is this system's own region", file=sys.stderr)
        return 2
    key_file = Path(args.key_file) if args.key_file else None
    if key_file is not None and key_file.exists():
        args.key = key_file.read_text().strip()
    if args.key:
        key_id, _, secret = args.key.partition(":")
        if not key_id.startswith("DKIA") or not secret:
            print("dynamolog regions add: --key is ACCESS_KEY_ID:SECRET as the other region printed it",
                  file=sys.stderr)
            return 2
        cred = credentials.Credential(key_id, regions.REPLICATION_USER, secret, regions.replication_policy(),
                                      regions.now_ms())
    else:
        cred, _ = credentials.new(regions.REPLICATION_USER, regions.replication_policy())
        if key_file is not None:  # for the other region's `regions add --key-file` (readable by its owner only)
            key_file.touch(mode=0o600)
            key_file.write_text(f"{cred.access_key_id}:{cred.secret}\n")
    credentials.run(credentials.publish(settings, master, cred))
    known, _ = credentials.run(regions.read_all(settings, master))
    replaced = known.get(args.name)
    region = regions.Region(args.name, args.endpoint.rstrip("/"), cred.access_key_id, cred.secret, regions.now_ms())
    credentials.run(regions.put_region(settings, master, region))
    if replaced is not None and replaced.key_id != cred.access_key_id \
            and not any(r.key_id == replaced.key_id for n, r in known.items() if n != args.name):
        credentials.run(credentials.revoke(settings, master, replaced.key_id))  # the link's old key
    try:
        answer = asyncio.run(_describe(region.endpoint, args.name, cred.access_key_id, cred.secret))
    except Exception as e:  # noqa: BLE001 - reported; the link is kept and RepOut keeps trying
        answer = {"error": str(e)}
    if answer.get("Region") == args.name:
        print(f"linked {settings.region} -> {args.name} ({region.endpoint}); Kafka {answer.get('KafkaBootstrap')}")
        return 0
    if answer.get("Region"):
        print(f"dynamolog regions add: {region.endpoint} answers as region {answer['Region']}, not {args.name}; "
              f"remove it with `dynamolog regions remove {args.name}`", file=sys.stderr)
        return 1
    if system is None:
        print(f"added {args.name} ({region.endpoint}); it does not answer with the replication key yet (RepOut "
              "keeps trying)")
        return 0
    own = system.credentials().get("AWS_ENDPOINT_URL") or f"http://127.0.0.1:{(system.state() or {}).get('port')}"
    print(f"added {args.name} ({region.endpoint}); it does not know the replication key yet. Run in {args.name}:\n"
          f"  dynamolog regions add {settings.region} {own} --data-dir DATA_DIR_OF_{args.name.upper()} "
          f"--key {cred.access_key_id}:{cred.secret}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    system = System(args.data_dir)
    settings = system.settings()
    known, tables = credentials.run(regions.read_all(settings, system.system_key()))
    print(f"this region: {settings.region}")
    if not known:
        print("no other region (add one with `dynamolog regions add NAME ENDPOINT_URL`)")
    for name, r in sorted(known.items()):
        try:
            answer = asyncio.run(_describe(r.endpoint, name, r.key_id, r.secret))
            reach = f"reachable, Kafka {answer.get('KafkaBootstrap')}"
        except Exception as e:  # noqa: BLE001 - shown
            reach = f"not reachable with the key ({type(e).__name__}: {e})"
        print(f"  {name:<16} {r.endpoint:<28} key {r.key_id}  {reach}")
    for table, rep in sorted(tables.items()):
        print(f"  table {table}: " + ", ".join(f"{n} {s}" for n, s in sorted(rep.status.items())))
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    system = System(args.data_dir)
    settings = system.settings()
    master = system.system_key()
    known, tables = credentials.run(regions.read_all(settings, master))
    if args.name not in known:
        print(f"dynamolog regions remove: no region {args.name} (see `dynamolog regions list`)", file=sys.stderr)
        return 1
    using = sorted(t for t, rep in tables.items() if args.name in rep.status)
    if using:
        print(f"dynamolog regions remove: table(s) {', '.join(using)} have a replica in {args.name}; delete those "
              "replicas first (UpdateTable ReplicaUpdates Delete)", file=sys.stderr)
        return 1
    credentials.run(regions.remove_region(settings, args.name))
    if not any(r.key_id == known[args.name].key_id for n, r in known.items() if n != args.name):
        credentials.run(credentials.revoke(settings, master, known[args.name].key_id))
    print(f"removed {args.name}; its replication key {known[args.name].key_id} is revoked here")
    return 0


def print_status(system: System) -> None:
    """`dynamolog status`'s part on global tables: this region, the linked regions, each
    replicated table's replicas, and RepOut's and RepIn's figures (positions, counts, lag), as
    they last published them in the regions topic."""
    settings = system.settings()

    async def read() -> tuple[dict[str, regions.Region], dict[str, regions.Replicas], dict[str, Any]]:
        view = regions.RegionsView(settings, None)
        await view.start()
        await view.close()
        return view.regions(), view.tables(), view.figures()

    try:
        known, tables, figures = asyncio.run(asyncio.wait_for(read(), 15))
    except Exception as e:  # noqa: BLE001 - status reports every failure, never raises
        print(f"global tables: not known ({e!r})")
        return
    linked = ", ".join(f"{n} ({r.endpoint})" for n, r in sorted(known.items())) or "none"
    print(f"region    {settings.region}; linked regions: {linked}")
    if tables:
        print("global tables (replicas and their status)")
        for name, rep in sorted(tables.items()):
            print(f"  {name:<24} {rep.version}  " + ", ".join(f"{r} {s}" for r, s in sorted(rep.status.items())))
    now = regions.now_ms()
    for key, f in sorted(figures.items()):
        kind, _, other = key.partition("/")
        if other not in known:
            continue
        age = f"{(now - int(f.get('updated_ms', now))) / 1000:.0f} s ago"
        if kind == "repout":
            pos = ", ".join(f"{t} @{o}" for t, o in sorted(f.get("positions", {}).items())) or "-"
            ship = (f"; stamp -> committed there p50 {f['ship_ms_p50']} ms p99 {f['ship_ms_p99']} ms"
                    if f.get("ship_ms_p50") is not None else "")
            print(f"  repout -> {other:<12} {f.get('state'):<9} shipped {f.get('shipped')} lag {f.get('lag_records')} "
                  f"records; skipped (replicated here) {f.get('skipped_replicated')}; positions {pos}{ship} ({age})"
                  + (f"; {f['error']}" if f.get("error") else ""))
        elif kind == "repin":
            lat = (f"; stamp -> applied p50 {f['lag_ms_p50']} ms p99 {f['lag_ms_p99']} ms"
                   if f.get("lag_ms_p50") is not None else "")
            print(f"  repin  <- {other:<12} {f.get('state'):<9} applied {f.get('applied')} position {f.get('position')} "
                  f"lag {f.get('lag_records')} records; refused batches {f.get('rejected')}{lat} ({age})"
                  + (f"; {f['error']}" if f.get("error") else ""))


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (RuntimeError, SystemKeyError, OSError) as e:
            print(f"dynamolog regions: {e}", file=sys.stderr)
            return 1
    return run


def add_regions_parser(sub: Any, data_dir_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("regions", help="link this region with other regions (global tables)",
                       description="Manage the regions this one replicates global tables with. The system must "
                       "be running (`dynamolog up --region NAME`).",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=REGIONS_EPILOG)
    rs = p.add_subparsers(dest="regions_command", required=True)
    add = rs.add_parser("add", help="link another region (run on both sides)",
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=REGIONS_EPILOG)
    add.add_argument("name", metavar="NAME", help="the other region's name (its `dynamolog up --region`)")
    add.add_argument("endpoint", metavar="ENDPOINT_URL", help="the other region's router, http://HOST:PORT")
    add.add_argument("--key", metavar="ACCESS_KEY_ID:SECRET",
                     help="the replication key the other region printed (default: make a new one)")
    add.add_argument("--key-file", metavar="PATH",
                     help="read the replication key (ACCESS_KEY_ID:SECRET) from PATH; when PATH does not exist, "
                     "make a new key and write it there for the other region's `regions add --key-file`")
    add.add_argument("--from-env", action="store_true",
                     help="take this region's settings (KAFKA_BOOTSTRAP_SERVERS, DYNAMOLOG_REGION, "
                     "DYNAMOLOG_NAMESPACE) and system key ($DYNAMOLOG_SYSTEM_KEY_FILE) from the environment, as "
                     "the containers of docker-compose.yml have them, instead of --data-dir")
    data_dir_arg(add)
    add.set_defaults(func=_guarded(_cmd_add))
    lst = rs.add_parser("list", help="the linked regions, whether each answers with the key, replicated tables")
    data_dir_arg(lst)
    lst.set_defaults(func=_guarded(_cmd_list))
    rem = rs.add_parser("remove", help="unlink a region (no table may have a replica there)")
    rem.add_argument("name", metavar="NAME")
    data_dir_arg(rem)
    rem.set_defaults(func=_guarded(_cmd_remove))
