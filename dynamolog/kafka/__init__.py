"""Kafka helpers: a local broker launcher and async admin utilities."""

#: how long a fetch of a log that is mostly idle (the metadata views, the transactions' log) waits
#: at the broker when there is nothing to read. A fetch returns as soon as a record arrives, so
#: this is not a delay: it only sets how often an idle consumer asks again. Each ask costs the
#: broker a request, and a system has dozens of such consumers. A broker answers a connection's
#: requests in order, so such a consumer asks for offsets before it is assigned a partition
#: (docs/decisions/0055-idle-fetches.md).
IDLE_FETCH_WAIT_MS = 5000
