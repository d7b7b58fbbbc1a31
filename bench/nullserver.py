#!/usr/bin/env python3
"""A do-nothing DynamoDB JSON 1.0 server, to measure the load generator's own ceiling.

It answers every request at once with a canned body sized like the real one
(GetItem: one item of --item-bytes; Query: --sort-keys items; DescribeTable:
ACTIVE), stores nothing and checks nothing.  Point loadgen.py at it: the
figures are then what the generator can drive, not what any server can do.

  python bench/nullserver.py --port 8009 --seconds 120 &
  python bench/loadgen.py --endpoint http://127.0.0.1:8009 --create --items 2000

It exits by itself after --seconds (default 300).
"""

from __future__ import annotations

import argparse
import asyncio

import httptools
import orjson
import uvloop


def canned(item_bytes: int, sort_keys: int) -> dict[bytes, bytes]:
    item = {"pk": {"S": "pk00000000"}, "sk": {"S": "s0"}, "v": {"S": "x" * max(1, item_bytes - 17)}}
    table = {"TableName": "bench", "TableStatus": "ACTIVE", "ItemCount": 0}
    bodies = {
        b"PutItem": {},
        b"GetItem": {"Item": item},
        b"Query": {"Items": [item] * min(10, sort_keys), "Count": min(10, sort_keys), "ScannedCount": min(10, sort_keys)},
        b"BatchWriteItem": {"UnprocessedItems": {}},
        b"DescribeTable": {"Table": table},
        b"CreateTable": {"TableDescription": table},
        b"DeleteTable": {"TableDescription": table},
    }
    out = {}
    for op, doc in bodies.items():
        body = orjson.dumps(doc)
        out[b"DynamoDB_20120810." + op] = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
            b"x-amzn-RequestId: 0\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
    for key, typ in ((b"", b"UnknownOperationException"), (b"missing", b"ResourceNotFoundException")):
        err = b'{"__type":"com.amazonaws.dynamodb.v20120810#' + typ + b'"}'
        out[key] = (
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: "
            + str(len(err)).encode() + b"\r\n\r\n" + err
        )
    return out


# The one bit of state: whether the table exists, so --create's
# DescribeTable / DeleteTable / CreateTable dance terminates.
TABLE = {"exists": False}


class Proto(asyncio.Protocol):
    def __init__(self, replies: dict[bytes, bytes]) -> None:
        self.replies = replies
        self.parser = httptools.HttpRequestParser(self)
        self.target = b""
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"x-amz-target":
            self.target = value

    def on_message_complete(self) -> None:
        t = self.target
        if t.endswith(b".CreateTable"):
            TABLE["exists"] = True
        elif t.endswith(b".DeleteTable"):
            TABLE["exists"] = False
        elif t.endswith(b".DescribeTable") and not TABLE["exists"]:
            t = b"missing"
        self.transport.write(self.replies.get(t) or self.replies[b""])
        self.target = b""


async def serve(port: int, seconds: float, item_bytes: int, sort_keys: int) -> None:
    replies = canned(item_bytes, sort_keys)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Proto(replies), "127.0.0.1", port)
    print(f"null server on http://127.0.0.1:{port} for {seconds:g}s", flush=True)
    async with server:
        await asyncio.sleep(seconds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8009)
    p.add_argument("--seconds", type=float, default=300.0, help="exit after this long (default %(default)s)")
    p.add_argument("--item-bytes", type=int, default=1024)
    p.add_argument("--sort-keys", type=int, default=4)
    a = p.parse_args()
    uvloop.install()
    asyncio.run(serve(a.port, a.seconds, a.item_bytes, a.sort_keys))


if __name__ == "__main__":
    main()
