"""Global tables: RepIn (docs/decisions/0032-own-mirror-on-aiokafka.md)."""
