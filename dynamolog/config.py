"""Settings shared by every service, from the command line or the environment.

Environment variables (each has a command-line option of the same meaning):

- ``KAFKA_BOOTSTRAP_SERVERS``: the Kafka cluster to use (default ``127.0.0.1:9092``).
- ``DYNAMOLOG_NAMESPACE``: prefix of every topic and transactional id (default ``dyn``), so that
  several Dynamolog systems can share one Kafka cluster.
- ``DYNAMOLOG_REGION``: the region this system answers as (default ``us-east-1``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """Where the Kafka cluster is and how this system names its topics."""

    #: comma-separated ``host:port`` list of Kafka brokers
    bootstrap: str = "127.0.0.1:9092"
    #: prefix of topic names and transactional ids
    namespace: str = "dyn"
    #: region name shown in ARNs and written into log records as their origin
    region: str = "us-east-1"

    @classmethod
    def from_env(cls, **overrides: str | None) -> Settings:
        values = {
            "bootstrap": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", cls.bootstrap),
            "namespace": os.environ.get("DYNAMOLOG_NAMESPACE", cls.namespace),
            "region": os.environ.get("DYNAMOLOG_REGION", cls.region),
        }
        values.update({k: v for k, v in overrides.items() if v})
        return cls(**values)

    # -- topic names (docs/architecture.md, "Topics") -------------------------------------
    @property
    def catalog_topic(self) -> str:
        return f"{self.namespace}.catalog"

    @property
    def partitions_topic(self) -> str:
        return f"{self.namespace}.partitions"

    @property
    def nodes_topic(self) -> str:
        return f"{self.namespace}.nodes"

    @property
    def txn_topic(self) -> str:
        """Decisions of multi-item transactions (docs/transactions.md)."""
        return f"{self.namespace}.txn"

    def log_topic(self, table: str, partition_id: str) -> str:
        """The partition's replication log.  Kafka allows 249 characters in a topic name and
        DynamoDB 255 in a table name, so long table names are cut; the partition id keeps the
        name unique."""
        room = 249 - len(self.namespace) - len(partition_id) - 4
        return f"{self.namespace}.t.{table[:room]}.{partition_id}"

    def transactional_id(self, partition_id: str) -> str:
        return f"{self.namespace}.leader.{partition_id}"
