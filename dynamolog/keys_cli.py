"""``dynamolog keys``: create, list and revoke access keys.

The commands write to the system's credentials topic directly (Kafka and the system key are
found through ``<data-dir>/system.json`` and ``<data-dir>/system.key``); every router follows
that topic, so a change takes effect everywhere within about a second.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .auth import credentials, policy
from .auth.systemkey import SystemKeyError
from .launcher import System

KEYS_EPILOG = """\
permissions (--allow, repeatable; each one is an Allow statement):
  ACTION[,ACTION...][=TABLE[,TABLE...]]
  ACTION   dynamodb:GetItem, dynamodb:Query, dynamodb:* (IAM wildcards * and ?), or a group:
           read  = GetItem BatchGetItem Query Scan DescribeTable ConditionCheckItem PartiQLSelect
                   DescribeTimeToLive ListTagsOfResource DescribeStream GetShardIterator GetRecords ListStreams
           write = PutItem UpdateItem DeleteItem BatchWriteItem PartiQLInsert PartiQLUpdate PartiQLDelete
  TABLE    a table name pattern (Music, Music*, *; default *); it covers the table's indexes and stream.
           Actions on no table (ListTables, DescribeLimits) need TABLE *.
  --policy FILE takes a whole IAM-style policy document instead (Allow and Deny statements,
  Action and Resource lists of arn:aws:dynamodb:*:*:table/NAME patterns).

examples:
  dynamolog keys create app --allow read,write=Music --allow dynamodb:ListTables
  dynamolog keys create reporting --allow read=Orders*
  dynamolog keys create ops --admin
  dynamolog keys create ci --policy ci-policy.json --format env > ci.env
  dynamolog keys list
  dynamolog keys revoke DKIAEXAMPLEEXAMPLE1
"""


def _system(args: argparse.Namespace) -> tuple[System, Any, bytes]:
    system = System(args.data_dir)
    settings = system.settings()
    return system, settings, system.system_key()


def _cmd_create(args: argparse.Namespace) -> int:
    try:
        if args.policy:
            doc = json.loads(Path(args.policy).read_text())
        elif args.admin:
            doc = json.loads(json.dumps(policy.ADMIN))
        elif args.allow:
            doc = policy.document([policy.parse_allow(a) for a in args.allow])
        else:
            print("dynamolog keys create: give the key permissions: --allow ACTIONS[=TABLES], --policy FILE or "
                  "--admin (see --help)", file=sys.stderr)
            return 2
        policy.Policy(doc)
    except (OSError, ValueError) as e:
        print(f"dynamolog keys create: {e}", file=sys.stderr)
        return 2
    system, settings, master = _system(args)
    cred, token = credentials.new(args.name, doc, session_token=args.session_token)
    credentials.run(credentials.publish(settings, master, cred))
    endpoint = system.credentials().get("AWS_ENDPOINT_URL", "")
    if args.format == "env":
        print(f"AWS_ACCESS_KEY_ID={cred.access_key_id}\nAWS_SECRET_ACCESS_KEY={cred.secret}")
        if token:
            print(f"AWS_SESSION_TOKEN={token}")
        print(f"AWS_DEFAULT_REGION={settings.region}\nAWS_ENDPOINT_URL={endpoint}")
    else:
        print(f"access key id      {cred.access_key_id}\nsecret access key  {cred.secret}")
        if token:
            print(f"session token      {token}")
        print(f"user               {cred.user_name}\npolicy             {json.dumps(doc)}")
        print("The secret is shown only now; keep it somewhere safe.", file=sys.stderr)
    return 0


def _fmt_ms(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _cmd_list(args: argparse.Namespace) -> int:
    _, settings, master = _system(args)
    keys = credentials.run(credentials.read_all(settings, master))
    if args.format == "json":
        print(json.dumps([{"access_key_id": c.access_key_id, "user": c.user_name, "created": _fmt_ms(c.created_ms),
                           "revoked": _fmt_ms(c.revoked_ms) if c.revoked_ms else None, "policy": c.policy_document}
                          for c in sorted(keys.values(), key=lambda c: c.created_ms)], indent=2))
        return 0
    print(f"{'ACCESS KEY ID':<22} {'USER':<16} {'CREATED (UTC)':<20} {'STATUS':<28} PERMISSIONS")
    for c in sorted(keys.values(), key=lambda c: c.created_ms):
        status = "active" if c.revoked_ms is None else f"revoked {_fmt_ms(c.revoked_ms)}"
        perms = "; ".join(f"{st.get('Effect')} {','.join(_as_list(st.get('Action')))} on "
                          f"{','.join(_as_list(st.get('Resource')))}" for st in c.policy_document.get("Statement", []))
        print(f"{c.access_key_id:<22} {c.user_name:<16} {_fmt_ms(c.created_ms):<20} {status:<28} {perms}")
    return 0


def _as_list(v: Any) -> list[str]:
    return [v] if isinstance(v, str) else [str(x) for x in (v or [])]


def _cmd_revoke(args: argparse.Namespace) -> int:
    _, settings, master = _system(args)
    done = credentials.run(credentials.revoke(settings, master, args.key_id))
    if done is None:
        print(f"dynamolog keys revoke: no key {args.key_id} (see `dynamolog keys list`)", file=sys.stderr)
        return 1
    print(f"revoked {args.key_id} ({done.user_name}); routers refuse it within seconds")
    return 0


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (RuntimeError, SystemKeyError, OSError) as e:
            print(f"dynamolog keys: {e}", file=sys.stderr)
            return 1
    return run


def add_keys_parser(sub: Any, data_dir_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    keys = sub.add_parser("keys", help="create, list and revoke access keys",
                          description="Manage access keys. The system must have been started once with "
                          "`dynamolog up` (Kafka must be reachable).",
                          formatter_class=argparse.RawDescriptionHelpFormatter, epilog=KEYS_EPILOG)
    ks = keys.add_subparsers(dest="keys_command", required=True)
    create = ks.add_parser("create", help="make a new access key; prints its secret once",
                           formatter_class=argparse.RawDescriptionHelpFormatter, epilog=KEYS_EPILOG)
    create.add_argument("name", metavar="NAME", help="the user the key belongs to (shown in AccessDeniedException)")
    create.add_argument("--allow", action="append", metavar="ACTIONS[=TABLES]", default=[],
                        help="allow these actions on these tables (repeatable; see below)")
    create.add_argument("--policy", metavar="FILE", help="an IAM-style policy document (JSON) instead of --allow")
    create.add_argument("--admin", action="store_true", help="allow everything (dynamodb:* on *)")
    create.add_argument("--session-token", action="store_true",
                        help="also make a session token that every request with this key must carry "
                        "(X-Amz-Security-Token; AWS_SESSION_TOKEN for SDKs)")
    create.add_argument("--format", choices=("text", "env"), default="text",
                        help="text (default) or env: AWS_* lines for `set -a; . FILE`")
    data_dir_arg(create)
    create.set_defaults(func=_guarded(_cmd_create))
    lst = ks.add_parser("list", help="list the keys: id, user, status, permissions (never secrets)")
    lst.add_argument("--format", choices=("text", "json"), default="text")
    data_dir_arg(lst)
    lst.set_defaults(func=_guarded(_cmd_list))
    rev = ks.add_parser("revoke", help="revoke a key: every router refuses it within seconds")
    rev.add_argument("key_id", metavar="ACCESS_KEY_ID")
    data_dir_arg(rev)
    rev.set_defaults(func=_guarded(_cmd_revoke))
