"""Global tables: RepOut (docs/decisions/0032-own-mirror-on-aiokafka.md)."""
