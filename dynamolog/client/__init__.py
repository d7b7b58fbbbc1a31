"""A small typed asyncio client for Dynamolog, and for DynamoDB itself.

    from dynamolog.client import Client, FileCheckpoint

    async with Client("http://127.0.0.1:8000") as db:
        await db.put("Music", {"Artist": "Arturus", "Song": "Call Me", "Year": 2024})
        item = await db.get("Music", {"Artist": "Arturus", "Song": "Call Me"})
        async for song in db.query("Music", "Artist = :a", {":a": "Arturus"}):
            ...
        async with db.writer("Music") as w:          # BatchWriteItem, 25 at a time
            await w.put({"Artist": "Arturus", "Song": "Dawn"})
        async for change in db.stream("Music", checkpoint=FileCheckpoint("music.pos")):
            print(change.event_name, change.keys, change.new_image)

Items are plain Python values (:mod:`dynamolog.client.attributes`: numbers come back as ``int``
when integral, else ``Decimal``). Requests are DynamoDB JSON 1.0 over HTTP/1.1, signed with AWS
Signature V4 (:mod:`dynamolog.client.sigv4`).
"""

from .attributes import from_attr, from_item, to_attr, to_item
from .core import STREAMS_OPERATIONS, Client, ClientError, Writer, WriterError
from .http import HttpPool, HttpProtocolError, Transport
from .streams import (
    Checkpoint,
    FileCheckpoint,
    MemoryCheckpoint,
    StreamNotEnabledError,
    StreamReader,
    StreamRecord,
)

__all__ = [
    "STREAMS_OPERATIONS",
    "Checkpoint",
    "Client",
    "ClientError",
    "FileCheckpoint",
    "HttpPool",
    "HttpProtocolError",
    "MemoryCheckpoint",
    "StreamNotEnabledError",
    "StreamReader",
    "StreamRecord",
    "Transport",
    "Writer",
    "WriterError",
    "from_attr",
    "from_item",
    "to_attr",
    "to_item",
]
