"""Dynamolog: a DynamoDB-compatible database built as an event-sourced system over Kafka.

This package holds the building blocks that several services share and none owns:
errors, attribute values, key encoding, the expression language, Avro codecs,
Kafka helpers, the internal RPC framing, configuration and the command line.
"""

__version__ = "0.1.0"

from dynamolog import native as _native

_native.use(__name__, __path__)  # the compiled modules, while they match their sources
