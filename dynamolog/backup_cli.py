"""``dynamolog backup create|list|restore``: on-demand backups from the command line.

Each subcommand is a DynamoDB API call (CreateBackup, ListBackups, RestoreTableFromBackup or
RestoreTableToPointInTime) to the endpoint, signed with the key of the environment or of
``<data-dir>/credentials.env``; ``create`` and ``restore`` then follow the work with a progress
bar until the backup is AVAILABLE or the table ACTIVE (``--no-wait``: answer at once).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import sys
import time
from collections.abc import Callable
from typing import Any

BACKUP_EPILOG = """\
Backups live in the backup store of the system: DATA/backups by default, or the S3 bucket that
DYNAMOLOG_BACKUP_STORE=s3://bucket/prefix names (with AWS_ENDPOINT_URL_S3 for another S3 API
endpoint) when the system was started. A backup is each partition's snapshot plus its log up to
the moment of the request: every write acknowledged before `create` is in it.

examples:
  dynamolog backup create Music --name before-migration   # prints the backup's ARN when AVAILABLE
  dynamolog backup list                                    # every backup, oldest first
  dynamolog backup list --table Music
  dynamolog backup restore Music-copy --backup-arn ARN     # a new table from a backup
  dynamolog backup restore Music-then --from-table Music --time 2026-12-03T14:05:00Z
                                                            # point in time (recovery must be on:
                                                            # aws dynamodb update-continuous-backups)
  dynamolog backup restore Music-now --from-table Music --latest

Credentials and region come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION when
set, else from <data-dir>/credentials.env (the administrator key `dynamolog up` made).
"""


def _client_args(args: argparse.Namespace) -> dict[str, Any]:
    from .auth.credentials import read_env_file

    env: dict[str, str] = dict(os.environ)
    if not env.get("AWS_ACCESS_KEY_ID"):
        env.update(read_env_file(args.data_dir / "credentials.env"))
    if not env.get("AWS_ACCESS_KEY_ID") or not env.get("AWS_SECRET_ACCESS_KEY"):
        raise ValueError(f"no access key: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or point --data-dir at "
                         f"the system's data directory (no credentials.env in {args.data_dir.resolve()})")
    return {"endpoint": args.endpoint_url or env.get("AWS_ENDPOINT_URL") or "http://127.0.0.1:8000",
            "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            "access_key": env["AWS_ACCESS_KEY_ID"], "secret_key": env["AWS_SECRET_ACCESS_KEY"],
            "session_token": env.get("AWS_SESSION_TOKEN") or None}


async def _follow(what: str, poll: Callable[[], Any], timeout_s: float) -> str:
    """A progress bar (elapsed time, state) until ``poll`` answers a final state."""
    from tqdm import tqdm

    t0 = time.monotonic()
    with tqdm(desc=what, unit="s", bar_format="{desc}: {postfix} [{elapsed}]", file=sys.stderr) as bar:
        while True:
            state = str(await poll())
            bar.set_postfix_str(state)
            bar.update(0)
            if state not in ("CREATING",):
                return state
            if time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"{what}: still {state} after {timeout_s:.0f} s; it goes on in the background")
            await asyncio.sleep(0.25)


async def _create(args: argparse.Namespace) -> int:
    from .client import Client

    async with Client(**_client_args(args)) as client:
        name = args.name or f"{args.table}-{datetime.datetime.now(datetime.UTC):%Y%m%d-%H%M%S}"
        details = (await client.call("CreateBackup", {"TableName": args.table, "BackupName": name}))["BackupDetails"]
        arn = details["BackupArn"]
        if not args.no_wait:

            async def poll() -> str:
                d = await client.call("DescribeBackup", {"BackupArn": arn})
                return str(d["BackupDescription"]["BackupDetails"]["BackupStatus"])

            await _follow(f"backup {name} of {args.table}", poll, args.timeout)
        print(arn)
    return 0


async def _list(args: argparse.Namespace) -> int:
    from .client import Client

    async with Client(**_client_args(args)) as client:
        params: dict[str, Any] = {"BackupType": "ALL"}
        if args.table:
            params["TableName"] = args.table
        rows = []
        while True:
            page = await client.call("ListBackups", params)
            rows += page["BackupSummaries"]
            if "LastEvaluatedBackupArn" not in page:
                break
            params["ExclusiveStartBackupArn"] = page["LastEvaluatedBackupArn"]
        for s in rows:
            when = datetime.datetime.fromtimestamp(s["BackupCreationDateTime"], datetime.UTC)
            print(f"{when:%Y-%m-%d %H:%M:%S}  {s['BackupStatus']:<9} {s['TableName']:<24} {s['BackupName']:<28} "
                  f"{s.get('BackupSizeBytes', 0):>12} B  {s['BackupArn']}")
        if not rows:
            print("no backups", file=sys.stderr)
    return 0


async def _restore(args: argparse.Namespace) -> int:
    from .client import Client

    if bool(args.backup_arn) == bool(args.from_table):
        raise ValueError("give either --backup-arn ARN or --from-table TABLE (with --time or --latest)")
    async with Client(**_client_args(args)) as client:
        if args.backup_arn:
            await client.call("RestoreTableFromBackup", {"TargetTableName": args.target, "BackupArn": args.backup_arn})
        else:
            params: dict[str, Any] = {"TargetTableName": args.target, "SourceTableName": args.from_table}
            if args.latest:
                params["UseLatestRestorableTime"] = True
            elif args.time:
                when = datetime.datetime.fromisoformat(args.time.replace("Z", "+00:00"))
                params["RestoreDateTime"] = when.timestamp()
            else:
                raise ValueError("a point-in-time restore needs --time ISO-8601 or --latest")
            await client.call("RestoreTableToPointInTime", params)
        if not args.no_wait:

            async def poll() -> str:
                d = await client.call("DescribeTable", {"TableName": args.target})
                return str(d["Table"]["TableStatus"])

            await _follow(f"restore into {args.target}", poll, args.timeout)
        print(args.target)
    return 0


def _run(fn: Callable[[argparse.Namespace], Any]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from .client import ClientError

        try:
            return int(asyncio.run(fn(args)))
        except KeyboardInterrupt:
            return 130
        except (ClientError, OSError, TimeoutError, ValueError) as e:
            print(f"dynamolog backup {args.backup_command}: {e}", file=sys.stderr)
            return 1

    return run


def add_backup_parser(sub: Any, data_dir_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    backup = sub.add_parser("backup", help="create, list and restore backups",
                            description="On-demand backups and restores through the DynamoDB API of a running "
                            "system.", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=BACKUP_EPILOG)
    bs = backup.add_subparsers(dest="backup_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--endpoint-url", default=None,
                       help="the endpoint (default: $AWS_ENDPOINT_URL, else http://127.0.0.1:8000)")
        data_dir_arg(p)

    def waiting(p: argparse.ArgumentParser) -> None:
        p.add_argument("--no-wait", action="store_true", help="answer at once instead of following the work")
        p.add_argument("--timeout", type=float, default=3600, help="give up following after this many seconds")

    create = bs.add_parser("create", help="back up a table; prints the backup's ARN",
                           formatter_class=argparse.RawDescriptionHelpFormatter, epilog=BACKUP_EPILOG)
    create.add_argument("table", metavar="TABLE", help="the table to back up")
    create.add_argument("--name", default=None, help="the backup's name (default: TABLE-<UTC time>)")
    common(create)
    waiting(create)
    create.set_defaults(func=_run(_create))

    listing = bs.add_parser("list", help="list backups, oldest first",
                            formatter_class=argparse.RawDescriptionHelpFormatter, epilog=BACKUP_EPILOG)
    listing.add_argument("--table", default=None, help="only this table's backups")
    common(listing)
    listing.set_defaults(func=_run(_list))

    restore = bs.add_parser("restore", help="restore a backup or a point in time into a new table",
                            formatter_class=argparse.RawDescriptionHelpFormatter, epilog=BACKUP_EPILOG)
    restore.add_argument("target", metavar="NEW_TABLE", help="the table to create (it must not exist)")
    restore.add_argument("--backup-arn", default=None, help="restore this backup (see `dynamolog backup list`)")
    restore.add_argument("--from-table", default=None,
                         help="restore this table as it was at --time or --latest (point-in-time recovery)")
    restore.add_argument("--time", default=None, help="the moment to restore, ISO 8601 (e.g. 2026-12-03T14:05:00Z)")
    restore.add_argument("--latest", action="store_true", help="the latest restorable moment")
    common(restore)
    waiting(restore)
    restore.set_defaults(func=_run(_restore))
