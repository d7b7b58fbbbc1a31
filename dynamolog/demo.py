"""``python -m dynamolog.demo``: a small, steady load for the docker-compose demo, so the
console's plots have something to show: it makes the table ``Demo`` (provisioned, 20 WCU and
20 RCU, so throttling shows when --rate goes above that) and writes and reads it at --rate
requests a second, until stopped (or for --seconds).

    python -m dynamolog.demo --credentials /secrets/credentials.env --endpoint http://router:8000 --rate 30
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from tqdm import tqdm

from .auth.credentials import read_env_file


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dynamolog.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default="http://127.0.0.1:8000", help="the DynamoDB endpoint")
    p.add_argument("--credentials", type=Path, required=True, help="a credentials.env with the key to use")
    p.add_argument("--rate", type=float, default=30.0, help="requests a second, half writes and half reads")
    p.add_argument("--seconds", type=float, default=0.0, help="stop after this long (default: run until stopped)")
    p.add_argument("--table", default="Demo", help="the table to make and load (default Demo)")
    a = p.parse_args(argv)
    import boto3
    from botocore.config import Config

    env = read_env_file(a.credentials)
    if "AWS_ACCESS_KEY_ID" not in env:
        print(f"no AWS_ACCESS_KEY_ID in {a.credentials}", file=sys.stderr)
        return 1
    ddb = boto3.client("dynamodb", endpoint_url=a.endpoint, region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                       config=Config(retries={"max_attempts": 1}))
    while True:  # the router may still be starting
        try:
            if a.table not in ddb.list_tables()["TableNames"]:
                ddb.create_table(TableName=a.table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                                 AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                                 ProvisionedThroughput={"ReadCapacityUnits": 20, "WriteCapacityUnits": 20})
            break
        except Exception as e:  # noqa: BLE001 - keep trying until the system answers
            print(f"waiting for the system: {e}", file=sys.stderr)
            time.sleep(2)
    end = time.monotonic() + a.seconds if a.seconds else float("inf")
    gap = 1.0 / a.rate
    nxt = time.monotonic()
    throttled = 0
    with tqdm(desc="requests", unit="req") as bar:
        while time.monotonic() < end:
            key = {"pk": {"S": f"k{random.randrange(1000)}"}}
            try:
                if random.random() < 0.5:
                    ddb.put_item(TableName=a.table, Item={**key, "v": {"N": str(random.randrange(10**6))}})
                else:
                    ddb.get_item(TableName=a.table, Key=key)
            except ddb.exceptions.ProvisionedThroughputExceededException:
                throttled += 1
                bar.set_postfix(throttled=throttled)
            except Exception as e:  # noqa: BLE001 - a demo load rides out restarts
                print(f"request failed: {e}", file=sys.stderr)
                time.sleep(1)
            bar.update()
            nxt += gap
            time.sleep(max(0.0, nxt - time.monotonic()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
