"""The storage node: partition replicas materialized from their Kafka logs into RocksDB."""
