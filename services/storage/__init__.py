"""The storage node: partition replicas materialized from their Kafka logs into RocksDB."""

from dynamolog import native as _native

_native.use(__name__, __path__)  # before any submodule is imported: the compiled ones, while they match their sources

