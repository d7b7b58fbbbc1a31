"""The ``dynamolog`` command: run a local system and look at it.

    dynamolog up                 start Kafka, the storage node(s), the router, the auto-admin, the
                                 indexer and the backup service (each with a standby), RepOut and RepIn; print the endpoint, then stay in the
                                 foreground restarting any service that crashes, until Ctrl-C
    dynamolog up --detach        the same, but return to the shell, leaving a supervisor running
    dynamolog status             what runs (zones, restarts), and every partition's role and offsets
    dynamolog down               stop the supervisor and everything (data stays in --data-dir)
    dynamolog stream tail TABLE  print a table's changes (its DynamoDB stream) as they happen
    dynamolog keys create NAME   make an access key for NAME with the permissions given
    dynamolog keys list          the access keys (never their secrets)
    dynamolog keys revoke KEY    revoke an access key (every router refuses it within seconds)
    dynamolog backup create TABLE   back up a table (also: backup list, backup restore NEW_TABLE ...)
    dynamolog up --region us-west-2 ...   a system that is another region (global tables)
    dynamolog regions add NAME URL        link another region (also: regions list, regions remove)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from . import __version__, config
from .launcher import ZONES, System, SystemSpec, choose_ports, health, pid_alive
from .service import HelpFormatter

EXAMPLES = """\
Endpoint: {endpoint}   (region {region})
Console:  {endpoint}/console   REST gateway: {endpoint}/v1/docs
{auth_line}

  # shell: boto3 and the AWS CLI read the key, region and endpoint from the environment
  set -a; . {credentials}; set +a
  aws dynamodb list-tables

  # Python (boto3), after the line above
  import boto3
  ddb = boto3.client("dynamodb")
  ddb.create_table(TableName="Music",
      KeySchema=[{{"AttributeName": "Artist", "KeyType": "HASH"}}, {{"AttributeName": "Song", "KeyType": "RANGE"}}],
      AttributeDefinitions=[{{"AttributeName": "Artist", "AttributeType": "S"}},
                            {{"AttributeName": "Song", "AttributeType": "S"}}],
      BillingMode="PAY_PER_REQUEST")
  ddb.put_item(TableName="Music", Item={{"Artist": {{"S": "Arturus"}}, "Song": {{"S": "Call Me"}}}})

  # more keys, each with its own permissions
  dynamolog keys create reader --allow read=Music --data-dir {data_dir}

Logs: {data_dir}/logs/   Stop: dynamolog down --data-dir {data_dir}
"""


def _cmd_up(args: argparse.Namespace) -> int:
    system = System(args.data_dir)
    bootstrap = config.external_bootstrap()
    ports = choose_ports(args.data_dir.resolve(), args.port, args.storage_nodes, args.brokers,
                         kafka_port=args.kafka_port, storage_port=args.storage_port, metrics_port=args.metrics_port,
                         kafka_managed=bootstrap is None)
    for note in ports.notes:
        print(f"[dynamolog] {note}", file=sys.stderr, flush=True)
    spec = SystemSpec(
        data_dir=args.data_dir, port=args.port, brokers=args.brokers, storage_nodes=args.storage_nodes,
        kafka_base_port=ports.kafka_base_port, storage_base_port=ports.storage_base_port,
        namespace=config.settings().namespace, region=args.region or config.settings().region, bootstrap=bootstrap,
        initial_partitions=args.initial_partitions or 1, auth=not args.no_auth,
        supervise=args.detach, metrics_base_port=ports.metrics_base_port, router_zone=ZONES[0],
    )
    t0 = time.monotonic()
    try:
        state = system.up(spec)
    except (RuntimeError, TimeoutError, OSError) as e:
        print(f"dynamolog up failed: {e}", file=sys.stderr)
        system.down()
        return 1
    endpoint = f"http://127.0.0.1:{state['port']}"
    creds = system.credentials()
    if state.get("auth", True):
        auth_line = (f"Administrator key: {creds.get('AWS_ACCESS_KEY_ID')} (secret in {system.credentials_path}, "
                     "readable by you only)")
    else:
        auth_line = "AUTHENTICATION IS OFF (--no-auth): anyone who reaches the endpoint can do anything."
    if args.aws_profile:
        from .auth.credentials import write_aws_profile

        paths = write_aws_profile(args.aws_profile, creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"],
                                  state["region"], endpoint)
        auth_line += f"\nAWS profile '{args.aws_profile}' written to {paths[0]} and {paths[1]} (aws --profile " \
                     f"{args.aws_profile} ..., boto3.Session(profile_name='{args.aws_profile}'))"
    print(f"Dynamolog {__version__} is up in {time.monotonic() - t0:.1f} s "
          f"(Kafka {state['bootstrap']}, {len(state['storage_ports'])} storage node(s)).")
    print(EXAMPLES.format(endpoint=endpoint, region=state["region"], data_dir=system.data_dir,
                          credentials=system.credentials_path, auth_line=auth_line))
    if args.detach:
        print(f"A supervisor restarts crashed services (log {system.data_dir}/logs/supervisor.log).")
        return 0
    print("Running in the foreground, restarting crashed services; Ctrl-C stops everything.", flush=True)
    stop = False

    def _stop(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    from .supervisor import Supervisor

    Supervisor(system).run(lambda: stop)
    system.down()
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    system = System(args.data_dir)
    if system.state() is None and not (args.data_dir / "kafka").exists():
        print(f"nothing to stop in {args.data_dir.resolve()}")
        return 0
    system.down()
    print("stopped; data kept in", args.data_dir.resolve())
    return 0


async def _node_status(host: str, port: int, key: bytes) -> dict[str, Any] | str:
    from .rpc import RpcClient

    client = RpcClient(host, port, key=key)
    try:
        result: dict[str, Any] = await client.call("status", timeout_s=3)
        return result
    except Exception as e:  # noqa: BLE001 - status reports every failure, never raises
        return f"unreachable ({e})"
    finally:
        await client.close()


def _cmd_status(args: argparse.Namespace) -> int:
    system = System(args.data_dir)
    state = system.state()
    if state is None:
        print(f"no system in {args.data_dir.resolve()} (start one with: dynamolog up --data-dir {args.data_dir})")
        return 1
    print(f"data dir  {state['data_dir']}")
    print(f"kafka     {state['bootstrap']}  namespace {state['namespace']}")
    h = health(state["port"])
    print(f"router    http://127.0.0.1:{state['port']}  {h or 'not answering'}")
    sup = state.get("supervisor")
    if sup:
        print(f"supervisor pid {sup} {'running' if pid_alive(sup) else 'STOPPED (crashed services stay down)'}")
    else:
        print("supervisor none (crashed services stay down)")
    if state.get("broker_zones"):
        print("brokers   " + "  ".join(f"{state['bootstrap'].split(',')[i]} zone {z}"
                                     for i, z in enumerate(state["broker_zones"])
                                     if i < len(state["bootstrap"].split(","))))
    zones = state.get("zones", {})
    restarts = state.get("restarts", {})
    roles: dict[int, str] = {}
    try:
        from .singleton import active_pids

        actives = asyncio.run(asyncio.wait_for(active_pids(system.settings(), ("admin", "indexer", "backup", "repout",
                                                                           "repin")), 10))
        roles = {pid: "active" for pid in actives.values() if pid is not None}
    except Exception as e:  # noqa: BLE001 - status reports every failure, never raises
        print(f"elections: not known ({e!r})")
    for name, pid in sorted(state.get("pids", {}).items()):
        node = name.removeprefix("storage-") if name.startswith("storage-") else None
        zone = f"zone {zones[node]}" if node and node in zones else ""
        again = f"restarted {restarts[name]}x" if restarts.get(name) else ""
        if name.split("-")[0] in ("admin", "indexer", "backup", "repout", "repin") and pid_alive(pid):
            zone = roles.get(pid, "standby")
        print(f"  {name:<14} pid {pid:<8} {'running' if pid_alive(pid) else 'stopped':<8} {zone:<7} {again}".rstrip())
    by_partition: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for node, port in sorted(state.get("storage_ports", {}).items()):
        st = asyncio.run(_node_status("127.0.0.1", port, system.rpc_key()))
        if isinstance(st, str):
            print(f"storage {node}: {st}")
            continue
        zone = f" zone {zones[node]}" if node in zones else ""
        print(f"storage {node} (127.0.0.1:{port}){zone}: {len(st['partitions'])} replica(s)")
        for p in st["partitions"]:
            by_partition.setdefault((p["table"], p["partition_id"]), {})[node] = p
    if state.get("metrics_ports"):
        print("metrics   " + "  ".join(f"{name} :{port}" for name, port in sorted(state["metrics_ports"].items(),
                                                                                  key=lambda x: x[1])))
    if by_partition:
        print("partitions (items and size at the leader; replica: role, next offset, lag in records behind "
              "the log's end)")
    totals: dict[str, list[int]] = {}
    for (table, pid), replicas in sorted(by_partition.items()):
        leaders = [(n, r) for n, r in replicas.items() if r["role"] == "leader" and not r.get("fenced")]
        head = f"leader {leaders[0][0]} epoch {leaders[0][1].get('epoch')}" if leaders else "NO LEADER"
        figures = ""
        if leaders and "items" in leaders[0][1]:
            lead = leaders[0][1]
            figures = f"{lead['items']} items {_bytes(lead['size_bytes'])}" + _capacity_columns(lead)
            t = totals.setdefault(f"{table}/{lead['index']}" if lead.get("index") else table, [0, 0])
            t[0] += lead["items"]
            t[1] += lead["size_bytes"]
        parts = []
        for n, r in sorted(replicas.items()):
            lag = f" lag {r['lag_records']}" if r.get("lag_records") is not None else ""
            parts.append(f"{n} {r['role']} @{r.get('next_offset', '-')}{lag}")
        print(f"  {table:<24} {pid:<16} {head:<22} {figures:<24} " + " | ".join(parts))
    if totals:
        print("tables and indexes (TABLE/INDEX): items and size summed over the leaders' partitions")
        for table, (items, size) in sorted(totals.items()):
            print(f"  {table:<24} {items} items {_bytes(size)}")
    from .regions_cli import print_status

    print_status(system)
    return 0 if h else 1


def _bytes(n: int) -> str:
    """A size for people: bytes up to 10 KiB, then KiB, MiB, GiB."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 10 * 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _capacity_columns(lead: dict[str, Any]) -> str:
    """A leader's token-bucket figures when it reports them (``capacity`` in its status): per kind
    the rate its bucket refills at, units consumed and requests throttled."""
    out = []
    for kind, c in sorted((lead.get("capacity") or {}).items()):
        if isinstance(c, dict):
            out.append(f" {kind} {c.get('rate_units_s', '-')}/s used {c.get('consumed_units', '-')} "
                       f"throttled {c.get('throttled_requests', '-')}")
    return "".join(out)


STREAM_TAIL_EXAMPLES = """\
The table needs a stream, e.g. (boto3):
  ddb.update_table(TableName="Music",
      StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})

examples:
  dynamolog stream tail Music                        # changes from now on, until Ctrl-C
  dynamolog stream tail Music --from trim-horizon    # everything still in the stream, then follow
  dynamolog stream tail Music --format json | jq .   # one JSON object a line
  AWS_ENDPOINT_URL=http://127.0.0.1:8001 dynamolog stream tail Music

text lines:  TIME EVENT KEYS new=IMAGE old=IMAGE   (images as the stream's view type carries them)
json lines:  {"time", "event", "keys", "new", "old", "sequence_number", "shard_id", "event_id"}
Credentials and region come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and
AWS_REGION / AWS_DEFAULT_REGION when set, else from <data-dir>/credentials.env (the administrator
key that `dynamolog up` made). The key needs dynamodb:DescribeTable, DescribeStream,
GetShardIterator and GetRecords on the table (`dynamolog keys create NAME --allow read=TABLE`).
"""


def _plain_json(value: Any) -> Any:
    import base64
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (set, frozenset)):
        return sorted((_plain_json(v) for v in value), key=repr)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


async def _stream_tail(args: argparse.Namespace) -> int:
    import json

    from .auth.credentials import read_env_file
    from .client import Client

    env: dict[str, str] = dict(os.environ)
    if not env.get("AWS_ACCESS_KEY_ID"):
        env.update(read_env_file(args.data_dir / "credentials.env"))
    if not env.get("AWS_ACCESS_KEY_ID") or not env.get("AWS_SECRET_ACCESS_KEY"):
        raise ValueError(f"no access key: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or point --data-dir at "
                         f"the system's data directory (no credentials.env in {args.data_dir.resolve()})")
    endpoint = args.endpoint_url or env.get("AWS_ENDPOINT_URL") or "http://127.0.0.1:8000"
    async with Client(endpoint, region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
                      access_key=env["AWS_ACCESS_KEY_ID"], secret_key=env["AWS_SECRET_ACCESS_KEY"],
                      session_token=env.get("AWS_SESSION_TOKEN") or None) as client:
        reader = client.stream(args.table, start="TRIM_HORIZON" if args.start == "trim-horizon" else "LATEST")
        async for rec in reader:
            when = rec.approximate_creation.isoformat() if rec.approximate_creation else "-"
            if args.format == "json":
                line = json.dumps({"time": when, "event": rec.event_name, "keys": rec.keys, "new": rec.new_image,
                                   "old": rec.old_image, "sequence_number": rec.sequence_number,
                                   "shard_id": rec.shard_id, "event_id": rec.event_id}, default=_plain_json)
            else:
                line = f"{when} {rec.event_name:<6} {json.dumps(rec.keys, default=_plain_json)}"
                if rec.new_image is not None:
                    line += f" new={json.dumps(rec.new_image, default=_plain_json)}"
                if rec.old_image is not None:
                    line += f" old={json.dumps(rec.old_image, default=_plain_json)}"
            print(line, flush=True)
    return 0


def _cmd_stream_tail(args: argparse.Namespace) -> int:
    from .client import ClientError, StreamNotEnabledError

    try:
        return asyncio.run(_stream_tail(args))
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0
    except (ClientError, StreamNotEnabledError, OSError, TimeoutError, ValueError) as e:
        print(f"dynamolog stream tail: {e}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dynamolog",
        description="Dynamolog: a DynamoDB-compatible database built on Kafka logs and RocksDB views.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--version", action="version", version=f"dynamolog {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def data_dir_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", type=Path, default=Path(config.settings().data_dir),
                       help="where Kafka's logs, the RocksDB views and the service logs live (default: "
                       "$DYNAMOLOG_DATA_DIR or .data)")

    up = sub.add_parser("up", help="start Kafka, storage node(s) and the router on 127.0.0.1",
                        description="Start a local system. Uses $KAFKA_BOOTSTRAP_SERVERS instead of starting "
                        "Kafka when it is set. Data in --data-dir survives down and up. On a fresh data directory it makes an "
                        "administrator access key and writes it to <data-dir>/credentials.env (readable by you only): "
                        "`set -a; . <data-dir>/credentials.env; set +a` lets boto3 and the AWS CLI use it.",
                        formatter_class=HelpFormatter, epilog=config.help_epilog())
    data_dir_arg(up)
    up.add_argument("--port", type=int, default=8000, help="the DynamoDB endpoint's port (default 8000)")
    up.add_argument("--brokers", type=int, choices=(1, 3), default=1, help="Kafka brokers to run (1 or 3)")
    up.add_argument("--storage-nodes", type=int, default=1, help="storage node processes to run (default 1)")
    up.add_argument("--kafka-port", type=int, default=None,
                    help="first Kafka broker's port (default: the one this data directory's cluster was made "
                    "with, else 9092, else the next free ones above it)")
    up.add_argument("--storage-port", type=int, default=None,
                    help="first storage node's internal RPC port; node i uses this + i - 1 (default: the one "
                    "used last time, else 7001, else the next free ones above it)")
    up.add_argument("--initial-partitions", type=int, default=1,
                    help="partitions of a new on-demand table (default 1: one leader groups all of the table's "
                    "writes into each append; the auto-admin splits a partition that grows or stays hot, and a "
                    "provisioned table starts with one per 3,000 RCU + 1,000 WCU; docs/decisions/"
                    "0048-one-partition-to-start.md)")
    up.add_argument("--no-auth", action="store_true",
                    help="serve every request without checking signatures or permissions: only for measuring what "
                    "authentication costs (bench/auth_overhead.py); never where others can reach the port")
    up.add_argument("--aws-profile", metavar="NAME", default=None,
                    help="also write the administrator key as profile NAME into the AWS config files "
                    "(~/.aws/credentials and ~/.aws/config, or $AWS_SHARED_CREDENTIALS_FILE / $AWS_CONFIG_FILE), "
                    "with the region and endpoint_url, so `aws --profile NAME dynamodb ...` works")
    up.add_argument("--metrics-port", type=int, default=None,
                    help="first Prometheus metrics port: the router's /metrics; storage node i's is this + i, then "
                    "the auto-admins' and the indexers' (`dynamolog status` lists them; docs/metrics.md); "
                    "0: none (default: the one used last time, else 9400, else the next free ones above it)")
    up.add_argument("--region", default=None,
                    help="the region this system is (ARNs, global tables; default $DYNAMOLOG_REGION or us-east-1); "
                    "link regions with `dynamolog regions add`")
    up.add_argument("--detach", "-d", action="store_true", help="return once everything is up; stop it later "
                    "with `dynamolog down`")
    up.set_defaults(func=_cmd_up)

    down = sub.add_parser("down", help="stop everything started by `dynamolog up` (data is kept)")
    data_dir_arg(down)
    down.set_defaults(func=_cmd_down)

    status = sub.add_parser("status", help="show services, and every partition's role, epoch and offsets")
    data_dir_arg(status)
    status.set_defaults(func=_cmd_status)

    stream = sub.add_parser("stream", help="read a table's change stream (DynamoDB Streams API)",
                            description="Read a table's change stream through the DynamoDB Streams API.")
    stream_sub = stream.add_subparsers(dest="stream_command", required=True)
    tail = stream_sub.add_parser("tail", help="print one line per change as it happens, until Ctrl-C",
                                 description="Print one line per change of TABLE as it happens, until Ctrl-C.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=STREAM_TAIL_EXAMPLES)
    tail.add_argument("table", metavar="TABLE", help="the table whose stream to read")
    tail.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"),
                      help="the endpoint (default: $AWS_ENDPOINT_URL, else the one in <data-dir>/credentials.env, "
                      "else http://127.0.0.1:8000)")
    data_dir_arg(tail)
    tail.add_argument("--from", dest="start", choices=("trim-horizon", "latest"), default="latest",
                      help="latest: only changes made from now on (default); trim-horizon: the oldest "
                      "record still in the stream first")
    tail.add_argument("--format", choices=("text", "json"), default="text",
                      help="text (default) or json: one JSON object a line")
    tail.set_defaults(func=_cmd_stream_tail)
    from .backup_cli import add_backup_parser
    from .keys_cli import add_keys_parser
    from .native_cli import add_native_parser
    from .regions_cli import add_regions_parser
    from .split_cli import add_split_parser

    add_keys_parser(sub, data_dir_arg)
    add_regions_parser(sub, data_dir_arg)
    add_backup_parser(sub, data_dir_arg)
    add_split_parser(sub, data_dir_arg)
    add_native_parser(sub, data_dir_arg)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc = int(args.func(args))
        sys.stdout.flush()
        return rc
    except BrokenPipeError:
        # the reader went away (`dynamolog status | head`): stop quietly, as other commands do; point
        # stdout at /dev/null so that the interpreter's own flush at exit does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
