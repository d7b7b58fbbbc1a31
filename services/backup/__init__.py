"""The backup service: backups, restores and point-in-time recovery in an object store (docs/decisions/0028-backups-in-an-object-store.md)."""
