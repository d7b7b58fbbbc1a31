"""Dynamolog: a DynamoDB-compatible database built as an event-sourced system over Kafka.

This package holds the building blocks that several services share and none owns:
errors, attribute values, key encoding, the expression language, Avro codecs,
Kafka helpers, the internal RPC framing, configuration and the command line.
"""

__version__ = "0.1.0"
